package sandbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Engine kinds NewEngine knows.
const (
	EngineWazero   = "wazero"   // pure Go, always compiled in; the default
	EngineWasmtime = "wasmtime" // wasmtime-go (cgo), compiled in with -tags wasmtime
)

// EngineConfig selects and configures an engine.
type EngineConfig struct {
	// Kind is EngineWazero (the default when empty) or EngineWasmtime.
	Kind string
	// CacheDir keeps compiled native code across restarts. Empty means an
	// in-memory cache only. The directory holds executable code: it must
	// be writable only by the server.
	CacheDir string
	// MaxMemoryMB caps every module memory, whatever its grant says.
	MaxMemoryMB int
	// InitTimeout bounds a reactor's _initialize where the engine runs it
	// at Compile to take a snapshot (wazero); zero means 10 s.
	InitTimeout time.Duration
}

var (
	enginesMu sync.Mutex
	engines   = map[string]func(context.Context, EngineConfig) (Engine, error){
		EngineWazero: func(ctx context.Context, cfg EngineConfig) (Engine, error) {
			return NewWazero(ctx, WazeroConfig{CacheDir: cfg.CacheDir, MaxMemoryMB: cfg.MaxMemoryMB, InitTimeout: cfg.InitTimeout})
		},
	}
)

// registerEngine makes an engine kind available to NewEngine; engines
// compiled in behind a build tag call it from init.
func registerEngine(kind string, open func(context.Context, EngineConfig) (Engine, error)) {
	enginesMu.Lock()
	defer enginesMu.Unlock()
	engines[kind] = open
}

// EngineKinds lists the engine kinds compiled into this binary, sorted.
func EngineKinds() []string {
	enginesMu.Lock()
	defer enginesMu.Unlock()
	kinds := make([]string, 0, len(engines))
	for k := range engines {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}

// CheckEngine reports whether NewEngine can create an engine of this
// kind ("" is the default), with an error that tells the operator how to
// get one.
func CheckEngine(kind string) error {
	_, err := opener(kind)
	return err
}

// NewEngine creates the engine cfg.Kind names.
func NewEngine(ctx context.Context, cfg EngineConfig) (Engine, error) {
	open, err := opener(cfg.Kind)
	if err != nil {
		return nil, err
	}
	return open(ctx, cfg)
}

func opener(kind string) (func(context.Context, EngineConfig) (Engine, error), error) {
	if kind == "" {
		kind = EngineWazero
	}
	enginesMu.Lock()
	open, ok := engines[kind]
	enginesMu.Unlock()
	switch {
	case ok:
		return open, nil
	case kind == EngineWasmtime:
		return nil, errors.New("this millrace binary was built without the wasmtime engine; build with -tags wasmtime (needs cgo)")
	}
	return nil, fmt.Errorf("unknown sandbox engine %q: want %s or %s", kind, EngineWazero, EngineWasmtime)
}
