package metrics

import (
	"context"
	"time"

	"github.com/millrace/millrace/server/store"
)

// timedStore times the store operations on the run path: what the engine
// does per run and per node, and what modules do through the KV
// capability. Every other method passes through untimed (embedded), so
// methods added to store.Store need nothing here.
type timedStore struct {
	store.Store
	read, write, lease observer
}

// observer is the one method of a histogram the wrapper needs.
type observer interface{ Observe(float64) }

var _ store.Store = (*timedStore)(nil)

// Store wraps s so that its run-path operations are timed by class. The
// cost is two clock reads and one histogram update per call, against an
// operation that takes tens of microseconds at least.
func (m *Metrics) Store(s store.Store) store.Store {
	return &timedStore{Store: s,
		read:  m.storeLatency.WithLabelValues("read"),
		write: m.storeLatency.WithLabelValues("write"),
		lease: m.storeLatency.WithLabelValues("lease")}
}

func since(o observer, start time.Time) { o.Observe(time.Since(start).Seconds()) }

func (s *timedStore) Run(ctx context.Context, id string) (store.Run, error) {
	defer since(s.read, time.Now())
	return s.Store.Run(ctx, id)
}

func (s *timedStore) NodeRuns(ctx context.Context, runID string) ([]store.NodeRun, error) {
	defer since(s.read, time.Now())
	return s.Store.NodeRuns(ctx, runID)
}

func (s *timedStore) WorkflowVersion(ctx context.Context, id string, version int) (store.WorkflowVersion, error) {
	defer since(s.read, time.Now())
	return s.Store.WorkflowVersion(ctx, id, version)
}

func (s *timedStore) ModuleVersion(ctx context.Context, moduleID, version string) (store.ModuleVersion, error) {
	defer since(s.read, time.Now())
	return s.Store.ModuleVersion(ctx, moduleID, version)
}

func (s *timedStore) KVGet(ctx context.Context, namespace, key string) ([]byte, error) {
	defer since(s.read, time.Now())
	return s.Store.KVGet(ctx, namespace, key)
}

func (s *timedStore) CreateRun(ctx context.Context, r store.Run) error {
	defer since(s.write, time.Now())
	return s.Store.CreateRun(ctx, r)
}

func (s *timedStore) CreateLeasedRun(ctx context.Context, r store.Run, owner string, until time.Time) error {
	defer since(s.write, time.Now())
	return s.Store.CreateLeasedRun(ctx, r, owner, until)
}

func (s *timedStore) UpdateRun(ctx context.Context, r store.Run) error {
	defer since(s.write, time.Now())
	return s.Store.UpdateRun(ctx, r)
}

func (s *timedStore) PutNodeRun(ctx context.Context, n store.NodeRun) error {
	defer since(s.write, time.Now())
	return s.Store.PutNodeRun(ctx, n)
}

func (s *timedStore) PutArtifact(ctx context.Context, a store.Artifact) error {
	defer since(s.write, time.Now())
	return s.Store.PutArtifact(ctx, a)
}

func (s *timedStore) KVSet(ctx context.Context, namespace, key string, value []byte, maxTotal int64) error {
	defer since(s.write, time.Now())
	return s.Store.KVSet(ctx, namespace, key, value, maxTotal)
}

func (s *timedStore) KVAdd(ctx context.Context, namespace, key string, delta int64) (int64, error) {
	defer since(s.write, time.Now())
	return s.Store.KVAdd(ctx, namespace, key, delta)
}

func (s *timedStore) AcquireRunLease(ctx context.Context, runID, owner string, until time.Time) (bool, time.Time, error) {
	defer since(s.lease, time.Now())
	return s.Store.AcquireRunLease(ctx, runID, owner, until)
}

func (s *timedStore) ReleaseRunLease(ctx context.Context, runID, owner string) error {
	defer since(s.lease, time.Now())
	return s.Store.ReleaseRunLease(ctx, runID, owner)
}
