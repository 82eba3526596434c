// Package trainjob holds the training jobs' wire types and checks: what
// the server sends millrace-accel (Spec, Hyperparameters) and what comes
// back (Status, Event, Result, ModelInfo). It imports only the standard
// library and textfeatures, so the pure-Go server validates a job before
// the accel service sees it.
package trainjob

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/millrace/millrace/accel/textfeatures"
)

// Task names.
const (
	// TaskTextClassification trains a fastText-style classifier from
	// scratch: a bag of hashed word and character n-gram embeddings and a
	// linear head.
	TaskTextClassification = "text_classification"
	// TaskFineTuneONNX trains the weights (float initializers) of a
	// registered ONNX text classifier further on a dataset: a model with
	// the classifier's interface (inputs ids and weights, outputs logits
	// or probabilities and model_info), imported with onnx-gomlx and
	// exported back with the trained values.
	TaskFineTuneONNX = "fine_tune_onnx"
)

// MaxBaseModelBytes bounds a fine_tune_onnx job's base model: the trainer
// holds the whole file, its weights and their Adam moments in memory.
const MaxBaseModelBytes = 256 << 20

// Hyperparameters of a text_classification job. JSON names are the API's;
// a zero or missing field takes its default (Defaults); the required tags
// tell the API's schema so.
type Hyperparameters struct {
	Epochs       int     `json:"epochs" required:"false"`
	LearningRate float64 `json:"learning_rate" required:"false"`
	BatchSize    int     `json:"batch_size" required:"false"`
	// Seed makes a job repeatable: initial weights and batch order.
	Seed         int64 `json:"seed" required:"false"`
	EmbeddingDim int   `json:"embedding_dim" required:"false"`
	// Buckets is the size of the hashed embedding table.
	Buckets int `json:"buckets" required:"false"`
	// Ngrams is the longest run of words hashed together (1–3).
	Ngrams       int `json:"ngrams" required:"false"`
	CharNgramMin int `json:"char_ngram_min" required:"false"`
	CharNgramMax int `json:"char_ngram_max" required:"false"`
	MaxFeatures  int `json:"max_features" required:"false"`
	// Patience stops training after this many epochs without a better
	// validation accuracy (3 when 0); -1 never stops early.
	Patience int `json:"patience" required:"false"`
	// Weighting is the featuriser's weighting of a text's features:
	// "l2" (the default) or "mean" (textfeatures.Config.Weighting).
	Weighting string `json:"weighting,omitempty" required:"false" enum:"l2,mean"`
	// Schedule is the learning rate over the epochs: "cosine" (the
	// default) lowers it from learning_rate towards 0 along half a cosine
	// period over epochs; "constant" keeps it.
	Schedule string `json:"schedule,omitempty" required:"false" enum:"cosine,constant"`
}

// Learning-rate schedules.
const (
	ScheduleCosine   = "cosine"
	ScheduleConstant = "constant"
)

// LearningRateAt is the learning rate of epoch (0-based) under the
// schedule: a function of the epoch number only, so a resumed job trains
// each epoch at the rate an uninterrupted one would.
func (h Hyperparameters) LearningRateAt(epoch int) float64 {
	if h.Schedule == ScheduleConstant || h.Epochs <= 1 {
		return h.LearningRate
	}
	return h.LearningRate * 0.5 * (1 + math.Cos(math.Pi*float64(epoch)/float64(h.Epochs)))
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

// Defaults fills zero fields. The defaults were chosen on the
// SpamAssassin corpus on two CPU cores (docs/training.md), against naive
// Bayes on the splits of seeds 1–5: single words, no character n-grams
// (in long e-mails they outnumber the words and blur them: 98.5%
// held-out accuracy with them, 99.2% without), 512 features per text,
// l2 weighting and a 65536 × 32 table (together they turned two of the
// five splits from one or two messages short of naive Bayes to at least
// as good), a cosine learning-rate schedule, and the best epoch kept.
func (h Hyperparameters) Defaults() Hyperparameters {
	if h.Epochs == 0 {
		h.Epochs = 10
	}
	if h.LearningRate == 0 {
		h.LearningRate = 0.02
	}
	if h.BatchSize == 0 {
		h.BatchSize = 64
	}
	if h.Seed == 0 {
		h.Seed = 1
	}
	if h.EmbeddingDim == 0 {
		h.EmbeddingDim = 32
	}
	if h.Buckets == 0 {
		h.Buckets = 1 << 16
	}
	if h.Ngrams == 0 {
		h.Ngrams = 1
	}
	if h.MaxFeatures == 0 {
		h.MaxFeatures = 512
	}
	if h.Patience == 0 {
		h.Patience = 3
	}
	if h.Schedule == "" {
		h.Schedule = ScheduleCosine
	}
	if h.Weighting == "" {
		h.Weighting = textfeatures.WeightL2
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
	case h.Schedule != ScheduleCosine && h.Schedule != ScheduleConstant:
		return bad("schedule", "must be %q or %q, not %q", ScheduleCosine, ScheduleConstant, h.Schedule)
	case h.Patience < -1 || h.Patience > MaxEpochs:
		return bad("patience", "must be -1 (never stop early) or between 1 and %d, not %d", MaxEpochs, h.Patience)
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

// architectureFields are the hyperparameters that shape the model and its
// featuriser: a fine-tuned model keeps its base model's.
func (h Hyperparameters) architectureFields() []struct {
	name string
	set  bool
} {
	return []struct {
		name string
		set  bool
	}{
		{"embedding_dim", h.EmbeddingDim != 0}, {"buckets", h.Buckets != 0}, {"ngrams", h.Ngrams != 0},
		{"char_ngram_min", h.CharNgramMin != 0}, {"char_ngram_max", h.CharNgramMax != 0}, {"max_features", h.MaxFeatures != 0},
		{"weighting", h.Weighting != ""},
	}
}

// CheckFineTune refuses, for a fine_tune_onnx request, hyperparameters
// that only a model trained from scratch can choose.
func (h Hyperparameters) CheckFineTune() *FieldError {
	for _, f := range h.architectureFields() {
		if f.set {
			return &FieldError{Field: f.name, Message: "fine_tune_onnx keeps the base model's architecture and featuriser: leave " + f.name + " out"}
		}
	}
	return nil
}

// ForBase returns the hyperparameters a fine_tune_onnx job runs with: the
// training fields as given (defaults filled), the featuriser's and the
// table size from the base model's model_info. EmbeddingDim is 0: the
// base model's, whatever it is.
func (h Hyperparameters) ForBase(info ModelInfo) Hyperparameters {
	h = h.Defaults()
	h.EmbeddingDim = 0
	h.Buckets = info.Buckets
	h.Ngrams = info.Features.WordNgrams
	h.CharNgramMin, h.CharNgramMax = info.Features.CharNgramMin, info.Features.CharNgramMax
	h.MaxFeatures = info.Features.MaxFeatures
	h.Weighting = info.Features.Weighting
	if h.Weighting == "" {
		h.Weighting = textfeatures.WeightMean // a model from before weightings
	}
	return h
}

// CheckLabels says whether a dataset's labels fit a fine_tune_onnx base
// model's: the same set (the model's order is kept), so the same number
// of classes.
func CheckLabels(model, dataset []string) error {
	if len(model) != len(dataset) {
		return fmt.Errorf("it classifies %d labels %q but the dataset has %d %q: the number of classes must match (train a new model with task %s for another label set)",
			len(model), model, len(dataset), dataset, TaskTextClassification)
	}
	if !slices.Equal(sorted(model), sorted(dataset)) {
		return fmt.Errorf("its labels are %q but the dataset's are %q: they must be the same labels", model, dataset)
	}
	return nil
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// Features is the featuriser configuration the hyperparameters choose.
func (h Hyperparameters) Features() textfeatures.Config {
	return textfeatures.Config{
		WordNgrams:   h.Ngrams,
		CharNgramMin: h.CharNgramMin,
		CharNgramMax: h.CharNgramMax,
		MaxFeatures:  h.MaxFeatures,
		Weighting:    h.Weighting,
	}
}

// Spec is one training job.
type Spec struct {
	Task           string `json:"task"`
	TrainPath      string `json:"train_path"`
	ValidationPath string `json:"validation_path"`
	// Labels fixes the classes and their order (a dataset's meta.json
	// lists them); empty takes the labels found, sorted.
	Labels          []string        `json:"labels,omitempty"`
	OutputDir       string          `json:"output_dir"`
	Hyperparameters Hyperparameters `json:"hyperparameters"`
	// BaseModelPath is the ONNX file a fine_tune_onnx job starts from
	// (the server's copy of the base model, in the job's folder).
	BaseModelPath string `json:"base_model_path,omitempty"`
	// BaseModel names it, for the result's lineage.
	BaseModel *BaseModel `json:"base_model,omitempty"`
}

// BaseModel is the registered model a fine_tune_onnx job started from.
type BaseModel struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty" doc:"The base model's registered version when the job was created (for a trained model, the job that trained it)."`
}

// Epoch is one finished epoch.
type Epoch struct {
	Epoch              int     `json:"epoch"`
	Epochs             int     `json:"epochs"`
	TrainLoss          float64 `json:"train_loss"`
	ValidationAccuracy float64 `json:"validation_accuracy"`
	// Best says this epoch is the best so far (its model was exported).
	Best              bool      `json:"best"`
	ExamplesPerSecond float64   `json:"examples_per_second"`
	Seconds           float64   `json:"seconds"`
	Time              time.Time `json:"time"`
}

// JobResult is a finished job.
type JobResult struct {
	Task               string          `json:"task"`
	ModelPath          string          `json:"model_path,omitempty"`
	Labels             []string        `json:"labels"`
	Hyperparameters    Hyperparameters `json:"hyperparameters"`
	EpochsRun          int             `json:"epochs_run"`
	BestEpoch          int             `json:"best_epoch"`
	ValidationAccuracy float64         `json:"validation_accuracy"`
	TrainLoss          float64         `json:"train_loss"`
	StoppedEarly       bool            `json:"stopped_early"`
	TrainExamples      int             `json:"train_examples"`
	ValidationExamples int             `json:"validation_examples"`
	ExamplesPerSecond  float64         `json:"examples_per_second"`
	BaseModel          *BaseModel      `json:"base_model,omitempty" doc:"fine_tune_onnx: the model the job started from."`
}

// ModelInfo is what a trained classifier says about itself: its
// model_info output holds it as JSON bytes, so a module needs nothing but
// the model to featurise texts and name the labels.
type ModelInfo struct {
	Task     string              `json:"task"`
	Labels   []string            `json:"labels"`
	Buckets  int                 `json:"buckets"`
	Features textfeatures.Config `json:"features"`
}

// Job states.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// Terminal says a job in this state will not change again.
func Terminal(state string) bool {
	return state == StateSucceeded || state == StateFailed || state == StateCancelled
}

// Status is a job as the accel service reports it.
type Status struct {
	ID     string     `json:"id"`
	State  string     `json:"state"`
	Error  string     `json:"error,omitempty"`
	Events []Epoch    `json:"events"`
	Result *JobResult `json:"result,omitempty"`
}

// StartRequest is the body of POST /v2/training/jobs.
type StartRequest struct {
	ID   string `json:"id"`
	Spec Spec   `json:"spec"`
}

// ValidateSpec checks what can be checked without reading the data: the
// task and the hyperparameters (after Defaults).
func ValidateSpec(s Spec) *FieldError {
	if s.Task != TaskTextClassification && s.Task != TaskFineTuneONNX {
		return &FieldError{Field: "task", Message: fmt.Sprintf("%q is not a task this service trains; use %q or %q", s.Task, TaskTextClassification, TaskFineTuneONNX)}
	}
	if ferr := s.Hyperparameters.Defaults().Validate(); ferr != nil {
		return &FieldError{Field: "hyperparameters." + ferr.Field, Message: ferr.Message}
	}
	return nil
}
