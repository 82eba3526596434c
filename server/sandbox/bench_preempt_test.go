package sandbox_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/millrace/millrace/server/sandbox"
)

// BenchmarkInterruptLatency measures how long after its deadline a
// runaway guest is stopped: the loop guest with a 100 ms timeout, as a
// reactor (stopped in millrace_handle) and as a command (in _start).
// overshoot-p50-ms and overshoot-max-ms are the invocation's duration
// minus the timeout; the target is at most 50 ms.
func BenchmarkInterruptLatency(b *testing.B) {
	const timeout = 100 * time.Millisecond
	e := newEngine(b, sandbox.WazeroConfig{})
	defer e.Close(context.Background())
	for _, c := range []struct {
		name string
		wasm func(testing.TB, string) []byte
	}{{"reactor", testguests.Reactor}, {"command", testguests.Wasm}} {
		b.Run(c.name, func(b *testing.B) {
			mod, err := e.Compile(context.Background(), c.wasm(b, "loop"))
			if err != nil {
				b.Fatal(err)
			}
			var over []time.Duration
			for b.Loop() {
				inv := benchInvocation(`{}`)
				inv.Limits.Timeout = timeout
				start := time.Now()
				res := mod.Invoke(context.Background(), inv)
				over = append(over, time.Since(start)-timeout)
				if res.Failure == nil || res.Failure.Kind != sandbox.FailTimeout {
					b.Fatalf("want a timeout, got %+v", res.Failure)
				}
			}
			slices.Sort(over)
			b.ReportMetric(float64(over[len(over)/2].Microseconds())/1000, "overshoot-p50-ms")
			b.ReportMetric(float64(over[len(over)-1].Microseconds())/1000, "overshoot-max-ms")
		})
	}
}
