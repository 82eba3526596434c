package naivebayes_test

import (
	"testing"

	"github.com/millrace/millrace/server/datasets"
	"github.com/millrace/millrace/server/datasets/naivebayes"
	"github.com/millrace/millrace/server/datasets/spamcorpus"
)

// BenchmarkSpam measures the baseline on the whole SpamAssassin corpus
// (6046 messages): "tokenize" is the floor every step pays, "train" fits
// a model, "predict" classifies every message once. Throughput is in
// examples/s.
func BenchmarkSpam(b *testing.B) {
	dir, err := spamcorpus.Dir()
	if err != nil {
		b.Fatal(err)
	}
	msgs, err := spamcorpus.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	ex := make([]datasets.Example, len(msgs))
	for i, m := range msgs {
		ex[i] = datasets.Example{Text: m.Text, Label: m.Label}
	}
	perSecond := func(b *testing.B) {
		b.ReportMetric(float64(len(ex)*b.N)/b.Elapsed().Seconds(), "examples/s")
	}
	b.Run("tokenize", func(b *testing.B) {
		for b.Loop() {
			for _, e := range ex {
				naivebayes.Tokenize(e.Text)
			}
		}
		perSecond(b)
	})
	b.Run("train", func(b *testing.B) {
		for b.Loop() {
			naivebayes.Train(ex)
		}
		perSecond(b)
	})
	m := naivebayes.Train(ex)
	b.Run("predict", func(b *testing.B) {
		for b.Loop() {
			for _, e := range ex {
				m.Predict(e.Text)
			}
		}
		perSecond(b)
	})
}
