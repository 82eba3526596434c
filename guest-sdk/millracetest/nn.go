//go:build !wasip1

package millracetest

import (
	"fmt"
	"slices"
	"time"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/guest-sdk/internal/hostcall"
	"github.com/millrace/millrace/guest-sdk/nn"
)

// Model is a model the fake host serves through the tensor ABI (package
// nn): a Go function stands in for the accelerator. The fake checks
// inputs against Inputs as the real host checks them against the model's
// metadata, so a module that passes here sends what the model takes.
type Model struct {
	Inputs  []TensorSpec
	Outputs []TensorSpec
	// Run computes the outputs (in Outputs' order) from the inputs (in
	// Inputs' order). An error makes compute fail with runtime_error.
	Run func(inputs []nn.Tensor) ([]nn.Tensor, error)
}

// TensorSpec describes an input or output: a dimension of -1 takes any
// size.
type TensorSpec struct {
	Name  string
	Type  abi.NNTensorType
	Shape []int64
}

// nnState is the fake's tensor ABI state of one run.
type nnState struct {
	graphs   []string
	contexts []*fakeContext
}

type fakeContext struct {
	model   string
	inputs  []*nn.Tensor
	outputs []nn.Tensor
	started bool // compute_start was called and not yet waited for
	result  abi.NNErrno
}

var _ hostcall.NNHost = fake{}

func (f fake) NNLoadByName(name string) (uint32, abi.NNErrno) {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	if f.h.Grants != nil && (f.h.Grants.Accel == nil || !slices.Contains(f.h.Grants.Accel.Models, name)) {
		return 0, abi.NNNotFound
	}
	if _, ok := f.h.Models[name]; !ok {
		return 0, abi.NNNotFound
	}
	f.h.nn.graphs = append(f.h.nn.graphs, name)
	return uint32(len(f.h.nn.graphs) - 1), abi.NNSuccess
}

func (f fake) NNInitExecutionContext(graph uint32) (uint32, abi.NNErrno) {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	if int(graph) >= len(f.h.nn.graphs) {
		return 0, abi.NNInvalidArgument
	}
	name := f.h.nn.graphs[graph]
	f.h.nn.contexts = append(f.h.nn.contexts, &fakeContext{model: name, inputs: make([]*nn.Tensor, len(f.h.Models[name].Inputs))})
	return uint32(len(f.h.nn.contexts) - 1), abi.NNSuccess
}

// context finds an idle context; the caller holds h.mu.
func (h *Host) context(ctx uint32) (*fakeContext, abi.NNErrno) {
	if int(ctx) >= len(h.nn.contexts) {
		return nil, abi.NNInvalidArgument
	}
	c := h.nn.contexts[ctx]
	if c.started {
		return nil, abi.NNBusy
	}
	return c, abi.NNSuccess
}

func (f fake) NNSetInput(ctx, index uint32, t hostcall.Tensor, _ bool) abi.NNErrno {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	c, errno := f.h.context(ctx)
	if errno != abi.NNSuccess {
		return errno
	}
	specs := f.h.Models[c.model].Inputs
	if int(index) >= len(specs) {
		return abi.NNInvalidArgument
	}
	spec := specs[index]
	if t.Type != spec.Type || len(t.Dims) != len(spec.Shape) {
		return abi.NNInvalidArgument
	}
	n := t.Type.Size()
	for i, d := range t.Dims {
		if spec.Shape[i] >= 0 && int64(d) != spec.Shape[i] {
			return abi.NNInvalidArgument
		}
		n *= int(d)
	}
	if n != len(t.Data) {
		return abi.NNInvalidArgument
	}
	c.inputs[index] = &nn.Tensor{Type: t.Type, Shape: t.Dims, Data: t.Data}
	return abi.NNSuccess
}

// compute runs c's model; the caller holds h.mu.
func (h *Host) compute(c *fakeContext) abi.NNErrno {
	m := h.Models[c.model]
	in := make([]nn.Tensor, len(c.inputs))
	for i, t := range c.inputs {
		if t == nil {
			return abi.NNInvalidArgument
		}
		in[i] = *t
	}
	out, err := m.Run(in)
	if err != nil {
		h.Logs = append(h.Logs, LogRecord{Level: abi.LogWarn, Message: fmt.Sprintf("compute: model %q: %v", c.model, err), Source: "host"})
		return abi.NNRuntimeError
	}
	if len(out) != len(m.Outputs) {
		panic(fmt.Sprintf("millracetest: model %q returned %d outputs; its Outputs declare %d", c.model, len(out), len(m.Outputs)))
	}
	c.outputs = out
	return abi.NNSuccess
}

func (f fake) NNCompute(ctx uint32) abi.NNErrno {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	c, errno := f.h.context(ctx)
	if errno != abi.NNSuccess {
		return errno
	}
	return f.h.compute(c)
}

func (f fake) NNOutput(ctx, index uint32) (hostcall.Tensor, abi.NNErrno) {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	c, errno := f.h.context(ctx)
	if errno != abi.NNSuccess {
		return hostcall.Tensor{}, errno
	}
	if c.outputs == nil || int(index) >= len(c.outputs) {
		return hostcall.Tensor{}, abi.NNInvalidArgument
	}
	t := c.outputs[index]
	return hostcall.Tensor{Dims: t.Shape, Type: t.Type, Data: t.Data}, abi.NNSuccess
}

// NNComputeStart computes at once; NNComputeWait reports the result. A
// fake need not overlap anything.
func (f fake) NNComputeStart(ctx uint32) abi.NNErrno {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	c, errno := f.h.context(ctx)
	if errno != abi.NNSuccess {
		return errno
	}
	for _, t := range c.inputs {
		if t == nil {
			return abi.NNInvalidArgument
		}
	}
	c.result, c.started = f.h.compute(c), true
	return abi.NNSuccess
}

func (f fake) NNComputeWait(ctx uint32, _ time.Duration) abi.NNErrno {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	if int(ctx) >= len(f.h.nn.contexts) || !f.h.nn.contexts[ctx].started {
		return abi.NNInvalidArgument
	}
	c := f.h.nn.contexts[ctx]
	c.started = false
	return c.result
}
