package sandbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/millrace/millrace/server/sandbox"
)

// Benchmarks for BENCHMARKS.md. Run with `make bench`.

func newEngine(b *testing.B, cfg sandbox.WazeroConfig) *sandbox.Wazero {
	b.Helper()
	e, err := sandbox.NewWazero(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkCompile measures compiling Go modules cold and from the disk
// cache, each on a fresh engine as after a restart: hello (2.6 MB, a Go
// program using fmt and no SDK) and echo (4.4 MB, the SDK with JSON and
// slog).
func BenchmarkCompile(b *testing.B) {
	for _, name := range []string{"hello", "echo"} {
		wasm := testguests.Wasm(b, name)
		b.Run(fmt.Sprintf("%s-%.1fMB/cold", name, float64(len(wasm))/1e6), func(b *testing.B) {
			for b.Loop() {
				e := newEngine(b, sandbox.WazeroConfig{})
				if _, err := e.Compile(context.Background(), wasm); err != nil {
					b.Fatal(err)
				}
				e.Close(context.Background())
			}
		})
		dir := filepath.Join(b.TempDir(), "cache")
		warm := newEngine(b, sandbox.WazeroConfig{CacheDir: dir})
		if _, err := warm.Compile(context.Background(), wasm); err != nil {
			b.Fatal(err)
		}
		warm.Close(context.Background())
		b.Run(fmt.Sprintf("%s-%.1fMB/disk-cache", name, float64(len(wasm))/1e6), func(b *testing.B) {
			for b.Loop() {
				e := newEngine(b, sandbox.WazeroConfig{CacheDir: dir})
				if _, err := e.Compile(context.Background(), wasm); err != nil {
					b.Fatal(err)
				}
				e.Close(context.Background())
			}
		})
	}
}

func benchInvocation(input string) *sandbox.Invocation {
	return &sandbox.Invocation{Namespace: "bench", Input: json.RawMessage(input), Limits: limits()}
}

// invokeP50 runs a module b.N times and reports the median and the 90th
// percentile of the instantiate+invoke time.
func invokeP50(b *testing.B, mod sandbox.Module, input string) {
	b.Helper()
	var times []time.Duration
	for b.Loop() {
		start := time.Now()
		res := mod.Invoke(context.Background(), benchInvocation(input))
		times = append(times, time.Since(start))
		if res.Failure != nil {
			b.Fatal(res.Failure)
		}
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(times[len(times)*9/10].Microseconds())/1000, "p90-ms")
}

// BenchmarkInvoke measures a fresh instance per invocation: a Go guest
// (SDK, JSON in and out) against a hand-made module that does nothing, the
// floor of what instantiation costs.
func BenchmarkInvoke(b *testing.B) {
	e := newEngine(b, sandbox.WazeroConfig{})
	defer e.Close(context.Background())
	goMod, err := e.Compile(context.Background(), testguests.Wasm(b, "noop"))
	if err != nil {
		b.Fatal(err)
	}
	raw, err := e.Compile(context.Background(), rawModule{memPages: 1}.bytes())
	if err != nil {
		b.Fatal(err)
	}
	hello, err := e.Compile(context.Background(), testguests.Wasm(b, "hello"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("go-guest-noop", func(b *testing.B) { invokeP50(b, goMod, `{}`) })
	b.Run("go-hello-no-sdk", func(b *testing.B) { invokeP50(b, hello, `{}`) })
	b.Run("raw-empty-module", func(b *testing.B) { invokeP50(b, raw, `{}`) })
}

// BenchmarkFastStart measures the Go reactor paths (ABI.md §1) for the
// noop guest: a pooled instance reset to the snapshot (the default), a
// fresh instance mapped from the snapshot (the pool disabled), and a fresh
// instance running _initialize (no snapshot) — against the same source
// built as a command. to-handler-p50-ms is the time from Invoke to the
// handler's first host call after reading its input (the hostcalls guest
// reporting progress once), which is what "start" means to a module.
func BenchmarkFastStart(b *testing.B) {
	for _, c := range []struct {
		name string
		cfg  sandbox.WazeroConfig
		wasm func(testing.TB, string) []byte
	}{
		{"reactor-pooled", sandbox.WazeroConfig{}, testguests.Reactor},
		{"reactor-fresh-from-snapshot", sandbox.WazeroConfig{NoPool: true}, testguests.Reactor},
		{"reactor-no-snapshot", sandbox.WazeroConfig{NoSnapshot: true}, testguests.Reactor},
		{"command", sandbox.WazeroConfig{}, testguests.Wasm},
	} {
		b.Run(c.name, func(b *testing.B) {
			e := newEngine(b, c.cfg)
			defer e.Close(context.Background())
			noop, err := e.Compile(context.Background(), c.wasm(b, "noop"))
			if err != nil {
				b.Fatal(err)
			}
			calls, err := e.Compile(context.Background(), c.wasm(b, "hostcalls"))
			if err != nil {
				b.Fatal(err)
			}
			var toHandler []time.Duration
			for b.Loop() {
				start := time.Now()
				res := noop.Invoke(context.Background(), benchInvocation(`{}`))
				if res.Failure != nil {
					b.Fatal(res.Failure)
				}
				b.StopTimer()
				inv := benchInvocation(`{"n":1}`)
				var at time.Duration
				start = time.Now()
				inv.OnProgress = func(sandbox.Progress) { at = time.Since(start) }
				if res := calls.Invoke(context.Background(), inv); res.Failure != nil {
					b.Fatal(res.Failure)
				}
				toHandler = append(toHandler, at)
				b.StartTimer()
			}
			slices.Sort(toHandler)
			b.ReportMetric(float64(toHandler[len(toHandler)/2].Microseconds())/1000, "to-handler-p50-ms")
		})
	}
}

// BenchmarkHostCall measures one guest-to-host call (progress, the
// cheapest host function that crosses with arguments): the time of an
// invocation making N calls minus one making none, divided by N.
func BenchmarkHostCall(b *testing.B) {
	b.Run("with-preemption", func(b *testing.B) { benchHostCall(b, sandbox.WazeroConfig{}) })
	b.Run("without-preemption", func(b *testing.B) { benchHostCall(b, sandbox.WazeroConfig{NoPreemption: true}) })
}

func benchHostCall(b *testing.B, cfg sandbox.WazeroConfig) {
	e := newEngine(b, cfg)
	defer e.Close(context.Background())
	mod, err := e.Compile(context.Background(), testguests.Wasm(b, "hostcalls"))
	if err != nil {
		b.Fatal(err)
	}
	const n = 200_000
	run := func(calls int) time.Duration {
		start := time.Now()
		res := mod.Invoke(context.Background(), benchInvocation(fmt.Sprintf(`{"n":%d}`, calls)))
		if res.Failure != nil {
			b.Fatal(res.Failure)
		}
		return time.Since(start)
	}
	var per []float64
	for b.Loop() {
		with, without := run(n), run(0)
		per = append(per, float64(with-without)/n)
	}
	slices.Sort(per)
	b.ReportMetric(per[len(per)/2], "ns/hostcall")
}

// BenchmarkTimeoutMechanism runs a CPU-heavy guest (SHA-256 over 8 MiB) on
// an engine that can stop runaway guests (wazero's close-on-context-done,
// the default) and on one that cannot. The ratio is the price of being able
// to stop an endless loop.
func BenchmarkTimeoutMechanism(b *testing.B) {
	for _, c := range []struct {
		name string
		cfg  sandbox.WazeroConfig
	}{{"with-preemption", sandbox.WazeroConfig{}}, {"without-preemption", sandbox.WazeroConfig{NoPreemption: true}}} {
		b.Run(c.name, func(b *testing.B) {
			e := newEngine(b, c.cfg)
			defer e.Close(context.Background())
			mod, err := e.Compile(context.Background(), testguests.Wasm(b, "cpu"))
			if err != nil {
				b.Fatal(err)
			}
			invokeP50(b, mod, `{"mib":8,"rounds":1}`)
		})
	}
}

// BenchmarkEngines runs the same guests on every engine compiled in (run
// with -tags wasmtime to compare): a fresh instance of a Go guest, and a
// CPU-heavy Go guest (SHA-256 over 8 MiB), each with preemption on.
func BenchmarkEngines(b *testing.B) {
	for _, kind := range sandbox.EngineKinds() {
		e, err := sandbox.NewEngine(context.Background(), sandbox.EngineConfig{Kind: kind})
		if err != nil {
			b.Fatal(err)
		}
		defer e.Close(context.Background())
		for _, c := range []struct{ guest, input string }{{"noop", `{}`}, {"cpu", `{"mib":8,"rounds":1}`}} {
			mod, err := e.Compile(context.Background(), testguests.Wasm(b, c.guest))
			if err != nil {
				b.Fatal(err)
			}
			b.Run(kind+"/"+c.guest, func(b *testing.B) { invokeP50(b, mod, c.input) })
		}
	}
}
