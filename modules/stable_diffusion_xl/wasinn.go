package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/guest-sdk/nn"
	"github.com/millrace/millrace/modules/stable_diffusion_xl/pipeline"
)

// wasiNN runs a registered pipeline's parts through the tensor ABI
// (ABI.md §8): each part loads by name as PIPELINE/PART, which the grant
// of PIPELINE covers, and the pipeline's small files come through
// millrace_nn_v1.model_file. Weights never enter the module's memory.
type wasiNN struct {
	pipeline string
}

var _ pipeline.Runner = wasiNN{}

// Load implements pipeline.Runner.
func (w wasiNN) Load(_ context.Context, part string) (pipeline.Model, error) {
	name := w.pipeline + "/" + part
	g, err := nn.LoadByName(name)
	if err != nil {
		if errors.Is(err, abi.NNNotFound) {
			return nil, fmt.Errorf("model %s: %w (is %s registered as a pipeline folder and granted to this module?)", name, err, w.pipeline)
		}
		return nil, fmt.Errorf("model %s: %w", name, err)
	}
	md, err := g.Metadata()
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", name, err)
	}
	ec, err := g.NewExecutionContext()
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", name, err)
	}
	m := &wasiModel{name: name, ec: ec}
	conv := func(ts []nn.TensorInfo) []pipeline.TensorInfo {
		out := make([]pipeline.TensorInfo, len(ts))
		for i, t := range ts {
			out[i] = pipeline.TensorInfo{Name: t.Name, Type: t.Type, Shape: t.Shape}
		}
		return out
	}
	m.inputs, m.outputs = conv(md.Inputs), conv(md.Outputs)
	return m, nil
}

// ReadFile implements pipeline.Runner.
func (w wasiNN) ReadFile(_ context.Context, path string) ([]byte, error) {
	b, err := nn.ModelFile(w.pipeline, path)
	if errors.Is(err, abi.NNNotFound) {
		return nil, fmt.Errorf("%s of %s: %w", path, w.pipeline, fs.ErrNotExist)
	}
	return b, err
}

type wasiModel struct {
	name            string
	ec              nn.ExecutionContext
	inputs, outputs []pipeline.TensorInfo
	// last holds the tensor each input was last set to. Inputs stay set
	// between computes (WASI-NN), so a tensor given again (the UNet's
	// conditioning, the same every step) is not copied again. Holding it
	// keeps its memory from being reused by another tensor, which could
	// otherwise look the same.
	last []pipeline.Tensor
}

// same reports whether a and b are the same tensor: the same memory,
// type and shape. The pipeline never changes a tensor after making it.
func same(a, b pipeline.Tensor) bool {
	return len(a.Data) == len(b.Data) && len(a.Data) > 0 && &a.Data[0] == &b.Data[0] &&
		a.Type == b.Type && slices.Equal(a.Shape, b.Shape)
}

func (m *wasiModel) Inputs() []pipeline.TensorInfo  { return m.inputs }
func (m *wasiModel) Outputs() []pipeline.TensorInfo { return m.outputs }

// Run implements pipeline.Model: inputs in the model's order, then the
// outputs asked for, each read by its index.
func (m *wasiModel) Run(_ context.Context, inputs map[string]pipeline.Tensor, outputs []string) (map[string]pipeline.Tensor, error) {
	if m.last == nil {
		m.last = make([]pipeline.Tensor, len(m.inputs))
	}
	for i, info := range m.inputs {
		t, ok := inputs[info.Name]
		if !ok {
			return nil, fmt.Errorf("model %s: input %s is not given", m.name, info.Name)
		}
		if same(t, m.last[i]) {
			continue
		}
		typ, ok := tensorType(t.Type)
		if !ok {
			return nil, fmt.Errorf("model %s: input %s: type %s", m.name, info.Name, t.Type)
		}
		shape := make([]uint32, len(t.Shape))
		for j, d := range t.Shape {
			shape[j] = uint32(d)
		}
		m.last[i] = pipeline.Tensor{}
		if err := m.ec.SetInput(i, nn.Tensor{Type: typ, Shape: shape, Data: t.Data}); err != nil {
			return nil, fmt.Errorf("model %s: input %s: %w", m.name, info.Name, err)
		}
		m.last[i] = t
	}
	if err := m.ec.Compute(); err != nil {
		return nil, fmt.Errorf("model %s: %w", m.name, err)
	}
	if outputs == nil {
		for _, o := range m.outputs {
			outputs = append(outputs, o.Name)
		}
	}
	res := make(map[string]pipeline.Tensor, len(outputs))
	for _, name := range outputs {
		idx := -1
		for i, o := range m.outputs {
			if o.Name == name {
				idx = i
			}
		}
		if idx < 0 {
			return nil, fmt.Errorf("model %s has no output %s", m.name, name)
		}
		t, err := m.ec.Output(idx)
		if err != nil {
			return nil, fmt.Errorf("model %s: output %s: %w", m.name, name, err)
		}
		shape := make([]int64, len(t.Shape))
		for j, d := range t.Shape {
			shape[j] = int64(d)
		}
		res[name] = pipeline.Tensor{Type: t.Type.String(), Shape: shape, Data: t.Data}
	}
	return res, nil
}

// tensorType is the tensor ABI type named name (f32, f16, …).
func tensorType(name string) (abi.NNTensorType, bool) {
	for t := abi.NNTensorType(0); t < 32; t++ {
		if t.Valid() && t.String() == name {
			return t, true
		}
	}
	return 0, false
}
