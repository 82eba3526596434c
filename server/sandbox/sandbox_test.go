package sandbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/millrace/millrace/server/secrets"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/stretchr/testify/require"
)

// The conformance suite: every test runs once per engine compiled into the
// test binary (wazero always; wasmtime with -tags wasmtime), as a parallel
// subtest named after the engine, so both engines answer to the same
// expectations.

// testEngine is one engine under test, with the guests it has compiled.
type testEngine struct {
	name   string
	engine sandbox.Engine

	mu       sync.Mutex
	compiled map[string]sandbox.Module
}

var testEngines []*testEngine

func TestMain(m *testing.M) {
	ctx := context.Background()
	for _, kind := range sandbox.EngineKinds() {
		e, err := sandbox.NewEngine(ctx, sandbox.EngineConfig{Kind: kind, MaxMemoryMB: 1024, InitTimeout: time.Second})
		if err != nil {
			panic(err)
		}
		testEngines = append(testEngines, &testEngine{name: kind, engine: e, compiled: map[string]sandbox.Module{}})
	}
	code := m.Run()
	for _, e := range testEngines {
		e.engine.Close(ctx)
	}
	testguests.Cleanup()
	if reactorDir != "" {
		os.RemoveAll(reactorDir)
	}
	os.Exit(code)
}

// eachEngine runs f as a parallel subtest for every engine.
func eachEngine(t *testing.T, f func(t *testing.T, e *testEngine)) {
	t.Helper()
	for _, e := range testEngines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			f(t, e)
		})
	}
}

// guest compiles a test guest once per engine and test binary.
func (e *testEngine) guest(t *testing.T, name string) sandbox.Module {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if m, ok := e.compiled[name]; ok {
		return m
	}
	var wasm []byte
	if name == "reactor" {
		wasm = reactorWasm(t)
	} else {
		wasm = testguests.Wasm(t, name)
	}
	m, err := e.engine.Compile(context.Background(), wasm)
	require.NoError(t, err)
	e.compiled[name] = m
	return m
}

// compile compiles a hand-made module for one test.
func (e *testEngine) compile(t *testing.T, wasm []byte) sandbox.Module {
	t.Helper()
	m, err := e.engine.Compile(context.Background(), wasm)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func (e *testEngine) run(t *testing.T, name string, inv *sandbox.Invocation) *sandbox.Result {
	t.Helper()
	return e.guest(t, name).Invoke(context.Background(), inv)
}

var (
	reactorOnce sync.Once
	reactorDir  string
	reactorErr  error
)

// reactorWasm builds testdata/reactor with -buildmode=c-shared, once.
func reactorWasm(t *testing.T) []byte {
	t.Helper()
	reactorOnce.Do(func() {
		reactorDir, reactorErr = os.MkdirTemp("", "millrace-reactor-")
		if reactorErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", filepath.Join(reactorDir, "reactor.wasm"), "./testdata/reactor")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if out, err := cmd.CombinedOutput(); err != nil {
			reactorErr = fmt.Errorf("building the reactor guest: %v\n%s", err, out)
		}
	})
	require.NoError(t, reactorErr)
	b, err := os.ReadFile(filepath.Join(reactorDir, "reactor.wasm"))
	require.NoError(t, err)
	return b
}

func limits() sandbox.Limits {
	return sandbox.Limits{
		MemoryBytes: 128 << 20, Timeout: 10 * time.Second, MaxOutputBytes: 1 << 20, MaxLogBytes: 256 << 10,
		MaxKVValueBytes: 1 << 20, MaxKVTotalBytes: 64 << 20, MaxHTTPBodyBytes: 10 << 20, HTTPTimeout: 10 * time.Second,
	}
}

type env struct {
	db    *sqlite.DB
	vault *secrets.Vault
}

func setup(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	v, err := secrets.New(make([]byte, 32), db)
	require.NoError(t, err)
	return &env{db: db, vault: v}
}

func (e *env) inv(input string, g sandbox.Grant) *sandbox.Invocation {
	return &sandbox.Invocation{Namespace: "test", Input: json.RawMessage(input), Grant: g, Limits: limits(), KV: e.db, Secrets: e.vault}
}

func requireOK(t *testing.T, res *sandbox.Result) {
	t.Helper()
	if res.Failure != nil {
		t.Fatalf("invocation failed: %v\nlogs: %+v", res.Failure, res.Logs)
	}
}

func requireFailure(t *testing.T, res *sandbox.Result, kind sandbox.FailureKind, contains string) {
	t.Helper()
	require.NotNil(t, res.Failure, "expected a %s failure, got output %s", kind, res.Output)
	require.Equal(t, kind, res.Failure.Kind, res.Failure.Message)
	require.Contains(t, res.Failure.Message, contains)
}

func kvGrant() sandbox.Grant { return sandbox.Grant{Capabilities: abi.Capabilities{KV: true}} }

// --- hand-made modules ---

func TestTrapIsReported(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		m := eng.compile(t, rawModule{body: opUnreachable, memPages: 1}.bytes())
		res := m.Invoke(context.Background(), setup(t).inv(`{}`, sandbox.Grant{}))
		requireFailure(t, res, sandbox.FailTrap, "unreachable")
	})
}

func TestRawEndlessLoopIsStopped(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		m := eng.compile(t, rawModule{body: opLoopForever, memPages: 1}.bytes())
		inv := setup(t).inv(`{}`, sandbox.Grant{})
		inv.Limits.Timeout = 200 * time.Millisecond
		res := m.Invoke(context.Background(), inv)
		requireFailure(t, res, sandbox.FailTimeout, "timeout_ms (200 ms)")
	})
}

func TestCompileRejects(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		cases := map[string]struct {
			wasm []byte
			want string
		}{
			"foreign module":    {rawModule{imports: []rawImport{{"env", "system", 0}}, memPages: 1}.bytes(), `import env.system: is not part of the ABI`},
			"imported memory":   {rawModule{imports: []rawImport{{abi.ImportModule, "memory", 2}}, noMemory: true}.bytes(), "import millrace_v1.memory"},
			"imported global":   {rawModule{imports: []rawImport{{abi.WASIModule, "g", 3}}, memPages: 1}.bytes(), "import wasi_snapshot_preview1.g"},
			"no _start":         {rawModule{memPages: 1, noStart: true}.bytes(), "exports neither _start"},
			"no memory":         {rawModule{noMemory: true}.bytes(), `no memory named "memory"`},
			"not wasm":          {[]byte("#!/bin/sh\nrm -rf /"), "not a WebAssembly binary"},
			"truncated":         {rawModule{memPages: 1}.bytes()[:20], "malformed module"},
			"invalid body code": {rawModule{body: []byte{0xff}, memPages: 1}.bytes(), "invalid module"},
		}
		for name, c := range cases {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				_, err := eng.engine.Compile(context.Background(), c.wasm)
				require.ErrorContains(t, err, c.want)
				if strings.HasPrefix(c.want, "import ") {
					var ie *sandbox.ImportError
					require.ErrorAs(t, err, &ie, "import errors are *ImportError on every engine")
				}
			})
		}
	})
}

func TestCheckImportsNamesTheImport(t *testing.T) {
	t.Parallel()
	imports, err := sandbox.ParseImports(testguests.Wasm(t, "kvuser"))
	require.NoError(t, err)
	require.Equal(t, []abi.Capability{abi.CapKV}, sandbox.RequiredCapabilities(imports))

	err = sandbox.CheckImports(imports, abi.Capabilities{})
	require.ErrorContains(t, err, "import millrace_v1.kv_")
	require.ErrorContains(t, err, `needs the "kv" capability, which the manifest does not request`)
	require.NoError(t, sandbox.CheckImports(imports, abi.Capabilities{KV: true}))

	bad := []sandbox.Import{{Module: abi.ImportModule, Name: "launch_missiles"}}
	require.ErrorContains(t, sandbox.CheckImports(bad, abi.Capabilities{}), "is not a function of ABI v1")
	bad = []sandbox.Import{{Module: abi.WASIModule, Name: "sock_open"}}
	require.ErrorContains(t, sandbox.CheckImports(bad, abi.Capabilities{}), "is not a WASI preview1 function")
}

func TestMemoryNeededToStartIsChecked(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		m := eng.compile(t, rawModule{body: nil, memPages: 64}.bytes()) // 4 MiB
		inv := setup(t).inv(`{}`, sandbox.Grant{})
		inv.Limits.MemoryBytes = 1 << 20
		requireFailure(t, m.Invoke(context.Background(), inv), sandbox.FailMemory, "needs 4 MiB")
	})
}

// A module closed while the registry drops it fails later invocations
// instead of crashing them.
func TestInvokeAfterClose(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		m, err := eng.engine.Compile(context.Background(), rawModule{memPages: 1}.bytes())
		require.NoError(t, err)
		require.NoError(t, m.Close(context.Background()))
		res := m.Invoke(context.Background(), setup(t).inv(`{}`, sandbox.Grant{}))
		requireFailure(t, res, sandbox.FailInstantiate, "")
	})
}

func TestStartFunctionLoopIsStopped(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		m := eng.compile(t, rawModule{startBody: opLoopForever, memPages: 1}.bytes())
		inv := setup(t).inv(`{}`, sandbox.Grant{})
		inv.Limits.Timeout = 200 * time.Millisecond
		requireFailure(t, m.Invoke(context.Background(), inv), sandbox.FailTimeout, "timeout_ms (200 ms)")
	})
}

func TestMemoryGrownPageByPageIsStopped(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		m := eng.compile(t, rawModule{body: opGrowPageByPage, memPages: 1}.bytes())
		inv := setup(t).inv(`{}`, sandbox.Grant{})
		inv.Limits.MemoryBytes = 1 << 20
		requireFailure(t, m.Invoke(context.Background(), inv), sandbox.FailMemory, "memory_mb (1 MiB)")
	})
}

// A module that asks for more memory than is left in one memory.grow and
// then traps: wazero sees the refusal, wasmtime-go's limiter reports none,
// so on wasmtime it is a trap (RATIONALE.md, "Two sandbox engines").
func TestMemoryGrownAllAtOnce(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		m := eng.compile(t, rawModule{body: opGrowAllAtOnce, memPages: 1}.bytes())
		inv := setup(t).inv(`{}`, sandbox.Grant{})
		inv.Limits.MemoryBytes = 1 << 20
		res := m.Invoke(context.Background(), inv)
		if eng.name == sandbox.EngineWasmtime {
			requireFailure(t, res, sandbox.FailTrap, "unreachable")
			return
		}
		requireFailure(t, res, sandbox.FailMemory, "memory_mb (1 MiB)")
	})
}

// --- reactors: _initialize, then millrace_handle ---

func TestReactorRuns(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		e := setup(t)
		res := eng.run(t, "reactor", e.inv(`{"n":1}`, sandbox.Grant{}))
		requireOK(t, res)
		require.JSONEq(t, `{"reactor":{"n":1}}`, string(res.Output))

		// A Go reactor that panics prints the panic and traps rather than
		// exiting.
		res = eng.run(t, "reactor", e.inv(`{"panic":true}`, sandbox.Grant{}))
		requireFailure(t, res, sandbox.FailTrap, "unreachable")
		require.Contains(t, res.Logs[0].Message, "panic: reactor boom")

		inv := e.inv(`{"loop":true}`, sandbox.Grant{})
		inv.Limits.Timeout = 200 * time.Millisecond
		requireFailure(t, eng.run(t, "reactor", inv), sandbox.FailTimeout, "timeout_ms (200 ms)")
	})
}

func TestRawReactor(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		e := setup(t)
		res := eng.compile(t, rawModule{reactor: true, memPages: 1}.bytes()).Invoke(context.Background(), e.inv(`{}`, sandbox.Grant{}))
		requireOK(t, res)
		require.JSONEq(t, `null`, string(res.Output))

		// An engine that snapshots reactors runs the start function and
		// _initialize at Compile, so a failure there refuses the module
		// (naming _initialize); one that does not fails each invocation.
		initFails := func(t *testing.T, mod rawModule, kind sandbox.FailureKind, msg, compileMsg string) {
			m, err := eng.engine.Compile(context.Background(), mod.bytes())
			if err != nil {
				require.ErrorContains(t, err, "_initialize")
				require.ErrorContains(t, err, compileMsg)
				return
			}
			t.Cleanup(func() { m.Close(context.Background()) })
			inv := e.inv(`{}`, sandbox.Grant{})
			inv.Limits.Timeout = 200 * time.Millisecond
			requireFailure(t, m.Invoke(context.Background(), inv), kind, msg)
		}
		cases := map[string]rawModule{
			"loop in _initialize":    {reactor: true, initBody: opLoopForever, memPages: 1},
			"loop in start function": {reactor: true, startBody: opLoopForever, memPages: 1},
		}
		for name, mod := range cases {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				initFails(t, mod, sandbox.FailTimeout, "timeout_ms (200 ms)", "time limit")
			})
		}
		t.Run("loop in millrace_handle", func(t *testing.T) {
			t.Parallel()
			inv := e.inv(`{}`, sandbox.Grant{})
			inv.Limits.Timeout = 200 * time.Millisecond
			requireFailure(t, eng.compile(t, rawModule{reactor: true, body: opLoopForever, memPages: 1}.bytes()).Invoke(context.Background(), inv), sandbox.FailTimeout, "timeout_ms (200 ms)")
		})
		initFails(t, rawModule{reactor: true, initBody: opUnreachable, memPages: 1}, sandbox.FailTrap, "unreachable", "unreachable")
	})
}

// --- Go guests: ordinary behaviour ---

func TestEchoReturnsInputAndLogs(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		res := eng.run(t, "echo", setup(t).inv(`{"hello":"world","n":[1,2,3]}`, sandbox.Grant{}))
		requireOK(t, res)
		require.JSONEq(t, `{"hello":"world","n":[1,2,3]}`, string(res.Output))
		require.NotEmpty(t, res.Logs)
		require.Positive(t, res.Duration)
	})
}

func TestNoInputMeansNull(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		inv := setup(t).inv("", sandbox.Grant{})
		inv.Input = nil
		res := eng.run(t, "echo", inv)
		requireOK(t, res)
		require.JSONEq(t, `null`, string(res.Output))
	})
}

func TestClocksAndSleepAreReal(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		start := time.Now()
		res := eng.run(t, "sleeper", setup(t).inv(`{"ms":120}`, sandbox.Grant{}))
		requireOK(t, res)
		var out struct {
			SleptMS float64 `json:"slept_ms"`
			Unix    int64   `json:"unix"`
		}
		require.NoError(t, json.Unmarshal(res.Output, &out))
		require.GreaterOrEqual(t, out.SleptMS, 119.0, "nanosleep must really sleep")
		require.InDelta(t, time.Now().Unix(), out.Unix, 5, "the wall clock must be the host's, not wazero's fixed 2022 date")
		require.GreaterOrEqual(t, time.Since(start), 120*time.Millisecond)
	})
}

func TestRandomIsRandom(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		e := setup(t)
		first := eng.run(t, "random", e.inv(`{}`, sandbox.Grant{}))
		second := eng.run(t, "random", e.inv(`{}`, sandbox.Grant{}))
		requireOK(t, first)
		requireOK(t, second)
		require.NotEqual(t, string(first.Output), string(second.Output), "wazero's default random source repeats across runs")
	})
}

func TestProgressIsReported(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		inv := setup(t).inv(`{"n":5}`, sandbox.Grant{})
		var seen []sandbox.Progress
		inv.OnProgress = func(p sandbox.Progress) { seen = append(seen, p) }
		res := eng.run(t, "hostcalls", inv)
		requireOK(t, res)
		require.Len(t, seen, 5)
		require.Equal(t, uint32(5), seen[4].Total)
		require.NotNil(t, res.Progress)
	})
}

func TestStdoutIsCapturedAsLogs(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		res := eng.run(t, "logflood", setup(t).inv(`{"records":2,"bytes":10,"stdout":30}`, sandbox.Grant{}))
		requireOK(t, res)
		var fromStdout int
		for _, r := range res.Logs {
			if r.Source == "stdout" {
				fromStdout++
			}
		}
		require.Positive(t, fromStdout)
		require.Zero(t, res.LogsDropped)
	})
}

func TestOutputPorts(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		e := setup(t)
		inv := e.inv(`{"port":"no"}`, sandbox.Grant{})
		inv.Ports = []string{"yes", "no"}
		res := eng.run(t, "porter", inv)
		requireOK(t, res)
		require.Equal(t, "no", res.Port)

		inv = e.inv(`{}`, sandbox.Grant{})
		inv.Ports = []string{"yes", "no"}
		res = eng.run(t, "porter", inv)
		requireOK(t, res)
		require.Equal(t, "yes", res.Port, "without port_set the first declared port is used")

		res = eng.run(t, "porter", e.inv(`{}`, sandbox.Grant{}))
		requireOK(t, res)
		require.Equal(t, "default", res.Port)

		inv = e.inv(`{"port":"maybe"}`, sandbox.Grant{})
		inv.Ports = []string{"yes", "no"}
		requireFailure(t, eng.run(t, "porter", inv), sandbox.FailModuleError, "port_set: invalid_argument")
	})
}

// --- hostile guests ---

func TestEndlessGoLoopIsStopped(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		inv := setup(t).inv(`{}`, sandbox.Grant{})
		inv.Limits.Timeout = 300 * time.Millisecond
		res := eng.run(t, "loop", inv)
		requireFailure(t, res, sandbox.FailTimeout, "timeout_ms (300 ms)")
	})
}

func TestMemoryBombIsStopped(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		inv := setup(t).inv(`{}`, sandbox.Grant{})
		inv.Limits.MemoryBytes = 64 << 20
		res := eng.run(t, "membomb", inv)
		requireFailure(t, res, sandbox.FailMemory, "memory_mb (64 MiB)")
	})
}

func TestHugeOutputIsRefused(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		inv := setup(t).inv(`{"mib":100}`, sandbox.Grant{})
		inv.Limits.MemoryBytes = 512 << 20
		inv.Limits.Timeout = time.Minute // building 100 MiB is slow on a busy machine
		res := eng.run(t, "bigoutput", inv)
		requireFailure(t, res, sandbox.FailOutputLimit, "max_output_bytes (1048576)")
		require.Nil(t, res.Output)
	})
}

func TestPanicIsReported(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		res := eng.run(t, "panic", setup(t).inv(`{}`, sandbox.Grant{}))
		require.NotNil(t, res.Failure)
		require.Contains(t, []sandbox.FailureKind{sandbox.FailExit, sandbox.FailModuleError}, res.Failure.Kind)
		require.Contains(t, res.Failure.Message, "boom")
	})
}

func TestDeepRecursionIsStopped(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		inv := setup(t).inv(`{}`, sandbox.Grant{})
		inv.Limits.MemoryBytes = 64 << 20
		res := eng.run(t, "recursion", inv)
		require.NotNil(t, res.Failure, "unbounded recursion must fail")
		require.Contains(t, []sandbox.FailureKind{sandbox.FailMemory, sandbox.FailExit, sandbox.FailTrap}, res.Failure.Kind, res.Failure.Message)
	})
}

func TestLogFloodIsBounded(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		inv := setup(t).inv(`{"records":10000,"bytes":1000,"stdout":5000000}`, sandbox.Grant{})
		inv.Limits.MaxLogBytes = 64 << 10
		res := eng.run(t, "logflood", inv)
		requireOK(t, res)
		require.Positive(t, res.LogsDropped)
		var total int
		for _, r := range res.Logs {
			total += len(r.Message)
		}
		require.LessOrEqual(t, total, 64<<10+1024)
		require.Contains(t, res.Logs[len(res.Logs)-1].Message, "log records dropped")
	})
}

// A caller that goes away without a deadline (a canceled run, a server
// shutting down) stops the guest long before its timeout.
func TestCancelWithoutDeadlineStopsTheGuest(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		m := eng.guest(t, "loop")
		inv := setup(t).inv(`{}`, sandbox.Grant{})
		inv.Limits.Timeout = time.Minute
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		time.AfterFunc(200*time.Millisecond, cancel)
		res := m.Invoke(ctx, inv)
		requireFailure(t, res, sandbox.FailCanceled, "canceled")
	})
}

func TestCancelStopsTheGuest(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		res := eng.guest(t, "loop").Invoke(ctx, setup(t).inv(`{}`, sandbox.Grant{}))
		require.NotNil(t, res.Failure)
		require.Contains(t, []sandbox.FailureKind{sandbox.FailCanceled, sandbox.FailTimeout}, res.Failure.Kind)
	})
}

// --- capabilities: an allowed and a denied case each ---

func TestKV(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		e := setup(t)
		requireOK(t, eng.run(t, "kvuser", e.inv(`{"op":"set","key":"k","value":"v1"}`, kvGrant())))
		res := eng.run(t, "kvuser", e.inv(`{"op":"get","key":"k"}`, kvGrant()))
		requireOK(t, res)
		require.JSONEq(t, `{"found":true,"value":"v1"}`, string(res.Output))

		res = eng.run(t, "kvuser", e.inv(`{"op":"add","key":"n","delta":41}`, kvGrant()))
		requireOK(t, res)
		res = eng.run(t, "kvuser", e.inv(`{"op":"add","key":"n","delta":1}`, kvGrant()))
		requireOK(t, res)
		require.Contains(t, string(res.Output), "42")

		requireOK(t, eng.run(t, "kvuser", e.inv(`{"op":"delete","key":"k"}`, kvGrant())))
		res = eng.run(t, "kvuser", e.inv(`{"op":"get","key":"k"}`, kvGrant()))
		requireOK(t, res)
		require.Contains(t, string(res.Output), `"found":false`)

		// Another module's namespace does not see these keys.
		other := e.inv(`{"op":"get","key":"n"}`, kvGrant())
		other.Namespace = "other"
		res = eng.run(t, "kvuser", other)
		requireOK(t, res)
		require.Contains(t, string(res.Output), `"found":false`)
	})
}

func TestKVDeniedWithoutGrant(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		res := eng.run(t, "kvuser", setup(t).inv(`{"op":"get","key":"k"}`, sandbox.Grant{}))
		requireFailure(t, res, sandbox.FailDenied, `needs the "kv" capability, and it is not granted`)
	})
}

func TestKVValueTooLarge(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		e := setup(t)
		inv := e.inv(fmt.Sprintf(`{"op":"set","key":"k","value":%q}`, strings.Repeat("x", 2048)), kvGrant())
		inv.Limits.MaxKVValueBytes = 1024
		res := eng.run(t, "kvuser", inv)
		requireFailure(t, res, sandbox.FailModuleError, "too_large")
	})
}

func httpGrant(hosts ...string) sandbox.Grant {
	return sandbox.Grant{Capabilities: abi.Capabilities{AllowedOutboundHosts: hosts}}
}

func TestHTTPAllowed(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "pong") }))
		defer srv.Close()
		res := eng.run(t, "httpuser", setup(t).inv(fmt.Sprintf(`{"url":%q}`, srv.URL+"/ping"), httpGrant(srv.URL)))
		requireOK(t, res)
		require.JSONEq(t, `{"status":200,"body":"pong"}`, string(res.Output))
	})
}

func TestHTTPDenied(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "secret data") }))
		defer srv.Close()
		e := setup(t)
		// Not in the allowlist at all.
		res := eng.run(t, "httpuser", e.inv(fmt.Sprintf(`{"url":%q}`, srv.URL), httpGrant("https://api.example.com")))
		requireFailure(t, res, sandbox.FailModuleError, "denied")
		// A wildcard grant does not reach loopback.
		res = eng.run(t, "httpuser", e.inv(fmt.Sprintf(`{"url":%q}`, srv.URL), httpGrant("http://*:*")))
		requireFailure(t, res, sandbox.FailModuleError, "denied")
		// No http capability at all: the module cannot even start.
		res = eng.run(t, "httpuser", e.inv(fmt.Sprintf(`{"url":%q}`, srv.URL), sandbox.Grant{}))
		requireFailure(t, res, sandbox.FailDenied, `"http" capability`)
	})
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		e := setup(t)
		require.NoError(t, e.vault.Put(context.Background(), "API_KEY", []byte("s3cr3t-value")))
		require.NoError(t, e.vault.Put(context.Background(), "OTHER", []byte("other-value")))
		g := sandbox.Grant{Capabilities: abi.Capabilities{Secrets: []string{"API_KEY", "UNSET"}}}

		res := eng.run(t, "secretuser", e.inv(`{"name":"API_KEY"}`, g))
		requireOK(t, res)
		require.JSONEq(t, `{"value":"[redacted]"}`, string(res.Output), "secret values never reach run outputs")
		for _, r := range res.Logs {
			require.NotContains(t, r.Message, "s3cr3t-value", "secret values never reach the logs")
			for _, a := range r.Attrs {
				require.NotContains(t, fmt.Sprint(a), "s3cr3t-value", "nor log attributes")
			}
		}

		res = eng.run(t, "secretuser", e.inv(`{"name":"OTHER"}`, g))
		requireFailure(t, res, sandbox.FailModuleError, "denied")
		res = eng.run(t, "secretuser", e.inv(`{"name":"UNSET"}`, g))
		requireFailure(t, res, sandbox.FailModuleError, "not_found")
		res = eng.run(t, "secretuser", e.inv(`{"name":"API_KEY"}`, sandbox.Grant{}))
		requireFailure(t, res, sandbox.FailDenied, `"secrets" capability`)
	})
}

// Hostile guests run side by side with good ones; the good ones succeed.
func TestHostileGuestsDoNotDisturbOthers(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		e := setup(t)
		var wg sync.WaitGroup
		hostile := []string{"loop", "membomb", "panic", "recursion"}
		for _, h := range hostile {
			wg.Go(func() {
				inv := e.inv(`{}`, sandbox.Grant{})
				inv.Limits.Timeout = time.Second
				inv.Limits.MemoryBytes = 64 << 20
				res := eng.run(t, h, inv)
				if res.Failure == nil {
					t.Errorf("%s: expected a failure", h)
				}
			})
		}
		for i := range 20 {
			wg.Go(func() {
				res := eng.run(t, "echo", e.inv(fmt.Sprintf(`{"i":%d}`, i), sandbox.Grant{}))
				if res.Failure != nil {
					t.Errorf("echo %d failed beside hostile guests: %v", i, res.Failure)
					return
				}
				if want := fmt.Sprintf(`{"i":%d}`, i); string(res.Output) != want {
					t.Errorf("echo %d: got %s", i, res.Output)
				}
			})
		}
		wg.Wait()
	})
}
