package metrics_test

import (
	"context"
	"testing"

	"github.com/millrace/millrace/server/metrics"
	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/stretchr/testify/require"
)

// The timed store costs what its histograms cost, against a real store
// operation: compare "direct" and "timed" (BENCHMARKS.md records it).
func BenchmarkTimedStore(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, ":memory:")
	require.NoError(b, err)
	defer db.Close()
	require.NoError(b, db.KVSet(ctx, "bench", "k", []byte("v"), 1<<20))
	for _, c := range []struct {
		name string
		s    store.Store
	}{{"direct", db}, {"timed", metrics.New("serve").Store(db)}} {
		s := c.s
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.KVGet(ctx, "bench", "k"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The timed store passes calls through and counts them by class.
func TestTimedStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, ":memory:")
	require.NoError(t, err)
	defer db.Close()
	s := metrics.New("serve").Store(db)
	require.NoError(t, s.KVSet(ctx, "ns", "k", []byte("v"), 1<<20))
	v, err := s.KVGet(ctx, "ns", "k")
	require.NoError(t, err)
	require.Equal(t, "v", string(v))
	_, err = s.Run(ctx, "run_missing")
	require.ErrorIs(t, err, store.ErrNotFound)
}
