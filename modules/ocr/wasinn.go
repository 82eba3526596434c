package main

import (
	"context"
	"fmt"

	"github.com/millrace/millrace/guest-sdk/nn"
	"github.com/millrace/millrace/modules/ocr/pipeline"
)

// wasiNN runs the models through the tensor ABI (wasi_ephemeral_nn, ABI.md
// §8), which reaches the accel service's models by registry name
// (ppocr_det and ppocr_rec, granted through the manifest's accel
// capability). Weights never enter the module's memory; only the input
// and output tensors cross.
type wasiNN struct{}

var _ pipeline.Runner = wasiNN{}

// contexts keeps one execution context per model for the invocation: the
// recogniser runs once per line, and a context can be fed again, while the
// host bounds how many an invocation may open.
var contexts = map[string]nn.ExecutionContext{}

// Run implements pipeline.Runner.
func (wasiNN) Run(_ context.Context, model string, inputs []pipeline.Tensor) ([]pipeline.Tensor, error) {
	ec, ok := contexts[model]
	if !ok {
		g, err := nn.LoadByName(model)
		if err != nil {
			return nil, fmt.Errorf("ocr: model %s (is it registered and granted?): %w", model, err)
		}
		if ec, err = g.NewExecutionContext(); err != nil {
			return nil, fmt.Errorf("ocr: model %s: %w", model, err)
		}
		contexts[model] = ec
	}
	for i, in := range inputs {
		shape := make([]uint32, len(in.Shape))
		for j, d := range in.Shape {
			shape[j] = uint32(d)
		}
		if err := ec.SetInput(i, nn.NewTensor(shape, in.Data)); err != nil {
			return nil, fmt.Errorf("ocr: model %s: input %d: %w", model, i, err)
		}
	}
	if err := ec.Compute(); err != nil {
		return nil, fmt.Errorf("ocr: model %s: %w", model, err)
	}
	out, err := ec.Output(0)
	if err != nil {
		return nil, fmt.Errorf("ocr: model %s: output: %w", model, err)
	}
	values, err := nn.Values[float32](out)
	if err != nil {
		return nil, fmt.Errorf("ocr: model %s: output: %w", model, err)
	}
	shape := make([]int64, len(out.Shape))
	for i, d := range out.Shape {
		shape[i] = int64(d)
	}
	// An empty name makes the pipeline take the model's first output.
	return []pipeline.Tensor{{Shape: shape, DType: pipeline.FP32, Data: values}}, nil
}
