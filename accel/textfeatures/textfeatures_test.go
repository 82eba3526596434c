package textfeatures_test

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/accel/textfeatures"
)

func TestTokensNormalise(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"win", "cash", "now", "50", "ünïcode"}, textfeatures.Tokens("WIN $cash—now!! 50 ÜNÏCODE"))
	long := strings.Repeat("a", 100)
	require.Equal(t, []string{strings.Repeat("a", 40)}, textfeatures.Tokens(long))
	require.Empty(t, textfeatures.Tokens(" \n\t!?"))
}

func TestFeaturiseIsABag(t *testing.T) {
	t.Parallel()
	c := textfeatures.Config{WordNgrams: 2, CharNgramMin: 3, CharNgramMax: 5, MaxFeatures: 512}
	f := c.Featurise("Win cash now, win cash!")
	require.Equal(t, len(f.IDs), len(f.Weights))
	var sum float64
	for i, id := range f.IDs {
		require.GreaterOrEqual(t, id, int64(0))
		if i > 0 {
			require.Less(t, f.IDs[i-1], id, "ids are distinct and sorted")
		}
		sum += float64(f.Weights[i])
	}
	require.InDelta(t, 1, sum, 1e-5)
	// The same text, differently cased and spaced, is the same bag.
	require.Equal(t, f, c.Featurise("  WIN CASH NOW\nwin, cash "))
	// Word pairs count: a different order is a different bag.
	require.NotEqual(t, f.IDs, c.Featurise("cash win now win cash").IDs)
	require.Empty(t, c.Featurise("").IDs)
}

func TestMaxFeaturesKeepsTheMostFrequent(t *testing.T) {
	t.Parallel()
	c := textfeatures.Config{WordNgrams: 1, MaxFeatures: 2}
	f := c.Featurise("spam spam spam eggs eggs ham")
	require.Len(t, f.IDs, 2)
	only := c.Featurise("spam spam spam eggs eggs")
	require.Equal(t, only.IDs, f.IDs)
	require.InDelta(t, 0.6, f.Weights[indexOf(f.IDs, textfeatures.Config{WordNgrams: 1, MaxFeatures: 1}.Featurise("spam").IDs[0])], 1e-6)
}

func indexOf(ids []int64, id int64) int {
	for i, v := range ids {
		if v == id {
			return i
		}
	}
	return -1
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, textfeatures.DefaultConfig().Validate())
	require.NoError(t, textfeatures.Config{WordNgrams: 1, MaxFeatures: 1}.Validate())
	for _, c := range []struct {
		cfg  textfeatures.Config
		want string
	}{
		{textfeatures.Config{WordNgrams: 0, MaxFeatures: 8}, "word_ngrams"},
		{textfeatures.Config{WordNgrams: 4, MaxFeatures: 8}, "word_ngrams"},
		{textfeatures.Config{WordNgrams: 1, CharNgramMin: 3, MaxFeatures: 8}, "char_ngram_max"},
		{textfeatures.Config{WordNgrams: 1, CharNgramMax: 3, MaxFeatures: 8}, "char_ngram_min"},
		{textfeatures.Config{WordNgrams: 1, CharNgramMin: 2, CharNgramMax: 7, MaxFeatures: 8}, "char_ngram_max"},
		{textfeatures.Config{WordNgrams: 1, MaxFeatures: 0}, "max_features"},
	} {
		require.ErrorContains(t, c.cfg.Validate(), c.want, "%+v", c.cfg)
	}
}

func TestNewBatchPads(t *testing.T) {
	t.Parallel()
	c := textfeatures.DefaultConfig()
	b, err := c.NewBatch([]string{"a b c d e f", "", "x"})
	require.NoError(t, err)
	require.Equal(t, 3, b.Rows)
	require.Equal(t, len(c.Featurise("a b c d e f").IDs), b.Width)
	require.Len(t, b.IDs, 3*b.Width)
	for _, w := range b.Weights[b.Width : 2*b.Width] {
		require.Zero(t, w, "the empty text's row is all padding")
	}
	_, err = c.NewBatch(nil)
	require.ErrorIs(t, err, textfeatures.ErrNoTexts)
}

// FuzzFeaturise feeds arbitrary text: the featuriser reads untrusted
// e-mails and must neither panic nor return an invalid bag.
func FuzzFeaturise(f *testing.F) {
	f.Add("Win cash now!")
	f.Add("\xff\xfe<>")
	f.Add(strings.Repeat("é", 1000))
	c := textfeatures.Config{WordNgrams: 3, CharNgramMin: 1, CharNgramMax: 6, MaxFeatures: 512}
	f.Fuzz(func(t *testing.T, text string) {
		got := c.Featurise(text)
		if len(got.IDs) != len(got.Weights) || len(got.IDs) > c.MaxFeatures {
			t.Fatalf("bag of %d ids and %d weights", len(got.IDs), len(got.Weights))
		}
		var sum float64
		for _, w := range got.Weights {
			sum += float64(w)
		}
		if len(got.IDs) > 0 && math.Abs(sum-1) > 1e-4 {
			t.Fatalf("weights sum to %v", sum)
		}
		for _, tok := range textfeatures.Tokens(text) {
			if !utf8.ValidString(tok) {
				t.Fatalf("token %q is not UTF-8", tok)
			}
		}
	})
}

// l2 weighting: the same ids as mean, the weights proportional to the
// counts with unit Euclidean norm; mean's sum to 1.
func TestWeightings(t *testing.T) {
	t.Parallel()
	text := "spam spam spam eggs ham"
	mean := textfeatures.Config{WordNgrams: 1, MaxFeatures: 16}.Featurise(text)
	l2 := textfeatures.Config{WordNgrams: 1, MaxFeatures: 16, Weighting: textfeatures.WeightL2}.Featurise(text)
	require.Equal(t, mean.IDs, l2.IDs)
	var sum, norm float64
	for i := range mean.IDs {
		sum += float64(mean.Weights[i])
		norm += float64(l2.Weights[i]) * float64(l2.Weights[i])
		require.InDelta(t, mean.Weights[i]/mean.Weights[0], l2.Weights[i]/l2.Weights[0], 1e-6)
	}
	require.InDelta(t, 1, sum, 1e-6)
	require.InDelta(t, 1, norm, 1e-6)
	require.ErrorContains(t, textfeatures.Config{WordNgrams: 1, MaxFeatures: 16, Weighting: "tfidf"}.Validate(), "weighting must be")
}
