// Package trainingtest writes labelled text datasets for tests, in the
// on-disk layout of a dataset version (server/datasets): train.jsonl and
// validation.jsonl of {"text","label"} lines and meta.json.
package trainingtest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// Words the synthetic e-mails draw from: each class has its own, and both
// share the common ones, so a model must weigh words, not spot one.
var (
	spamWords   = strings.Fields("free winner cash prize claim offer viagra loan credit urgent act now limited guaranteed unsubscribe click bonus cheap deal million lottery investment refinance")
	hamWords    = strings.Fields("meeting project schedule review patch kernel release notes thanks attached agenda minutes lunch build tests branch merge question tomorrow report draft")
	commonWords = strings.Fields("the a to of and you your we our is are for this that with on in please about will be it have from")
)

// Email is one synthetic message of the given label ("spam" or "ham").
func Email(r *rand.Rand, label string) string {
	own := hamWords
	if label == "spam" {
		own = spamWords
	}
	other := spamWords
	if label == "spam" {
		other = hamWords
	}
	n := 12 + r.IntN(30)
	words := make([]string, n)
	for i := range words {
		switch p := r.Float64(); {
		case p < 0.45:
			words[i] = own[r.IntN(len(own))]
		case p < 0.52:
			words[i] = other[r.IntN(len(other))] // words of the other class, as real mail has
		default:
			words[i] = commonWords[r.IntN(len(commonWords))]
		}
	}
	return "Subject: " + strings.Join(words[:3], " ") + "\n\n" + strings.Join(words[3:], " ")
}

// Meta is the part of a dataset version's meta.json the trainer reads.
type Meta struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	Version        int      `json:"version"`
	Labels         []string `json:"labels"`
	Rows           int      `json:"rows"`
	TrainRows      int      `json:"train_rows"`
	ValidationRows int      `json:"validation_rows"`
	Seed           int64    `json:"seed"`
}

// Example is one JSONL line.
type Example struct {
	Text  string `json:"text"`
	Label string `json:"label"`
}

// Synthetic returns n spam/ham examples, half each, in a seeded order.
func Synthetic(n int, seed uint64) []Example {
	r := rand.New(rand.NewPCG(seed, 42))
	out := make([]Example, n)
	for i := range out {
		label := "ham"
		if i%2 == 1 {
			label = "spam"
		}
		out[i] = Example{Text: Email(r, label), Label: label}
	}
	r.Shuffle(n, func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// WriteVersion writes a dataset version folder dir holding train and
// validation, and returns its meta.
func WriteVersion(dir, id string, version int, train, validation []Example) (Meta, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Meta{}, err
	}
	labels := map[string]bool{}
	for name, split := range map[string][]Example{"train.jsonl": train, "validation.jsonl": validation} {
		var b strings.Builder
		for _, ex := range split {
			line, err := json.Marshal(ex)
			if err != nil {
				return Meta{}, err
			}
			b.Write(line)
			b.WriteByte('\n')
			labels[ex.Label] = true
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			return Meta{}, err
		}
	}
	m := Meta{ID: id, Name: id, Version: version, Rows: len(train) + len(validation), TrainRows: len(train), ValidationRows: len(validation), Seed: 1}
	for l := range labels {
		m.Labels = append(m.Labels, l)
	}
	sortStrings(m.Labels)
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Meta{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "meta.json"), data, 0o644); err != nil {
		return Meta{}, fmt.Errorf("meta.json: %w", err)
	}
	return m, nil
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
