package sandbox

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/server/sandbox/internal/wasmbin"
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
	// InitTimeout bounds a reactor's _initialize when the engine takes its
	// snapshot at Compile; zero means 10 s.
	InitTimeout time.Duration
	// NoPreemption compiles modules as uploaded, without the interrupt
	// checks: an endless loop is then never stopped. Only benchmarks set
	// it, to measure what the checks cost.
	NoPreemption bool
	// NoSnapshot starts every reactor invocation from a fresh instance and
	// _initialize, as a baseline for benchmarks and tests.
	NoSnapshot bool
	// NoPool starts every reactor invocation from a fresh instance of the
	// snapshot instead of a reset pooled one (benchmarks).
	NoPool bool
}

// Wazero is the default Engine, built on wazero's optimizing compiler.
type Wazero struct {
	runtime wazero.Runtime
	cache   wazero.CompilationCache
	cfg     WazeroConfig
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
	if cfg.MaxMemoryMB <= 0 || cfg.MaxMemoryMB > abi.MaxMemoryMB {
		cfg.MaxMemoryMB = abi.MaxMemoryMB
	}
	if cfg.InitTimeout <= 0 {
		cfg.InitTimeout = 10 * time.Second
	}
	rc := wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(cache).
		WithMemoryLimitPages(uint32(cfg.MaxMemoryMB * 16)). // 16 pages of 64 KiB per MiB
		// Runaway guests are stopped by the interrupt checks wasmbin
		// compiles into every module, not by wazero's close-on-context-done,
		// which costs a call into Go on every loop iteration (RATIONALE.md).
		WithCloseOnContextDone(false)
	r := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r); err != nil {
		r.Close(ctx)
		return nil, err
	}
	if err := instantiateHost(ctx, r); err != nil {
		r.Close(ctx)
		return nil, err
	}
	if err := instantiateNN(ctx, r); err != nil {
		r.Close(ctx)
		return nil, err
	}
	return &Wazero{runtime: r, cache: cache, cfg: cfg}, nil
}

// Close releases the runtime and the cache.
func (w *Wazero) Close(ctx context.Context) error {
	err := w.runtime.Close(ctx)
	return errors.Join(err, w.cache.Close(ctx))
}

// Compile validates the module's imports, instruments it (wasmbin) and
// compiles it. A reactor is also initialised once, here, and its state
// after _initialize kept as the snapshot every invocation starts from.
func (w *Wazero) Compile(ctx context.Context, wasm []byte) (Module, error) {
	imports, err := checkABIImports(wasm)
	if err != nil {
		return nil, err
	}
	code, info := wasm, (*wasmbin.Info)(nil)
	if !w.cfg.NoPreemption {
		if code, info, err = wasmbin.Instrument(wasm); errors.Is(err, wasmbin.ErrNoMemory) {
			return nil, errNoMemory
		} else if err != nil {
			return nil, fmt.Errorf("invalid module: %w", err)
		}
	}
	cm, err := w.runtime.CompileModule(ctx, code)
	if err != nil {
		return nil, fmt.Errorf("invalid module: %w", err)
	}
	mod := &wazeroModule{engine: w, compiled: cm, imports: imports, info: info}
	if err := mod.prepare(ctx); err != nil {
		mod.Close(ctx)
		return nil, err
	}
	return mod, nil
}

type wazeroModule struct {
	engine   *Wazero
	compiled wazero.CompiledModule
	imports  []Import
	info     *wasmbin.Info // nil when compiled without instrumentation
	kind     moduleKind
	minPages uint32
	image    *memImage // the data segments, when wasmbin took them out
	snap     *snapshot // a reactor's state after _initialize
	pool     instancePool
	closed   atomic.Bool
}

// snapshot is a reactor instance's state after _initialize: its memory
// (an image mapped copy-on-write into each instance) and its globals.
type snapshot struct {
	image   *memImage
	pages   uint32
	globals []snapGlobal
}

type snapGlobal struct {
	name  string
	value uint64
}

func (m *wazeroModule) prepare(ctx context.Context) error {
	exports := m.compiled.ExportedFunctions()
	_, hasStart := exports[exportStart]
	_, hasInit := exports[exportInitialize]
	_, hasHandle := exports[exportHandle]
	switch {
	case hasHandle && hasInit:
		m.kind = kindReactor
	case hasStart:
		m.kind = kindCommand
	default:
		return errNoEntry
	}
	mem, ok := m.compiled.ExportedMemories()["memory"]
	if !ok {
		return errNoMemory
	}
	m.minPages = mem.Min()
	if m.info != nil && m.info.DataRemoved {
		img := make([]byte, uint64(m.minPages)*65536)
		for _, d := range m.info.Data {
			copy(img[d.Offset:], d.Bytes)
		}
		var err error
		if m.image, err = newMemImage(img); err != nil {
			return err
		}
	}
	if m.kind == kindReactor && m.info != nil && m.info.Snapshotable() && !m.engine.cfg.NoSnapshot {
		return m.takeSnapshot(ctx)
	}
	return nil
}

// takeSnapshot instantiates the reactor, runs _initialize under the
// engine's InitTimeout, and keeps the memory and globals it left.
func (m *wazeroModule) takeSnapshot(ctx context.Context) error {
	limit := uint64(m.engine.cfg.MaxMemoryMB) << 20
	inst, err := m.instantiate(ctx, limit, m.image)
	if err != nil {
		return fmt.Errorf("instantiating the module to initialise it: %w", err)
	}
	defer inst.close()
	c := newCall(&Invocation{Limits: Limits{MaxLogBytes: 16 << 10}})
	c.initializing = true
	ctx, cancel := context.WithTimeout(ctx, m.engine.cfg.InitTimeout)
	defer cancel()
	res := inst.enter(ctx, c, inst.initialize)
	if res.Failure != nil {
		return fmt.Errorf("the module's _initialize failed: %s", res.Failure.Message)
	}
	snap := &snapshot{pages: inst.mod.Memory().Size() / 65536}
	for _, g := range m.info.Globals {
		if !g.Mutable {
			continue
		}
		name := wasmbin.GlobalExport(g.Index)
		snap.globals = append(snap.globals, snapGlobal{name: name, value: inst.mod.ExportedGlobal(name).Get()})
	}
	mem, ok := inst.mod.Memory().Read(0, inst.mod.Memory().Size())
	if !ok {
		return errors.New("reading the initialised memory")
	}
	if snap.image, err = newMemImage(mem); err != nil {
		return err
	}
	m.snap = snap
	return nil
}

func (m *wazeroModule) Imports() []Import { return m.imports }

// MinMemoryPages is the memory an invocation starts with: the snapshot's
// size for a snapshotted reactor.
func (m *wazeroModule) MinMemoryPages() uint32 {
	if m.snap != nil {
		return m.snap.pages
	}
	return m.minPages
}

func (m *wazeroModule) Close(ctx context.Context) error {
	if m.closed.Swap(true) {
		return nil
	}
	m.pool.drain()
	m.image.close()
	if m.snap != nil {
		m.snap.image.close()
	}
	return m.compiled.Close(ctx)
}

type callKey struct{}

// callFrom returns the invocation state that Invoke put in the context.
// wazero hands host functions the context of the call that entered the
// guest, which is the one place per-instance state can travel.
func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// Invoke runs one invocation: on a reset instance from the pool, or a new
// one started from the snapshot or the module's image.
func (m *wazeroModule) Invoke(ctx context.Context, inv *Invocation) *Result {
	start := time.Now()
	c := newCall(inv)
	res := m.run(ctx, c)
	c.release()
	res.Duration = time.Since(start)
	return res
}

func (m *wazeroModule) run(ctx context.Context, c *call) *Result {
	if f := checkStart(c, m.imports, m.MinMemoryPages()); f != nil {
		return c.result(f)
	}
	limit := c.inv.Limits.MemoryBytes
	ctx, cancel := context.WithTimeout(ctx, c.inv.Limits.Timeout)
	defer cancel()

	inst := m.pool.get(limit)
	if inst == nil {
		var err error
		if inst, err = m.newInstance(ctx, limit); err != nil {
			return c.result(failf(FailInstantiate, "%v", err))
		}
	}
	var res *Result
	switch {
	case m.snap != nil:
		res = inst.enter(ctx, c, inst.handle)
	case m.kind == kindReactor:
		res = inst.enter(ctx, c, inst.initialize, inst.handle)
	default:
		res = inst.enter(ctx, c, inst.main)
	}
	if m.snap != nil && !m.engine.cfg.NoPool && res.Failure == nil && !inst.dirty && !m.closed.Load() && inst.reset(m.snap) {
		m.pool.put(inst)
	} else {
		inst.close()
	}
	return res
}

// newInstance starts an instance the way the module's kind needs: from the
// snapshot (memory grown to its size, globals set), or from the image.
func (m *wazeroModule) newInstance(ctx context.Context, limit uint64) (*instance, error) {
	if m.snap == nil {
		return m.instantiate(ctx, limit, m.image)
	}
	inst, err := m.instantiate(ctx, limit, m.snap.image)
	if err != nil {
		return nil, err
	}
	if grow := m.snap.pages - inst.mod.Memory().Size()/65536; grow > 0 {
		if _, ok := inst.mod.Memory().Grow(grow); !ok {
			inst.close()
			return nil, errors.New("growing the memory to the snapshot's size")
		}
	}
	inst.snapGlobals = make([]api.MutableGlobal, len(m.snap.globals))
	for i, g := range m.snap.globals {
		mg, ok := inst.mod.ExportedGlobal(g.name).(api.MutableGlobal)
		if !ok {
			inst.close()
			return nil, fmt.Errorf("global %s is not mutable", g.name)
		}
		mg.Set(g.value)
		inst.snapGlobals[i] = mg
	}
	return inst, nil
}

func (m *wazeroModule) instantiate(ctx context.Context, limit uint64, img *memImage) (*instance, error) {
	inst := &instance{alloc: &limitedAllocator{limit: limit, image: img}}
	inst.stdout.level, inst.stdout.source = "info", "stdout"
	inst.stderr.level, inst.stderr.source = "warn", "stderr"
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous, so instances of one module can run side by side
		WithStdout(&inst.stdout).
		WithStderr(&inst.stderr).
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(func(ns int64) { sleepCtx(inst.ctx, ns) }).
		WithRandSource(rand.Reader).
		WithStartFunctions() // the host calls them, once the interrupt is armed
	mod, err := m.engine.runtime.InstantiateModule(experimental.WithMemoryAllocator(ctx, inst.alloc), m.compiled, cfg)
	if err != nil {
		if inst.alloc.refused.Load() {
			return nil, fmt.Errorf("the module's initial memory is over the memory limit (%d MiB)", limit>>20)
		}
		return nil, err
	}
	inst.mod = mod
	inst.initialize = mod.ExportedFunction(exportInitialize)
	inst.handle = mod.ExportedFunction(exportHandle)
	inst.main = mod.ExportedFunction(exportStart)
	if m.info != nil {
		inst.flag, _ = mod.ExportedGlobal(wasmbin.InterruptExport).(api.MutableGlobal)
		if m.info.HasStart {
			inst.start = mod.ExportedFunction(wasmbin.StartExport)
		}
	}
	return inst, nil
}

// instance is one instantiated module and what the host keeps for it.
type instance struct {
	mod         api.Module
	alloc       *limitedAllocator
	flag        api.MutableGlobal   // the interrupt flag; nil without instrumentation
	start       api.Function        // the module's start function, if it has one
	main        api.Function        // a command's _start
	initialize  api.Function        // a reactor's _initialize…
	handle      api.Function        // …and its millrace_handle
	snapGlobals []api.MutableGlobal // parallel to snapshot.globals
	limit       uint64

	// Per invocation: where the guest's streams go and the context its
	// sleeps honour.
	ctx            context.Context
	stdout, stderr switchWriter
	started        bool // the start function has run
	dirty          bool // something happened that a reset does not undo
}

// switchWriter sends a guest stream to the current invocation's logs.
type switchWriter struct {
	level, source string
	w             *streamWriter
}

func (s *switchWriter) Write(p []byte) (int, error) {
	if s.w == nil {
		return len(p), nil
	}
	return s.w.Write(p)
}

// enter calls fns in turn on the instance for the invocation c (after the
// module's start function, the first time), with the interrupt armed for
// ctx, and classifies the outcome.
func (inst *instance) enter(parent context.Context, c *call, fns ...api.Function) *Result {
	ctx := context.WithValue(parent, callKey{}, c)
	inst.ctx = ctx
	inst.stdout.w = &streamWriter{logs: &c.logs, level: inst.stdout.level, source: inst.stdout.source}
	inst.stderr.w = &streamWriter{logs: &c.logs, level: inst.stderr.level, source: inst.stderr.source}
	inst.alloc.refused.Store(false)
	var interrupted atomic.Bool
	stop := func() bool { return true }
	if inst.flag != nil {
		stop = context.AfterFunc(ctx, func() {
			interrupted.Store(true)
			inst.flag.Set(1)
		})
	}
	var err error
	if inst.start != nil && !inst.started {
		inst.started = true
		_, err = inst.start.Call(ctx)
	}
	for _, f := range fns {
		if err != nil {
			break
		}
		_, err = f.Call(ctx)
	}
	if !stop() {
		inst.dirty = true // the flag may be set
	}
	inst.stdout.w.flush()
	inst.stderr.w.flush()
	inst.stdout.w, inst.stderr.w, inst.ctx = nil, nil, nil
	if err != nil {
		inst.dirty = true
	}
	return c.result(c.classify(err, parent, interrupted.Load(), inst.alloc))
}

// reset returns a pooled instance to the snapshot: memory re-mapped from
// the image, globals and the interrupt flag restored. It reports false
// when the instance cannot be reset (its memory grew), and must then be
// closed.
func (inst *instance) reset(snap *snapshot) bool {
	mem, ok := inst.alloc.mem.(resettable)
	if !ok || !mem.reset() {
		return false
	}
	for i, g := range snap.globals {
		inst.snapGlobals[i].Set(g.value)
	}
	inst.flag.Set(0)
	return true
}

type resettable interface{ reset() bool }

func (inst *instance) close() {
	if inst.mod != nil {
		inst.mod.Close(context.Background())
	}
}

// instancePool keeps reset instances of one module for reuse, by memory
// limit (an instance's reservation is sized for its limit).
type instancePool struct {
	mu   sync.Mutex
	free []*instance
}

// maxPooled bounds the idle instances of one module: one or two per core
// covers the invocations that can run at once.
var maxPooled = 2 * runtime.GOMAXPROCS(0)

func (p *instancePool) get(limit uint64) *instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.free) - 1; i >= 0; i-- {
		if inst := p.free[i]; inst.alloc.limit == limit {
			p.free = append(p.free[:i], p.free[i+1:]...)
			return inst
		}
	}
	return nil
}

func (p *instancePool) put(inst *instance) {
	p.mu.Lock()
	if len(p.free) < maxPooled {
		p.free = append(p.free, inst)
		inst = nil
	}
	p.mu.Unlock()
	if inst != nil {
		inst.close()
	}
}

func (p *instancePool) drain() {
	p.mu.Lock()
	free := p.free
	p.free = nil
	p.mu.Unlock()
	for _, inst := range free {
		inst.close()
	}
}

// classify turns what a guest call returned into a Failure, or nil.
func (c *call) classify(err error, parent context.Context, interrupted bool, alloc *limitedAllocator) *Failure {
	if c.failure != nil { // a limit the host enforced comes first: it caused the rest
		return c.failure
	}
	if alloc.refused.Load() {
		return memoryFailure(alloc.limit)
	}
	var exit *sys.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		switch code := exit.ExitCode(); code {
		case 0:
		case sys.ExitCodeDeadlineExceeded:
			return c.timeout()
		case sys.ExitCodeContextCanceled:
			return canceledFailure()
		default:
			return exitFailure(c, code)
		}
	case interrupted && parent.Err() != nil && !errors.Is(parent.Err(), context.DeadlineExceeded):
		return canceledFailure()
	case interrupted:
		return c.timeout()
	case strings.Contains(err.Error(), "wasm error:"):
		return trapFailure(c, trapMessage(err))
	default:
		return failf(FailInstantiate, "%v", err)
	}
	if c.errSet {
		return failf(FailModuleError, "%s", c.errMsg)
	}
	return nil
}

func (c *call) timeout() *Failure {
	if c.initializing {
		return failf(FailTimeout, "_initialize ran past its time limit and was stopped")
	}
	return timeoutFailure(c)
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
// which the guest sees as out of memory. The memory starts as image (when
// set) and is kept in mem, so a pooled instance can be reset.
type limitedAllocator struct {
	limit   uint64
	image   *memImage
	mem     experimental.LinearMemory
	refused atomic.Bool
}

func (a *limitedAllocator) Allocate(capacity, max uint64) experimental.LinearMemory {
	limit := min(max, a.limit)
	if m := newLinearMemory(a, limit, a.image); m != nil {
		a.mem = m
		return m
	}
	a.mem = &limitedMemory{alloc: a, max: limit}
	return a.mem
}

// limitedMemory is the portable fallback: memory on the Go heap.
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
	if len(m.buf) == 0 && m.alloc.image != nil {
		m.alloc.image.copyTo(buf)
	}
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
				if c.initializing { // no invocation yet: nothing to read or reach
					stack[0] = uint64(abi.ErrnoDenied)
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
	def(abi.FnProgressPreview, p(6), func(_ context.Context, c *call, m Memory, s []uint64) abi.Errno {
		return c.reportPreview(m, u(s[0]), u(s[1]), u(s[2]), u(s[3]), u(s[4]), u(s[5]))
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
	abi.FnInput:           {"out_len_ptr"},
	abi.FnConfig:          {"out_len_ptr"},
	abi.FnResultRead:      {"buf_ptr", "buf_len"},
	abi.FnOutputSet:       {"ptr", "len"},
	abi.FnErrorSet:        {"ptr", "len"},
	abi.FnLog:             {"level", "msg_ptr", "msg_len", "attrs_ptr", "attrs_len"},
	abi.FnProgress:        {"done", "total", "msg_ptr", "msg_len"},
	abi.FnPortSet:         {"name_ptr", "name_len"},
	abi.FnProgressPreview: {"done", "total", "msg_ptr", "msg_len", "image_ptr", "image_len"},
	abi.FnKVGet:           {"key_ptr", "key_len", "out_len_ptr"},
	abi.FnKVSet:           {"key_ptr", "key_len", "val_ptr", "val_len"},
	abi.FnKVDelete:        {"key_ptr", "key_len"},
	abi.FnKVAdd:           {"key_ptr", "key_len", "delta", "out_value_ptr"},
	abi.FnHTTPSend:        {"req_ptr", "req_len", "out_len_ptr"},
	abi.FnSecretGet:       {"name_ptr", "name_len", "out_len_ptr"},
}
