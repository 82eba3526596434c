// Command text_classify is the Millrace module that labels text with a
// classifier trained by a Millrace training job (task
// text_classification): spam or ham, a ticket's team, a review's
// sentiment. The featurisation runs here, in WebAssembly, with the very
// package the trainer used (accel/textfeatures); the model runs on the
// local accelerator through the tensor ABI (WASI-NN). The model says
// itself how to featurise and what its labels are (its model_info
// output), so the module needs only its name.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	millrace "github.com/millrace/millrace/guest-sdk"

	"github.com/millrace/millrace/accel/textfeatures"
	"github.com/millrace/millrace/accel/trainjob"
)

func main() {}

// DefaultModel is the model used when the config names none.
const DefaultModel = "text_classifier"

// Limits of one invocation.
const (
	maxTexts     = 256
	maxTextBytes = 1 << 20
)

type input struct {
	// Text is one text to label; Texts labels several at once.
	Text  string   `json:"text"`
	Texts []string `json:"texts"`
}

type config struct {
	// Model is the registered model to use; the module's grant
	// (capabilities.accel.models, *classifier* as requested) must cover
	// it, or the host refuses to load it.
	Model string `json:"model"`
}

// Prediction is one text's label.
type Prediction struct {
	Label string `json:"label"`
	// Confidence is the label's probability.
	Confidence    float64            `json:"confidence"`
	Probabilities map[string]float64 `json:"probabilities"`
}

type output struct {
	// For one text (input text): its prediction, inline.
	*Prediction
	// For several (input texts): one per text, in order.
	Predictions []Prediction `json:"predictions,omitempty"`
	Model       string       `json:"model"`
}

// Runner runs the classifier: the tensor ABI in the module, the
// accelerator service in tests.
type Runner interface {
	// Info returns the model's model_info output (trainjob.ModelInfo as
	// JSON).
	Info(model string) ([]byte, error)
	// Probabilities runs a batch and returns probabilities [rows, classes].
	Probabilities(model string, b textfeatures.Batch) ([]float32, error)
}

func run(ctx context.Context, in input) (output, error) {
	var cfg config
	if err := millrace.Config(&cfg); err != nil {
		return output{}, fmt.Errorf("config: %w", err)
	}
	out, err := classify(&wasiNN{}, cfg, in)
	if err != nil {
		return output{}, err
	}
	if out.Prediction != nil {
		// A manifest that declares ports named after the labels lets a
		// workflow branch by label; the built-in one declares none, and
		// SetPort then fails harmlessly (branch with a condition on
		// output.label instead).
		_ = millrace.SetPort(out.Label)
	}
	millrace.Logger().Info("classified", "model", out.Model, "texts", max(1, len(out.Predictions)))
	return out, nil
}

// classify is the handler with the model behind r.
func classify(r Runner, cfg config, in input) (output, error) {
	if cfg.Model == "" {
		cfg.Model = DefaultModel
	}
	single := in.Texts == nil
	texts := in.Texts
	switch {
	case single && in.Text == "":
		return output{}, errors.New("input: give text (one text) or texts (a list)")
	case !single && in.Text != "":
		return output{}, errors.New("input: give text or texts, not both")
	case single:
		texts = []string{in.Text}
	case len(texts) == 0 || len(texts) > maxTexts:
		return output{}, fmt.Errorf("input: texts must hold 1 to %d texts, not %d", maxTexts, len(texts))
	}
	for i, t := range texts {
		if len(t) > maxTextBytes || !utf8.ValidString(t) {
			return output{}, fmt.Errorf("input: texts[%d] must be UTF-8 of at most %d bytes", i, maxTextBytes)
		}
	}
	raw, err := r.Info(cfg.Model)
	if err != nil {
		return output{}, err
	}
	var info trainjob.ModelInfo
	if err := json.Unmarshal(raw, &info); err != nil || info.Task != trainjob.TaskTextClassification {
		return output{}, fmt.Errorf("model %s is not a text classifier trained by Millrace (its model_info output is not one): train one with task text_classification", cfg.Model)
	}
	if err := info.Features.Validate(); err != nil || len(info.Labels) < 2 {
		return output{}, fmt.Errorf("model %s: its model_info is not usable (%v, %d labels)", cfg.Model, err, len(info.Labels))
	}
	batch, err := info.Features.NewBatch(texts)
	if err != nil {
		return output{}, err
	}
	probs, err := r.Probabilities(cfg.Model, batch)
	if err != nil {
		return output{}, err
	}
	classes := len(info.Labels)
	if len(probs) != len(texts)*classes {
		return output{}, fmt.Errorf("model %s returned %d probabilities for %d texts and %d labels", cfg.Model, len(probs), len(texts), classes)
	}
	out := output{Model: cfg.Model}
	for i := range texts {
		p := Prediction{Probabilities: make(map[string]float64, classes)}
		best := -1.0
		for k, label := range info.Labels {
			v := float64(probs[i*classes+k])
			p.Probabilities[label] = v
			if v > best {
				best, p.Label, p.Confidence = v, label, v
			}
		}
		out.Predictions = append(out.Predictions, p)
	}
	if single {
		out.Prediction, out.Predictions = &out.Predictions[0], nil
	}
	return out, nil
}
