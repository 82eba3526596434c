package naivebayes_test

import (
	"bytes"
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/millrace/millrace/server/datasets"
	"github.com/millrace/millrace/server/datasets/naivebayes"
	"github.com/millrace/millrace/server/datasets/spamcorpus"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/stretchr/testify/require"
)

func TestTokenize(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"win", "100", "now", "naïve", "café", "x2"}, naivebayes.Tokenize("WIN $100 now!!! Naïve café, x2"))
	require.Empty(t, naivebayes.Tokenize(" ,.;! "))
}

// The worked example of Manning, Raghavan and Schütze, "Introduction to
// Information Retrieval", §13.2, checked by hand:
//
//	P(china) = 3/4, P(japan) = 1/4, |V| = 6
//	P(chinese|china) = (5+1)/(8+6) = 3/7, P(tokyo|china) = P(japan|china) = 1/14
//	P(chinese|japan) = (1+1)/(3+6) = 2/9, P(tokyo|japan) = P(japan|japan) = 2/9
//	joint(china) = 3/4 · (3/7)³ · (1/14)² = 81/268912 ≈ 3.0121e-4
//	joint(japan) = 1/4 · (2/9)³ · (2/9)² = 8/59049 ≈ 1.3548e-4
//	P(china | d) = joint(china) / (joint(china) + joint(japan)) ≈ 0.6898
func TestHandCheckedPosteriors(t *testing.T) {
	t.Parallel()
	m := naivebayes.Train([]datasets.Example{
		{Text: "Chinese Beijing Chinese", Label: "china"},
		{Text: "Chinese Chinese Shanghai", Label: "china"},
		{Text: "Chinese Macao", Label: "china"},
		{Text: "Tokyo Japan Chinese", Label: "japan"},
	})
	require.Equal(t, []string{"china", "japan"}, m.Labels)
	require.Equal(t, 6, m.Vocabulary())
	doc := "Chinese Chinese Chinese Tokyo Japan"
	china, japan := 81.0/268912, 8.0/59049
	scores := m.LogScores(doc)
	require.InDelta(t, math.Log(china), scores[0], 1e-12)
	require.InDelta(t, math.Log(japan), scores[1], 1e-12)
	post := m.Posteriors(doc)
	require.InDelta(t, china/(china+japan), post[0], 1e-12)
	require.InDelta(t, 0.6898, post[0], 1e-4)
	require.InDelta(t, 1, post[0]+post[1], 1e-12)
	require.Equal(t, "china", m.Predict(doc))
	require.Equal(t, "japan", m.Predict("Tokyo Japan"))
	require.Equal(t, "china", m.Predict("words never seen"), "unknown tokens leave the prior, which favours china")
	require.Equal(t, 1.0, m.Accuracy([]datasets.Example{{Text: doc, Label: "china"}, {Text: "Tokyo", Label: "japan"}}))
}

// TestSpamBaseline trains the baseline on the SpamAssassin corpus's train
// split and logs its validation accuracy (the figure trained models must
// match).
func TestSpamBaseline(t *testing.T) {
	t.Parallel()
	dir, err := spamcorpus.Dir()
	require.NoError(t, err)
	msgs, err := spamcorpus.Load(dir)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, spamcorpus.WriteJSONL(&buf, msgs))

	tmp := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(tmp, "millrace.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	d := datasets.New(db, datasets.Config{Dir: filepath.Join(tmp, "datasets")})
	v, err := d.Import(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()), datasets.ImportOptions{Filename: "spam.jsonl", Seed: 1})
	require.NoError(t, err)
	res, err := naivebayes.Evaluate(v)
	require.NoError(t, err)
	t.Logf("naive Bayes on the SpamAssassin corpus (seed 1, 20%% held out): %d train, %d validation, |V| = %d, validation accuracy %.4f",
		res.TrainRows, res.ValidationRows, res.Model.Vocabulary(), res.Accuracy)
	require.Greater(t, res.Accuracy, 0.9, "a sane baseline")
}
