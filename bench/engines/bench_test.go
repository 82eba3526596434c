package engines_test

import (
	"context"
	"errors"
	"testing"

	"github.com/millrace/millrace/bench/engines"
)

// BenchmarkEngines runs each workload on each path. Sub-benchmarks are
// named workload=…/runtime=…/mode=… (benchstat can pivot on any of them:
// `benchstat -col /runtime`). Compiling is done before the timed loop.
// Every operation checks the guest's result; checked/op reports the share
// of operations whose result was verified (always 1: a wrong result fails
// the benchmark).
func BenchmarkEngines(b *testing.B) {
	for _, w := range engines.Workloads {
		for _, rt := range engines.Runtimes {
			b.Run(name(w, rt), func(b *testing.B) {
				r := newRunner(b, rt, w)
				b.Run("mode=fresh", func(b *testing.B) { measure(b, r.Fresh) })
				switch err := r.StartWarm(context.Background()); {
				case errors.Is(err, engines.ErrNoWarm):
					return
				case err != nil:
					b.Fatalf("start warm: %v", err)
				}
				b.Run("mode=warm", func(b *testing.B) { measure(b, r.Warm) })
			})
		}
	}
}

func measure(b *testing.B, op func(context.Context) error) {
	b.ReportAllocs()
	ctx := context.Background()
	checked := 0
	for b.Loop() {
		if err := op(ctx); err != nil {
			b.Fatal(err)
		}
		checked++
	}
	b.ReportMetric(float64(checked)/float64(b.N), "checked/op")
}
