// Package sandbox runs WebAssembly modules in a sandbox that grants nothing
// by default. A module is compiled once (Engine.Compile) and every
// invocation gets a fresh instance (Module.Invoke) that can reach only the
// host functions its Grant allows, within the Grant's limits.
//
// The host functions themselves (host.go) and our WASI (wasi.go) are
// written against a small Memory interface, not against wazero, so the
// second engine (wasmtime-go, behind the wasmtime build tag) reuses them
// and passes the same conformance tests.
package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/millrace/millrace/abi"
)

// Engine compiles modules. Implementations: wazero (default) and wasmtime
// (build tag wasmtime); NewEngine picks one.
type Engine interface {
	// Compile validates and compiles a module. It fails with an
	// *ImportError when the module imports anything outside the ABI.
	Compile(ctx context.Context, wasm []byte) (Module, error)
	// Close releases every compiled module and instance.
	Close(ctx context.Context) error
}

// Module is a compiled module, safe for concurrent invocations.
type Module interface {
	// Imports lists the module's imports.
	Imports() []Import
	// MinMemoryPages is the initial size of the module's memory in 64 KiB
	// pages: it must fit in the memory limit.
	MinMemoryPages() uint32
	// Invoke runs the module once in a fresh instance. It always returns a
	// Result; Result.Failure says why a run failed.
	Invoke(ctx context.Context, inv *Invocation) *Result
	// Close releases the compiled code.
	Close(ctx context.Context) error
}

// Grant is what an admin allowed a module version: capabilities and limits.
type Grant struct {
	Capabilities abi.Capabilities `json:"capabilities,omitempty"`
	Limits       abi.Limits       `json:"limits,omitempty"`
}

// Allows reports whether the grant includes a capability.
func (g *Grant) Allows(c abi.Capability) bool { return g.Capabilities.Requests(c) }

// Limits are the resolved limits of one invocation (no zero values).
type Limits struct {
	MemoryBytes      uint64
	Timeout          time.Duration
	MaxOutputBytes   int
	MaxLogBytes      int
	MaxKVValueBytes  int
	MaxKVTotalBytes  int64
	MaxHTTPBodyBytes int64
	HTTPTimeout      time.Duration
}

// KV is the key-value store the kv_* host functions use; store.Store
// satisfies it.
type KV interface {
	KVGet(ctx context.Context, namespace, key string) ([]byte, error)
	KVSet(ctx context.Context, namespace, key string, value []byte, maxTotal int64) error
	KVDelete(ctx context.Context, namespace, key string) error
	KVAdd(ctx context.Context, namespace, key string, delta int64) (int64, error)
}

// Secrets resolves secret values for secret_get.
type Secrets interface {
	// Reveal returns the plaintext of a secret, or store.ErrNotFound.
	Reveal(ctx context.Context, name string) ([]byte, error)
}

// Invocation is one run of a module.
type Invocation struct {
	Namespace string          // the KV namespace: the module id
	Input     json.RawMessage // nil means JSON null
	Config    json.RawMessage // nil means {}
	Grant     Grant
	Limits    Limits
	// Ports are the output ports the module may choose; empty means
	// only abi.DefaultOutputPort.
	Ports   []string
	KV      KV      // required when the grant includes kv
	Secrets Secrets // required when the grant includes secrets
	Accel   Accel   // runs the models of the tensor ABI; required when the grant includes accel
	// OnProgress, if set, is called with every progress report, from the
	// invocation's goroutine; it must not block.
	OnProgress func(Progress)
}

// LogRecord is one structured log line written by a module.
type LogRecord struct {
	Time    time.Time      `json:"time"`
	Level   string         `json:"level"`
	Message string         `json:"message"`
	Attrs   map[string]any `json:"attrs,omitempty"`
	Source  string         `json:"source,omitempty"` // "stdout" or "stderr" for captured streams
}

// Progress is the latest progress report of a module.
type Progress struct {
	Done    uint32 `json:"done"`
	Total   uint32 `json:"total"`
	Message string `json:"message,omitempty"`
	// Preview is a small image of the work so far (progress_preview), as
	// a data: URL.
	Preview string `json:"preview,omitempty"`
}

// Result is the outcome of one invocation.
type Result struct {
	Output      json.RawMessage `json:"output"`
	Port        string          `json:"port"` // the output port the module chose
	Logs        []LogRecord     `json:"logs"`
	LogsDropped int             `json:"logs_dropped,omitempty"`
	Progress    *Progress       `json:"progress,omitempty"`
	Duration    time.Duration   `json:"-"`
	Failure     *Failure        `json:"failure,omitempty"`
}

// FailureKind classifies why an invocation failed.
type FailureKind string

// Failure kinds. Each names the limit or cause at fault.
const (
	FailModuleError FailureKind = "module_error"   // the module reported an error (error_set)
	FailExit        FailureKind = "exit"           // non-zero exit, e.g. a Go panic
	FailTrap        FailureKind = "trap"           // a Wasm trap: unreachable, stack overflow, bad memory access
	FailTimeout     FailureKind = "timeout"        // ran past limits.timeout_ms
	FailCanceled    FailureKind = "canceled"       // the caller went away
	FailMemory      FailureKind = "memory_limit"   // tried to grow past limits.memory_mb
	FailOutputLimit FailureKind = "output_limit"   // output over limits.max_output_bytes
	FailOutput      FailureKind = "invalid_output" // output is not JSON
	FailDenied      FailureKind = "denied"         // imports a capability that is not granted
	FailBusy        FailureKind = "capacity"       // no room to start the instance in time
	FailInternal    FailureKind = "internal"       // a host-side failure
	FailInstantiate FailureKind = "instantiate"    // the instance could not be created
)

// Failure says why an invocation failed, in words a module author can act on.
type Failure struct {
	Kind    FailureKind `json:"kind"`
	Message string      `json:"message"`
}

func (f *Failure) Error() string { return string(f.Kind) + ": " + f.Message }

func failf(kind FailureKind, format string, args ...any) *Failure {
	return &Failure{Kind: kind, Message: fmt.Sprintf(format, args...)}
}
