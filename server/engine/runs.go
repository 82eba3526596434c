package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/store"
)

// Runs starts workflow runs and reports on them.
type Runs struct {
	store     store.Store
	workflows *Workflows
	queue     *Queue
	events    *Bus
}

// NewRuns returns the runs service; runs execute through queue and report
// on events.
func NewRuns(s store.Store, w *Workflows, q *Queue, events *Bus) *Runs {
	return &Runs{store: s, workflows: w, queue: q, events: events}
}

// Events returns the bus the runs report on.
func (r *Runs) Events() *Bus { return r.events }

// Wait blocks until a run finishes (or ctx ends) and returns it. It
// listens to this process's events and also polls the store, since
// another process may be executing the run.
func (r *Runs) Wait(ctx context.Context, id string) (*RunView, error) {
	ch, _, stop := r.events.Subscribe(0, func(e Event) bool { return e.RunID == id && e.Type == "run.finished" })
	defer stop()
	poll := time.NewTicker(250 * time.Millisecond)
	defer poll.Stop()
	for {
		v, err := r.Get(ctx, id)
		if err != nil || finished(v.Status) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-ch:
		case <-poll.C:
		}
	}
}

// RunView is a run with its node timeline, as the API shows it.
type RunView struct {
	ID         string          `json:"id"`
	WorkflowID string          `json:"workflow_id"`
	Version    int             `json:"version"`
	Status     string          `json:"status" enum:"queued,running,succeeded,failed,canceled"`
	Input      json.RawMessage `json:"input"`
	Output     json.RawMessage `json:"output,omitempty"`
	Error      string          `json:"error,omitempty"`
	Trigger    string          `json:"trigger"`
	CreatedAt  time.Time       `json:"created_at"`
	StartedAt  *time.Time      `json:"started_at,omitempty"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
	Nodes      []NodeView      `json:"nodes"`
}

// NodeView is one node's execution in a run.
type NodeView struct {
	ID         string          `json:"id"`
	Status     string          `json:"status" enum:"running,succeeded,failed,skipped,canceled"`
	Attempts   int             `json:"attempts"`
	Input      json.RawMessage `json:"input,omitempty"`
	Output     json.RawMessage `json:"output,omitempty"`
	Port       string          `json:"port,omitempty"`
	Logs       json.RawMessage `json:"logs,omitempty"`
	Error      string          `json:"error,omitempty"`
	StartedAt  *time.Time      `json:"started_at,omitempty"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
}

// NotPublishedError refuses to run a workflow that has no published
// version: runs always use an immutable version.
type NotPublishedError struct{ WorkflowID string }

func (e *NotPublishedError) Error() string {
	return fmt.Sprintf("workflow %q has no published version: POST /v1/workflows/%s/publish first", e.WorkflowID, e.WorkflowID)
}

// newRunID makes a run id that sorts by creation time.
func newRunID() string {
	return fmt.Sprintf("run_%013x%s", time.Now().UnixMilli(), randomID()[:8])
}

// Start creates a run of a published version (0 = the latest) and queues
// it. The input is checked against the workflow's input_schema.
func (r *Runs) Start(ctx context.Context, workflowID string, version int, input json.RawMessage, trigger string) (*RunView, error) {
	wf, err := r.workflows.Get(ctx, workflowID)
	if err != nil {
		return nil, err
	}
	if version == 0 {
		version = wf.LatestVersion
	}
	if version == 0 {
		return nil, &NotPublishedError{WorkflowID: workflowID}
	}
	v, err := r.workflows.Version(ctx, workflowID, version)
	if err != nil {
		return nil, err
	}
	if len(input) == 0 {
		input = json.RawMessage("null")
	}
	if err := registry.CheckAgainstSchema("input", v.Definition.InputSchema, input); err != nil {
		return nil, err
	}
	run := store.Run{ID: newRunID(), WorkflowID: workflowID, Version: version, Status: StatusQueued, Input: input, Trigger: trigger}
	if err := r.store.CreateRun(ctx, run); err != nil {
		return nil, err
	}
	// If the process dies between these two steps, recovery queues the
	// run again once it has waited QueuedGrace.
	if err := r.queue.Enqueue(ctx, run.ID); err != nil {
		return nil, fmt.Errorf("queueing run %s: %w", run.ID, err)
	}
	return r.Get(ctx, run.ID)
}

// Get returns a run with its node timeline.
func (r *Runs) Get(ctx context.Context, id string) (*RunView, error) {
	run, err := r.store.Run(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &NotFoundError{fmt.Sprintf("run %q", id)}
	}
	if err != nil {
		return nil, err
	}
	nodes, err := r.store.NodeRuns(ctx, id)
	if err != nil {
		return nil, err
	}
	v := &RunView{ID: run.ID, WorkflowID: run.WorkflowID, Version: run.Version, Status: run.Status, Input: run.Input,
		Output: run.Output, Error: run.Error, Trigger: run.Trigger, CreatedAt: run.CreatedAt, StartedAt: run.StartedAt,
		FinishedAt: run.FinishedAt, Nodes: make([]NodeView, 0, len(nodes))}
	for _, n := range nodes {
		v.Nodes = append(v.Nodes, NodeView{ID: n.NodeID, Status: n.Status, Attempts: n.Attempts, Input: n.Input, Output: n.Output,
			Port: n.Port, Logs: n.Logs, Error: n.Error, StartedAt: n.StartedAt, FinishedAt: n.FinishedAt})
	}
	return v, nil
}
