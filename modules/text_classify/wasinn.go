package main

import (
	"fmt"

	"github.com/millrace/millrace/accel/textfeatures"
	"github.com/millrace/millrace/guest-sdk/nn"
)

// wasiNN runs the classifier through the tensor ABI (wasi_ephemeral_nn,
// ABI.md §8). The exported classifier's inputs are ids (i64) and weights
// (f32) of shape [rows, features]; its outputs probabilities, logits and
// model_info (accel/training, export.go).
// One per invocation: it keeps the execution context of the model, which
// runs twice (model_info, then the batch).
type wasiNN struct {
	contexts map[string]nn.ExecutionContext
}

var _ Runner = (*wasiNN)(nil)

func (w *wasiNN) context(model string) (nn.ExecutionContext, error) {
	if ec, ok := w.contexts[model]; ok {
		return ec, nil
	}
	g, err := nn.LoadByName(model)
	if err != nil {
		return 0, fmt.Errorf("model %s (is it registered, and in this module's grant?): %w", model, err)
	}
	ec, err := g.NewExecutionContext()
	if err != nil {
		return 0, fmt.Errorf("model %s: %w", model, err)
	}
	if w.contexts == nil {
		w.contexts = map[string]nn.ExecutionContext{}
	}
	w.contexts[model] = ec
	return ec, nil
}

func (w *wasiNN) compute(model string, b textfeatures.Batch) (nn.ExecutionContext, error) {
	ec, err := w.context(model)
	if err != nil {
		return ec, err
	}
	shape := []uint32{uint32(b.Rows), uint32(b.Width)}
	if err := ec.SetInput(0, nn.NewTensor(shape, b.IDs)); err != nil {
		return ec, fmt.Errorf("model %s: ids: %w", model, err)
	}
	if err := ec.SetInput(1, nn.NewTensor(shape, b.Weights)); err != nil {
		return ec, fmt.Errorf("model %s: weights: %w", model, err)
	}
	if err := ec.Compute(); err != nil {
		return ec, fmt.Errorf("model %s: %w", model, err)
	}
	return ec, nil
}

// Info runs the model on one empty row (weight 0) for its model_info.
func (w *wasiNN) Info(model string) ([]byte, error) {
	ec, err := w.compute(model, textfeatures.PadBags([]textfeatures.Features{{}}, 1))
	if err != nil {
		return nil, err
	}
	out, err := ec.Output(2)
	if err != nil {
		return nil, fmt.Errorf("model %s has no model_info output (is it a Millrace text classifier?): %w", model, err)
	}
	return nn.Values[uint8](out)
}

// Probabilities implements Runner.
func (w *wasiNN) Probabilities(model string, b textfeatures.Batch) ([]float32, error) {
	ec, err := w.compute(model, b)
	if err != nil {
		return nil, err
	}
	out, err := ec.Output(0)
	if err != nil {
		return nil, fmt.Errorf("model %s: probabilities: %w", model, err)
	}
	return nn.Values[float32](out)
}
