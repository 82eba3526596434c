//go:build !wasip1

package pipeline_test

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/accel/acceltest"
	"github.com/millrace/millrace/modules/ocr/internal/ocrtest"
	"github.com/millrace/millrace/modules/ocr/pipeline"
)

// These tests run the real PP-OCRv4 models on the real accel service
// (ocrtest.StartAccel), on text drawn with Go's own fonts.

// sample is the text the accuracy tests draw: English words, digits and
// punctuation. The recognition padding (Config.RecPadding) was chosen on
// other sentences (README.md, "Accuracy"), not on these.
var sample = []string{
	"The quick brown fox jumps over the lazy dog",
	"Invoice 2024-0731 total 1,284.50 EUR",
	"Millrace reads text from images offline",
	"Call 555 0199 before 9:30 on Monday",
}

func TestMain(m *testing.M) { os.Exit(acceltest.Main(m)) }

func setup(t *testing.T) (context.Context, *pipeline.Pipeline) {
	t.Helper()
	ctx := context.Background()
	p, err := pipeline.New(ctx, ocrtest.StartAccel(t), pipeline.Config{Dictionary: ocrtest.LoadDictionary(t)})
	require.NoError(t, err)
	return ctx, p
}

// checkRead checks what p read from an image of sample: its character
// accuracy, returned, and one box per line around that line's ink.
func checkRead(t *testing.T, res *pipeline.Result, ink []image.Rectangle) float64 {
	t.Helper()
	acc := ocrtest.Accuracy(res.Text, strings.Join(sample, "\n"))
	exact := 0
	for _, l := range res.Lines {
		for _, s := range sample {
			if l.Text == s {
				exact++
			}
		}
	}
	t.Logf("character accuracy %.4f, %d of %d lines exact: %q", acc, exact, len(sample), res.Text)
	// Clean, horizontal, printed text: PP-OCRv4 reads every character of
	// it (the no-space accuracy is 1 at every size measured) and most
	// spaces; 0.9 leaves room for a few lost spaces on another ONNX
	// Runtime build without letting a broken step through, which costs
	// far more (a wrong channel order or scale reads nothing right).
	require.GreaterOrEqual(t, acc, 0.9)
	require.Positive(t, exact, "no line read exactly")
	require.Len(t, res.Lines, len(sample))
	for i, l := range res.Lines {
		require.Greater(t, l.Confidence, 0.5)
		require.LessOrEqual(t, l.Confidence, 1.0)
		// The detector's box hugs the glyphs: it overlaps the line's ink
		// bounds by more than half of their union.
		box := image.Rect(l.Box[0][0], l.Box[0][1], l.Box[2][0], l.Box[2][1])
		require.Greater(t, iou(box, ink[i]), 0.6, "line %d: box %v, ink %v", i, l.Box, ink[i])
	}
	return acc
}

// iou is the area of a ∩ b over the area of a ∪ b.
func iou(a, b image.Rectangle) float64 {
	area := func(r image.Rectangle) float64 { return float64(r.Dx() * r.Dy()) }
	in := area(a.Intersect(b))
	return in / (area(a) + area(b) - in)
}

// TestAccuracyBySize reads the sample drawn at sizes from 14 to 64 pixels
// per em; the largest is wider than MaxSide, so the detector sees it
// scaled down and its boxes are mapped back.
func TestAccuracyBySize(t *testing.T) {
	t.Parallel()
	ctx, p := setup(t)
	var sum float64
	sizes := []float64{14, 18, 24, 32, 48, 64}
	for _, size := range sizes {
		img, ink := ocrtest.Render(t, sample, size)
		res, err := p.Recognize(ctx, ocrtest.PNG(t, img))
		require.NoError(t, err)
		t.Logf("%v px, %d×%d PNG:", size, img.Rect.Dx(), img.Rect.Dy())
		sum += checkRead(t, res, ink)
	}
	t.Logf("mean character accuracy over %d sizes: %.4f", len(sizes), sum/float64(len(sizes)))
}

func TestJPEG(t *testing.T) {
	t.Parallel()
	ctx, p := setup(t)
	img, ink := ocrtest.Render(t, sample, 24)
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 75}))
	res, err := p.Recognize(ctx, buf.Bytes())
	require.NoError(t, err)
	checkRead(t, res, ink)
}

// TestSmallMaxSide reads a line with a detection input of 320 pixels.
func TestSmallMaxSide(t *testing.T) {
	t.Parallel()
	ctx, p := setup(t)
	img, ink := ocrtest.Render(t, sample[:1], 32)
	require.Greater(t, img.Rect.Dx(), 640)
	res, err := p.WithMaxSide(320).Recognize(ctx, ocrtest.PNG(t, img))
	require.NoError(t, err)
	require.Len(t, res.Lines, 1)
	t.Logf("max side 320: %q", res.Text)
	require.GreaterOrEqual(t, ocrtest.Accuracy(res.Text, sample[0]), 0.9)
	box := image.Rect(res.Lines[0].Box[0][0], res.Lines[0].Box[0][1], res.Lines[0].Box[2][0], res.Lines[0].Box[2][1])
	require.Greater(t, iou(box, ink[0]), 0.6)
}

func TestBlankImage(t *testing.T) {
	t.Parallel()
	ctx, p := setup(t)
	img := image.NewRGBA(image.Rect(0, 0, 300, 100))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	res, err := p.RecognizeImage(ctx, img)
	require.NoError(t, err)
	require.Equal(t, &pipeline.Result{Text: "", Lines: []pipeline.Line{}}, res)
}

// TestModelMetadata checks New against the real models' metadata: the
// dictionary must match the recogniser's classes.
func TestModelMetadata(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := ocrtest.StartAccel(t)
	dict := ocrtest.LoadDictionary(t)
	_, err := pipeline.New(ctx, r, pipeline.Config{Dictionary: dict[:100]})
	require.ErrorContains(t, err, `recognition model "ppocr_rec": it has 6625 classes, but the dictionary has 100 entries`)
	_, err = pipeline.New(ctx, r, pipeline.Config{Dictionary: dict, RecModel: "ppocr_det"})
	require.ErrorContains(t, err, `recognition model "ppocr_det": output "sigmoid_0.tmp_0" has shape [-1 1 -1 -1], not of rank 3`)
	_, err = pipeline.New(ctx, r, pipeline.Config{Dictionary: dict, DetModel: "missing"})
	require.ErrorContains(t, err, `ocr: reading the detection model "missing"`)
}

// BenchmarkRecognize reads the sample drawn at 32 pixels per em (707×288,
// four lines) through the accel service: two model calls and everything
// around them.
func BenchmarkRecognize(b *testing.B) {
	ctx := context.Background()
	p, err := pipeline.New(ctx, ocrtest.StartAccel(b), pipeline.Config{Dictionary: ocrtest.LoadDictionary(b)})
	require.NoError(b, err)
	img, _ := ocrtest.Render(b, sample, 32)
	data := ocrtest.PNG(b, img)
	for b.Loop() {
		if _, err := p.Recognize(ctx, data); err != nil {
			b.Fatal(err)
		}
	}
}
