//go:build !wasip1

package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/accel/acceltest"
	"github.com/millrace/millrace/guest-sdk/millracetest"
	"github.com/millrace/millrace/modules/internal/moduletest"
	"github.com/millrace/millrace/modules/ocr/internal/ocrtest"
)

func TestMain(m *testing.M) { os.Exit(acceltest.Main(m)) }

func TestManifest(t *testing.T) {
	t.Parallel()
	m := moduletest.Manifest(t)
	require.Equal(t, abi.Capabilities{Accel: &abi.Accel{Models: []string{"ppocr_det", "ppocr_rec"}}}, m.Capabilities)
}

// TestDictionary: the embedded dictionary is the one fetched with the
// models (the sha256 scripts/fetch-ocr-models.sh pins), and its size
// matches the recogniser's 6625 classes (blank + 6623 + space).
func TestDictionary(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256(dictionaryFile)
	require.Equal(t, "28b2362ad4ab2dc38769aa72feb535e3a9ddb3fd2a7585a05920e6393b1dc7f7", hex.EncodeToString(sum[:]))
	require.Len(t, dictionary, 6623)
}

func TestImageBytes(t *testing.T) {
	t.Parallel()
	want := []byte{0x89, 'P', 'N', 'G', 0xfb, 0xff, 0x00}
	std := base64.StdEncoding.EncodeToString(want)
	for _, s := range []string{
		std,
		base64.RawStdEncoding.EncodeToString(want),
		base64.URLEncoding.EncodeToString(want),
		std[:4] + "\r\n" + std[4:] + "\n",
		"data:image/png;base64," + std,
	} {
		got, err := imageBytes(s)
		require.NoError(t, err, s)
		require.Equal(t, want, got, s)
	}
}

// TestInputErrors runs the module's own handler through the SDK's fake
// host. Everything before the first model call is checked; a valid image
// then reaches the WASI-NN runner, which finds no model on the fake host.
func TestInputErrors(t *testing.T) {
	t.Parallel()
	img, _ := ocrtest.Render(t, []string{"x"}, 16)
	png := base64.StdEncoding.EncodeToString(ocrtest.PNG(t, img))
	for _, c := range []struct {
		in  input
		err string
	}{
		{input{}, "input: image is required: a PNG or JPEG image, base64-encoded"},
		{input{Image: "ab$d"}, "input: image is not base64: illegal base64 data at input byte 2"},
		{input{Image: "data:image/png,abc"}, "input: image: a data: URL must be base64 (data:image/png;base64,…)"},
		{input{Image: base64.StdEncoding.EncodeToString([]byte("GIF89a"))}, "ocr: reading the image: image: unknown format (PNG and JPEG are supported)"},
		{input{Image: png, MaxSide: 16}, "input: max_side must be between 32 and 4096, not 16"},
		{input{Image: png, MaxSide: 5000}, "input: max_side must be between 32 and 4096, not 5000"},
		// The fake host serves no model: the WASI-NN runner says which and why.
		{input{Image: png}, `ocr: running the detection model "ppocr_det": ocr: model ppocr_det (is it registered and granted?): wasi_ephemeral_nn.load_by_name: not_found`},
	} {
		h := millracetest.NewHost()
		_, err := millracetest.Call(h, run, c.in)
		require.EqualError(t, err, c.err)
	}
}

// TestReadsText runs the handler on the real models through the accel
// service, with the SDK's fake host encoding its output.
func TestReadsText(t *testing.T) {
	t.Parallel()
	runner := ocrtest.StartAccel(t)
	lines := []string{"Millrace OCR module", "Total 42.17 USD"}
	img, _ := ocrtest.Render(t, lines, 28)
	handler := func(ctx context.Context, in input) (output, error) { return read(ctx, runner, in) }
	h := millracetest.NewHost()
	h.Grants = &moduletest.Manifest(t).Capabilities
	out, err := millracetest.Call(h, handler, input{Image: "data:image/png;base64," + base64.StdEncoding.EncodeToString(ocrtest.PNG(t, img)), MaxSide: 640})
	require.NoError(t, err)
	acc := ocrtest.Accuracy(out.Text, strings.Join(lines, "\n"))
	t.Logf("read %q: character accuracy %.4f", out.Text, acc)
	require.GreaterOrEqual(t, acc, 0.9) // the reasons are in pipeline/accel_test.go
	require.Len(t, out.Lines, 2)

	// The output as the host receives it.
	var doc struct {
		Text  string `json:"text"`
		Lines []struct {
			Text       string  `json:"text"`
			Confidence float64 `json:"confidence"`
			Box        [][]int `json:"box"`
		} `json:"lines"`
	}
	require.NoError(t, json.Unmarshal(h.Output, &doc))
	require.Equal(t, out.Text, doc.Text)
	require.Len(t, doc.Lines, 2)
	for _, l := range doc.Lines {
		require.Len(t, l.Box, 4)
		for _, p := range l.Box {
			require.Len(t, p, 2)
		}
	}
	require.Len(t, h.Logs, 1)
	require.Equal(t, "read text", h.Logs[0].Message)
}
