// Package sdxltest holds what the Stable Diffusion XL tests share: tiny
// generated SDXL folders (accel/onnxbuild/sdxl), the real millrace-accel
// service with ONNX Runtime serving them, and a pipeline.Runner over it
// that reads the folder's small files from disk as the server's registry
// does.
//
// A missing ONNX Runtime library fails the test with the command that
// fetches it: the real runtime is the point, so nothing skips.
package sdxltest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/accel/acceltest"
	"github.com/millrace/millrace/accel/client"
	"github.com/millrace/millrace/accel/oip"
	"github.com/millrace/millrace/accel/onnxbuild/sdxl"
	"github.com/millrace/millrace/modules/stable_diffusion_xl/pipeline"
)

// Folder writes a tiny SDXL folder with opts into a temporary folder.
func Folder(tb testing.TB, opts sdxl.Options) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "sdxl")
	if err := sdxl.Write(dir, opts); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// Accel is a running millrace-accel serving pipeline folders by name.
type Accel struct {
	C      *client.Client
	models string
}

// StartAccel starts millrace-accel on a Unix socket in a temporary folder
// and returns it; it stops when the test ends. Serve adds folders.
func StartAccel(tb testing.TB) *Accel {
	tb.Helper()
	models := filepath.Join(tb.TempDir(), "models")
	if err := os.MkdirAll(models, 0o755); err != nil {
		tb.Fatal(err)
	}
	c := acceltest.Start(tb, models, "-idle-unload", "0", "-intra-op-threads", "1")
	return &Accel{C: c, models: models}
}

// Serve links the pipeline folder dir into the service's model directory
// as name, as the server's registry does, and returns a Runner on it.
func (a *Accel) Serve(tb testing.TB, name, dir string) *Runner {
	tb.Helper()
	if err := os.Symlink(dir, filepath.Join(a.models, name)); err != nil {
		tb.Fatal(err)
	}
	return &Runner{C: a.C, Name: name, Dir: dir}
}

// Runner runs a pipeline's parts on millrace-accel (as NAME/PART) and
// reads its files from its folder.
type Runner struct {
	C    *client.Client
	Name string
	Dir  string

	mu sync.Mutex
	// Calls counts the runs of each part.
	Calls map[string]int
}

var _ pipeline.Runner = (*Runner)(nil)

// Load implements pipeline.Runner.
func (r *Runner) Load(ctx context.Context, part string) (pipeline.Model, error) {
	name := r.Name + "/" + part
	md, err := r.C.ModelMetadata(ctx, name)
	if err != nil {
		return nil, err
	}
	conv := func(ts []oip.TensorMetadata) []pipeline.TensorInfo {
		out := make([]pipeline.TensorInfo, len(ts))
		for i, t := range ts {
			out[i] = pipeline.TensorInfo{Name: t.Name, Shape: t.Shape}
			if typ, ok := abi.NNTensorTypeOf(string(t.Datatype)); ok {
				out[i].Type = typ.String()
			}
		}
		return out
	}
	return &model{r: r, part: part, name: name, inputs: conv(md.Inputs), outputs: conv(md.Outputs)}, nil
}

// ReadFile implements pipeline.Runner.
func (r *Runner) ReadFile(_ context.Context, path string) ([]byte, error) {
	return os.ReadFile(filepath.Join(r.Dir, filepath.FromSlash(path)))
}

// CallsOf returns how many times part ran.
func (r *Runner) CallsOf(part string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.Calls[part]
}

type model struct {
	r               *Runner
	part, name      string
	inputs, outputs []pipeline.TensorInfo
}

func (m *model) Inputs() []pipeline.TensorInfo  { return m.inputs }
func (m *model) Outputs() []pipeline.TensorInfo { return m.outputs }

func (m *model) Run(ctx context.Context, inputs map[string]pipeline.Tensor, outputs []string) (map[string]pipeline.Tensor, error) {
	m.r.mu.Lock()
	if m.r.Calls == nil {
		m.r.Calls = map[string]int{}
	}
	m.r.Calls[m.part]++
	m.r.mu.Unlock()
	in := make([]oip.Tensor, len(m.inputs))
	for i, info := range m.inputs {
		t, ok := inputs[info.Name]
		if !ok {
			return nil, fmt.Errorf("%s: input %s is not given", m.name, info.Name)
		}
		var dt string
		for typ := abi.NNTensorType(0); typ < 32; typ++ {
			if typ.Valid() && typ.String() == t.Type {
				dt = typ.Datatype()
			}
		}
		in[i] = oip.Tensor{Name: info.Name, Datatype: oip.Datatype(dt), Shape: t.Shape, Data: t.Data}
	}
	resp, err := m.r.C.Infer(ctx, m.name, in)
	if err != nil {
		return nil, err
	}
	out := map[string]pipeline.Tensor{}
	for _, t := range resp.Outputs {
		typ, _ := abi.NNTensorTypeOf(string(t.Datatype))
		out[t.Name] = pipeline.Tensor{Type: typ.String(), Shape: t.Shape, Data: t.Data}
	}
	return out, nil
}
