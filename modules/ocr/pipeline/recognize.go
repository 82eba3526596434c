package pipeline

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// ParseDictionary reads a recognition dictionary: one character (or
// string) per line, UTF-8, in class order after the CTC blank, as
// PaddleOCR's ppocr_keys_v1.txt is written. A final newline and carriage
// returns are ignored; an empty line is an error, since PaddleOCR would
// read it as a class with no text.
func ParseDictionary(data []byte) ([]string, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("ocr: the dictionary is not UTF-8")
	}
	text := strings.TrimSuffix(strings.ReplaceAll(string(data), "\r", ""), "\n")
	if text == "" {
		return nil, errors.New("ocr: the dictionary is empty")
	}
	dict := strings.Split(text, "\n")
	for i, s := range dict {
		if s == "" {
			return nil, fmt.Errorf("ocr: dictionary line %d is empty", i+1)
		}
	}
	return dict, nil
}

// labelsFor maps each of a model's classes to its text: class 0 is the
// CTC blank, then the dictionary, then, when the model has one more class
// (PaddleOCR's use_space_char, on for PP-OCRv4), a space.
func labelsFor(dict []string, classes int) ([]string, error) {
	switch classes {
	case len(dict) + 2:
		return slices.Concat([]string{""}, dict, []string{" "}), nil
	case len(dict) + 1:
		return slices.Concat([]string{""}, dict), nil
	}
	return nil, fmt.Errorf("it has %d classes, but the dictionary has %d entries (want %d: blank + dictionary + space): is it the dictionary of this model?", classes, len(dict), len(dict)+2)
}

// ctcDecode reads one line from T×C class probabilities (row-major) by
// greedy CTC decoding: the most probable class at each step, repeats
// merged, blanks dropped. The confidence is the mean probability of the
// steps kept (0 when none is).
func ctcDecode(probs []float32, steps, classes int, labels []string) (string, float64) {
	var text strings.Builder
	var sum float64
	kept := 0
	prev := -1
	for t := range steps {
		row := probs[t*classes : (t+1)*classes]
		best := 0
		for c, p := range row {
			if p > row[best] {
				best = c
			}
		}
		if best != 0 && best != prev {
			text.WriteString(labels[best])
			sum += float64(row[best])
			kept++
		}
		prev = best
	}
	if kept == 0 {
		return "", 0
	}
	return text.String(), sum / float64(kept)
}

// crop is a text box prepared for the recogniser: the source corners
// (top-left, top-right, bottom-right, bottom-left after any rotation) and
// the box's size.
type crop struct {
	corners [4][2]float64
	w, h    float64
}

// newCrop measures b as PaddleOCR's get_rotate_crop_image does: the width
// is the longer of the top and bottom edges, the height the longer of the
// sides. A box at least 1.5 times taller than wide is read rotated a
// quarter turn counter-clockwise (vertical text). The crop then grows by
// pad × its height on every side (Config.RecPadding).
func newCrop(b Box, pad float64) crop {
	var c crop
	for i, p := range b {
		c.corners[i] = [2]float64{float64(p[0]), float64(p[1])}
	}
	dist := func(i, j int) float64 {
		return math.Hypot(c.corners[i][0]-c.corners[j][0], c.corners[i][1]-c.corners[j][1])
	}
	c.w = math.Floor(max(dist(0, 1), dist(2, 3)))
	c.h = math.Floor(max(dist(0, 3), dist(1, 2)))
	if c.h >= 1.5*c.w {
		p := c.corners
		c.corners = [4][2]float64{p[1], p[2], p[3], p[0]}
		c.w, c.h = c.h, c.w
	}
	c.w, c.h = max(c.w, 1), max(c.h, 1)
	if m := pad * c.h; m > 0 {
		p := c.corners
		ux, uy := unit(p[1][0]-p[0][0], p[1][1]-p[0][1])
		vx, vy := unit(p[3][0]-p[0][0], p[3][1]-p[0][1])
		for i, s := range [4][2]float64{{-1, -1}, {1, -1}, {1, 1}, {-1, 1}} {
			c.corners[i] = [2]float64{p[i][0] + m*(s[0]*ux+s[1]*vx), p[i][1] + m*(s[0]*uy+s[1]*vy)}
		}
		c.w, c.h = c.w+2*m, c.h+2*m
	}
	return c
}

// unit returns (x, y) scaled to length 1, or (0, 0).
func unit(x, y float64) (float64, float64) {
	l := math.Hypot(x, y)
	if l == 0 {
		return 0, 0
	}
	return x / l, y / l
}

// recWidths returns, for crops read in one batch, the batch's input width
// and the width each crop is resized to at height recH: the input is as
// wide as the widest crop's aspect ratio needs, at least minW (the
// model's training width) and at most maxW; each crop keeps its aspect
// ratio up to that width and is padded on the right.
func recWidths(crops []crop, recH, minW, maxW int) (int, []int) {
	ratio := float64(minW) / float64(recH)
	for _, c := range crops {
		ratio = max(ratio, c.w/c.h)
	}
	width := min(int(float64(recH)*ratio), maxW)
	widths := make([]int, len(crops))
	for i, c := range crops {
		widths[i] = min(int(math.Ceil(float64(recH)*c.w/c.h)), width)
	}
	return width, widths
}

// recognize reads the text in each box, in batches of crops of similar
// aspect ratio (which wastes the least padding), and returns one line per
// box in the boxes' order.
func (p *Pipeline) recognize(ctx context.Context, img *image.RGBA, boxes []detBox) ([]Line, error) {
	crops := make([]crop, len(boxes))
	order := make([]int, len(boxes))
	for i, b := range boxes {
		crops[i] = newCrop(b.box, p.cfg.RecPadding)
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		ri, rj := crops[i].w/crops[i].h, crops[j].w/crops[j].h
		switch {
		case ri < rj:
			return -1
		case ri > rj:
			return 1
		}
		return 0
	})
	labels := p.labels
	lines := make([]Line, len(boxes))
	h := p.cfg.RecHeight
	for start := 0; start < len(order); start += p.cfg.RecBatch {
		batch := order[start:min(start+p.cfg.RecBatch, len(order))]
		bc := make([]crop, len(batch))
		for i, k := range batch {
			bc[i] = crops[k]
		}
		width, widths := recWidths(bc, h, p.cfg.RecMinWidth, p.cfg.RecMaxWidth)
		size := 3 * h * width
		data := make([]float32, len(batch)*size)
		for i, c := range bc {
			recInput(img, c, widths[i], h, width, data[i*size:(i+1)*size])
		}
		in := Tensor{Name: p.cfg.RecInput, Shape: []int64{int64(len(batch)), 3, int64(h), int64(width)}, DType: FP32, Data: data}
		outs, err := p.runner.Run(ctx, p.cfg.RecModel, []Tensor{in})
		if err != nil {
			return nil, fmt.Errorf("ocr: running the recognition model %q: %w", p.cfg.RecModel, err)
		}
		t, err := output(outs, p.cfg.RecOutput, p.cfg.RecModel)
		if err != nil {
			return nil, err
		}
		if len(t.Shape) != 3 || t.Shape[0] != int64(len(batch)) || t.Shape[1] <= 0 || t.Shape[2] <= 0 {
			return nil, fmt.Errorf("ocr: recognition model %q returned shape %v for %d lines; want [%d,steps,classes]", p.cfg.RecModel, t.Shape, len(batch), len(batch))
		}
		steps, classes := int(t.Shape[1]), int(t.Shape[2])
		if labels == nil || len(labels) != classes {
			if labels, err = labelsFor(p.cfg.Dictionary, classes); err != nil {
				return nil, fmt.Errorf("ocr: recognition model %q: %w", p.cfg.RecModel, err)
			}
		}
		for i, k := range batch {
			text, conf := ctcDecode(t.Data[i*steps*classes:(i+1)*steps*classes], steps, classes, labels)
			// Spaces at either end come from the padding, not the text.
			lines[k] = Line{Text: strings.Trim(text, " "), Confidence: conf, Box: boxes[k].box}
		}
	}
	return lines, nil
}
