package accel_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/internal/acceltest"
	"github.com/millrace/millrace/server/internal/onnxtest"
	"github.com/millrace/millrace/server/internal/pgtest"
	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/store/postgres"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/stretchr/testify/require"
)

// logs collects what the supervisors and their children log; a failing
// run prints its end.
var logs lockedBuffer

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := strings.Split(l.b.String(), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// engines are the sandbox engines compiled into this test binary
// (wasmtime with -tags wasmtime); engine is the default one.
var (
	engines = map[string]sandbox.Engine{}
	engine  sandbox.Engine
)

func TestMain(m *testing.M) {
	ctx := context.Background()
	cache, err := os.MkdirTemp("", "millrace-accel-test-")
	if err != nil {
		panic(err)
	}
	for _, kind := range sandbox.EngineKinds() {
		e, err := sandbox.NewEngine(ctx, sandbox.EngineConfig{Kind: kind, CacheDir: filepath.Join(cache, kind)})
		if err != nil {
			panic(err)
		}
		engines[kind] = e
	}
	engine = engines[sandbox.EngineWazero]
	code := pgtest.Run(m)
	for _, e := range engines {
		e.Close(ctx)
	}
	os.RemoveAll(cache)
	testguests.Cleanup()
	acceltest.Cleanup()
	if code != 0 {
		fmt.Fprintln(os.Stderr, "--- the accelerator's log (end) ---\n"+logs.tail(60))
	}
	os.Exit(code)
}

// stack is a server's accel part on a real millrace-accel child and real
// ONNX Runtime: store, supervisor, model registry and module registry.
type stack struct {
	db     store.Store
	sup    *accel.Supervisor
	models *accel.Models
	reg    *registry.Registry
	files  string // where the test's ONNX files are
}

// setup starts a child accelerator with arith and types registered.
func setup(t testing.TB, db store.Store) *stack {
	t.Helper()
	ctx := context.Background()
	if db == nil {
		var err error
		db, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
	}
	s := &stack{db: db, files: t.TempDir()}
	s.sup = accel.New(accel.Config{Mode: accel.ModeOn, Binary: acceltest.Binary(t), Library: acceltest.Library(t),
		Dir: filepath.Join(t.TempDir(), "accel"), Args: []string{"-intra-op-threads", "1"},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	s.models = accel.NewModels(db, s.sup)
	require.NoError(t, s.models.Sync(ctx))
	require.NoError(t, s.sup.Start(ctx))
	t.Cleanup(s.sup.Stop)
	waitReady(t, s.sup, 0)

	// arith as a folder with model.onnx, types as a single file.
	require.NoError(t, os.Mkdir(filepath.Join(s.files, "arith"), 0o755))
	onnxtest.WriteFile(t, filepath.Join(s.files, "arith"), "model.onnx", onnxtest.Arith())
	_, created, err := s.models.Register(ctx, "arith", accel.Registration{Path: filepath.Join(s.files, "arith"), Description: "adds and multiplies", Version: "1"})
	require.NoError(t, err)
	require.True(t, created)
	_, _, err = s.models.Register(ctx, "types", accel.Registration{Path: onnxtest.WriteFile(t, s.files, "types.onnx", onnxtest.Types())})
	require.NoError(t, err)

	s.reg = registry.New(registry.Config{}, db, engine, nil)
	s.reg.SetAccel(s.models)
	return s
}

// waitReady waits until the accelerator is ready after at least restarts
// restarts, or fails after a generous bound (a guard, not an assertion on
// speed).
func waitReady(t testing.TB, sup *accel.Supervisor, restarts int) accel.Status {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st := sup.Status(context.Background())
		if st.State == accel.StateReady && st.Restarts >= restarts {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the accelerator did not become ready: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const nnManifest = `{"abi": 1, "id": %q, "name": "NN user", "version": "1.0.0",
  "capabilities": {"accel": {"models": ["arith", "types", "unregistered"]}, "allowed_outbound_hosts": ["http://127.0.0.1:*"]},
  "limits": {"memory_mb": 64, "timeout_ms": 60000}}`

// install uploads the nnuser guest (a reactor, or a command) as id and
// grants it models.
func (s *stack) install(t *testing.T, id string, reactor bool, models ...string) {
	t.Helper()
	wasm := testguests.Wasm(t, "nnuser")
	if reactor {
		wasm = testguests.Reactor(t, "nnuser")
	}
	ctx := context.Background()
	_, _, err := s.reg.Upload(ctx, wasm, []byte(fmt.Sprintf(nnManifest, id)))
	require.NoError(t, err)
	m, err := s.reg.Get(ctx, id, "1.0.0")
	require.NoError(t, err)
	caps := m.Manifest.Capabilities
	caps.Accel.Models = models
	_, err = s.reg.SetGrant(ctx, id, "1.0.0", sandbox.Grant{Capabilities: caps})
	require.NoError(t, err)
}

type tensor struct {
	Type  string    `json:"type"`
	Shape []uint32  `json:"shape,omitempty"`
	Data  []float64 `json:"data"`
}

type call map[string]any

// invoke runs the module once; out is its outputs on success.
func (s *stack) invoke(t *testing.T, id string, in call) (out []tensor, res *sandbox.Result) {
	t.Helper()
	doc, err := json.Marshal(in)
	require.NoError(t, err)
	res, _, err = s.reg.Invoke(context.Background(), registry.InvokeRequest{ModuleID: id, Version: "1.0.0", Input: doc})
	require.NoError(t, err)
	if res.Failure == nil {
		var o struct {
			Outputs []tensor `json:"outputs"`
		}
		require.NoError(t, json.Unmarshal(res.Output, &o))
		out = o.Outputs
	}
	return out, res
}

func f32(shape []uint32, data ...float64) tensor {
	return tensor{Type: "f32", Shape: shape, Data: data}
}

// requireFailed checks that the invocation failed with the module's error
// naming want, and that the host logged why (logged).
func requireFailed(t *testing.T, res *sandbox.Result, want, logged string) {
	t.Helper()
	require.NotNil(t, res.Failure, "the invocation succeeded: %s", res.Output)
	require.Equal(t, sandbox.FailModuleError, res.Failure.Kind, res.Failure.Message)
	require.Contains(t, res.Failure.Message, want)
	var host []string
	for _, l := range res.Logs {
		if l.Source == "host" {
			host = append(host, l.Message)
		}
	}
	require.Contains(t, strings.Join(host, "\n"), logged, "the host's log records")
}

// A module runs a tiny model through WASI-NN, as a command and as a
// reactor, blocking and in the background, on every engine: the numbers
// come back exact.
func TestTensorABIRunsAModel(t *testing.T) {
	t.Parallel()
	for kind, e := range engines {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s := setup(t, nil)
			s.reg = registry.New(registry.Config{}, s.db, e, nil)
			s.reg.SetAccel(s.models)
			testTensorABIRunsAModel(t, s)
		})
	}
}

func testTensorABIRunsAModel(t *testing.T, s *stack) {
	s.install(t, "nn-command", false, "arith", "types")
	s.install(t, "nn-reactor", true, "arith", "types")
	in := call{"model": "arith", "outputs": 2, "inputs": []tensor{
		f32([]uint32{2, 3}, 1, 2, 3, 4, 5, 6),
		f32([]uint32{2, 3}, 0.5, -1, 10, 0.25, 2, -3),
	}}
	for _, id := range []string{"nn-command", "nn-reactor"} {
		for _, async := range []bool{false, true} {
			in["async"] = async
			out, res := s.invoke(t, id, in)
			require.Nil(t, res.Failure, "%s async=%v: %v", id, async, res.Failure)
			require.Equal(t, []tensor{
				f32([]uint32{2, 3}, 1.5, 1, 13, 4.25, 7, 3),
				f32([]uint32{2, 3}, 0.5, -2, 30, 1, 10, -18),
			}, out, "%s async=%v", id, async)
		}
	}

	// A guest that reads outputs with WASI-NN's get_output only.
	out, res := s.invoke(t, "nn-reactor", call{"model": "arith", "outputs": 1, "standard": true, "inputs": []tensor{
		f32([]uint32{1, 3}, 1, 2, 3), f32([]uint32{1, 3}, 1, 1, 1)}})
	require.Nil(t, res.Failure)
	require.Equal(t, []tensor{{Type: "f32", Data: []float64{2, 3, 4}}}, out)

	// Extension types: i64, bool, and the bits of f16 and bf16.
	out, res = s.invoke(t, "nn-reactor", call{"model": "types", "outputs": 4, "repeat": 2, "inputs": []tensor{
		{Type: "i64", Shape: []uint32{3}, Data: []float64{-7, 0, 1 << 40}},
		{Type: "bool", Shape: []uint32{2}, Data: []float64{1, 0}},
		{Type: "f16", Shape: []uint32{2}, Data: []float64{0x3c00, 0xc000}},  // 1.0, -2.0
		{Type: "bf16", Shape: []uint32{2}, Data: []float64{0x3f80, 0x4049}}, // 1.0, 3.140625
	}})
	require.Nil(t, res.Failure, "%v", res.Failure)
	require.Equal(t, []tensor{
		{Type: "i64", Shape: []uint32{3}, Data: []float64{-14, 0, 1 << 41}},
		{Type: "bool", Shape: []uint32{2}, Data: []float64{0, 1}},
		{Type: "f16", Shape: []uint32{2}, Data: []float64{0x3c00, 0xc000}},
		{Type: "bf16", Shape: []uint32{2}, Data: []float64{0x3f80, 0x4049}},
	}, out)
}

// Wrong models, shapes, types and calls are refused with the errno of
// ABI.md §8.1 and a log record that says why.
func TestTensorABIRefusals(t *testing.T) {
	t.Parallel()
	s := setup(t, nil)
	s.install(t, "nn-errors", true, "arith", "unregistered")
	a := f32([]uint32{1, 3}, 1, 2, 3)
	cases := []struct {
		name         string
		in           call
		want, reason string
	}{
		{"model not granted", call{"model": "types"},
			"wasi_ephemeral_nn.load_by_name: not_found", `model "types" is not granted to this module`},
		{"model not requested", call{"model": "secret-model"},
			"load_by_name: not_found", `model "secret-model" is not granted`},
		{"granted but not registered", call{"model": "unregistered"},
			"load_by_name: not_found", `no model is registered as "unregistered"`},
		{"load from bytes", call{"load": true},
			"wasi_ephemeral_nn.load: unsupported_operation", "register the model (PUT /v1/models/NAME)"},
		{"wrong rank", call{"model": "arith", "inputs": []tensor{f32([]uint32{3}, 1, 2, 3)}},
			"wasi_ephemeral_nn.set_input: invalid_argument", `input 0 ("a") of model "arith" has 2 dimensions [-1 3]; got 1 [3]`},
		{"wrong fixed dimension", call{"model": "arith", "inputs": []tensor{f32([]uint32{1, 4}, 1, 2, 3, 4)}},
			"set_input: invalid_argument", "dimension 1 is 4, not 3"},
		{"wrong type", call{"model": "arith", "inputs": []tensor{{Type: "i32", Shape: []uint32{1, 3}, Data: []float64{1, 2, 3}}}},
			"set_input: invalid_argument", `is FP32 (type 1, f32); got type 4 (i32)`},
		{"extension type", call{"model": "arith", "inputs": []tensor{{Type: "bool", Shape: []uint32{1, 3}, Data: []float64{1, 0, 1}}}},
			"millrace_nn_v1.set_input: invalid_argument", `got type 22 (bool)`},
		{"data does not fill the shape", call{"model": "arith", "inputs": []tensor{f32([]uint32{2, 3}, 1, 2, 3)}},
			"set_input: invalid_argument", "shape [2 3] of f32 takes 24 bytes; data_len is 12"},
		{"no such input", call{"model": "arith", "inputs": []tensor{a, a, a}},
			"set_input: invalid_argument", `model "arith" has 2 inputs; there is no input 2`},
		{"input not set", call{"model": "arith", "inputs": []tensor{a}},
			"wasi_ephemeral_nn.compute: invalid_argument", `input 1 ("b") of model "arith" in execution context 0 is not set`},
		{"input not set, background", call{"model": "arith", "async": true, "inputs": []tensor{a}},
			"millrace_nn_v1.compute_start: invalid_argument", `input 1 ("b")`},
		{"the runtime refuses", call{"model": "arith", "inputs": []tensor{f32([]uint32{2, 3}, 1, 2, 3, 4, 5, 6), f32([]uint32{3, 3}, 1, 2, 3, 4, 5, 6, 7, 8, 9)}},
			"wasi_ephemeral_nn.compute: runtime_error", "Attempting to broadcast an axis"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, res := s.invoke(t, "nn-errors", c.in)
			requireFailed(t, res, c.want, c.reason)
		})
	}
}

// A module whose manifest does not request accel cannot be uploaded if it
// imports the tensor ABI; one whose grant lacks it does not start.
func TestTensorABINeedsTheAccelCapability(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	require.NoError(t, err)
	defer db.Close()
	reg := registry.New(registry.Config{}, db, engine, nil)
	wasm := testguests.Reactor(t, "nnuser")
	_, _, err = reg.Upload(ctx, wasm, []byte(`{"abi": 1, "id": "sneaky", "name": "x", "version": "1.0.0", "capabilities": {"allowed_outbound_hosts": ["http://127.0.0.1:*"]}}`))
	var re *registry.Error
	require.ErrorAs(t, err, &re)
	require.Equal(t, "wasm", re.Field)
	require.Contains(t, re.Msg, "import wasi_ephemeral_nn.")
	require.Contains(t, re.Msg, `needs the "accel" capability, which the manifest does not request`)

	_, _, err = reg.Upload(ctx, wasm, []byte(fmt.Sprintf(nnManifest, "ungranted")))
	require.NoError(t, err)
	_, err = reg.SetGrant(ctx, "ungranted", "1.0.0", sandbox.Grant{Capabilities: sandboxCaps(`{"allowed_outbound_hosts": ["http://127.0.0.1:*"]}`)})
	require.NoError(t, err)
	res, _, err := reg.Invoke(ctx, registry.InvokeRequest{ModuleID: "ungranted", Version: "1.0.0", Input: []byte(`{"model": "arith"}`)})
	require.NoError(t, err)
	require.NotNil(t, res.Failure)
	require.Equal(t, sandbox.FailDenied, res.Failure.Kind)
	require.Contains(t, res.Failure.Message, `needs the "accel" capability, and it is not granted`)

	_, err = reg.SetGrant(ctx, "ungranted", "1.0.0", sandbox.Grant{Capabilities: sandboxCaps(`{"accel": {"models": ["other"]}}`)})
	require.ErrorContains(t, err, `capabilities.accel.models[0]: the manifest does not request model "other"`)
}

func sandboxCaps(doc string) (c abi.Capabilities) {
	if err := json.Unmarshal([]byte(doc), &c); err != nil {
		panic(err)
	}
	return c
}

// Several invocations infer at once on one child.
func TestConcurrentInvocations(t *testing.T) {
	t.Parallel()
	s := setup(t, nil)
	s.install(t, "nn-many", true, "arith")
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 6 {
		wg.Go(func() {
			for i := range 4 {
				x := float64(10*g + i)
				out, res := s.invoke(t, "nn-many", call{"model": "arith", "outputs": 2, "async": i%2 == 1, "inputs": []tensor{
					f32([]uint32{1, 3}, x, x+1, x+2), f32([]uint32{1, 3}, 2, 2, 2)}})
				switch {
				case res.Failure != nil:
					errs <- res.Failure.Message
				case !equal(out[0].Data, []float64{x + 2, x + 3, x + 4}) || !equal(out[1].Data, []float64{2 * x, 2*x + 2, 2*x + 4}):
					errs <- fmt.Sprintf("goroutine %d call %d: %v", g, i, out)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// SIGKILL the child while a module holds a loaded graph: that invocation
// fails with a clear error, the supervisor restarts the child, and the
// next invocation succeeds. The module itself signals when to kill: it
// calls a hook (http_send) between set_input and compute.
func TestAcceleratorKilledMidUse(t *testing.T) {
	t.Parallel()
	s := setup(t, nil)
	s.install(t, "nn-kill", true, "arith")
	before := s.sup.Status(context.Background())
	require.Equal(t, accel.StateReady, before.State)
	require.NotZero(t, before.PID)

	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, syscall.Kill(before.PID, syscall.SIGKILL))
		// Reply once the supervisor saw the child die.
		for s.sup.Status(r.Context()).Restarts == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		w.Write([]byte("killed"))
	}))
	defer hook.Close()
	in := call{"model": "arith", "outputs": 2, "hook": hook.URL, "inputs": []tensor{f32([]uint32{1, 3}, 1, 2, 3), f32([]uint32{1, 3}, 1, 2, 3)}}
	_, res := s.invoke(t, "nn-kill", in)
	require.NotNil(t, res.Failure)
	require.Contains(t, res.Failure.Message, "wasi_ephemeral_nn.compute: ")
	var host []string
	for _, l := range res.Logs {
		if l.Source == "host" {
			host = append(host, l.Message)
		}
	}
	// Compute finds the child restarting (busy) or restarted (its graph
	// is stale): either way the log says what happened.
	require.Regexp(t, `compute: .*(the accelerator restarted since the model was loaded|the accelerator is not ready).*(busy|runtime_error)`, strings.Join(host, "\n"))

	after := waitReady(t, s.sup, 1)
	require.Equal(t, 1, after.Restarts)
	require.NotEqual(t, before.PID, after.PID)
	require.Contains(t, after.LastError, "signal: killed")
	delete(in, "hook")
	out, res := s.invoke(t, "nn-kill", in)
	require.Nil(t, res.Failure, "%v", res.Failure)
	require.Equal(t, []float64{2, 4, 6}, out[0].Data)
}

// A crash is restarted after a backoff; the server (this process) is
// untouched, and Stop ends the child.
func TestSupervisorLifecycle(t *testing.T) {
	t.Parallel()
	s := setup(t, nil)
	st := s.sup.Status(context.Background())
	require.Equal(t, "child", st.Kind)
	require.True(t, strings.HasPrefix(st.Address, "unix:"), st.Address)
	for i := 1; i <= 2; i++ {
		require.NoError(t, syscall.Kill(st.PID, syscall.SIGKILL))
		st = waitReady(t, s.sup, i)
		require.Equal(t, i, st.Restarts)
	}
	pid := st.PID
	s.sup.Stop()
	s.sup.Stop() // safe twice
	require.Error(t, syscall.Kill(pid, 0), "the child is gone after Stop")
}

func TestModes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "millrace-accel")

	auto := accel.New(accel.Config{Mode: accel.ModeAuto, Binary: missing, Dir: t.TempDir()})
	require.NoError(t, auto.Start(ctx), "auto without the binary serves without local AI")
	st := auto.Status(ctx)
	require.Equal(t, accel.StateUnavailable, st.State)
	require.Contains(t, st.Reason, "millrace-accel is not built")
	require.Contains(t, st.Fix, "make accel accel-deps")
	auto.Stop()

	noLib := accel.New(accel.Config{Mode: accel.ModeAuto, Binary: acceltest.Binary(t), Library: missing + ".so", Dir: t.TempDir()})
	require.NoError(t, noLib.Start(ctx))
	st = noLib.Status(ctx)
	require.Equal(t, accel.StateUnavailable, st.State)
	require.Contains(t, st.Reason, "the ONNX Runtime library is missing")
	require.Contains(t, st.Fix, "make accel accel-deps")
	noLib.Stop()

	on := accel.New(accel.Config{Mode: accel.ModeOn, Binary: missing, Dir: t.TempDir()})
	require.ErrorContains(t, on.Start(ctx), "make accel accel-deps")
	on.Stop()

	off := accel.New(accel.Config{Mode: accel.ModeOff})
	require.NoError(t, off.Start(ctx))
	require.Equal(t, accel.StateDisabled, off.Status(ctx).State)
	off.Stop()
	accel.New(accel.Config{}).Stop() // before Start

	for in, want := range map[string]accel.Mode{"": accel.ModeAuto, "ON": accel.ModeOn, "off": accel.ModeOff} {
		m, err := accel.ParseMode(in)
		require.NoError(t, err)
		require.Equal(t, want, m)
	}
	_, err := accel.ParseMode("yes")
	require.ErrorContains(t, err, "want auto, on or off")
}

// The registry keeps models in the store and the child's model directory
// in line with it, on SQLite and on PostgreSQL.
func TestModelRegistry(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]func(t *testing.T) store.Store{
		"sqlite": func(t *testing.T) store.Store {
			db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			return db
		},
		"postgres": func(t *testing.T) store.Store {
			db, err := postgres.Open(context.Background(), pgtest.URL(t))
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			return db
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testModelRegistry(t, open(t))
		})
	}
}

func testModelRegistry(t *testing.T, db store.Store) {
	ctx := context.Background()
	s := setup(t, db)

	list, err := s.models.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, "arith", list[0].Name)
	require.Equal(t, "adds and multiplies", list[0].Description)
	require.Empty(t, list[0].Inputs, "lists carry no metadata")

	m, err := s.models.Get(ctx, "arith")
	require.NoError(t, err)
	require.Empty(t, m.MetadataError)
	require.Equal(t, []accel.Tensor{{Name: "a", Datatype: "FP32", TensorType: "f32", Shape: []int64{-1, 3}}, {Name: "b", Datatype: "FP32", TensorType: "f32", Shape: []int64{-1, 3}}}, m.Inputs)
	require.Equal(t, "product", m.Outputs[1].Name)
	m, err = s.models.Get(ctx, "types")
	require.NoError(t, err)
	require.Equal(t, accel.Tensor{Name: "brain", Datatype: "BF16", TensorType: "bf16", Shape: []int64{2}}, m.Inputs[3])

	links := func() map[string]string {
		entries, err := os.ReadDir(s.sup.ModelsDir())
		require.NoError(t, err)
		out := map[string]string{}
		for _, e := range entries {
			target, err := os.Readlink(filepath.Join(s.sup.ModelsDir(), e.Name()))
			require.NoError(t, err)
			out[e.Name()] = target
		}
		return out
	}
	require.Equal(t, map[string]string{"arith": filepath.Join(s.files, "arith"), "types.onnx": filepath.Join(s.files, "types.onnx")}, links())

	// Errors name the field.
	for _, c := range []struct {
		name  string
		reg   accel.Registration
		field string
		msg   string
	}{
		{"Bad", accel.Registration{Path: s.files}, "name", "not a valid model name"},
		{"x.onnx", accel.Registration{Path: s.files}, "name", "not a valid model name"},
		{"x", accel.Registration{}, "path", "is required"},
		{"x", accel.Registration{Path: "models/x.onnx"}, "path", "is relative"},
		{"x", accel.Registration{Path: filepath.Join(s.files, "nope.onnx")}, "path", "does not exist on the server"},
		{"x", accel.Registration{Path: s.files}, "path", "holds no model.onnx"},
		{"x", accel.Registration{Path: onnxtest.WriteFile(t, s.files, "notes.txt", []byte("hi"))}, "path", "is not a folder holding model.onnx"},
		{"x", accel.Registration{Path: filepath.Join(s.files, "types.onnx"), Version: strings.Repeat("v", 200)}, "version", "at most 128"},
	} {
		_, _, err := s.models.Register(ctx, c.name, c.reg)
		var e *accel.Error
		require.ErrorAs(t, err, &e, c.msg)
		require.Equal(t, c.field, e.Field, c.msg)
		require.Contains(t, e.Msg, c.msg)
	}

	// Re-registering types as a folder replaces the file link.
	require.NoError(t, os.Mkdir(filepath.Join(s.files, "types2"), 0o755))
	onnxtest.WriteFile(t, filepath.Join(s.files, "types2"), "model.onnx", onnxtest.Arith())
	got, created, err := s.models.Register(ctx, "types", accel.Registration{Path: filepath.Join(s.files, "types2")})
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, filepath.Join(s.files, "types2"), got.Path)
	require.Equal(t, map[string]string{"arith": filepath.Join(s.files, "arith"), "types": filepath.Join(s.files, "types2")}, links())
	m, err = s.models.Get(ctx, "types")
	require.NoError(t, err)
	require.Equal(t, "a", m.Inputs[0].Name, "the accelerator serves the new file")

	require.NoError(t, s.models.Remove(ctx, "types"))
	var e *accel.Error
	require.ErrorAs(t, s.models.Remove(ctx, "types"), &e)
	require.True(t, e.NotFound)
	_, err = s.models.Get(ctx, "types")
	require.ErrorAs(t, err, &e)
	require.True(t, e.NotFound)
	require.Equal(t, map[string]string{"arith": filepath.Join(s.files, "arith")}, links())

	// Sync removes what the store does not hold, and restores what it does.
	require.NoError(t, os.Symlink(s.files, filepath.Join(s.sup.ModelsDir(), "stray")))
	require.NoError(t, os.Remove(filepath.Join(s.sup.ModelsDir(), "arith")))
	require.NoError(t, s.models.Sync(ctx))
	require.Equal(t, map[string]string{"arith": filepath.Join(s.files, "arith")}, links())
}

// A remote accelerator (here a millrace-accel on TCP with a token; Triton
// speaks the same protocol) holds its own models: the registry records
// names without paths.
func TestRemoteAccelerator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	onnxtest.WriteFile(t, dir, "arith.onnx", onnxtest.Arith())
	addr := freeAddr(t)
	cmd := exec.Command(acceltest.Binary(t), "-listen", addr, "-models", dir, "-ort-lib", acceltest.Library(t), "-token", "s3cret")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	wrong := accel.New(accel.Config{URL: "http://" + addr, Token: "wrong"})
	require.NoError(t, wrong.Start(ctx))
	sup := accel.New(accel.Config{URL: "http://" + addr, Token: "s3cret"})
	require.NoError(t, sup.Start(ctx))
	defer sup.Stop()
	st := waitReady(t, sup, 0)
	require.Equal(t, "remote", st.Kind)

	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	require.NoError(t, err)
	defer db.Close()
	models := accel.NewModels(db, sup)
	_, _, err = models.Register(ctx, "arith", accel.Registration{Path: filepath.Join(dir, "arith.onnx")})
	require.ErrorContains(t, err, "path: this server uses a remote accelerator")
	_, _, err = models.Register(ctx, "arith", accel.Registration{})
	require.NoError(t, err)
	m, err := models.Get(ctx, "arith")
	require.NoError(t, err)
	require.Len(t, m.Outputs, 2)

	reg := registry.New(registry.Config{}, db, engine, nil)
	reg.SetAccel(models)
	s := &stack{db: db, sup: sup, models: models, reg: reg}
	s.install(t, "nn-remote", true, "arith")
	out, res := s.invoke(t, "nn-remote", call{"model": "arith", "outputs": 1, "inputs": []tensor{f32([]uint32{1, 3}, 1, 2, 3), f32([]uint32{1, 3}, 3, 2, 1)}})
	require.Nil(t, res.Failure, "%v", res.Failure)
	require.Equal(t, []float64{4, 4, 4}, out[0].Data)

	// The wrong token: the accelerator answers, and refuses.
	st = wrong.Status(ctx)
	wrong.Stop()
	if st.State == accel.StateReady { // health needs no token; requests do
		wm := accel.NewModels(db, wrong)
		m, err := wm.Get(ctx, "arith")
		require.NoError(t, err)
		require.Contains(t, m.MetadataError, "401")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}
