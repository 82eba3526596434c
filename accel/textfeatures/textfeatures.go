// Package textfeatures turns text into the input tensors of Millrace's text
// classifiers: normalisation, word tokens, word and character n-grams, and
// hashing. The trainer (accel/training) and the text_classify module (a
// WebAssembly guest) both call it, so a model sees at inference exactly the
// features it was trained on. It imports only the standard library and
// builds for GOOS=wasip1.
//
// A text becomes a bag of features, each a 63-bit hash of one token kind
// and its bytes, weighted by its share of the kept features:
//
//	"Win cash now"  →  ids     [h("w1 win"), h("w1 cash"), h("w2 win cash"), h("c <wi"), …]
//	                   weights [1/n,        1/n,          1/n,               1/n,       …]
//
// The model reduces ids modulo its number of buckets itself, so the
// featuriser needs no model size and an id is never out of range.
package textfeatures

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on a Config; the trainer's hyperparameter checks name them.
const (
	MaxWordNgrams  = 3
	MaxCharNgram   = 6
	MaxMaxFeatures = 4096
	// MaxTextBytes is how much of a text is read: a classifier needs the
	// start of a long e-mail, not all of it, and the cost stays bounded.
	MaxTextBytes = 64 << 10
	// maxTokenRunes truncates very long tokens (base64 blobs, URLs).
	maxTokenRunes = 40
)

// Config says which features a text yields. The zero value is not valid;
// start from DefaultConfig.
type Config struct {
	// WordNgrams is the longest run of words hashed together: 1 for
	// single words, 2 adds word pairs, 3 adds triples.
	WordNgrams int `json:"word_ngrams"`
	// CharNgramMin and CharNgramMax bound the character n-grams taken from
	// each word wrapped in '<' and '>' (fastText's subwords); 0 and 0 take
	// none.
	CharNgramMin int `json:"char_ngram_min"`
	CharNgramMax int `json:"char_ngram_max"`
	// MaxFeatures is the most distinct features kept per text (the most
	// frequent ones).
	MaxFeatures int `json:"max_features"`
	// Weighting is how a kept feature's count becomes its weight:
	// WeightMean ("" or "mean", what models trained before this field
	// existed use) divides by the text's total, so the weights sum to 1
	// and the model averages; WeightL2 divides by the counts' Euclidean
	// norm, so a longer text carries more evidence (the sum of its weights
	// grows with the square root of its distinct features), as in the
	// usual tf vectors of linear text classifiers.
	Weighting string `json:"weighting,omitempty"`
}

// Weightings.
const (
	WeightMean = "mean"
	WeightL2   = "l2"
)

// DefaultConfig is the configuration the trainer uses unless told
// otherwise: single words, at most 512 per text (trainjob explains why).
func DefaultConfig() Config {
	return Config{WordNgrams: 1, MaxFeatures: 512}
}

// Validate reports the first field out of range, by its JSON name.
func (c Config) Validate() error {
	switch {
	case c.WordNgrams < 1 || c.WordNgrams > MaxWordNgrams:
		return fmt.Errorf("word_ngrams must be between 1 and %d, not %d", MaxWordNgrams, c.WordNgrams)
	case c.CharNgramMin == 0 && c.CharNgramMax == 0:
	case c.CharNgramMin < 1 || c.CharNgramMin > MaxCharNgram:
		return fmt.Errorf("char_ngram_min must be 0 (no character n-grams) or between 1 and %d, not %d", MaxCharNgram, c.CharNgramMin)
	case c.CharNgramMax < c.CharNgramMin || c.CharNgramMax > MaxCharNgram:
		return fmt.Errorf("char_ngram_max must be between char_ngram_min (%d) and %d, not %d", c.CharNgramMin, MaxCharNgram, c.CharNgramMax)
	}
	if c.MaxFeatures < 1 || c.MaxFeatures > MaxMaxFeatures {
		return fmt.Errorf("max_features must be between 1 and %d, not %d", MaxMaxFeatures, c.MaxFeatures)
	}
	if c.Weighting != "" && c.Weighting != WeightMean && c.Weighting != WeightL2 {
		return fmt.Errorf("weighting must be %q or %q, not %q", WeightMean, WeightL2, c.Weighting)
	}
	return nil
}

// Features is one text's bag: distinct ids in increasing order and their
// weights, which sum to 1 under WeightMean (an empty text has none).
type Features struct {
	IDs     []int64
	Weights []float32
}

// Tokens returns the normalised words of text: lower case, maximal runs of
// letters and digits, each cut to 40 runes, from the first MaxTextBytes
// bytes.
func Tokens(text string) []string {
	if len(text) > MaxTextBytes {
		cut := MaxTextBytes
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut]
	}
	var tokens []string
	var b strings.Builder
	n := 0
	flush := func() {
		if b.Len() > 0 {
			tokens = append(tokens, b.String())
			b.Reset()
		}
		n = 0
	}
	for _, r := range text {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if n < maxTokenRunes {
				b.WriteRune(unicode.ToLower(r))
			}
			n++
			continue
		}
		flush()
	}
	flush()
	return tokens
}

// Token kinds, hashed in front of the bytes so a word and a character
// n-gram with the same letters are different features.
const (
	kindWord = 'w'
	kindChar = 'c'
)

func hashOf(kind byte, order int, parts ...string) int64 {
	h := fnv.New64a()
	h.Write([]byte{kind, byte('0' + order)})
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return int64(h.Sum64() & (1<<63 - 1))
}

// Featurise returns the bag of features of text. c must be valid.
func (c Config) Featurise(text string) Features {
	tokens := Tokens(text)
	counts := map[int64]int{}
	for i := range tokens {
		for n := 1; n <= c.WordNgrams && i+n <= len(tokens); n++ {
			counts[hashOf(kindWord, n, tokens[i:i+n]...)]++
		}
		if c.CharNgramMax > 0 {
			runes := []rune("<" + tokens[i] + ">")
			for n := c.CharNgramMin; n <= c.CharNgramMax; n++ {
				for j := 0; j+n <= len(runes); j++ {
					counts[hashOf(kindChar, n, string(runes[j:j+n]))]++
				}
			}
		}
	}
	ids := make([]int64, 0, len(counts))
	for id := range counts {
		ids = append(ids, id)
	}
	if len(ids) > c.MaxFeatures {
		// The most frequent first; equal counts by id, so the choice
		// does not depend on map order.
		slices.SortFunc(ids, func(a, b int64) int {
			if counts[a] != counts[b] {
				return counts[b] - counts[a]
			}
			return cmpInt64(a, b)
		})
		ids = ids[:c.MaxFeatures]
	}
	slices.Sort(ids)
	f := Features{IDs: ids, Weights: make([]float32, len(ids))}
	if c.Weighting == WeightL2 {
		norm := 0.0
		for _, id := range ids {
			norm += float64(counts[id]) * float64(counts[id])
		}
		norm = math.Sqrt(norm)
		for i, id := range ids {
			f.Weights[i] = float32(float64(counts[id]) / norm)
		}
		return f
	}
	total := 0
	for _, id := range ids {
		total += counts[id]
	}
	for i, id := range ids {
		f.Weights[i] = float32(counts[id]) / float32(total)
	}
	return f
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Batch is the model input for several texts: ids and weights of shape
// [len(texts), Width], row-major, each row padded with id 0 and weight 0
// (which adds nothing to the bag). Width is at least 1.
type Batch struct {
	IDs     []int64
	Weights []float32
	Rows    int
	Width   int
}

// ErrNoTexts is returned by NewBatch for an empty list.
var ErrNoTexts = errors.New("textfeatures: no texts")

// NewBatch featurises texts into one padded batch.
func (c Config) NewBatch(texts []string) (Batch, error) {
	if len(texts) == 0 {
		return Batch{}, ErrNoTexts
	}
	bags := make([]Features, len(texts))
	width := 1
	for i, t := range texts {
		bags[i] = c.Featurise(t)
		width = max(width, len(bags[i].IDs))
	}
	return PadBags(bags, width), nil
}

// PadBags lays bags out as a batch of the given width (at least the
// longest bag's length).
func PadBags(bags []Features, width int) Batch {
	b := Batch{
		IDs:     make([]int64, len(bags)*width),
		Weights: make([]float32, len(bags)*width),
		Rows:    len(bags),
		Width:   width,
	}
	for i, f := range bags {
		copy(b.IDs[i*width:], f.IDs)
		copy(b.Weights[i*width:], f.Weights)
	}
	return b
}
