//go:build wasmtime && cgo

package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
	"github.com/millrace/millrace/abi"
)

// WasmtimeConfig configures the wasmtime engine.
type WasmtimeConfig struct {
	// CacheDir keeps compiled native code across restarts (in a
	// subdirectory per wasmtime version). Empty means no disk cache. The
	// directory holds executable code: it must be writable only by the
	// server.
	CacheDir string
	// MaxMemoryMB caps every module memory, whatever its grant says.
	MaxMemoryMB int
}

// epochInterval is how often the engine's epoch advances while guests run:
// the longest a guest runs past its deadline or its cancellation, plus
// scheduling delay. Each tick costs a running guest one trip into the
// runtime's callback, about a microsecond, so 5 ms is far below 1 %.
const epochInterval = 5 * time.Millisecond

// maxTableElements bounds the tables a module may declare or grow, which
// live outside the memory limit. Go modules use a few thousand entries.
const maxTableElements = 1 << 20

// Wasmtime is the second Engine, on wasmtime-go (cgo; build with -tags
// wasmtime): it runs guest code 2–3x faster and instantiates Go guests
// several times faster than wazero, and its host calls cost more.
type Wasmtime struct {
	engine    *wasmtime.Engine
	linker    *wasmtime.Linker
	cacheDir  string
	maxMemory uint64
	ticker    epochTicker
}

var _ Engine = (*Wasmtime)(nil)

func init() {
	registerEngine(EngineWasmtime, func(ctx context.Context, cfg EngineConfig) (Engine, error) {
		return NewWasmtime(ctx, WasmtimeConfig{CacheDir: cfg.CacheDir, MaxMemoryMB: cfg.MaxMemoryMB})
	})
}

// NewWasmtime creates the engine and links the host functions.
func NewWasmtime(_ context.Context, cfg WasmtimeConfig) (*Wasmtime, error) {
	maxMB := cfg.MaxMemoryMB
	if maxMB <= 0 || maxMB > abi.MaxMemoryMB {
		maxMB = abi.MaxMemoryMB
	}
	c := wasmtime.NewConfig()
	c.SetEpochInterruption(true)
	// The WebAssembly features wazero runs (2.0) and no more, so that a
	// module compiles on both engines or on neither.
	c.SetWasmThreads(false)
	c.SetWasmMultiMemory(false)
	c.SetWasmMemory64(false)
	c.SetWasmTailCall(false)
	c.SetWasmGC(false)
	c.SetWasmFunctionReferences(false)
	c.SetWasmRelaxedSIMD(false)
	c.SetWasmWideArithmetic(false)
	e := &Wasmtime{engine: wasmtime.NewEngineWithConfig(c), maxMemory: uint64(maxMB) << 20}
	e.ticker.engine = e.engine
	if err := checkStoreLayout(e.engine); err != nil {
		return nil, err
	}
	if cfg.CacheDir != "" {
		e.cacheDir = filepath.Join(cfg.CacheDir, "wasmtime-v39")
		if err := os.MkdirAll(e.cacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("compilation cache %s: %w", cfg.CacheDir, err)
		}
	}
	e.linker = wasmtime.NewLinker(e.engine)
	if err := e.defineHost(); err != nil {
		return nil, err
	}
	return e, nil
}

// Close releases the engine. Invocations must have ended.
func (e *Wasmtime) Close(context.Context) error {
	e.ticker.wait()
	e.linker.Close()
	e.engine.Close()
	return nil
}

// Compile validates the module's imports and exports and compiles it, or
// loads it from the disk cache.
func (e *Wasmtime) Compile(ctx context.Context, wasm []byte) (Module, error) {
	imports, err := checkABIImports(wasm)
	if err != nil {
		return nil, err
	}
	mod, err := e.load(wasm)
	if err != nil {
		return nil, fmt.Errorf("invalid module: %w", err)
	}
	m := &wasmtimeModule{engine: e, module: mod, imports: imports}
	if err := m.inspect(); err != nil {
		mod.Close()
		return nil, err
	}
	return m, nil
}

// load compiles a module, going through the disk cache when there is one.
// The cache is keyed by the SHA-256 of the module; an entry another
// wasmtime or another configuration wrote is refused by
// NewModuleDeserialize and compiled afresh. Deserializing trusts the
// entry to be code wasmtime wrote, as wazero's cache does: the directory
// must be the server's alone.
func (e *Wasmtime) load(wasm []byte) (*wasmtime.Module, error) {
	if e.cacheDir == "" {
		return wasmtime.NewModule(e.engine, wasm)
	}
	sum := sha256.Sum256(wasm)
	path := filepath.Join(e.cacheDir, hex.EncodeToString(sum[:])+".cwasm")
	// Read, not mapped (NewModuleDeserializeFile): a mapped file that
	// is shorter than wasmtime expects, or is truncated while mapped,
	// kills the process with SIGBUS.
	if b, err := os.ReadFile(path); err == nil {
		if mod, err := wasmtime.NewModuleDeserialize(e.engine, b); err == nil {
			return mod, nil
		}
	}
	mod, err := wasmtime.NewModule(e.engine, wasm)
	if err != nil {
		return nil, err
	}
	if b, err := mod.Serialize(); err == nil {
		writeCacheFile(path, b) // a failed write costs a compilation later, nothing else
	}
	return mod, nil
}

// writeCacheFile writes a file whole or not at all, readable only by us.
func writeCacheFile(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

type wasmtimeModule struct {
	engine   *Wasmtime
	imports  []Import
	kind     moduleKind
	minPages uint32

	// mu keeps Close from freeing the module while an invocation
	// instantiates it; an instance keeps the code it needs alive itself.
	mu     sync.RWMutex
	module *wasmtime.Module // nil once closed
}

var _ Module = (*wasmtimeModule)(nil)

func (m *wasmtimeModule) Imports() []Import      { return m.imports }
func (m *wasmtimeModule) MinMemoryPages() uint32 { return m.minPages }
func (m *wasmtimeModule) Close(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.module != nil {
		m.module.Close()
		m.module = nil
	}
	return nil
}

// inspect finds the module's kind and its memory, with the messages
// wazero's Compile gives.
func (m *wasmtimeModule) inspect() error {
	funcs := map[string]*wasmtime.FuncType{}
	var memory *wasmtime.MemoryType
	for _, exp := range m.module.Exports() {
		switch t := exp.Type(); {
		case t.FuncType() != nil:
			funcs[exp.Name()] = t.FuncType()
		case t.MemoryType() != nil && exp.Name() == "memory":
			memory = t.MemoryType()
		}
	}
	var entries []string
	switch {
	case funcs["_initialize"] != nil && funcs[exportHandle] != nil:
		m.kind, entries = kindReactor, []string{"_initialize", exportHandle}
	case funcs["_start"] != nil:
		m.kind, entries = kindCommand, []string{"_start"}
	default:
		return errNoEntry
	}
	for _, name := range entries {
		if t := funcs[name]; len(t.Params()) != 0 || len(t.Results()) != 0 {
			return fmt.Errorf("the module's %s function must take no parameters and return nothing", name)
		}
	}
	if memory == nil {
		return errNoMemory
	}
	m.minPages = uint32(memory.Minimum())
	return nil
}

// wasmtimeInvocation is what host functions reach through the store's data.
type wasmtimeInvocation struct {
	ctx  context.Context
	call *call
	wasi *wasi
	mem  *wasmtime.Memory // the instance's "memory", once known
}

// memory returns a view of the guest's memory for one host call.
func (w *wasmtimeInvocation) memory(caller *wasmtime.Caller) Memory {
	if w.mem == nil {
		if ext := caller.GetExport("memory"); ext != nil {
			w.mem = ext.Memory()
		}
		if w.mem == nil {
			return sliceMemory(nil)
		}
	}
	return sliceMemory(w.mem.UnsafeData(caller))
}

// Invoke runs one invocation in a fresh store and instance.
func (m *wasmtimeModule) Invoke(ctx context.Context, inv *Invocation) *Result {
	start := time.Now()
	c := newCall(inv)
	res := m.run(ctx, c)
	c.release()
	res.Duration = time.Since(start)
	return res
}

func (m *wasmtimeModule) run(parent context.Context, c *call) (res *Result) {
	if f := checkStart(c, m.imports, m.minPages); f != nil {
		return c.result(f)
	}
	limit := min(c.inv.Limits.MemoryBytes, m.engine.maxMemory)

	ctx, cancel := context.WithTimeout(parent, c.inv.Limits.Timeout)
	defer cancel()
	w := &wasmtimeInvocation{ctx: ctx, call: c, wasi: newWASI(ctx, &c.logs)}
	m.engine.ticker.acquire()
	defer m.engine.ticker.release()
	store := wasmtime.NewStoreWithData(m.engine.engine, w)
	store.Limiter(int64(limit), maxTableElements, -1, -1, -1)
	intr := watchEpoch(store)
	stopped := make(chan struct{})
	stopWatch := context.AfterFunc(ctx, func() { intr.stop(); close(stopped) })
	defer func() {
		if !stopWatch() {
			<-stopped // the flag is written: it may be freed now
		}
		store.Close()
		intr.free()
	}()
	// A host function that panics comes back here through wasmtime-go;
	// it is a host bug, not the module's, and must not take the server
	// down.
	defer func() {
		if p := recover(); p != nil {
			w.wasi.flush()
			res = c.result(failf(FailInternal, "a host function failed: %v", p))
		}
	}()

	err := m.exec(store, w)
	w.wasi.flush()
	var memBytes uint64
	if w.mem != nil {
		memBytes = uint64(w.mem.DataSize(store))
	}
	return c.result(m.classify(ctx, c, w, intr, err, memBytes, limit))
}

var errModuleClosed = errors.New("the compiled module was closed")

// exec instantiates the module (running its start function, if any) and
// calls its entry points. proc_exit ends it early with a trap.
func (m *wasmtimeModule) exec(store *wasmtime.Store, w *wasmtimeInvocation) error {
	m.mu.RLock()
	if m.module == nil {
		m.mu.RUnlock()
		return errModuleClosed
	}
	inst, err := m.engine.linker.Instantiate(store, m.module)
	m.mu.RUnlock()
	if err != nil {
		return err
	}
	if ext := inst.GetExport(store, "memory"); ext != nil {
		w.mem = ext.Memory()
	}
	entries := []string{"_start"}
	if m.kind == kindReactor {
		entries = []string{"_initialize", exportHandle}
	}
	for _, name := range entries {
		if _, err := inst.GetFunc(store, name).Call(store); err != nil {
			return err
		}
	}
	return nil
}

// classify says why an invocation failed, in the words wazero.go uses.
func (m *wasmtimeModule) classify(ctx context.Context, c *call, w *wasmtimeInvocation, intr *interrupter, err error, memBytes, limit uint64) *Failure {
	if c.failure != nil { // a limit the host enforced comes first: it caused the rest
		return c.failure
	}
	switch {
	case w.wasi.exited && w.wasi.exitCode == 0:
	case w.wasi.exited:
		if outOfMemory(c, memBytes, limit) {
			return memoryFailure(c.inv.Limits.MemoryBytes)
		}
		return exitFailure(c, w.wasi.exitCode)
	case err == nil:
	case intr.stopped():
		if errors.Is(ctx.Err(), context.Canceled) {
			return canceledFailure()
		}
		return timeoutFailure(c)
	default:
		if outOfMemory(c, memBytes, limit) {
			return memoryFailure(c.inv.Limits.MemoryBytes)
		}
		var trap *wasmtime.Trap
		if errors.As(err, &trap) {
			return trapFailure(c, wasmtimeTrapMessage(trap))
		}
		return failf(FailInstantiate, "%s", firstLine(err.Error()))
	}
	if c.errSet {
		return failf(FailModuleError, "%s", c.errMsg)
	}
	return nil
}

// outOfMemory tells whether a failed invocation was stopped by the memory
// limit. wasmtime's limiter makes memory.grow return -1 and reports nothing
// to the embedder, so this reads the evidence: a memory with no page left
// under the limit, or a Go runtime saying it ran out of memory (a Go guest
// grows its heap 4 MiB at a time, so its memory may end below the limit).
func outOfMemory(c *call, memBytes, limit uint64) bool {
	if memBytes+65536 > limit {
		return true
	}
	for _, r := range c.logs.records {
		if r.Source == "stderr" && (strings.HasPrefix(r.Message, "fatal error: out of memory") || strings.HasPrefix(r.Message, "runtime: out of memory")) {
			return true
		}
	}
	return false
}

// wasmtimeTrapMessage names a trap in wazero's words, so a module's
// failure reads the same on both engines.
func wasmtimeTrapMessage(t *wasmtime.Trap) string {
	code := t.Code()
	if code == nil {
		return firstLine(strings.TrimPrefix(t.Message(), "wasm trap: "))
	}
	switch *code {
	case wasmtime.StackOverflow:
		return "stack overflow"
	case wasmtime.MemoryOutOfBounds:
		return "out of bounds memory access"
	case wasmtime.HeapMisaligned:
		return "unaligned atomic"
	case wasmtime.TableOutOfBounds, wasmtime.IndirectCallToNull:
		return "invalid table access"
	case wasmtime.BadSignature:
		return "indirect call type mismatch"
	case wasmtime.IntegerOverflow:
		return "integer overflow"
	case wasmtime.IntegerDivisionByZero:
		return "integer divide by zero"
	case wasmtime.BadConversionToInteger:
		return "invalid conversion to integer"
	case wasmtime.UnreachableCodeReached:
		return "unreachable"
	}
	return firstLine(t.Message())
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// epochTicker advances the engine's epoch every epochInterval while at
// least one invocation runs, from one goroutine for the whole engine; an
// idle server does not wake up for it.
type epochTicker struct {
	engine *wasmtime.Engine
	mu     sync.Mutex
	active int
	stop   chan struct{}
	wg     sync.WaitGroup
}

func (t *epochTicker) acquire() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.active++
	if t.active > 1 {
		return
	}
	stop := make(chan struct{})
	t.stop = stop
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		tick := time.NewTicker(epochInterval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				t.engine.IncrementEpoch()
			}
		}
	}()
}

func (t *epochTicker) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.active--
	if t.active == 0 {
		close(t.stop)
	}
}

// wait returns once the ticker goroutine has stopped.
func (t *epochTicker) wait() { t.wg.Wait() }

// sliceMemory is a guest memory as one host call sees it: a view that is
// valid until the guest runs again.
type sliceMemory []byte

var _ Memory = sliceMemory(nil)

func (m sliceMemory) Read(offset, n uint32) ([]byte, bool) {
	end := uint64(offset) + uint64(n)
	if end > uint64(len(m)) {
		return nil, false
	}
	return m[offset:end:end], true
}

func (m sliceMemory) Write(offset uint32, v []byte) bool {
	if uint64(len(v)) > 1<<32-1 {
		return false
	}
	b, ok := m.Read(offset, uint32(len(v)))
	if !ok {
		return false
	}
	copy(b, v)
	return true
}

func (m sliceMemory) WriteUint32Le(offset, v uint32) bool {
	b, ok := m.Read(offset, 4)
	if !ok {
		return false
	}
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	return true
}

func (m sliceMemory) WriteUint64Le(offset uint32, v uint64) bool {
	b, ok := m.Read(offset, 8)
	if !ok {
		return false
	}
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return true
}
