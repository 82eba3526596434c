package engine_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/store"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/stretchr/testify/require"
)

// queueFixture is an executor with a started River queue on SQLite.
type queueFixture struct {
	*execFixture
	queue *engine.Queue
	runs  *engine.Runs
}

func newQueueFixture(t *testing.T, workers int) *queueFixture {
	t.Helper()
	f := newExec(t)
	return startQueue(t, f, f.exec, workers)
}

// startQueue starts a queue over f's store with exec as its executor, as
// a (re)started process would.
func startQueue(t *testing.T, f *execFixture, exec *engine.Executor, workers int) *queueFixture {
	t.Helper()
	ctx := context.Background()
	exec.Events = engine.NewBus(1000)
	q, err := engine.NewQueue(ctx, riversqlite.New(f.db.SQL()), exec, engine.QueueConfig{Workers: workers})
	require.NoError(t, err)
	require.NoError(t, q.Start(ctx))
	t.Cleanup(func() { q.Stop(context.Background()) })
	return &queueFixture{execFixture: f, queue: q, runs: engine.NewRuns(f.db, f.wf, q, exec.Events)}
}

// publish saves and publishes a workflow and returns its id.
func (f *execFixture) publish(t *testing.T, doc string) string {
	t.Helper()
	ctx := context.Background()
	id := "wf" + randomHex(4)
	_, err := f.wf.SaveDraft(ctx, id, parse(t, doc))
	require.NoError(t, err)
	_, err = f.wf.Publish(ctx, id)
	require.NoError(t, err)
	return id
}

// jobs counts River's jobs for a run.
func (f *execFixture) jobs(t *testing.T, runID string) int {
	t.Helper()
	var n int
	require.NoError(t, f.db.SQL().QueryRow(`SELECT count(*) FROM river_job WHERE json_extract(args, '$.run_id') = ?`, runID).Scan(&n))
	return n
}

const eagerWorkflow = `{"name": "eager", "nodes": [
  {"id": "a", "module": "echo@1.0.0", "input": {"expression": "{'n': input.n + 1}"}},
  {"id": "b", "module": "echo@1.0.0", "input": {"expression": "{'n': nodes.a.output.n * 10}"}}
], "edges": [{"from": "a", "to": "b"}]}`

// Start answers with the run as created, queued, however fast a worker
// takes it; the answer and the stored run agree on when it was created.
func TestStartAnswersQueued(t *testing.T) {
	t.Parallel()
	f := newQueueFixture(t, 4)
	ctx := context.Background()
	id := f.publish(t, eagerWorkflow)
	for range 20 {
		started, err := f.runs.Start(ctx, id, 0, json.RawMessage(`{"n": 1}`), "test")
		require.NoError(t, err)
		require.Equal(t, engine.StatusQueued, started.Status)
		require.Empty(t, started.Nodes)
		done, err := f.runs.Wait(ctx, started.ID)
		require.NoError(t, err)
		require.Equal(t, engine.StatusSucceeded, done.Status, done.Error)
		require.True(t, started.CreatedAt.Equal(done.CreatedAt), "%v vs %v", started.CreatedAt, done.CreatedAt)
	}
}

// A run started with StartNow executes in this process without a job, and
// Wait's view of it, built from memory, is the one Get reads back.
func TestStartNowExecutesWithoutTheQueue(t *testing.T) {
	t.Parallel()
	f := newQueueFixture(t, 4)
	ctx := context.Background()
	id := f.publish(t, eagerWorkflow)
	started, err := f.runs.StartNow(ctx, id, 0, json.RawMessage(`{"n": 4}`), "test")
	require.NoError(t, err)
	require.Equal(t, engine.StatusRunning, started.Status)
	waited, err := f.runs.Wait(ctx, started.ID)
	require.NoError(t, err)
	require.Equal(t, engine.StatusSucceeded, waited.Status, waited.Error)
	require.JSONEq(t, `{"b": {"n": 50}}`, string(waited.Output))

	stored, err := f.runs.Get(ctx, started.ID)
	require.NoError(t, err)
	require.Equal(t, stored.Status, waited.Status)
	require.JSONEq(t, string(stored.Output), string(waited.Output))
	require.Equal(t, stored.CreatedAt.UnixMicro(), waited.CreatedAt.UnixMicro())
	require.Len(t, waited.Nodes, 2)
	for i, n := range stored.Nodes {
		w := waited.Nodes[i]
		require.Equal(t, n.ID, w.ID, "same order as Get")
		require.Equal(t, n.Status, w.Status)
		require.Equal(t, n.Attempts, w.Attempts)
		require.JSONEq(t, string(n.Input), string(w.Input))
		require.JSONEq(t, string(n.Output), string(w.Output))
		require.Equal(t, n.Port, w.Port)
	}
	require.Zero(t, f.jobs(t, started.ID), "no job was queued")

	// The lease went with the final update: any worker could take it.
	ok, _, err := f.db.AcquireRunLease(ctx, started.ID, "someone-else", time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.True(t, ok)
}

// With every eager slot taken, StartNow queues the run instead; both
// finish.
func TestStartNowQueuesWhenBusy(t *testing.T) {
	t.Parallel()
	f := newQueueFixture(t, 1)
	ctx := context.Background()
	slow := f.publish(t, `{"name": "slow", "nodes": [{"id": "s", "module": "sleeper@1.0.0", "input": {"expression": "{'ms': 500}"}}]}`)
	first, err := f.runs.StartNow(ctx, slow, 0, json.RawMessage(`{}`), "test")
	require.NoError(t, err)
	second, err := f.runs.StartNow(ctx, slow, 0, json.RawMessage(`{}`), "test")
	require.NoError(t, err)
	require.Zero(t, f.jobs(t, first.ID))
	require.Equal(t, 1, f.jobs(t, second.ID), "the second run went through the queue")
	for _, id := range []string{first.ID, second.ID} {
		v, err := f.runs.Wait(ctx, id)
		require.NoError(t, err)
		require.Equal(t, engine.StatusSucceeded, v.Status, v.Error)
	}
}

// startSlowEager starts drainWorkflow eagerly and waits until its slow
// first node executes.
func startSlowEager(t *testing.T) (*queueFixture, *engine.RunView) {
	t.Helper()
	f := newQueueFixture(t, 4)
	id := f.publish(t, drainWorkflow)
	run, err := f.runs.StartNow(context.Background(), id, 0, json.RawMessage(`{}`), "test")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return f.nodes(t, run.ID)["slow"].Status == engine.StatusRunning }, time.Minute, 5*time.Millisecond)
	return f, run
}

// Stopping the queue lets an eager run's node in flight finish, then hands
// the run to the queue; the next process resumes it from there.
func TestEagerRunHandedBackOnShutdown(t *testing.T) {
	t.Parallel()
	f, run := startSlowEager(t)
	ctx := context.Background()
	require.NoError(t, f.queue.Stop(ctx))

	nodes := f.nodes(t, run.ID)
	require.Equal(t, engine.StatusSucceeded, nodes["slow"].Status, "the node in flight finished")
	require.NotContains(t, nodes, "next")
	require.Equal(t, 1, f.jobs(t, run.ID), "handed to the queue")
	stored, err := f.db.Run(ctx, run.ID)
	require.NoError(t, err)
	require.Equal(t, engine.StatusRunning, stored.Status)

	next := startQueue(t, f.execFixture, engine.NewExecutor(f.db, f.reg), 4)
	v, err := next.runs.Wait(ctx, run.ID)
	require.NoError(t, err)
	require.Equal(t, engine.StatusSucceeded, v.Status, v.Error)
	nodes = f.nodes(t, run.ID)
	require.Equal(t, 1, nodes["slow"].Attempts, "not executed again")
	require.Equal(t, 1, nodes["next"].Attempts)
}

// A node attempt's "running" checkpoint is stored only once the attempt
// has lasted RunningCheckpointDelay: a quick node's only write is its
// final checkpoint, a slow one shows as running.
func TestRunningCheckpointIsWrittenOnlyForSlowAttempts(t *testing.T) {
	t.Parallel()
	f := newExec(t)
	runID := f.start(t, `{"name": "mixed", "nodes": [
	  {"id": "quick", "module": "echo@1.0.0"},
	  {"id": "slow", "module": "sleeper@1.0.0", "input": {"expression": "{'ms': 1500}"}}
	], "edges": [{"from": "quick", "to": "slow"}]}`, `{}`)
	var puts []store.NodeRun
	rec := &recordingStore{Store: f.db, puts: func(n store.NodeRun) { puts = append(puts, n) }}
	exec := engine.NewExecutor(rec, f.reg)
	exec.RunningCheckpointDelay = 100 * time.Millisecond
	run, err := exec.Execute(context.Background(), runID)
	require.NoError(t, err)
	require.Equal(t, engine.StatusSucceeded, run.Status, run.Error)
	var seen []string
	for _, n := range puts {
		seen = append(seen, n.NodeID+":"+n.Status)
	}
	require.Equal(t, []string{"quick:succeeded", "slow:running", "slow:succeeded"}, seen)
}

// recordingStore calls puts for every checkpoint written (sequentially:
// the test workflow's nodes run one after the other).
type recordingStore struct {
	store.Store
	puts func(store.NodeRun)
}

func (s *recordingStore) PutNodeRun(ctx context.Context, n store.NodeRun) error {
	s.puts(n)
	return s.Store.PutNodeRun(ctx, n)
}

// Canceling an eager run stops it at once, as for a queued one.
func TestEagerRunCancels(t *testing.T) {
	t.Parallel()
	f, run := startSlowEager(t)
	ctx := context.Background()
	_, err := f.runs.Cancel(ctx, run.ID)
	require.NoError(t, err)
	v, err := f.runs.Wait(ctx, run.ID)
	require.NoError(t, err)
	require.Equal(t, engine.StatusCanceled, v.Status)
	nodes := f.nodes(t, run.ID)
	require.Equal(t, engine.StatusCanceled, nodes["slow"].Status, "the node in flight was stopped")
	require.NotContains(t, nodes, "next")
	require.Zero(t, f.jobs(t, run.ID), "nothing was handed to the queue")
}
