package hostcall

import "sync/atomic"

// handler is the module's handler as millrace.Handle registered it (in a
// reactor, or natively before a test installs a fake host); runs counts
// the handlers run, so the fake host knows whether main ran one itself.
var (
	handler atomic.Pointer[func()]
	runs    atomic.Int64
)

// SetHandler registers the module's handler.
func SetHandler(f func()) { handler.Store(&f) }

// Handler returns the registered handler, or nil.
func Handler() func() {
	if f := handler.Load(); f != nil {
		return *f
	}
	return nil
}

// Ran records that a handler ran; Runs reports how many have.
func Ran()        { runs.Add(1) }
func Runs() int64 { return runs.Load() }
