package sandbox

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/millrace/millrace/abi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// WazeroConfig configures the wazero engine.
type WazeroConfig struct {
	// CacheDir keeps compiled native code across restarts. Empty means an
	// in-memory cache. The directory holds executable code: it must be
	// writable only by the server.
	CacheDir string
	// MaxMemoryMB caps every module memory, whatever its grant says.
	MaxMemoryMB int
	// NoPreemption turns off interruption of running guest code when an
	// invocation's deadline passes. Only benchmarks set it: without it an
	// endless loop is never stopped.
	NoPreemption bool
}

// Wazero is the default Engine, built on wazero's optimizing compiler.
type Wazero struct {
	runtime wazero.Runtime
	cache   wazero.CompilationCache
}

var _ Engine = (*Wazero)(nil)

// NewWazero creates the engine and links the host modules.
func NewWazero(ctx context.Context, cfg WazeroConfig) (*Wazero, error) {
	var cache wazero.CompilationCache
	if cfg.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("compilation cache %s: %w", cfg.CacheDir, err)
		}
		cache = c
	} else {
		cache = wazero.NewCompilationCache()
	}
	maxMB := cfg.MaxMemoryMB
	if maxMB <= 0 || maxMB > abi.MaxMemoryMB {
		maxMB = abi.MaxMemoryMB
	}
	rc := wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(cache).
		WithMemoryLimitPages(uint32(maxMB * 16)). // 16 pages of 64 KiB per MiB
		// Closing on context done is the only way wazero interrupts a
		// running guest; it costs time on every loop back-edge (see
		// BENCHMARKS.md), which is the price of stopping endless loops.
		WithCloseOnContextDone(!cfg.NoPreemption)
	r := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r); err != nil {
		r.Close(ctx)
		return nil, err
	}
	if err := instantiateHost(ctx, r); err != nil {
		r.Close(ctx)
		return nil, err
	}
	return &Wazero{runtime: r, cache: cache}, nil
}

// Close releases the runtime and the cache.
func (w *Wazero) Close(ctx context.Context) error {
	err := w.runtime.Close(ctx)
	return errors.Join(err, w.cache.Close(ctx))
}

// Compile validates the module's imports and compiles it.
func (w *Wazero) Compile(ctx context.Context, wasm []byte) (Module, error) {
	imports, err := checkABIImports(wasm)
	if err != nil {
		return nil, err
	}
	cm, err := w.runtime.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("invalid module: %w", err)
	}
	mod := &wazeroModule{runtime: w.runtime, compiled: cm, imports: imports}
	if _, ok := cm.ExportedFunctions()["_start"]; !ok {
		cm.Close(ctx)
		return nil, errors.New("the module exports no _start function: build it as a WASI command (GOOS=wasip1 go build, not -buildmode=c-shared)")
	}
	mems := cm.ExportedMemories()
	if m, ok := mems["memory"]; ok {
		mod.minPages = m.Min()
	} else {
		cm.Close(ctx)
		return nil, errors.New("the module exports no memory named \"memory\"")
	}
	return mod, nil
}

type wazeroModule struct {
	runtime  wazero.Runtime
	compiled wazero.CompiledModule
	imports  []Import
	minPages uint32
}

func (m *wazeroModule) Imports() []Import               { return m.imports }
func (m *wazeroModule) MinMemoryPages() uint32          { return m.minPages }
func (m *wazeroModule) Close(ctx context.Context) error { return m.compiled.Close(ctx) }

type callKey struct{}

// callFrom returns the invocation state that Invoke put in the context.
// wazero hands host functions the context of the call that entered the
// guest, which is the one place per-instance state can travel.
func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// Invoke runs one invocation in a fresh instance.
func (m *wazeroModule) Invoke(ctx context.Context, inv *Invocation) *Result {
	start := time.Now()
	c := newCall(inv)
	res := m.run(ctx, c)
	res.Duration = time.Since(start)
	return res
}

func (m *wazeroModule) run(parent context.Context, c *call) *Result {
	result := c.result
	if f := checkStart(c, m.imports, m.minPages); f != nil {
		return result(f)
	}
	limit := c.inv.Limits.MemoryBytes

	ctx, cancel := context.WithTimeout(parent, c.inv.Limits.Timeout)
	defer cancel()
	ctx = context.WithValue(ctx, callKey{}, c)
	alloc := &limitedAllocator{limit: limit}
	ctx = experimental.WithMemoryAllocator(ctx, alloc)

	stdout := &streamWriter{logs: &c.logs, level: "info", source: "stdout"}
	stderr := &streamWriter{logs: &c.logs, level: "warn", source: "stderr"}
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous, so instances of one module can run side by side
		WithStdout(stdout).
		WithStderr(stderr).
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(func(ns int64) { sleepCtx(ctx, ns) }).
		WithRandSource(rand.Reader).
		WithStartFunctions("_start")

	mod, err := m.runtime.InstantiateModule(ctx, m.compiled, cfg)
	if mod != nil {
		mod.Close(context.Background())
	}
	stdout.flush()
	stderr.flush()

	if c.failure != nil { // a limit the host enforced comes first: it caused the rest
		return result(c.failure)
	}
	if alloc.refused.Load() {
		return result(failf(FailMemory, "the module tried to grow its memory past limits.memory_mb (%d MiB)", limit>>20))
	}
	var exit *sys.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		switch code := exit.ExitCode(); code {
		case 0:
		case sys.ExitCodeDeadlineExceeded:
			return result(failf(FailTimeout, "the module ran past limits.timeout_ms (%d ms) and was stopped", c.inv.Limits.Timeout.Milliseconds()))
		case sys.ExitCodeContextCanceled:
			return result(failf(FailCanceled, "the invocation was canceled"))
		default:
			if c.errSet {
				return result(failf(FailModuleError, "%s", c.errMsg))
			}
			return result(failf(FailExit, "the module exited with code %d%s", code, lastStderr(c.logs.records)))
		}
	case ctx.Err() != nil && parent.Err() == nil:
		return result(failf(FailTimeout, "the module ran past limits.timeout_ms (%d ms) and was stopped", c.inv.Limits.Timeout.Milliseconds()))
	case strings.Contains(err.Error(), "wasm error:"):
		return result(failf(FailTrap, "the module trapped: %s", trapMessage(err)))
	default:
		return result(failf(FailInstantiate, "%v", err))
	}
	if c.errSet {
		return result(failf(FailModuleError, "%s", c.errMsg))
	}
	return result(nil)
}

// trapMessage keeps the first line of a wazero trap error ("wasm error:
// unreachable") without the stack trace that follows it.
func trapMessage(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "wasm error: "); i >= 0 {
		msg = msg[i+len("wasm error: "):]
	}
	line, _, _ := strings.Cut(msg, "\n")
	return line
}

// lastStderr quotes the last line the module wrote to stderr, which for a
// Go module is where a panic message appears.
func lastStderr(logs []LogRecord) string {
	var lines []string
	for _, r := range logs {
		if r.Source == "stderr" {
			lines = append(lines, r.Message)
		}
	}
	if len(lines) == 0 {
		return ""
	}
	// Go prints "panic: msg" then "goroutine 1 [running]:"; prefer the panic line.
	for _, l := range lines {
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			return " (" + l + ")"
		}
	}
	return " (stderr: " + lines[len(lines)-1] + ")"
}

// sleepCtx sleeps for ns nanoseconds or until ctx is done, so a guest that
// sleeps cannot hold an invocation past its deadline.
func sleepCtx(ctx context.Context, ns int64) {
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// limitedAllocator backs a guest's memory and refuses to grow it past the
// invocation's limit. wazero turns a refused grow into memory.grow = -1,
// which the guest sees as out of memory.
type limitedAllocator struct {
	limit   uint64
	refused atomic.Bool
}

func (a *limitedAllocator) Allocate(capacity, max uint64) experimental.LinearMemory {
	limit := min(max, a.limit)
	if m := newLinearMemory(a, limit); m != nil {
		return m
	}
	return &limitedMemory{alloc: a, max: limit}
}

type limitedMemory struct {
	alloc *limitedAllocator
	max   uint64
	buf   []byte
}

func (m *limitedMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		m.alloc.refused.Store(true)
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	// Grow geometrically, as append does, but never past the limit.
	newCap := max(size, min(uint64(cap(m.buf))*2, m.max))
	buf := make([]byte, size, newCap)
	copy(buf, m.buf)
	m.buf = buf
	return buf
}

func (m *limitedMemory) Free() { m.buf = nil }

// instantiateHost defines the millrace_v1 host module. Each function takes
// its parameters from the stack as ABI.md lists them and leaves the errno.
func instantiateHost(ctx context.Context, r wazero.Runtime) error {
	b := r.NewHostModuleBuilder(abi.ImportModule)
	i32 := api.ValueTypeI32
	def := func(name string, params []api.ValueType, fn func(ctx context.Context, c *call, mem Memory, stack []uint64) abi.Errno) {
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
				c := callFrom(ctx)
				mem := mod.Memory()
				if c == nil || mem == nil {
					stack[0] = uint64(abi.ErrnoInvalidArgument)
					return
				}
				stack[0] = uint64(fn(ctx, c, mem, stack))
			}), params, []api.ValueType{i32}).
			WithParameterNames(paramNames[name]...).
			Export(name)
	}
	u := func(v uint64) uint32 { return api.DecodeU32(v) }
	p := func(n int) []api.ValueType {
		out := make([]api.ValueType, n)
		for i := range out {
			out[i] = i32
		}
		return out
	}
	def(abi.FnInput, p(1), func(_ context.Context, c *call, m Memory, s []uint64) abi.Errno { return c.input(m, u(s[0])) })
	def(abi.FnConfig, p(1), func(_ context.Context, c *call, m Memory, s []uint64) abi.Errno { return c.config(m, u(s[0])) })
	def(abi.FnResultRead, p(2), func(_ context.Context, c *call, m Memory, s []uint64) abi.Errno {
		return c.resultRead(m, u(s[0]), u(s[1]))
	})
	def(abi.FnOutputSet, p(2), func(_ context.Context, c *call, m Memory, s []uint64) abi.Errno {
		return c.outputSet(m, u(s[0]), u(s[1]))
	})
	def(abi.FnErrorSet, p(2), func(_ context.Context, c *call, m Memory, s []uint64) abi.Errno {
		return c.errorSet(m, u(s[0]), u(s[1]))
	})
	def(abi.FnLog, p(5), func(_ context.Context, c *call, m Memory, s []uint64) abi.Errno {
		return c.log(m, u(s[0]), u(s[1]), u(s[2]), u(s[3]), u(s[4]))
	})
	def(abi.FnProgress, p(4), func(_ context.Context, c *call, m Memory, s []uint64) abi.Errno {
		return c.reportProgress(m, u(s[0]), u(s[1]), u(s[2]), u(s[3]))
	})
	def(abi.FnPortSet, p(2), func(_ context.Context, c *call, m Memory, s []uint64) abi.Errno {
		return c.portSet(m, u(s[0]), u(s[1]))
	})
	def(abi.FnKVGet, p(3), func(ctx context.Context, c *call, m Memory, s []uint64) abi.Errno {
		return c.kvGet(ctx, m, u(s[0]), u(s[1]), u(s[2]))
	})
	def(abi.FnKVSet, p(4), func(ctx context.Context, c *call, m Memory, s []uint64) abi.Errno {
		return c.kvSet(ctx, m, u(s[0]), u(s[1]), u(s[2]), u(s[3]))
	})
	def(abi.FnKVDelete, p(2), func(ctx context.Context, c *call, m Memory, s []uint64) abi.Errno {
		return c.kvDelete(ctx, m, u(s[0]), u(s[1]))
	})
	def(abi.FnKVAdd, []api.ValueType{i32, i32, api.ValueTypeI64, i32}, func(ctx context.Context, c *call, m Memory, s []uint64) abi.Errno {
		return c.kvAdd(ctx, m, u(s[0]), u(s[1]), int64(s[2]), u(s[3]))
	})
	def(abi.FnHTTPSend, p(3), func(ctx context.Context, c *call, m Memory, s []uint64) abi.Errno {
		return c.httpSend(ctx, m, u(s[0]), u(s[1]), u(s[2]))
	})
	def(abi.FnSecretGet, p(3), func(ctx context.Context, c *call, m Memory, s []uint64) abi.Errno {
		return c.secretGet(ctx, m, u(s[0]), u(s[1]), u(s[2]))
	})
	_, err := b.Instantiate(ctx)
	return err
}

// paramNames documents each host function's parameters for wazero's
// function definitions (and so for error messages and listeners).
var paramNames = map[string][]string{
	abi.FnInput:      {"out_len_ptr"},
	abi.FnConfig:     {"out_len_ptr"},
	abi.FnResultRead: {"buf_ptr", "buf_len"},
	abi.FnOutputSet:  {"ptr", "len"},
	abi.FnErrorSet:   {"ptr", "len"},
	abi.FnLog:        {"level", "msg_ptr", "msg_len", "attrs_ptr", "attrs_len"},
	abi.FnProgress:   {"done", "total", "msg_ptr", "msg_len"},
	abi.FnPortSet:    {"name_ptr", "name_len"},
	abi.FnKVGet:      {"key_ptr", "key_len", "out_len_ptr"},
	abi.FnKVSet:      {"key_ptr", "key_len", "val_ptr", "val_len"},
	abi.FnKVDelete:   {"key_ptr", "key_len"},
	abi.FnKVAdd:      {"key_ptr", "key_len", "delta", "out_value_ptr"},
	abi.FnHTTPSend:   {"req_ptr", "req_len", "out_len_ptr"},
	abi.FnSecretGet:  {"name_ptr", "name_len", "out_len_ptr"},
}
