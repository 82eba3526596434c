package trainjob_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/accel/textfeatures"
	"github.com/millrace/millrace/accel/trainjob"
)

func TestHyperparametersValidate(t *testing.T) {
	t.Parallel()
	require.Nil(t, trainjob.Hyperparameters{}.Defaults().Validate())
	for _, c := range []struct {
		h     trainjob.Hyperparameters
		field string
	}{
		{trainjob.Hyperparameters{Epochs: -1}, "epochs"},
		{trainjob.Hyperparameters{LearningRate: -0.1}, "learning_rate"},
		{trainjob.Hyperparameters{BatchSize: 1 << 20}, "batch_size"},
		{trainjob.Hyperparameters{Seed: -3}, "seed"},
		{trainjob.Hyperparameters{EmbeddingDim: 1000}, "embedding_dim"},
		{trainjob.Hyperparameters{Buckets: 3}, "buckets"},
		{trainjob.Hyperparameters{Buckets: 1 << 22, EmbeddingDim: 512}, "buckets"},
		{trainjob.Hyperparameters{Ngrams: 9}, "ngrams"},
		{trainjob.Hyperparameters{CharNgramMin: 4, CharNgramMax: 2}, "char_ngram_max"},
		{trainjob.Hyperparameters{MaxFeatures: -5}, "max_features"},
		{trainjob.Hyperparameters{Patience: -2}, "patience"},
	} {
		ferr := c.h.Defaults().Validate()
		require.NotNil(t, ferr, "%+v", c.h)
		require.Equal(t, c.field, ferr.Field, ferr.Message)
	}
	// Character n-grams are off unless asked for; -1 turns early stopping off.
	h := trainjob.Hyperparameters{Patience: -1}.Defaults()
	require.Zero(t, h.CharNgramMax)
	require.Equal(t, -1, h.Patience)
	require.Nil(t, h.Validate())
	require.Nil(t, trainjob.Hyperparameters{CharNgramMin: 3, CharNgramMax: 5, Ngrams: 2}.Defaults().Validate())
}

func TestValidateSpec(t *testing.T) {
	t.Parallel()
	require.Nil(t, trainjob.ValidateSpec(trainjob.Spec{Task: trainjob.TaskTextClassification}))
	require.Equal(t, "task", trainjob.ValidateSpec(trainjob.Spec{Task: "lora"}).Field)
	require.Equal(t, "hyperparameters.epochs", trainjob.ValidateSpec(trainjob.Spec{Task: trainjob.TaskTextClassification, Hyperparameters: trainjob.Hyperparameters{Epochs: -2}}).Field)
}

// FuzzStartRequest decodes what a client of the accel service sends
// (POST /v2/training/jobs) and validates it: no input may panic, and an
// accepted spec's hyperparameters stay within bounds.
func FuzzStartRequest(f *testing.F) {
	f.Add([]byte(`{"id":"j","spec":{"task":"text_classification","hyperparameters":{"epochs":3}}}`))
	f.Add([]byte(`{"spec":{"task":"text_classification","hyperparameters":{"buckets":4194304,"embedding_dim":512,"char_ngram_min":6,"char_ngram_max":6,"patience":-1}}}`))
	f.Add([]byte(`{"spec":{"hyperparameters":{"learning_rate":1e309}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var req trainjob.StartRequest
		if json.Unmarshal(data, &req) != nil {
			return
		}
		if trainjob.ValidateSpec(req.Spec) != nil {
			return
		}
		h := req.Spec.Hyperparameters.Defaults()
		if h.Epochs < 1 || h.BatchSize < 1 || h.Buckets < trainjob.MinBuckets || h.Buckets*h.EmbeddingDim > 64<<20 || h.MaxFeatures < 1 || !(h.LearningRate > 0) {
			t.Fatalf("accepted out-of-range hyperparameters %+v", h)
		}
		if h.Features().Validate() != nil {
			t.Fatalf("accepted an invalid featuriser %+v", h.Features())
		}
	})
}

func TestScheduleAndFineTuneFields(t *testing.T) {
	t.Parallel()
	h := trainjob.Hyperparameters{Epochs: 4, LearningRate: 0.1}.Defaults()
	require.Equal(t, trainjob.ScheduleCosine, h.Schedule)
	require.InDelta(t, 0.1, h.LearningRateAt(0), 1e-12)
	require.InDelta(t, 0.05, h.LearningRateAt(2), 1e-12)
	require.Less(t, h.LearningRateAt(3), h.LearningRateAt(2))
	h.Schedule = trainjob.ScheduleConstant
	require.InDelta(t, 0.1, h.LearningRateAt(3), 1e-12)
	h.Schedule = "step"
	require.Equal(t, "schedule", h.Validate().Field)

	require.Nil(t, trainjob.Hyperparameters{Epochs: 3, LearningRate: 0.01, Patience: -1}.CheckFineTune())
	for field, h := range map[string]trainjob.Hyperparameters{
		"buckets": {Buckets: 16}, "max_features": {MaxFeatures: 8}, "weighting": {Weighting: "mean"}, "embedding_dim": {EmbeddingDim: 8},
	} {
		require.Equal(t, field, h.CheckFineTune().Field)
	}
	info := trainjob.ModelInfo{Task: trainjob.TaskTextClassification, Labels: []string{"a", "b"}, Buckets: 64,
		Features: textfeatures.Config{WordNgrams: 2, MaxFeatures: 32}}
	got := trainjob.Hyperparameters{Epochs: 2}.ForBase(info)
	require.Equal(t, 2, got.Epochs)
	require.Equal(t, 64, got.Buckets)
	require.Equal(t, 2, got.Ngrams)
	require.Equal(t, 32, got.MaxFeatures)
	require.Equal(t, textfeatures.WeightMean, got.Weighting, "a model from before weightings averages")
	require.Equal(t, 0, got.EmbeddingDim)

	require.NoError(t, trainjob.CheckLabels([]string{"ham", "spam"}, []string{"spam", "ham"}))
	require.ErrorContains(t, trainjob.CheckLabels([]string{"ham", "spam"}, []string{"a", "b", "c"}), "the number of classes must match")
	require.ErrorContains(t, trainjob.CheckLabels([]string{"ham", "spam"}, []string{"ham", "eggs"}), "must be the same labels")
}
