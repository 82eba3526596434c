package engine_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/stretchr/testify/require"
)

type execFixture struct {
	db   *sqlite.DB
	reg  engine.Invoker
	wf   *engine.Workflows
	exec *engine.Executor
}

func newExec(t *testing.T) *execFixture {
	t.Helper()
	reg, db := catalogAndStore(t)
	return &execFixture{db: db, reg: reg, wf: engine.NewWorkflows(db, reg), exec: engine.NewExecutor(db, reg)}
}

// start publishes a workflow and creates a queued run of it.
func (f *execFixture) start(t *testing.T, doc, input string) string {
	t.Helper()
	ctx := context.Background()
	id := "wf" + randomHex(4)
	_, err := f.wf.SaveDraft(ctx, id, parse(t, doc))
	require.NoError(t, err)
	v, err := f.wf.Publish(ctx, id)
	require.NoError(t, err)
	runID := "run_" + randomHex(8)
	require.NoError(t, f.db.CreateRun(ctx, store.Run{ID: runID, WorkflowID: id, Version: v.Version, Status: engine.StatusQueued, Input: json.RawMessage(input), Trigger: "test"}))
	return runID
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (f *execFixture) nodes(t *testing.T, runID string) map[string]store.NodeRun {
	t.Helper()
	list, err := f.db.NodeRuns(context.Background(), runID)
	require.NoError(t, err)
	out := map[string]store.NodeRun{}
	for _, n := range list {
		out[n.NodeID] = n
	}
	return out
}

func TestBranchingRunTakesOnePathAndJoins(t *testing.T) {
	t.Parallel()
	f := newExec(t)
	for _, c := range []struct {
		n            int
		ran, skipped string
		joinedBranch string
	}{{n: 50, ran: "big", skipped: "small", joinedBranch: "big"}, {n: 3, ran: "small", skipped: "big", joinedBranch: "small"}} {
		runID := f.start(t, validWorkflow, `{"n":`+itoa(c.n)+`}`)
		run, err := f.exec.Execute(context.Background(), runID)
		require.NoError(t, err)
		require.Equal(t, engine.StatusSucceeded, run.Status, run.Error)
		nodes := f.nodes(t, runID)
		require.Equal(t, engine.StatusSucceeded, nodes[c.ran].Status)
		require.Equal(t, engine.StatusSkipped, nodes[c.skipped].Status, "the branch not chosen is skipped")
		require.Equal(t, engine.StatusSkipped, nodes["failed"].Status)
		require.Equal(t, engine.StatusSucceeded, nodes["join"].Status, "a join runs when one live input arrived")
		var out map[string]map[string]any
		require.NoError(t, json.Unmarshal(run.Output, &out))
		require.Contains(t, out, "join", "terminal nodes make the run output")
		require.NotNil(t, out["join"][c.joinedBranch])
		require.Equal(t, 1, nodes["decide"].Attempts)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

const chain = `{"name": "chain", "nodes": [
  {"id": "a", "module": "echo@1.0.0", "input": {"expression": "{'x': input.x + 1}"}},
  {"id": "b", "module": "echo@1.0.0", "input": {"expression": "{'x': nodes.a.output.x * 10}"}},
  {"id": "c", "module": "echo@1.0.0"}
], "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}]}`

func TestChainPassesOutputsAlong(t *testing.T) {
	t.Parallel()
	f := newExec(t)
	run, err := f.exec.Execute(context.Background(), f.start(t, chain, `{"x": 4}`))
	require.NoError(t, err)
	require.Equal(t, engine.StatusSucceeded, run.Status, run.Error)
	require.JSONEq(t, `{"c": {"x": 50}}`, string(run.Output), "c gets b's output as its only upstream")
}

func TestRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	f := newExec(t)
	doc := `{"name": "retry", "nodes": [{"id": "f", "module": "flaky@1.0.0", "retry": {"max_attempts": 3, "backoff_ms": 1},
	  "input": {"fields": {"key": "run.id", "succeed_on": "3"}}}]}`
	runID := f.start(t, doc, `{}`)
	run, err := f.exec.Execute(context.Background(), runID)
	require.NoError(t, err)
	require.Equal(t, engine.StatusSucceeded, run.Status, run.Error)
	require.Equal(t, 3, f.nodes(t, runID)["f"].Attempts)
	require.JSONEq(t, `{"f": {"runs": 3}}`, string(run.Output))
}

func TestFailureFailsTheRunAndNamesTheNode(t *testing.T) {
	t.Parallel()
	f := newExec(t)
	doc := `{"name": "fail", "nodes": [{"id": "boom", "module": "panic@1.0.0", "retry": {"max_attempts": 2, "backoff_ms": 1}},
	  {"id": "after", "module": "echo@1.0.0"}], "edges": [{"from": "boom", "to": "after"}]}`
	runID := f.start(t, doc, `{}`)
	run, err := f.exec.Execute(context.Background(), runID)
	require.NoError(t, err)
	require.Equal(t, engine.StatusFailed, run.Status)
	require.Contains(t, run.Error, "node boom failed")
	require.Contains(t, run.Error, "boom")
	nodes := f.nodes(t, runID)
	require.Equal(t, 2, nodes["boom"].Attempts)
	require.Contains(t, string(nodes["boom"].Logs), "panic: boom", "the failed attempt's logs are kept")
	require.NotContains(t, nodes, "after", "nothing downstream runs")
}

func TestOnErrorRouteAndContinue(t *testing.T) {
	t.Parallel()
	f := newExec(t)
	doc := `{"name": "route", "nodes": [
	  {"id": "boom", "module": "panic@1.0.0", "on_error": "route"},
	  {"id": "handler", "module": "echo@1.0.0", "input": {"expression": "nodes.boom.output"}},
	  {"id": "happy", "module": "echo@1.0.0"},
	  {"id": "lenient", "module": "panic@1.0.0", "on_error": "continue"},
	  {"id": "after", "module": "echo@1.0.0", "input": {"expression": "{'prev': nodes.lenient.status}"}}
	], "edges": [{"from": "boom", "port": "error", "to": "handler"}, {"from": "boom", "to": "happy"},
	             {"from": "lenient", "to": "after"}]}`
	runID := f.start(t, doc, `{}`)
	run, err := f.exec.Execute(context.Background(), runID)
	require.NoError(t, err)
	require.Equal(t, engine.StatusSucceeded, run.Status, run.Error)
	nodes := f.nodes(t, runID)
	require.Equal(t, engine.StatusSkipped, nodes["happy"].Status)
	require.Contains(t, string(nodes["handler"].Output), `"kind":"exit"`)
	require.JSONEq(t, `{"prev": "failed"}`, string(nodes["after"].Output))
}

func TestParallelBranchesRunAtTheSameTime(t *testing.T) {
	t.Parallel()
	f := newExec(t)
	doc := `{"name": "par", "nodes": [
	  {"id": "a", "module": "sleeper@1.0.0", "input": {"expression": "{'ms': 400}"}},
	  {"id": "b", "module": "sleeper@1.0.0", "input": {"expression": "{'ms': 400}"}},
	  {"id": "c", "module": "sleeper@1.0.0", "input": {"expression": "{'ms': 400}"}}]}`
	runID := f.start(t, doc, `{}`)
	run, err := f.exec.Execute(context.Background(), runID)
	require.NoError(t, err)
	require.Equal(t, engine.StatusSucceeded, run.Status, run.Error)
	// The three independent nodes overlapped in time: each started before
	// the others finished. (Order, not speed: no timing threshold.)
	nodes := f.nodes(t, runID)
	for _, a := range []string{"a", "b", "c"} {
		for _, b := range []string{"a", "b", "c"} {
			if a != b {
				require.True(t, nodes[a].StartedAt.Before(*nodes[b].FinishedAt), "%s started after %s finished", a, b)
			}
		}
	}
}

func TestNodeTimeoutCapsTheModule(t *testing.T) {
	t.Parallel()
	f := newExec(t)
	doc := `{"name": "slow", "nodes": [{"id": "s", "module": "sleeper@1.0.0", "timeout_ms": 100, "input": {"expression": "{'ms': 5000}"}}]}`
	run, err := f.exec.Execute(context.Background(), f.start(t, doc, `{}`))
	require.NoError(t, err)
	require.Equal(t, engine.StatusFailed, run.Status)
	require.Contains(t, run.Error, "timeout_ms (100 ms)")
}

// A run interrupted mid-way (here: the executor's context ends while the
// second node sleeps, as on shutdown) resumes: the finished node is not
// executed again and the interrupted one runs once more.
func TestResumeAfterInterruption(t *testing.T) {
	t.Parallel()
	f := newExec(t)
	doc := `{"name": "resume", "nodes": [
	  {"id": "count", "module": "flaky@1.0.0", "input": {"fields": {"key": "run.id", "succeed_on": "1"}}},
	  {"id": "slow", "module": "sleeper@1.0.0", "input": {"expression": "{'ms': 1500}"}},
	  {"id": "done", "module": "echo@1.0.0", "input": {"expression": "nodes.count.output"}}
	], "edges": [{"from": "count", "to": "slow"}, {"from": "slow", "to": "done"}]}`
	runID := f.start(t, doc, `{}`)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			if f.nodes(t, runID)["slow"].Status == engine.StatusRunning {
				cancel()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	run, err := f.exec.Execute(ctx, runID)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, engine.StatusRunning, run.Status, "an interrupted run is not failed")
	nodes := f.nodes(t, runID)
	require.Equal(t, engine.StatusSucceeded, nodes["count"].Status)
	require.Equal(t, engine.StatusRunning, nodes["slow"].Status)

	run, err = f.exec.Execute(context.Background(), runID)
	require.NoError(t, err)
	require.Equal(t, engine.StatusSucceeded, run.Status, run.Error)
	nodes = f.nodes(t, runID)
	require.Equal(t, 1, nodes["count"].Attempts)
	require.Equal(t, 2, nodes["slow"].Attempts, "the interrupted node ran once more")
	require.JSONEq(t, `{"done": {"runs": 1}}`, string(run.Output), "the finished node was not executed again")

	// Executing a finished run does nothing.
	again, err := f.exec.Execute(context.Background(), runID)
	require.NoError(t, err)
	require.Equal(t, run.FinishedAt.UnixNano(), again.FinishedAt.UnixNano())
}
