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
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/accel/client"
	"github.com/millrace/millrace/accel/oip"
	"github.com/millrace/millrace/accel/onnxbuild/sdxl"
	"github.com/millrace/millrace/modules/stable_diffusion_xl/pipeline"
)

// RepoRoot is the repository's root: the nearest parent holding go.work.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.work above the working directory: run the tests inside the repository")
		}
		dir = parent
	}
}

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// Main runs a test binary's tests (call it from TestMain) and then removes
// the millrace-accel it built, if any.
func Main(m *testing.M) int {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	return code
}

// accelBinary is MILLRACE_ACCEL_BIN, else millrace-accel built from
// accel/ once per test binary.
func accelBinary(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("MILLRACE_ACCEL_BIN"); p != "" {
		return p
	}
	root := RepoRoot(tb)
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "millrace-accel-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir, buildBin = dir, filepath.Join(dir, "millrace-accel")
		cmd := exec.Command("go", "build", "-o", buildBin, "./cmd/millrace-accel")
		cmd.Dir = filepath.Join(root, "accel")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building millrace-accel: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return buildBin
}

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
	bin := accelBinary(tb)
	lib := os.Getenv("MILLRACE_ORT_LIB")
	if lib == "" {
		lib = filepath.Join(RepoRoot(tb), "build/cache/onnxruntime/1.24.1/libonnxruntime.so.1")
	}
	if _, err := os.Stat(lib); err != nil {
		tb.Fatalf("the ONNX Runtime library is missing (%v): run `make accel-deps` at the repository root, or set MILLRACE_ORT_LIB", err)
	}
	// Unix socket paths are short (108 bytes): t.TempDir's can be longer.
	dir, err := os.MkdirTemp("", "sdxl-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	models := filepath.Join(dir, "models")
	if err := os.MkdirAll(models, 0o755); err != nil {
		tb.Fatal(err)
	}
	sock := filepath.Join(dir, "accel.sock")
	cmd := exec.Command(bin, "-listen", "unix:"+sock, "-models", models, "-ort-lib", lib, "-idle-unload", "0", "-intra-op-threads", "1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	var log bytes.Buffer
	sc := bufio.NewScanner(stderr)
	serving := false
	for !serving && sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		serving = strings.Contains(sc.Text(), "serving the Open Inference Protocol")
	}
	if !serving {
		cmd.Wait()
		tb.Fatalf("millrace-accel did not start:\n%s", log.String())
	}
	go io.Copy(io.Discard, stderr)
	tb.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	c, err := client.New("unix:" + sock)
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.Ready(context.Background()); err != nil {
		tb.Fatalf("millrace-accel is not ready: %v\n%s", err, log.String())
	}
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
