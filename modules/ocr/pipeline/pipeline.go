// Package pipeline reads text from images with the PP-OCRv4 models: DB
// text detection, then CRNN/SVTR recognition with CTC decoding. It holds
// everything around the two model calls (image decoding, resizing,
// normalisation, box extraction, cropping, decoding) as pure Go that runs
// natively and in WebAssembly (GOOS=wasip1); the model calls themselves go
// through a Runner, so the same code runs against the accel service over
// the Open Inference Protocol, through the WASI-NN host functions inside a
// module, or against a fake in a unit test.
//
// The steps follow PaddleOCR's inference tools (tools/infer/predict_det.py,
// predict_rec.py and the DB post-processing), with the defaults of its
// PP-OCRv4 configuration; README.md in the parent folder lists where this
// code differs.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"image"
	"strings"
)

// FP32 is the datatype of every tensor PP-OCR exchanges, spelt as the Open
// Inference Protocol spells it.
const FP32 = "FP32"

// Tensor is a named FP32 tensor in row-major order. Runners convert it to
// and from their transport's layout (little-endian bytes on the wire and in
// WASI-NN).
type Tensor struct {
	Name  string
	Shape []int64
	DType string // FP32; empty is read as FP32
	Data  []float32
}

// Runner runs a model by name on inputs and returns its outputs. It is the
// only part of the pipeline that reaches a model: implement it over the
// accel client, WASI-NN, or anything else that runs ONNX models.
type Runner interface {
	Run(ctx context.Context, model string, inputs []Tensor) ([]Tensor, error)
}

// TensorInfo describes one input or output of a model; -1 marks a dynamic
// dimension.
type TensorInfo struct {
	Name  string
	DType string
	Shape []int64
}

// ModelInfo lists a model's inputs and outputs.
type ModelInfo struct {
	Inputs  []TensorInfo
	Outputs []TensorInfo
}

// MetadataRunner is a Runner that can also describe its models. New reads
// tensor names, the recognition height and the number of classes from it
// when the Runner implements it, and checks them against the dictionary.
type MetadataRunner interface {
	Runner
	Metadata(ctx context.Context, model string) (ModelInfo, error)
}

// Config sets up a Pipeline. A zero field takes the default in its
// comment (PaddleOCR's for PP-OCRv4); only Dictionary is required.
type Config struct {
	// DetModel and RecModel are the models' names for the Runner:
	// "ppocr_det" and "ppocr_rec".
	DetModel, RecModel string
	// DetInput and RecInput name the models' image inputs, and DetOutput
	// and RecOutput the outputs read ("x", and the first output when
	// empty). A MetadataRunner's answer replaces them.
	DetInput, DetOutput, RecInput, RecOutput string
	// Dictionary is the recognition model's characters, one per class
	// after the CTC blank (ppocr_keys_v1.txt for the Chinese/English
	// model; see ParseDictionary). A trailing space class is added when
	// the model has one more class than blank + Dictionary.
	Dictionary []string

	// MaxPixels bounds a decoded image's width × height (16 Mi): larger
	// images are refused before their pixels are decoded.
	MaxPixels int
	// MaxSide bounds the longer side of the detection input (960). Larger
	// images are scaled down; smaller ones keep their size. Sides are
	// rounded to multiples of 32, the detector's stride.
	MaxSide int
	// Threshold binarises the detector's probability map (0.3).
	Threshold float32
	// BoxThreshold drops a box whose mean probability is lower (0.6).
	BoxThreshold float32
	// UnclipRatio grows each box by area × ratio / perimeter on every side
	// (1.5): the detector is trained to mark a shrunk core of each line.
	UnclipRatio float64
	// MaxBoxes bounds the candidate regions examined (1000).
	MaxBoxes int

	// RecHeight is the recognition input's height (48; a MetadataRunner's
	// fixed height replaces it).
	RecHeight int
	// RecMinWidth is the narrowest recognition input (320), and
	// RecMaxWidth the widest (1280): a longer line is squeezed to fit.
	RecMinWidth, RecMaxWidth int
	// RecBatch is how many lines go to the recogniser in one call (6).
	RecBatch int
	// RecPadding widens each box on every side by this fraction of its
	// height before it is read (0.2; negative for none). PP-OCR's boxes hug
	// the glyphs, and the recogniser, given no margin, drops most spaces
	// between Latin words (README.md, "Accuracy").
	RecPadding float64
	// MinConfidence drops a line read with a lower confidence (0.5).
	MinConfidence float64
}

// withDefaults returns c with its zero fields set.
func (c Config) withDefaults() Config {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.DetModel, "ppocr_det")
	def(&c.RecModel, "ppocr_rec")
	def(&c.DetInput, "x")
	def(&c.RecInput, "x")
	if c.MaxPixels <= 0 {
		c.MaxPixels = 16 << 20
	}
	if c.MaxSide <= 0 {
		c.MaxSide = 960
	}
	c.MaxSide = clampSide(c.MaxSide)
	if c.Threshold <= 0 {
		c.Threshold = 0.3
	}
	if c.BoxThreshold <= 0 {
		c.BoxThreshold = 0.6
	}
	if c.UnclipRatio <= 0 {
		c.UnclipRatio = 1.5
	}
	if c.MaxBoxes <= 0 {
		c.MaxBoxes = 1000
	}
	if c.RecHeight <= 0 {
		c.RecHeight = 48
	}
	if c.RecMinWidth <= 0 {
		c.RecMinWidth = 320
	}
	if c.RecMaxWidth <= 0 {
		c.RecMaxWidth = 1280
	}
	c.RecMaxWidth = max(c.RecMaxWidth, c.RecMinWidth)
	if c.RecBatch <= 0 {
		c.RecBatch = 6
	}
	if c.RecPadding == 0 {
		c.RecPadding = 0.2
	}
	c.RecPadding = max(c.RecPadding, 0)
	if c.MinConfidence <= 0 {
		c.MinConfidence = 0.5
	}
	return c
}

// Limits on MaxSide: below one stride there is no image; above 4096 the
// detection tensor alone passes 200 MB.
const (
	minSide = 32
	maxSide = 4096
)

func clampSide(n int) int {
	return min(max(n, minSide), maxSide) / 32 * 32
}

// Pipeline reads text from images. It is immutable and safe for
// concurrent use.
type Pipeline struct {
	cfg    Config
	runner Runner
	// labels maps a class to its text: "" for the CTC blank, then the
	// dictionary, then " " when the model has a space class. It is nil
	// until the class count is known, then fixed by New.
	labels []string
}

// New returns a pipeline that runs its models through r. When r is a
// MetadataRunner, New asks it for both models' metadata and fails when
// they do not look like PP-OCR's or the dictionary does not match the
// recognition model's classes.
func New(ctx context.Context, r Runner, cfg Config) (*Pipeline, error) {
	if r == nil {
		return nil, errors.New("ocr: a Runner is required")
	}
	if len(cfg.Dictionary) == 0 {
		return nil, errors.New("ocr: Config.Dictionary is required (the recognition model's characters, e.g. ppocr_keys_v1.txt)")
	}
	p := &Pipeline{cfg: cfg.withDefaults(), runner: r}
	if mr, ok := r.(MetadataRunner); ok {
		if err := p.readMetadata(ctx, mr); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// readMetadata takes tensor names, the recognition height and the class
// count from the models, checking that they have PP-OCR's shapes:
// detection [N,3,H,W] → [N,1,H,W], recognition [N,3,48,W] → [N,T,classes].
func (p *Pipeline) readMetadata(ctx context.Context, mr MetadataRunner) error {
	det, err := mr.Metadata(ctx, p.cfg.DetModel)
	if err != nil {
		return fmt.Errorf("ocr: reading the detection model %q: %w", p.cfg.DetModel, err)
	}
	in, out, err := imageModel(det, 4)
	if err != nil {
		return fmt.Errorf("ocr: detection model %q: %w", p.cfg.DetModel, err)
	}
	if c := out.Shape[1]; c != 1 && c != -1 {
		return fmt.Errorf("ocr: detection model %q: output %q has %d channels, not 1: is it a DB text detector?", p.cfg.DetModel, out.Name, c)
	}
	p.cfg.DetInput, p.cfg.DetOutput = in.Name, out.Name

	rec, err := mr.Metadata(ctx, p.cfg.RecModel)
	if err != nil {
		return fmt.Errorf("ocr: reading the recognition model %q: %w", p.cfg.RecModel, err)
	}
	in, out, err = imageModel(rec, 3)
	if err != nil {
		return fmt.Errorf("ocr: recognition model %q: %w", p.cfg.RecModel, err)
	}
	p.cfg.RecInput, p.cfg.RecOutput = in.Name, out.Name
	if h := in.Shape[2]; h > 0 {
		p.cfg.RecHeight = int(h)
	}
	if classes := out.Shape[2]; classes > 0 {
		labels, err := labelsFor(p.cfg.Dictionary, int(classes))
		if err != nil {
			return fmt.Errorf("ocr: recognition model %q: %w", p.cfg.RecModel, err)
		}
		p.labels = labels
	}
	return nil
}

// imageModel checks that m takes one FP32 image [N,3,H,W] and returns its
// first output, of rank outRank.
func imageModel(m ModelInfo, outRank int) (in, out TensorInfo, err error) {
	if len(m.Inputs) != 1 || len(m.Outputs) == 0 {
		return in, out, fmt.Errorf("has %d inputs and %d outputs; PP-OCR models have one image input", len(m.Inputs), len(m.Outputs))
	}
	in, out = m.Inputs[0], m.Outputs[0]
	if len(in.Shape) != 4 || (in.Shape[1] != 3 && in.Shape[1] != -1) {
		return in, out, fmt.Errorf("input %q has shape %v, not [N,3,H,W]", in.Name, in.Shape)
	}
	if len(out.Shape) != outRank {
		return in, out, fmt.Errorf("output %q has shape %v, not of rank %d", out.Name, out.Shape, outRank)
	}
	for _, t := range []TensorInfo{in, out} {
		if t.DType != "" && t.DType != FP32 {
			return in, out, fmt.Errorf("tensor %q is %s, not %s", t.Name, t.DType, FP32)
		}
	}
	return in, out, nil
}

// WithMaxSide returns a copy of p whose detection input's longer side is
// at most n (rounded down to a multiple of 32, within [32, 4096]); n ≤ 0
// keeps p's.
func (p *Pipeline) WithMaxSide(n int) *Pipeline {
	q := *p
	if n > 0 {
		q.cfg.MaxSide = clampSide(n)
	}
	return &q
}

// Line is one line of text read from an image.
type Line struct {
	Text string `json:"text"`
	// Confidence is the mean probability of the line's characters.
	Confidence float64 `json:"confidence"`
	// Box is the line's rectangle in the original image's pixels:
	// top-left, top-right, bottom-right, bottom-left.
	Box Box `json:"box"`
}

// Box is a quadrilateral as four [x, y] corners, clockwise from the
// top-left.
type Box [4][2]int

// Result is the text read from an image.
type Result struct {
	// Text is every line, top to bottom: lines side by side are joined by
	// a space, rows by a newline.
	Text  string `json:"text"`
	Lines []Line `json:"lines"`
}

// Recognize decodes a PNG or JPEG image and reads its text.
func (p *Pipeline) Recognize(ctx context.Context, data []byte) (*Result, error) {
	img, err := DecodeImage(data, p.cfg.MaxPixels)
	if err != nil {
		return nil, err
	}
	return p.RecognizeImage(ctx, img)
}

// RecognizeImage reads the text of an image. Transparent parts are read
// as white.
func (p *Pipeline) RecognizeImage(ctx context.Context, src image.Image) (*Result, error) {
	b := src.Bounds()
	if b.Empty() {
		return nil, errors.New("ocr: the image is empty")
	}
	if int64(b.Dx())*int64(b.Dy()) > int64(p.cfg.MaxPixels) {
		return nil, fmt.Errorf("%w: %d×%d is more than %d pixels", ErrTooManyPixels, b.Dx(), b.Dy(), p.cfg.MaxPixels)
	}
	img := flatten(src)
	boxes, err := p.detect(ctx, img)
	if err != nil {
		return nil, err
	}
	lines, err := p.recognize(ctx, img, boxes)
	if err != nil {
		return nil, err
	}
	res := &Result{Lines: []Line{}}
	var text strings.Builder
	lastRow := -1
	for i, l := range lines {
		if l.Text == "" || l.Confidence < p.cfg.MinConfidence {
			continue
		}
		res.Lines = append(res.Lines, l)
		switch {
		case lastRow == -1:
		case boxes[i].row == lastRow:
			text.WriteByte(' ')
		default:
			text.WriteByte('\n')
		}
		lastRow = boxes[i].row
		text.WriteString(l.Text)
	}
	res.Text = text.String()
	return res, nil
}

// output returns the output named name, or the first when name is empty,
// checked to be FP32 with as many values as its shape says.
func output(outputs []Tensor, name, model string) (Tensor, error) {
	var t Tensor
	found := false
	for _, o := range outputs {
		if name == "" || o.Name == name {
			t, found = o, true
			break
		}
	}
	if !found {
		return t, fmt.Errorf("ocr: model %q returned no output %q", model, name)
	}
	if t.DType != "" && t.DType != FP32 {
		return t, fmt.Errorf("ocr: model %q: output %q is %s, not %s", model, t.Name, t.DType, FP32)
	}
	n := int64(1)
	for _, d := range t.Shape {
		if d < 0 || (d > 0 && n > int64(len(t.Data))/d+1) {
			return t, fmt.Errorf("ocr: model %q: output %q has a bad shape %v", model, t.Name, t.Shape)
		}
		n *= d
	}
	if n != int64(len(t.Data)) {
		return t, fmt.Errorf("ocr: model %q: output %q has %d values for shape %v", model, t.Name, len(t.Data), t.Shape)
	}
	return t, nil
}
