// Package millrace is the Go SDK for Millrace modules. A module hands a
// typed handler to Handle from an init function; Handle reads the input
// from the host, runs the handler and reports the output or the error:
//
//	func init() { millrace.Handle(run) }
//
//	func main() {}
//
//	func run(ctx context.Context, in Input) (Output, error) { ... }
//
// Build it as a reactor, which starts fast (the host snapshots it after
// initialisation and starts every invocation from that snapshot, in well
// under a millisecond):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o module.wasm
//
// The same source also builds as a WASI command (without -buildmode),
// which the host runs from scratch for every invocation (a few
// milliseconds for a Go module). In a reactor, package-level state is
// reset between invocations: each starts from the state init left.
//
// The other functions reach the host capabilities of ABI.md: Config,
// Logger, Progress, the KV functions, HTTPSend and Secret; package
// millracehttp offers an http.Client over HTTPSend. Errors from
// the host wrap an abi.Errno, so errors.Is(err, abi.ErrnoDenied) works.
//
// Natively (go test) the same code runs against the fake host of the
// millracetest package.
package millrace

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/guest-sdk/internal/hostcall"
)

// Handle runs one invocation: it decodes the input JSON into In, calls fn
// and sets the output to Out encoded as JSON. A decoding error, an error
// from fn or an output the host refuses fails the invocation with the
// error's message. Handle returns normally either way, since error_set is
// the failure signal; main should simply return after it.
//
// A panic in fn is not recovered: the module exits with a non-zero code and
// the host reports the panic message it captured from stderr.
//
// In a reactor (-buildmode=c-shared) Handle only registers fn: the host
// calls it through the module's millrace_handle export, once per
// invocation. Call Handle from init, since a reactor's main never runs.
func Handle[In, Out any](fn func(ctx context.Context, in In) (Out, error)) {
	run := func() {
		hostcall.Ran()
		if err := handle(fn); err != nil {
			fail(err)
		}
	}
	// Natively, a module's init runs before its tests install a fake host
	// (millracetest.Host.Run then runs the registered handler).
	if reactor || !hostcall.Installed() {
		hostcall.SetHandler(run)
		return
	}
	run()
}

// errNoHandler is reported when the host asks a reactor to handle an
// invocation before any handler was registered.
const errNoHandler = "the module registered no handler: call millrace.Handle from an init function (a reactor's main does not run)"

func handle[In, Out any](fn func(ctx context.Context, in In) (Out, error)) error {
	var in In
	if err := Input(&in); err != nil {
		return err
	}
	out, err := fn(context.Background(), in)
	if err != nil {
		return err
	}
	doc, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("output: %w", err)
	}
	if err := WriteOutput(doc); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	return nil
}

// fail reports err as the invocation's failure. error_set cannot usefully
// fail, so its errno is ignored.
func fail(err error) {
	msg := err.Error()
	if msg == "" {
		msg = "the module failed without a message"
	}
	hostcall.ErrorSet(msg)
}

// Input decodes the invocation's input JSON into v. Handle calls it for
// you; use it directly only in a main that does not use Handle.
func Input(v any) error {
	doc, err := readDocument(abi.FnInput, hostcall.Input)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(doc, v); err != nil {
		return fmt.Errorf("input: %w", err)
	}
	return nil
}

// Config decodes the invocation's config JSON ({} when none was given)
// into v.
func Config(v any) error {
	doc, err := readDocument(abi.FnConfig, hostcall.Config)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(doc, v); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// WriteOutput sets the invocation's output to the JSON document doc,
// replacing any earlier output. It is the raw form of what Handle does;
// the host refuses a document that is not valid JSON (invalid_argument) or
// is over the output limit (too_large).
func WriteOutput(doc []byte) error {
	if errno := hostcall.OutputSet(doc); errno != abi.ErrnoSuccess {
		return hostError(abi.FnOutputSet, errno)
	}
	return nil
}

// Progress reports that done of total units of work are finished, with an
// optional message; total 0 means unknown. Values are clamped to the
// ABI's u32 range. Only the latest report is kept, and reporting never
// fails the module, so there is no error to check.
func Progress(done, total int, msg string) {
	hostcall.Progress(clampU32(done), clampU32(total), msg)
}

// ProgressPreview is Progress with a small preview image of the work so
// far: PNG or JPEG bytes, at most abi.MaxPreviewBytes (64 KiB); the run's
// events carry it as a data: URL. Like Progress it never fails the module.
func ProgressPreview(done, total int, msg string, image []byte) {
	hostcall.ProgressPreview(clampU32(done), clampU32(total), msg, image)
}

// SetPort chooses the output port the invocation leaves by, so a workflow
// can branch on it. name must be one of the manifest's "ports"; without a
// call the first declared port (or "default") is used.
func SetPort(name string) error {
	if errno := hostcall.PortSet(name); errno != abi.ErrnoSuccess {
		return hostError(abi.FnPortSet, errno)
	}
	return nil
}

func clampU32(n int) uint32 {
	return uint32(max(0, min(int64(n), math.MaxUint32)))
}

// readDocument calls a host function that leaves a pending result and
// reads the result (ABI.md §3.1).
func readDocument(fn string, call func(outLen *uint32) abi.Errno) ([]byte, error) {
	var n uint32
	if errno := call(&n); errno != abi.ErrnoSuccess {
		return nil, hostError(fn, errno)
	}
	return readResult(n)
}

// readResult fetches a pending result of n bytes. It is called even for
// n = 0 so that the result is consumed.
func readResult(n uint32) ([]byte, error) {
	buf := make([]byte, n)
	if errno := hostcall.ResultRead(buf); errno != abi.ErrnoSuccess {
		return nil, hostError(abi.FnResultRead, errno)
	}
	return buf, nil
}

// callError is a failed host call. Its message names the function and the
// errno ("kv_get: denied"); it unwraps to the abi.Errno.
type callError struct {
	fn    string
	errno abi.Errno
}

func hostError(fn string, errno abi.Errno) error { return &callError{fn: fn, errno: errno} }

func (e *callError) Error() string { return e.fn + ": " + e.errno.String() }

func (e *callError) Unwrap() error { return e.errno }
