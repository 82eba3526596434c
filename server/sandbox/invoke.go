package sandbox

import (
	"errors"
	"fmt"

	"github.com/millrace/millrace/abi"
)

// What every engine does around one invocation, so that the engines agree
// on what a module may import, when an invocation may start and how its
// outcome reads.

// checkABIImports lists a module's imports and rejects one that is not a
// function of millrace_v1, wasi_snapshot_preview1 or the tensor ABI's
// modules. Engines call it first in Compile, so a module is refused with
// the same *ImportError whatever the engine.
func checkABIImports(wasm []byte) ([]Import, error) {
	imports, err := ParseImports(wasm)
	if err != nil {
		return nil, fmt.Errorf("malformed module: %w", err)
	}
	for _, imp := range imports {
		if imp.Kind != ImportFunc || !knownImportModule(imp.Module) {
			return nil, &ImportError{imp, "is not part of the ABI"}
		}
	}
	return imports, nil
}

// moduleKind is how the host enters a module.
type moduleKind int

const (
	// kindCommand is a WASI command: _start runs main, which handles one
	// invocation; the instance is finished afterwards.
	kindCommand moduleKind = iota
	// kindReactor exports _initialize (run once per instance) and
	// millrace_handle (one invocation): its initialised state can be
	// snapshotted and each invocation started from it.
	kindReactor
)

const (
	exportStart      = "_start"
	exportInitialize = "_initialize"
	exportHandle     = abi.ExportHandle
)

// The shapes a module may take (ABI.md §1), refused in the same words by
// every engine.
var (
	errNoEntry = errors.New("the module exports neither _start (a WASI command: GOOS=wasip1 go build) nor _initialize and " +
		abi.ExportHandle + " (a reactor: go build -buildmode=c-shared, with the Go SDK)")
	errNoMemory = errors.New(`the module exports no memory named "memory"`)
)

// checkStart refuses an invocation that cannot start: a capability the
// grant lacks, or a memory the limit cannot hold.
func checkStart(c *call, imports []Import, minPages uint32) *Failure {
	if f := checkGranted(imports, &c.inv.Grant); f != nil {
		return f
	}
	limit := c.inv.Limits.MemoryBytes
	if need := uint64(minPages) * 65536; need > limit {
		return failf(FailMemory, "the module needs %d MiB of memory to start, over limits.memory_mb (%d)", need>>20, limit>>20)
	}
	return nil
}

// result builds the invocation's Result: on success the output and port,
// always the logs and the latest progress.
func (c *call) result(f *Failure) *Result {
	c.logs.flushDropped()
	r := &Result{Logs: c.logs.records, LogsDropped: c.logs.dropped, Failure: f}
	if c.hasProgress {
		p := c.progress
		r.Progress = &p
	}
	if f == nil {
		r.Port = c.port
		if r.Port == "" {
			r.Port = abi.DefaultOutputPort
			if len(c.inv.Ports) > 0 {
				r.Port = c.inv.Ports[0]
			}
		}
		r.Output = c.redactOutput(c.output)
		if !c.hasOutput {
			r.Output = []byte("null")
		}
	}
	return r
}

// exitFailure classifies a non-zero exit: the module's own error if it set
// one, else the exit code with the line of stderr that explains it.
func exitFailure(c *call, code uint32) *Failure {
	if c.errSet {
		return failf(FailModuleError, "%s", c.errMsg)
	}
	return failf(FailExit, "the module exited with code %d%s", code, lastStderr(c.logs.records))
}

func timeoutFailure(c *call) *Failure {
	return failf(FailTimeout, "the module ran past limits.timeout_ms (%d ms) and was stopped", c.inv.Limits.Timeout.Milliseconds())
}

func canceledFailure() *Failure { return failf(FailCanceled, "the invocation was canceled") }

func memoryFailure(limit uint64) *Failure {
	return failf(FailMemory, "the module tried to grow its memory past limits.memory_mb (%d MiB)", limit>>20)
}

// trapFailure reports a trap with the line of stderr that explains it: a Go
// reactor that panics prints the panic, then traps.
func trapFailure(c *call, msg string) *Failure {
	return failf(FailTrap, "the module trapped: %s%s", msg, lastStderr(c.logs.records))
}
