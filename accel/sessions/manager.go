// Package sessions holds ONNX Runtime sessions for millrace-accel: it
// loads a model's session on first use, shares it among concurrent
// requests, and unloads it after an idle time or on request.
//
// Concurrency. Each model has one onnxruntime_go DynamicAdvancedSession.
// Its Run may be called from several goroutines at once: ONNX Runtime's
// Session::Run is thread-safe, and DynamicAdvancedSession (unlike
// AdvancedSession, which reuses its input and output tensors) keeps no
// per-call state (onnxruntime_go issue #79). So requests to one model run
// in parallel with no lock; they share the session's intra-op thread pool.
// A session is destroyed only when no request holds it: unloading removes
// it from the cache at once, and the last request still running destroys
// it. Concurrent first requests for a model wait for one load.
package sessions

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	ort "github.com/yalue/onnxruntime_go"
)

// Source is where models come from: a directory today (package
// modeldir), the server's model registry later.
type Source interface {
	// Model finds the named model; an error wrapping ErrNotFound when
	// there is none.
	Model(ctx context.Context, name string) (Model, error)
	// List returns every available model, sorted by name.
	List(ctx context.Context) ([]Model, error)
}

// Model is a model a Source offers.
type Model struct {
	Name string
	// Path is the ONNX file. External data files sit beside it.
	Path string
	// Version is reported in metadata; "1" when empty.
	Version string
}

// ErrNotFound is returned for a model no Source has.
var ErrNotFound = errors.New("model not found")

// Config says how sessions are made. The zero value is usable: the
// library at DefaultLibraryPath, CPU, ONNX Runtime's thread defaults, and
// no idle unloading.
type Config struct {
	// LibraryPath is the ONNX Runtime shared library.
	LibraryPath string
	// Provider is the execution provider; CPU when empty.
	Provider Provider
	// DeviceID is the GPU for CUDA and TensorRT.
	DeviceID int
	// ProviderOptions are passed to the CUDA or TensorRT provider as they
	// are (ONNX Runtime's option names, such as gpu_mem_limit).
	ProviderOptions map[string]string
	// IntraOpThreads and InterOpThreads size each session's thread pools;
	// 0 leaves ONNX Runtime's default (one intra-op thread per core).
	IntraOpThreads int
	InterOpThreads int
	// IdleTimeout unloads a session nobody used for this long; 0 never.
	IdleTimeout time.Duration
}

// Manager caches sessions. It is safe for concurrent use.
type Manager struct {
	src Source
	cfg Config

	mu      sync.Mutex
	entries map[string]*entry
	closed  bool

	loads atomic.Int64
	stop  chan struct{}
	done  chan struct{}
}

type entry struct {
	model  Model
	loaded chan struct{} // closed when loading ended; then sess or err is set
	sess   *ort.DynamicAdvancedSession
	meta   *Metadata
	err    error

	// Guarded by Manager.mu.
	users    int
	lastUsed time.Time
	evicted  bool
}

// New returns a Manager of src's models. With an IdleTimeout it starts a
// goroutine that unloads idle sessions; Close stops it.
func New(src Source, cfg Config) *Manager {
	if cfg.LibraryPath == "" {
		cfg.LibraryPath = DefaultLibraryPath
	}
	if cfg.Provider == "" {
		cfg.Provider = CPU
	}
	m := &Manager{src: src, cfg: cfg, entries: map[string]*entry{}}
	if cfg.IdleTimeout > 0 {
		m.stop, m.done = make(chan struct{}), make(chan struct{})
		go m.sweep()
	}
	return m
}

func (m *Manager) sweep() {
	defer close(m.done)
	every := min(max(m.cfg.IdleTimeout/4, time.Second), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			m.UnloadIdle(now)
		}
	}
}

// Close unloads every session (each when its last request ends) and stops
// the idle sweeper. Safe to call twice.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	var free []*entry
	for name, e := range m.entries {
		if e2 := m.evictLocked(name, e); e2 != nil {
			free = append(free, e2)
		}
	}
	m.mu.Unlock()
	for _, e := range free {
		e.destroy()
	}
	if m.stop != nil {
		close(m.stop)
		<-m.done
	}
}

// Ready reports whether sessions can be made: the library loads and the
// execution provider can be set up. Its error says how to fix what is
// missing.
func (m *Manager) Ready() error {
	if !m.cfg.Provider.valid() {
		return fmt.Errorf("%w: unknown execution provider %q (want cpu, cuda or tensorrt)", ErrProvider, m.cfg.Provider)
	}
	if err := initRuntime(m.cfg.LibraryPath); err != nil {
		return err
	}
	o, err := sessionOptions(&m.cfg)
	if err != nil {
		return err
	}
	o.Destroy()
	return nil
}

// Loads counts the sessions this Manager created.
func (m *Manager) Loads() int64 { return m.loads.Load() }

// Source returns the Manager's model source.
func (m *Manager) Source() Source { return m.src }

// Session is a loaded model held by one user; Release gives it back.
type Session struct {
	m    *Manager
	e    *entry
	once sync.Once
}

// Metadata describes the model's inputs and outputs.
func (s *Session) Metadata() *Metadata { return s.e.meta }

// Release gives the session back. Safe to call twice.
func (s *Session) Release() { s.once.Do(func() { s.m.release(s.e) }) }

// Acquire returns the named model's session, loading it if needed. The
// caller must Release it. ctx bounds only the wait: a load, once started,
// finishes for whoever needs it next.
func (m *Manager) Acquire(ctx context.Context, name string) (*Session, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, errors.New("session manager is closed")
	}
	e, found := m.entries[name]
	if !found {
		e = &entry{loaded: make(chan struct{})}
		m.entries[name] = e
	}
	e.users++
	m.mu.Unlock()

	if !found {
		m.load(context.WithoutCancel(ctx), name, e)
	} else {
		select {
		case <-e.loaded:
		case <-ctx.Done():
			m.release(e)
			return nil, ctx.Err()
		}
	}
	if e.err != nil {
		m.mu.Lock()
		if m.entries[name] == e {
			delete(m.entries, name) // the next request tries again
		}
		m.mu.Unlock()
		m.release(e)
		return nil, e.err
	}
	return &Session{m: m, e: e}, nil
}

// Load loads the named model unless it is loaded.
func (m *Manager) Load(ctx context.Context, name string) error {
	s, err := m.Acquire(ctx, name)
	if err != nil {
		return err
	}
	s.Release()
	return nil
}

// Loaded reports whether the named model's session is loaded.
func (m *Manager) Loaded(name string) bool {
	m.mu.Lock()
	e := m.entries[name]
	m.mu.Unlock()
	if e == nil {
		return false
	}
	select {
	case <-e.loaded:
		return e.err == nil
	default:
		return false
	}
}

// Unload drops the named model's session: at once when no request holds
// it, otherwise when the last one ends. It reports whether one was loaded.
func (m *Manager) Unload(name string) bool {
	m.mu.Lock()
	e := m.entries[name]
	var free *entry
	if e != nil {
		free = m.evictLocked(name, e)
	}
	m.mu.Unlock()
	if free != nil {
		free.destroy()
	}
	return e != nil
}

// UnloadIdle unloads the sessions no request has used since
// now - IdleTimeout, and returns their names. The sweeper calls it; tests
// call it with a time of their choosing.
func (m *Manager) UnloadIdle(now time.Time) []string {
	if m.cfg.IdleTimeout <= 0 {
		return nil
	}
	var names []string
	var free []*entry
	m.mu.Lock()
	for name, e := range m.entries {
		if e.users == 0 && now.Sub(e.lastUsed) >= m.cfg.IdleTimeout {
			names = append(names, name)
			if f := m.evictLocked(name, e); f != nil {
				free = append(free, f)
			}
		}
	}
	m.mu.Unlock()
	for _, e := range free {
		e.destroy()
	}
	return names
}

// evictLocked removes e from the cache and returns it when nobody holds
// it, for the caller to destroy outside the lock.
func (m *Manager) evictLocked(name string, e *entry) *entry {
	delete(m.entries, name)
	e.evicted = true
	if e.users == 0 {
		return e
	}
	return nil
}

func (m *Manager) release(e *entry) {
	m.mu.Lock()
	e.users--
	e.lastUsed = time.Now()
	last := e.evicted && e.users == 0
	m.mu.Unlock()
	if last {
		e.destroy()
	}
}

func (e *entry) destroy() {
	if e.sess != nil {
		e.sess.Destroy()
		e.sess = nil
	}
}

func (m *Manager) load(ctx context.Context, name string, e *entry) {
	defer close(e.loaded)
	e.model, e.err = m.src.Model(ctx, name)
	if e.err != nil {
		return
	}
	if e.err = m.Ready(); e.err != nil {
		return
	}
	e.meta, e.sess, e.err = m.open(e.model)
	if e.err == nil {
		m.loads.Add(1)
	}
}

// open reads the model's inputs and outputs, then creates its session.
// onnxruntime_go tells a model's inputs and outputs only through a session
// of its own, so the first is made without graph optimization or
// providers (fast, and no GPU memory), and the real one after it.
func (m *Manager) open(model Model) (*Metadata, *ort.DynamicAdvancedSession, error) {
	probe, err := ort.NewSessionOptions()
	if err != nil {
		return nil, nil, err
	}
	defer probe.Destroy()
	if err := probe.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll); err != nil {
		return nil, nil, err
	}
	if err := probe.SetIntraOpNumThreads(1); err != nil {
		return nil, nil, err
	}
	ins, outs, err := ort.GetInputOutputInfoWithOptions(model.Path, probe)
	if err != nil {
		return nil, nil, fmt.Errorf("model %q: ONNX Runtime cannot load %s: %v", model.Name, model.Path, err)
	}
	meta, err := newMetadata(model, ins, outs)
	if err != nil {
		return nil, nil, err
	}
	opts, err := sessionOptions(&m.cfg)
	if err != nil {
		return nil, nil, err
	}
	defer opts.Destroy()
	sess, err := ort.NewDynamicAdvancedSession(model.Path, meta.inputNames(), meta.outputNames(), opts)
	if err != nil {
		if m.cfg.Provider != CPU {
			return nil, nil, providerError(&m.cfg, err)
		}
		return nil, nil, fmt.Errorf("model %q: creating its ONNX Runtime session: %v", model.Name, err)
	}
	return meta, sess, nil
}
