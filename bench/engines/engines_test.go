package engines_test

import (
	"context"
	"errors"
	"testing"

	"github.com/millrace/millrace/bench/engines"
)

// TestEngines runs every workload once on every path, fresh and (where the
// path has one) warm, and checks each guest's result.
func TestEngines(t *testing.T) {
	ctx := context.Background()
	for _, w := range engines.Workloads {
		for _, rt := range engines.Runtimes {
			t.Run(name(w, rt), func(t *testing.T) {
				r := newRunner(t, rt, w)
				if err := r.Fresh(ctx); err != nil {
					t.Fatalf("fresh: %v", err)
				}
				switch err := r.StartWarm(ctx); {
				case errors.Is(err, engines.ErrNoWarm):
					return
				case err != nil:
					t.Fatalf("start warm: %v", err)
				}
				// Twice: a warm instance must give the same answer again.
				for range 2 {
					if err := r.Warm(ctx); err != nil {
						t.Fatalf("warm: %v", err)
					}
				}
			})
		}
	}
}
