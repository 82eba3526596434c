// Package naivebayes is a multinomial naive Bayes text classifier: the
// baseline that trained models are compared against. It is deliberately
// plain so that its figures are easy to trust:
//
//   - Tokens (Tokenize) are the maximal runs of letters and digits of the
//     lower-cased text; nothing else (no stop words, stemming or n-grams).
//   - P(label) is the label's share of the training examples.
//   - P(token | label) = (count(token, label) + 1) / (tokens(label) + |V|),
//     Laplace (add-one) smoothing over the training vocabulary V.
//   - A text's label maximises log P(label) + Σ log P(token | label) over
//     its tokens, each occurrence counted; tokens outside V are ignored.
//     Ties go to the label first in sorted order.
package naivebayes

import (
	"math"
	"slices"
	"strings"
	"unicode"

	"github.com/millrace/millrace/server/datasets"
)

// Tokenize returns the lower-cased runs of letters and digits of text.
func Tokenize(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// Model is a trained classifier.
type Model struct {
	// Labels are the classes, sorted.
	Labels   []string
	logPrior []float64
	// counts[token][label index] is how often token occurs in the
	// training texts of that label.
	counts map[string][]float64
	totals []float64 // tokens per label
	// logLikelihood[token][label index] is log P(token | label).
	logLikelihood map[string][]float64
}

// Train fits a model to labelled examples.
func Train(examples []datasets.Example) *Model {
	m := &Model{counts: map[string][]float64{}}
	for _, e := range examples {
		if !slices.Contains(m.Labels, e.Label) {
			m.Labels = append(m.Labels, e.Label)
		}
	}
	slices.Sort(m.Labels)
	docs := make([]float64, len(m.Labels))
	m.totals = make([]float64, len(m.Labels))
	for _, e := range examples {
		c, _ := slices.BinarySearch(m.Labels, e.Label)
		docs[c]++
		for _, tok := range Tokenize(e.Text) {
			row := m.counts[tok]
			if row == nil {
				row = make([]float64, len(m.Labels))
				m.counts[tok] = row
			}
			row[c]++
			m.totals[c]++
		}
	}
	m.logPrior = make([]float64, len(m.Labels))
	for c := range m.Labels {
		m.logPrior[c] = math.Log(docs[c] / float64(len(examples)))
	}
	// The smoothed log likelihoods, computed once rather than per
	// prediction.
	v := float64(len(m.counts))
	m.logLikelihood = make(map[string][]float64, len(m.counts))
	for tok, row := range m.counts {
		ll := make([]float64, len(row))
		for c := range row {
			ll[c] = math.Log((row[c] + 1) / (m.totals[c] + v))
		}
		m.logLikelihood[tok] = ll
	}
	return m
}

// Vocabulary is the number of distinct training tokens, |V|.
func (m *Model) Vocabulary() int { return len(m.counts) }

// LogScores returns log P(label) + Σ log P(token | label) for each label,
// in the order of Labels: the log of the joint probability, which is
// the log posterior up to a constant shared by all labels.
func (m *Model) LogScores(text string) []float64 {
	scores := slices.Clone(m.logPrior)
	for _, tok := range Tokenize(text) {
		for c, ll := range m.logLikelihood[tok] { // none for unknown tokens
			scores[c] += ll
		}
	}
	return scores
}

// Posteriors returns P(label | text) for each label, in the order of
// Labels.
func (m *Model) Posteriors(text string) []float64 {
	scores := m.LogScores(text)
	top := slices.Max(scores)
	sum := 0.0
	for c, s := range scores {
		scores[c] = math.Exp(s - top) // log-sum-exp: no underflow on long texts
		sum += scores[c]
	}
	for c := range scores {
		scores[c] /= sum
	}
	return scores
}

// Predict returns the most probable label of text.
func (m *Model) Predict(text string) string {
	scores := m.LogScores(text)
	best := 0
	for c, s := range scores {
		if s > scores[best] {
			best = c
		}
	}
	return m.Labels[best]
}

// Accuracy is the share of examples whose label Predict gets right.
func (m *Model) Accuracy(examples []datasets.Example) float64 {
	if len(examples) == 0 {
		return 0
	}
	right := 0
	for _, e := range examples {
		if m.Predict(e.Text) == e.Label {
			right++
		}
	}
	return float64(right) / float64(len(examples))
}

// Result is a baseline trained on a dataset version's train split and
// measured on its validation split.
type Result struct {
	Model          *Model
	Accuracy       float64 // on the validation split
	TrainRows      int
	ValidationRows int
}

// Evaluate trains on v's train.jsonl and reports accuracy on its
// validation.jsonl.
func Evaluate(v datasets.Version) (Result, error) {
	train, err := datasets.ReadExamples(v.TrainPath)
	if err != nil {
		return Result{}, err
	}
	validation, err := datasets.ReadExamples(v.ValidationPath)
	if err != nil {
		return Result{}, err
	}
	m := Train(train)
	return Result{Model: m, Accuracy: m.Accuracy(validation), TrainRows: len(train), ValidationRows: len(validation)}, nil
}
