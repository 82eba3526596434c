package accel_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/sandbox"
)

// The built-in ocr module, end to end on the real PP-OCRv4 models: text
// rendered with Go's own font goes in as a PNG, through the module's
// WebAssembly pre- and post-processing, the tensor ABI, the supervised
// accelerator and ONNX Runtime, and comes back as text.
func TestOCRModuleReadsRenderedText(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setup(t, nil)
	models := filepath.Join(testguests.ModulesDir(), "..", "build", "cache", "ocr-models", "1.4.2")
	for name, file := range map[string]string{"ppocr_det": "ch_PP-OCRv4_det_infer.onnx", "ppocr_rec": "ch_PP-OCRv4_rec_infer.onnx"} {
		path, err := filepath.Abs(filepath.Join(models, file))
		require.NoError(t, err)
		_, _, err = s.models.Register(ctx, name, accel.Registration{Path: path})
		require.NoError(t, err, "make accel-deps fetches the OCR models")
	}
	_, _, err := s.reg.Upload(ctx, testguests.Reactor(t, "ocr"), testguests.Manifest(t, "ocr"))
	require.NoError(t, err)
	m, err := s.reg.Get(ctx, "ocr", "1.0.0")
	require.NoError(t, err)
	_, err = s.reg.SetGrant(ctx, "ocr", "1.0.0", sandbox.Grant{Capabilities: m.Manifest.Capabilities})
	require.NoError(t, err)

	lines := []string{"Millrace reads text locally", "Invoice 2026-11-23 total 418.50"}
	in, err := json.Marshal(map[string]string{"image": base64.StdEncoding.EncodeToString(renderPNG(t, lines, 28))})
	require.NoError(t, err)
	res, _, err := s.reg.Invoke(ctx, registry.InvokeRequest{ModuleID: "ocr", Version: "1.0.0", Input: in})
	require.NoError(t, err)
	require.Nil(t, res.Failure, "logs: %+v", res.Logs)
	var out struct {
		Text  string `json:"text"`
		Lines []struct {
			Text       string  `json:"text"`
			Confidence float64 `json:"confidence"`
		} `json:"lines"`
	}
	require.NoError(t, json.Unmarshal(res.Output, &out))
	want := strings.Join(lines, "\n")
	acc := accuracy(out.Text, want)
	t.Logf("read %q: character accuracy %.3f in %v", out.Text, acc, res.Duration)
	require.GreaterOrEqual(t, acc, 0.9)
	require.Len(t, out.Lines, len(lines))
	exact := 0
	for i, l := range out.Lines {
		if l.Text == lines[i] {
			exact++
		}
	}
	require.Positive(t, exact, "at least one line is read exactly")
}

// renderPNG draws lines in black Go Regular on white, size points each.
func renderPNG(t *testing.T, lines []string, size float64) []byte {
	t.Helper()
	f, err := opentype.Parse(goregular.TTF)
	require.NoError(t, err)
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
	require.NoError(t, err)
	defer face.Close()
	metrics := face.Metrics()
	lineHeight := (metrics.Height * 3 / 2).Ceil()
	width := 0
	for _, l := range lines {
		width = max(width, font.MeasureString(face, l).Ceil())
	}
	margin := int(size)
	img := image.NewRGBA(image.Rect(0, 0, width+2*margin, len(lines)*lineHeight+2*margin))
	draw.Draw(img, img.Rect, image.White, image.Point{}, draw.Src)
	d := &font.Drawer{Dst: img, Src: image.NewUniform(color.Black), Face: face}
	for i, l := range lines {
		d.Dot = fixed.P(margin, margin+i*lineHeight+metrics.Ascent.Ceil())
		d.DrawString(l)
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

// accuracy is 1 − the edit distance between got and want (over runes) /
// the length of want.
func accuracy(got, want string) float64 {
	g, w := []rune(got), []rune(want)
	prev := make([]int, len(g)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(w); i++ {
		cur := make([]int, len(g)+1)
		cur[0] = i
		for j := 1; j <= len(g); j++ {
			cost := 1
			if w[i-1] == g[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return max(0, 1-float64(prev[len(g)])/float64(len(w)))
}
