package training

import (
	"fmt"

	"github.com/millrace/millrace/accel/textfeatures"
)

// Task names.
const (
	// TaskTextClassification trains a fastText-style classifier from
	// scratch: a bag of hashed word and character n-gram embeddings and a
	// linear head.
	TaskTextClassification = "text_classification"
)

// Hyperparameters of a text_classification job. JSON names are the API's;
// a zero field takes its default (Defaults).
type Hyperparameters struct {
	Epochs       int     `json:"epochs"`
	LearningRate float64 `json:"learning_rate"`
	BatchSize    int     `json:"batch_size"`
	// Seed makes a job repeatable: initial weights and batch order.
	Seed         int64 `json:"seed"`
	EmbeddingDim int   `json:"embedding_dim"`
	// Buckets is the size of the hashed embedding table.
	Buckets int `json:"buckets"`
	// Ngrams is the longest run of words hashed together (1–3).
	Ngrams       int `json:"ngrams"`
	CharNgramMin int `json:"char_ngram_min"`
	CharNgramMax int `json:"char_ngram_max"`
	MaxFeatures  int `json:"max_features"`
	// Patience stops training after this many epochs without a better
	// validation accuracy; 0 never stops early.
	Patience int `json:"patience"`
}

// Bounds on hyperparameters: a job must fit this machine's memory and
// finish.
const (
	MaxEpochs       = 1000
	MaxBatchSize    = 4096
	MaxEmbeddingDim = 512
	MinBuckets      = 16
	MaxBuckets      = 1 << 22
	// maxTableFloats caps buckets × embedding_dim (the table, plus two Adam
	// moments of the same size): 64 Mi floats, 768 MiB in all.
	maxTableFloats = 64 << 20
)

// Defaults fills zero fields; CharNgramMin/Max stay 0 only when both are
// given as -1 ("no character n-grams" needs saying, since 0 is unset).
func (h Hyperparameters) Defaults() Hyperparameters {
	d := textfeatures.DefaultConfig()
	if h.Epochs == 0 {
		h.Epochs = 10
	}
	if h.LearningRate == 0 {
		h.LearningRate = 0.01
	}
	if h.BatchSize == 0 {
		h.BatchSize = 32
	}
	if h.Seed == 0 {
		h.Seed = 1
	}
	if h.EmbeddingDim == 0 {
		h.EmbeddingDim = 32
	}
	if h.Buckets == 0 {
		h.Buckets = 1 << 17
	}
	if h.Ngrams == 0 {
		h.Ngrams = d.WordNgrams
	}
	switch {
	case h.CharNgramMin == -1 && h.CharNgramMax == -1:
		h.CharNgramMin, h.CharNgramMax = 0, 0
	case h.CharNgramMin == 0 && h.CharNgramMax == 0:
		h.CharNgramMin, h.CharNgramMax = d.CharNgramMin, d.CharNgramMax
	}
	if h.MaxFeatures == 0 {
		h.MaxFeatures = d.MaxFeatures
	}
	if h.Patience == 0 {
		h.Patience = 3
	}
	return h
}

// FieldError is one invalid hyperparameter: its JSON name and why.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Validate checks the hyperparameters after Defaults and returns the
// first bad one.
func (h Hyperparameters) Validate() *FieldError {
	bad := func(field, format string, args ...any) *FieldError {
		return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
	}
	switch {
	case h.Epochs < 1 || h.Epochs > MaxEpochs:
		return bad("epochs", "must be between 1 and %d, not %d", MaxEpochs, h.Epochs)
	case !(h.LearningRate > 0 && h.LearningRate <= 10):
		return bad("learning_rate", "must be above 0 and at most 10, not %v", h.LearningRate)
	case h.BatchSize < 1 || h.BatchSize > MaxBatchSize:
		return bad("batch_size", "must be between 1 and %d, not %d", MaxBatchSize, h.BatchSize)
	case h.Seed < 0:
		return bad("seed", "must not be negative, not %d", h.Seed)
	case h.EmbeddingDim < 1 || h.EmbeddingDim > MaxEmbeddingDim:
		return bad("embedding_dim", "must be between 1 and %d, not %d", MaxEmbeddingDim, h.EmbeddingDim)
	case h.Buckets < MinBuckets || h.Buckets > MaxBuckets:
		return bad("buckets", "must be between %d and %d, not %d", MinBuckets, MaxBuckets, h.Buckets)
	case h.Buckets*h.EmbeddingDim > maxTableFloats:
		return bad("buckets", "buckets × embedding_dim is %d; the limit is %d (lower one of them)", h.Buckets*h.EmbeddingDim, maxTableFloats)
	case h.Patience < 0 || h.Patience > MaxEpochs:
		return bad("patience", "must be between 0 (never stop early) and %d, not %d", MaxEpochs, h.Patience)
	}
	if err := h.Features().Validate(); err != nil {
		field, msg := splitField(err.Error())
		if field == "word_ngrams" {
			field = "ngrams"
		}
		return bad(field, "%s", msg)
	}
	return nil
}

// splitField splits textfeatures' "name must …" messages.
func splitField(s string) (string, string) {
	for i := range s {
		if s[i] == ' ' {
			return s[:i], s[i+1:]
		}
	}
	return s, s
}

// Features is the featuriser configuration the hyperparameters choose.
func (h Hyperparameters) Features() textfeatures.Config {
	return textfeatures.Config{
		WordNgrams:   h.Ngrams,
		CharNgramMin: h.CharNgramMin,
		CharNgramMax: h.CharNgramMax,
		MaxFeatures:  h.MaxFeatures,
	}
}
