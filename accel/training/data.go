package training

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/millrace/millrace/accel/textfeatures"
)

// Example is one labelled text: a line of a dataset's train.jsonl or
// validation.jsonl.
type Example struct {
	Text  string `json:"text"`
	Label string `json:"label"`
}

// maxLineBytes bounds one JSONL line (an e-mail with its headers).
const maxLineBytes = 8 << 20

// ReadJSONL reads a split file of {"text","label"} lines; the error names
// the file and line.
func ReadJSONL(path string) ([]Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxLineBytes)
	var out []Example
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var ex Example
		if err := json.Unmarshal(sc.Bytes(), &ex); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, line, err)
		}
		if ex.Label == "" {
			return nil, fmt.Errorf("%s line %d: label is empty", path, line)
		}
		out = append(out, ex)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// encoded is a split featurised for the model: per example its bucket ids
// and weights (bags), and its label's index.
type encoded struct {
	bags   []textfeatures.Features
	labels []int32
}

func encode(examples []Example, labels []string, cfg textfeatures.Config, buckets int) (encoded, error) {
	e := encoded{bags: make([]textfeatures.Features, len(examples)), labels: make([]int32, len(examples))}
	for i, ex := range examples {
		k := slices.Index(labels, ex.Label)
		if k < 0 {
			return encoded{}, fmt.Errorf("example %d: label %q is not one of the dataset's labels %v", i, ex.Label, labels)
		}
		e.labels[i] = int32(k)
		f := cfg.Featurise(ex.Text)
		for j := range f.IDs {
			f.IDs[j] %= int64(buckets) // the exported model does the same (Mod)
		}
		e.bags[i] = f
	}
	return e, nil
}

// labelsOf lists the labels in sorted order.
func labelsOf(examples ...[]Example) ([]string, error) {
	seen := map[string]bool{}
	var labels []string
	for _, split := range examples {
		for _, ex := range split {
			if !seen[ex.Label] {
				seen[ex.Label] = true
				labels = append(labels, ex.Label)
			}
		}
	}
	if len(labels) < 2 {
		return nil, errors.New("the dataset has fewer than two labels: nothing to classify")
	}
	slices.Sort(labels)
	return labels, nil
}
