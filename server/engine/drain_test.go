package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/millrace/millrace/server/engine"
	"github.com/stretchr/testify/require"
)

const drainWorkflow = `{"name": "drain", "nodes": [
  {"id": "slow", "module": "sleeper@1.0.0", "input": {"expression": "{'ms': 800}"}},
  {"id": "next", "module": "echo@1.0.0"}
], "edges": [{"from": "slow", "to": "next"}]}`

// Drain lets the node executing finish, starts no other, and returns
// ErrDraining with the lease released; the run then resumes from there,
// the finished node not executed again.
func TestDrainFinishesInFlightNodesAndHandsTheRunBack(t *testing.T) {
	t.Parallel()
	f := newExec(t)
	runID := f.start(t, drainWorkflow, `{}`)
	done := make(chan error, 1)
	go func() {
		_, err := f.exec.Execute(context.Background(), runID)
		done <- err
	}()
	require.Eventually(t, func() bool { return f.nodes(t, runID)["slow"].Status == engine.StatusRunning }, time.Minute, 5*time.Millisecond)
	f.exec.Drain()
	require.ErrorIs(t, <-done, engine.ErrDraining)
	nodes := f.nodes(t, runID)
	require.Equal(t, engine.StatusSucceeded, nodes["slow"].Status, "the node in flight finished")
	require.NotContains(t, nodes, "next", "no node started after Drain")
	run, err := f.db.Run(context.Background(), runID)
	require.NoError(t, err)
	require.Equal(t, engine.StatusRunning, run.Status)

	// Another executor (the next process) takes it at once: the lease was
	// released.
	other := engine.NewExecutor(f.db, f.reg)
	run, err = other.Execute(context.Background(), runID)
	require.NoError(t, err)
	require.Equal(t, engine.StatusSucceeded, run.Status, run.Error)
	nodes = f.nodes(t, runID)
	require.Equal(t, 1, nodes["slow"].Attempts)
	require.Equal(t, 1, nodes["next"].Attempts)
}

// One executor executes a run once at a time, even when two jobs for it
// reach the same process: the second waits as for another worker.
func TestOneExecutionPerRunInAProcess(t *testing.T) {
	t.Parallel()
	f := newExec(t)
	runID := f.start(t, drainWorkflow, `{}`)
	done := make(chan error, 1)
	go func() {
		_, err := f.exec.Execute(context.Background(), runID)
		done <- err
	}()
	require.Eventually(t, func() bool { return f.nodes(t, runID)["slow"].Status == engine.StatusRunning }, time.Minute, 5*time.Millisecond)
	_, err := f.exec.Execute(context.Background(), runID)
	var held *engine.LeaseHeldError
	require.True(t, errors.As(err, &held), "got %v", err)
	require.NoError(t, <-done)
	run, err := f.exec.Execute(context.Background(), runID)
	require.NoError(t, err)
	require.Equal(t, engine.StatusSucceeded, run.Status)
	require.Equal(t, 1, f.nodes(t, runID)["next"].Attempts)
}
