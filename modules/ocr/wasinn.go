package main

import (
	"context"
	"errors"

	"github.com/millrace/millrace/modules/ocr/pipeline"
)

// wasiNN runs the models through the WASI-NN host functions
// (wasi_ephemeral_nn, ABI.md), which reach the accel service's models by
// registry name: ppocr_det and ppocr_rec, granted by the manifest's accel
// capability. Weights never enter the module's memory.
//
// TODO(wasi-nn): this adapter is the module's one missing piece; it waits
// for the guest SDK's WASI-NN package, written alongside the host
// functions. Run will, for each call:
//
//  1. load_by_name(model) → graph, once per model per invocation (cache it
//     in a package variable: each invocation is a fresh instance);
//  2. init_execution_context(graph) → context;
//  3. set_input(context, 0, {dimensions: inputs[0].Shape as u32, type:
//     fp32, data: inputs[0].Data as little-endian bytes});
//  4. compute(context);
//  5. get_output(context, 0, buffer) → the output's bytes, and its shape
//     from Millrace's extension module: preview1's get_output returns bytes
//     only, and the recogniser's [lines, steps, classes] cannot be told
//     from its input's shape alone.
//
// It returns []pipeline.Tensor{{Name: "", Shape: shape, DType: pipeline.FP32,
// Data: floats}}; an empty name makes the pipeline take the first output.
type wasiNN struct{}

var _ pipeline.Runner = wasiNN{}

// errNoWASINN is what the module answers until the adapter is written.
var errNoWASINN = errors.New("ocr: this build of the module cannot reach the models yet: its WASI-NN runner is not written (modules/ocr/wasinn.go)")

// Run implements pipeline.Runner.
func (wasiNN) Run(ctx context.Context, model string, inputs []pipeline.Tensor) ([]pipeline.Tensor, error) {
	return nil, errNoWASINN
}
