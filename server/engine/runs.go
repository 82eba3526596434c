package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
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
	// Limits cap run inputs (RunInputBytes); set it as the executor's.
	Limits Limits

	eagerMu sync.Mutex
	eager   map[string]*eagerRun // runs started by StartNow, until they end
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
	r.eagerMu.Lock()
	e := r.eager[id]
	r.eagerMu.Unlock()
	if e != nil {
		select {
		case <-ctx.Done():
			return r.Get(context.WithoutCancel(ctx), id)
		case <-e.done:
		}
		if finished(e.outcome.Run.Status) {
			return r.view(ctx, e.outcome.Run, e.outcome.Nodes)
		}
		// Handed to the queue: wait for it as for any run.
	}
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
	// Artifacts of the run itself: its output, when too large to show
	// inline.
	Artifacts []ArtifactView `json:"artifacts,omitempty"`
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
	// Artifacts hold the node's values too large to show inline; input
	// and output then show {"$artifact": id, "size", "sha256"}.
	Artifacts []ArtifactView `json:"artifacts,omitempty"`
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
	run, _, err := r.prepare(ctx, workflowID, version, input, trigger)
	if err != nil {
		return nil, err
	}
	return r.enqueue(ctx, run)
}

// StartNow starts a run like Start, for a caller about to Wait for it: it
// executes in this process at once when a slot is free (Queue.ExecuteNow),
// and is queued otherwise. The view it returns is the run as created, with
// no nodes yet.
func (r *Runs) StartNow(ctx context.Context, workflowID string, version int, input json.RawMessage, trigger string) (*RunView, error) {
	run, def, err := r.prepare(ctx, workflowID, version, input, trigger)
	if err != nil {
		return nil, err
	}
	if r.queue == nil {
		return r.enqueue(ctx, run)
	}
	e := &eagerRun{done: make(chan struct{})}
	r.eagerMu.Lock()
	if r.eager == nil {
		r.eager = map[string]*eagerRun{}
	}
	r.eager[run.ID] = e
	r.eagerMu.Unlock()
	ok, err := r.queue.ExecuteNow(ctx, run, def, func(o Outcome) {
		e.outcome = o
		close(e.done)
		r.eagerMu.Lock()
		delete(r.eager, run.ID)
		r.eagerMu.Unlock()
	})
	if !ok {
		r.eagerMu.Lock()
		delete(r.eager, run.ID)
		r.eagerMu.Unlock()
		if err != nil {
			return nil, err
		}
		return r.enqueue(ctx, run)
	}
	run.Status = StatusRunning
	return buildView(run, nil, nil), nil
}

// eagerRun is a run executing in this process since StartNow; done closes
// when outcome is set.
type eagerRun struct {
	done    chan struct{}
	outcome Outcome
}

// prepare checks a run's input against the version it would run and
// returns the run to create, with the version's definition.
func (r *Runs) prepare(ctx context.Context, workflowID string, version int, input json.RawMessage, trigger string) (store.Run, *Definition, error) {
	if limit := r.Limits.WithDefaults().RunInputBytes; int64(len(input)) > limit {
		return store.Run{}, nil, &LimitError{Field: "input", Size: int64(len(input)), Limit: limit, Of: "run inputs"}
	}
	if version == 0 {
		// The workflow's row names its latest version; its draft and
		// version list (what Workflows.Get reads too) are not needed.
		wf, err := r.store.Workflow(ctx, workflowID)
		if errors.Is(err, store.ErrNotFound) {
			return store.Run{}, nil, &NotFoundError{fmt.Sprintf("workflow %q", workflowID)}
		}
		if err != nil {
			return store.Run{}, nil, err
		}
		version = wf.LatestVersion
	}
	if version == 0 {
		return store.Run{}, nil, &NotPublishedError{WorkflowID: workflowID}
	}
	v, err := r.workflows.Version(ctx, workflowID, version)
	if err != nil {
		return store.Run{}, nil, err
	}
	if len(input) == 0 {
		input = json.RawMessage("null")
	}
	if err := registry.CheckAgainstSchema("input", v.Definition.InputSchema, input); err != nil {
		return store.Run{}, nil, err
	}
	return store.Run{ID: newRunID(), WorkflowID: workflowID, Version: version, Status: StatusQueued, Input: input, Trigger: trigger,
		// PostgreSQL keeps microseconds: the view returned now and the
		// run read back later show the same time.
		CreatedAt: time.Now().Truncate(time.Microsecond)}, v.Definition, nil
}

// enqueue creates a queued run and queues it.
func (r *Runs) enqueue(ctx context.Context, run store.Run) (*RunView, error) {
	if err := r.store.CreateRun(ctx, run); err != nil {
		return nil, err
	}
	// If the process dies between these two steps, recovery queues the
	// run again once it has waited QueuedGrace.
	if err := r.queue.Enqueue(ctx, run.ID); err != nil {
		return nil, fmt.Errorf("queueing run %s: %w", run.ID, err)
	}
	// The run as created, not as read back: a worker may already have
	// taken it, and a caller told "queued" should be told so every time.
	return buildView(run, nil, nil), nil
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
	arts, err := r.store.ListArtifacts(ctx, id)
	if err != nil {
		return nil, err
	}
	return buildView(run, nodes, arts), nil
}

// view shows a run and its checkpoints as this process holds them. The
// artifacts are read only when a value refers to one.
func (r *Runs) view(ctx context.Context, run store.Run, nodes []store.NodeRun) (*RunView, error) {
	refers := func(doc json.RawMessage) bool { _, ok := parseRef(doc); return ok }
	hasRefs := refers(run.Output)
	for _, n := range nodes {
		hasRefs = hasRefs || refers(n.Input) || refers(n.Output)
	}
	// Get lists nodes by start time; so does this.
	nodes = slices.Clone(nodes)
	slices.SortStableFunc(nodes, func(a, b store.NodeRun) int {
		if c := cmp.Compare(boolInt(a.StartedAt == nil), boolInt(b.StartedAt == nil)); c != 0 {
			return c
		}
		if a.StartedAt != nil && !a.StartedAt.Equal(*b.StartedAt) {
			return a.StartedAt.Compare(*b.StartedAt)
		}
		return cmp.Compare(a.NodeID, b.NodeID)
	})
	var arts []store.Artifact
	if hasRefs {
		var err error
		if arts, err = r.store.ListArtifacts(ctx, run.ID); err != nil {
			return nil, err
		}
	}
	return buildView(run, nodes, arts), nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func buildView(run store.Run, nodes []store.NodeRun, arts []store.Artifact) *RunView {
	byNode := map[string][]ArtifactView{}
	for _, a := range arts {
		byNode[a.NodeID] = append(byNode[a.NodeID], artifactView(a))
	}
	v := &RunView{ID: run.ID, WorkflowID: run.WorkflowID, Version: run.Version, Status: run.Status, Input: run.Input,
		Output: run.Output, Error: run.Error, Trigger: run.Trigger, CreatedAt: run.CreatedAt, StartedAt: run.StartedAt,
		FinishedAt: run.FinishedAt, Nodes: make([]NodeView, 0, len(nodes)), Artifacts: byNode[""]}
	for _, n := range nodes {
		v.Nodes = append(v.Nodes, NodeView{ID: n.NodeID, Status: n.Status, Attempts: n.Attempts, Input: n.Input, Output: n.Output,
			Port: n.Port, Logs: n.Logs, Error: n.Error, StartedAt: n.StartedAt, FinishedAt: n.FinishedAt, Artifacts: byNode[n.NodeID]})
	}
	return v
}

// RunSummary is a run without its node timeline, for lists.
type RunSummary struct {
	ID         string     `json:"id"`
	WorkflowID string     `json:"workflow_id"`
	Version    int        `json:"version"`
	Status     string     `json:"status"`
	Error      string     `json:"error,omitempty"`
	Trigger    string     `json:"trigger"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// List returns runs newest first and the cursor of the next page ("" at
// the end).
func (r *Runs) List(ctx context.Context, f store.RunFilter) ([]RunSummary, string, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	want := f.Limit
	f.Limit++ // one more tells whether a next page exists
	runs, err := r.store.ListRuns(ctx, f)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(runs) > want {
		runs = runs[:want]
		next = runs[want-1].ID
	}
	out := make([]RunSummary, 0, len(runs))
	for _, run := range runs {
		out = append(out, RunSummary{ID: run.ID, WorkflowID: run.WorkflowID, Version: run.Version, Status: run.Status,
			Error: run.Error, Trigger: run.Trigger, CreatedAt: run.CreatedAt, FinishedAt: run.FinishedAt})
	}
	return out, next, nil
}

// StateError refuses an operation the run's status does not allow.
type StateError struct{ Msg string }

func (e *StateError) Error() string { return e.Msg }

// Cancel cancels a queued or running run. Nodes running at that moment
// are stopped and recorded as canceled.
func (r *Runs) Cancel(ctx context.Context, id string) (*RunView, error) {
	v, err := r.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	ok, err := r.store.CancelRun(ctx, id, time.Now())
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &StateError{fmt.Sprintf("run %s has already finished (%s)", id, v.Status)}
	}
	if r.queue != nil {
		r.queue.exec.Cancel(id) // stops it at once when it executes here
	}
	r.events.Publish(Event{Type: "run.finished", RunID: id, Status: StatusCanceled})
	return r.Get(ctx, id)
}

// Retry resumes a failed or canceled run from where it stopped: its failed
// and canceled nodes run again, its succeeded nodes are kept.
func (r *Runs) Retry(ctx context.Context, id string) (*RunView, error) {
	// The check and the clean-up are one store transaction: of two
	// retries racing (a double click), one queues the run and the other
	// is told that it is queued already.
	ok, err := r.store.RetryRun(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &NotFoundError{fmt.Sprintf("run %q", id)}
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		run, err := r.store.Run(ctx, id)
		if err != nil {
			return nil, err
		}
		return nil, &StateError{fmt.Sprintf("run %s is %s; only failed or canceled runs can be retried", id, run.Status)}
	}
	if err := r.queue.Enqueue(ctx, id); err != nil {
		return nil, err
	}
	return r.Get(ctx, id)
}

// Rerun starts a new run of the same version and input that reuses the
// stored results of every node except from and what depends on it, so
// only that part of the workflow executes again.
func (r *Runs) Rerun(ctx context.Context, id, from string) (*RunView, error) {
	run, err := r.store.Run(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &NotFoundError{fmt.Sprintf("run %q", id)}
	}
	if err != nil {
		return nil, err
	}
	if !finished(run.Status) {
		return nil, &StateError{fmt.Sprintf("run %s is still %s; wait for it or cancel it first", id, run.Status)}
	}
	v, err := r.workflows.Version(ctx, run.WorkflowID, run.Version)
	if err != nil {
		return nil, err
	}
	rerun := map[string]bool{}
	if from != "" {
		found := false
		for _, n := range v.Definition.Nodes {
			found = found || n.ID == from
		}
		if !found {
			return nil, &InvalidError{[]Problem{{"from", fmt.Sprintf("workflow %s version %d has no node %q", run.WorkflowID, run.Version, from)}}}
		}
		// from and everything downstream of it run again.
		rerun[from] = true
		for changed := true; changed; {
			changed = false
			for _, e := range v.Definition.Edges {
				if rerun[e.From] && !rerun[e.To] {
					rerun[e.To], changed = true, true
				}
			}
		}
	}
	nodes, err := r.store.NodeRuns(ctx, id)
	if err != nil {
		return nil, err
	}
	newRun := store.Run{ID: newRunID(), WorkflowID: run.WorkflowID, Version: run.Version, Status: StatusQueued, Input: run.Input, Trigger: "rerun:" + id}
	if err := r.store.CreateRun(ctx, newRun); err != nil {
		return nil, err
	}
	if from != "" {
		arts, err := r.store.ListArtifacts(ctx, id)
		if err != nil {
			return nil, err
		}
		for _, n := range nodes {
			keep := n.Status == StatusSucceeded || n.Status == StatusSkipped || (n.Status == StatusFailed && n.Port != "")
			if rerun[n.NodeID] || !keep {
				continue
			}
			n.RunID = newRun.ID
			if err := r.copyArtifacts(ctx, id, arts, &n); err != nil {
				return nil, err
			}
			if err := r.store.PutNodeRun(ctx, n); err != nil {
				return nil, err
			}
		}
	}
	if err := r.queue.Enqueue(ctx, newRun.ID); err != nil {
		return nil, err
	}
	return r.Get(ctx, newRun.ID)
}
