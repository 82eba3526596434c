// Package engines runs the same three workloads (a trivial call, SHA-256
// over 8 MiB, 100,000 host calls) on four WebAssembly paths from Go: raw
// wazero, Extism's Go SDK, wasmtime-go, and Millrace's own invoke path
// (sandbox.NewWazero, Engine.Compile, Module.Invoke). It exists for the
// side-by-side benchmark in bench_test.go (`make bench`); see README.md.
//
// It is a separate module so that the server's go.mod carries none of these
// runtimes. It uses Millrace only through the public sandbox API.
package engines

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
)

// Workload is one of the three jobs every runtime runs.
type Workload string

// The workloads.
const (
	// Trivial returns at once: the cost of the path itself.
	Trivial Workload = "trivial"
	// CPU hashes CPUMiB MiB of generated data with SHA-256 inside the guest.
	CPU Workload = "cpu"
	// HostCalls makes HostCallCount calls to a cheap host function.
	HostCalls Workload = "hostcalls"
)

// Workloads lists the workloads in the order the benchmarks report them.
var Workloads = []Workload{Trivial, CPU, HostCalls}

// Sizes of the CPU and host-call workloads.
const (
	CPUMiB        = 8
	HostCallCount = 100_000
)

// ErrNoWarm is returned by runtimes that cannot call an already
// initialised instance through their public API.
var ErrNoWarm = errors.New("this path has no warm mode: every invocation gets a fresh instance")

// Runner runs one workload on one compiled module, one operation at a
// time. A Runner is not safe for concurrent use.
type Runner interface {
	// Fresh instantiates a new instance from the precompiled module
	// (running _initialize where the guest is a reactor), runs the
	// workload once, closes the instance and checks the guest's result: a
	// wrong result is an error.
	Fresh(ctx context.Context) error
	// StartWarm instantiates and initialises the instance that Warm calls.
	// It returns ErrNoWarm if the path cannot call an initialised instance
	// again.
	StartWarm(ctx context.Context) error
	// Warm runs the workload once on the instance StartWarm made, and
	// checks the result: what a pool of instances gives.
	Warm(ctx context.Context) error
	// Close releases the compiled module and any instance.
	Close(ctx context.Context) error
}

// Runtime is one of the compared paths.
type Runtime struct {
	// Name is the benchmark's runtime= key.
	Name string
	// New compiles the workload's guest; compiling is never timed.
	New func(ctx context.Context, g *Guests, w Workload) (Runner, error)
}

// Runtimes lists the compared paths. "millrace" is the server's default
// path for a reactor module (an instance started from the snapshot taken
// after _initialize, or a pooled one reset to it); "millrace-command" is
// the same guest built as a WASI command (a fresh instance and a Go
// runtime start per invocation); "millrace-nopreempt" is the command
// compiled without the interrupt checks (the server never does: they are
// how a runaway guest is stopped), so the checks' cost can be told apart
// from the rest of Millrace's host side.
var Runtimes = []Runtime{
	{Name: "wazero", New: newWazero},
	{Name: "extism", New: newExtism},
	{Name: "wasmtime", New: newWasmtime},
	{Name: "millrace", New: newMillrace(false, false)},
	{Name: "millrace-command", New: newMillrace(false, true)},
	{Name: "millrace-nopreempt", New: newMillrace(true, true)},
}

var expectedSum = sync.OnceValue(func() string {
	data := make([]byte, CPUMiB<<20)
	for i := range data {
		data[i] = byte(i*31 + i>>11)
	}
	var zero [sha256.Size]byte
	h := sha256.New()
	h.Write(zero[:])
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
})

// ExpectedSHA256 is the hex digest every CPU guest must return, computed
// natively: SHA-256 of 32 zero bytes followed by CPUMiB MiB of
// byte(i*31 + i>>11) (modules/testguests/cpu with rounds=1).
func ExpectedSHA256() string { return expectedSum() }

// expectedTickSum is what a hostcalls guest returns: the sum of tick(i) =
// i+1 for i in [0, HostCallCount).
const expectedTickSum = int64(HostCallCount) * (HostCallCount + 1) / 2

// trivialAnswer is what a trivial reactor guest returns.
const trivialAnswer = 42

// ticker is the host side of the host-call workload: tick(x) = x+1,
// counting the calls so the benchmark can check none was skipped.
type ticker struct{ calls int }

func (t *ticker) tick(x int32) int32 {
	t.calls++
	return x + 1
}

// check verifies the host saw HostCallCount calls and the guest summed
// their answers correctly, then resets the count for the next operation.
func (t *ticker) check(sum int64) error {
	calls := t.calls
	t.calls = 0
	if calls != HostCallCount || sum != expectedTickSum {
		return fmt.Errorf("hostcalls: host saw %d calls (want %d), guest summed %d (want %d)", calls, HostCallCount, sum, expectedTickSum)
	}
	return nil
}

// checkSum verifies a CPU guest's raw digest.
func checkSum(sum []byte) error { return checkHex(hex.EncodeToString(sum)) }

// checkHex verifies a CPU guest's hex digest.
func checkHex(got string) error {
	if want := ExpectedSHA256(); got != want {
		return fmt.Errorf("cpu: digest %s, want %s", got, want)
	}
	return nil
}
