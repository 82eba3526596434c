package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/millrace/millrace/server/store"
	"go.opentelemetry.io/otel/trace"
)

// Run and node statuses as stored.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusSkipped   = "skipped"
	StatusCanceled  = "canceled"
)

// Invoker runs one module invocation; *registry.Registry implements it.
type Invoker interface {
	Invoke(ctx context.Context, req registry.InvokeRequest) (*sandbox.Result, *registry.Version, error)
}

var _ Invoker = (*registry.Registry)(nil)

// Executor runs workflow runs in this process, checkpointing every node in
// the store, so a run interrupted by a crash resumes where it stopped:
// finished nodes are not executed again, and a node that was running when
// the process died runs once more.
type Executor struct {
	store       store.Store
	invoker     Invoker
	MaxParallel int // nodes of one run running at once; default 8
	// Owner names this executor in run leases; LeaseTTL is how long a
	// lease lasts without renewal, which bounds how long a run whose
	// worker died waits before another worker resumes it.
	Owner    string
	LeaseTTL time.Duration
	// Events, if set, receives run and node events.
	Events *Bus
	// Limits cap node inputs and decide which values are stored as
	// artifacts rather than inline in checkpoints.
	Limits Limits
	// Observer, if set, is told when runs start and finish here (the
	// server's metrics).
	Observer RunObserver
	// Logger receives run and node log lines, with run_id and node_id
	// attributes; default slog.Default().
	Logger *slog.Logger
	// RunningCheckpointDelay is how long a node attempt runs before its
	// "running" checkpoint is stored (see startAttempt); zero stores it
	// before the attempt starts. Default 50 ms.
	RunningCheckpointDelay time.Duration
	// Tracer, if set, gives each node attempt a span (the run's span is
	// the queue's); nil records none and costs nothing.
	Tracer trace.Tracer

	// draining is set by Drain: no node starts any more.
	draining atomic.Bool

	mu     sync.Mutex
	active map[string]context.CancelCauseFunc // runs executing here

	// sleep waits between retry attempts; tests may replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// NewExecutor returns an executor over a store and an invoker.
func NewExecutor(s store.Store, inv Invoker) *Executor {
	return &Executor{store: s, invoker: inv, MaxParallel: 8, Owner: "executor-" + randomID(), LeaseTTL: 30 * time.Second,
		RunningCheckpointDelay: 50 * time.Millisecond, sleep: sleepCtx}
}

// RunObserver is told when a run starts executing in this process and
// when it finishes (with its final status).
type RunObserver interface {
	RunStarted()
	RunStopped()
	RunFinished(status string)
}

// ErrDraining ends an execution that Drain stopped between nodes: the run
// stays "running" with every started node finished, for another process
// (or the next start) to resume at once.
var ErrDraining = errors.New("the executor is draining for shutdown")

// Drain stops starting nodes: nodes executing now finish, then their runs
// return ErrDraining. It is the first step of a graceful shutdown.
func (x *Executor) Drain() { x.draining.Store(true) }

// Draining reports whether Drain was called.
func (x *Executor) Draining() bool { return x.draining.Load() }

func (x *Executor) logger() *slog.Logger {
	if x.Logger != nil {
		return x.Logger
	}
	return slog.Default()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Cost limits of one CEL evaluation, so a mapping over a huge input cannot
// hold the engine: CEL cannot loop forever, but it can be made slow.
const (
	celCostLimit = 10_000_000
	celTimeout   = 5 * time.Second
)

// runState is the engine's view of one run while it executes.
type runState struct {
	parent   context.Context // Execute's context: done means shutdown, not failure
	run      store.Run
	def      *Definition
	input    any
	nodes    map[string]*store.NodeRun // checkpoints by node id
	index    map[string]int
	incoming map[string][]int // node id → edge indexes
	outgoing map[string][]int
	taken    map[int]bool // edge index → taken, once resolved
	store    store.Store
	// values caches node outputs as the nodes produced them, where
	// checkpoints may hold references to artifacts.
	values map[string]json.RawMessage
	// parsed caches node outputs decoded for CEL: every later mapping and
	// condition reads them, and CEL does not modify its inputs.
	parsed map[string]any
	mu     sync.Mutex // guards nodes, values and parsed during parallel node execution
}

// LeaseHeldError means another worker is executing the run.
type LeaseHeldError struct {
	RunID string
	Until time.Time
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("run %s is being executed by another worker (lease until %s)", e.RunID, e.Until.Format(time.RFC3339))
}

// errLeaseLost ends an execution whose lease could not be renewed: another
// worker may take the run over, so this one must stop.
var errLeaseLost = errors.New("lost the run's lease")

// errRunCanceled ends an execution because a user canceled the run.
var errRunCanceled = errors.New("the run was canceled")

// Cancel stops a run executing in this process, if it is; it reports
// whether it was. The caller marks the run canceled in the store, which
// stops it in whichever process executes it (see renew).
func (x *Executor) Cancel(runID string) bool {
	x.mu.Lock()
	cancel, ok := x.active[runID]
	x.mu.Unlock()
	if ok && cancel != nil {
		cancel(errRunCanceled)
	}
	return ok
}

// Execute runs (or resumes) a run until it finishes and returns it. Only
// the holder of the run's lease executes it; a *LeaseHeldError says
// another worker does. Executing a finished run does nothing.
func (x *Executor) Execute(ctx context.Context, runID string) (store.Run, error) {
	run, err := x.store.Run(ctx, runID)
	if err != nil {
		return run, err
	}
	if finished(run.Status) {
		return run, nil
	}
	release, err := x.reserve(runID)
	if err != nil {
		return run, err
	}
	defer release()
	ok, until, err := x.store.AcquireRunLease(ctx, runID, x.Owner, time.Now().Add(x.LeaseTTL))
	if err != nil {
		return run, err
	}
	if !ok {
		return run, &LeaseHeldError{RunID: runID, Until: until}
	}
	// Re-read: the run may have finished between the first read and the
	// lease (another worker completed it and released).
	if run, err = x.store.Run(ctx, runID); err != nil || finished(run.Status) {
		x.releaseLease(ctx, runID)
		return run, err
	}
	sv, err := x.store.WorkflowVersion(ctx, run.WorkflowID, run.Version)
	if err != nil {
		x.releaseLease(ctx, runID)
		return run, fmt.Errorf("run %s: workflow %s version %d: %w", run.ID, run.WorkflowID, run.Version, err)
	}
	def, err := ParseDefinition(sv.Definition)
	if err != nil {
		x.releaseLease(ctx, runID)
		return run, fmt.Errorf("run %s: stored definition: %w", run.ID, err)
	}
	checkpoints, err := x.store.NodeRuns(ctx, run.ID)
	if err != nil {
		x.releaseLease(ctx, runID)
		return run, err
	}
	st, err := x.execute(ctx, run, def, checkpoints)
	return st.run, err
}

// ExecuteLeased executes a run that this executor created with
// store.CreateLeasedRun (an eager start, see Queue.ExecuteNow): it holds
// the lease already and the run has no checkpoints yet, so nothing needs
// reading first. It returns the run and its node checkpoints as they
// ended, in the definition's order.
func (x *Executor) ExecuteLeased(ctx context.Context, run store.Run, def *Definition) (store.Run, []store.NodeRun, error) {
	release, err := x.reserve(run.ID)
	if err != nil {
		return run, nil, err
	}
	defer release()
	st, err := x.execute(ctx, run, def, nil)
	var nodes []store.NodeRun
	for _, n := range def.Nodes {
		if cp := st.node(n.ID); cp != nil {
			nodes = append(nodes, *cp)
		}
	}
	return st.run, nodes, err
}

// reserve marks a run as executing here. The lease is per executor, and
// renewing it is taking it again: two jobs for one run in this process (a
// job handed back at shutdown and the one recovery queued for the same run
// at the next start) would both hold it. Only one executes; the other
// waits as for another worker's lease, and then finds the run finished.
func (x *Executor) reserve(runID string) (release func(), err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.active == nil {
		x.active = map[string]context.CancelCauseFunc{}
	}
	if _, busy := x.active[runID]; busy {
		return nil, &LeaseHeldError{RunID: runID, Until: time.Now().Add(x.LeaseTTL)}
	}
	x.active[runID] = nil // reserved; execute sets the cancel function
	return func() {
		x.mu.Lock()
		delete(x.active, runID)
		x.mu.Unlock()
	}, nil
}

func (x *Executor) releaseLease(ctx context.Context, runID string) {
	if err := x.store.ReleaseRunLease(context.WithoutCancel(ctx), runID, x.Owner); err != nil {
		x.logger().Warn("releasing a run's lease", "run_id", runID, "err", err)
	}
}

// execute runs a reserved and leased run from its checkpoints until it
// finishes, fails, or is interrupted. The lease is dropped on the way out:
// by the final update when the run finished, else explicitly, so another
// worker can resume it at once.
func (x *Executor) execute(ctx context.Context, run store.Run, def *Definition, checkpoints []store.NodeRun) (*runState, error) {
	st := &runState{parent: ctx, run: run, def: def, nodes: map[string]*store.NodeRun{}, index: map[string]int{},
		incoming: map[string][]int{}, outgoing: map[string][]int{}, taken: map[int]bool{},
		store: x.store, values: map[string]json.RawMessage{}, parsed: map[string]any{}}
	defer func() {
		if !finished(st.run.Status) {
			x.releaseLease(ctx, run.ID)
		}
	}()
	if x.Observer != nil {
		x.Observer.RunStarted()
		defer x.Observer.RunStopped()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	x.mu.Lock()
	x.active[run.ID] = cancel
	x.mu.Unlock()
	go x.renew(ctx, cancel, run.ID)
	var err error
	if st.input, err = fromJSON(run.Input); err != nil {
		return st, fmt.Errorf("run %s: input: %w", run.ID, err)
	}
	for i, n := range def.Nodes {
		st.index[n.ID] = i
	}
	for i, e := range def.Edges {
		st.incoming[e.To] = append(st.incoming[e.To], i)
		st.outgoing[e.From] = append(st.outgoing[e.From], i)
	}
	for i := range checkpoints {
		st.nodes[checkpoints[i].NodeID] = &checkpoints[i]
	}
	// A run created running (an eager start) or resumed after a crash is
	// stored as running already; only a queued run needs the write.
	if st.run.Status != StatusRunning || st.run.StartedAt == nil {
		if st.run.StartedAt == nil {
			now := time.Now()
			st.run.StartedAt = &now
		}
		st.run.Status = StatusRunning
		if err := x.store.UpdateRun(ctx, st.run); err != nil {
			return st, err
		}
	}
	x.Events.Publish(Event{Type: "run.started", RunID: run.ID, Status: StatusRunning})
	failure := x.schedule(ctx, st)
	if context.Cause(ctx) == errRunCanceled {
		return st, x.finish(ctx, st, errRunCanceled)
	}
	if ctx.Err() != nil {
		// Shutdown, not failure: leave the run and its in-flight nodes
		// "running" so that the next Execute resumes them.
		x.logger().Info("run interrupted by shutdown", "run_id", run.ID)
		return st, ctx.Err()
	}
	if errors.Is(failure, ErrDraining) {
		x.logger().Info("run handed back for shutdown between nodes", "run_id", run.ID)
		return st, failure
	}
	return st, x.finish(ctx, st, failure)
}

// renew keeps the lease alive while the run executes, and stops the
// execution when it cannot.
func (x *Executor) renew(ctx context.Context, cancel context.CancelCauseFunc, runID string) {
	t := time.NewTicker(x.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ok, _, err := x.store.AcquireRunLease(ctx, runID, x.Owner, time.Now().Add(x.LeaseTTL))
			if ctx.Err() != nil {
				return
			}
			if err != nil || !ok {
				cancel(errLeaseLost)
				return
			}
			// A cancel made through another process shows in the store.
			if run, err := x.store.Run(ctx, runID); err == nil && run.Status == StatusCanceled {
				cancel(errRunCanceled)
				return
			}
		}
	}
}

func randomID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func finished(status string) bool {
	return status == StatusSucceeded || status == StatusFailed || status == StatusCanceled
}

// nodeDone reports whether a node's checkpoint is final.
func nodeDone(n *store.NodeRun) bool {
	return n != nil && n.Status != StatusRunning
}

// schedule runs nodes as their inputs resolve, in parallel up to
// MaxParallel, and returns the error that failed the run, if any.
func (x *Executor) schedule(ctx context.Context, st *runState) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		id  string
		err error // non-nil: the node failed and the run must fail
	}
	results := make(chan result)
	running := map[string]bool{}
	var runErr error
	held := false // draining kept a ready node from starting
	for {
		// Resolve edges of finished nodes, skip nodes no edge leads to.
		progress := true
		for progress {
			progress = false
			for _, n := range st.def.Nodes {
				if nodeDone(st.node(n.ID)) || running[n.ID] {
					continue
				}
				ready, live := st.readiness(n.ID)
				if ready && !live {
					if err := x.checkpoint(ctx, st, &store.NodeRun{RunID: st.run.ID, NodeID: n.ID, Status: StatusSkipped}); err != nil {
						return err
					}
					progress = true
				}
			}
			for i := range st.def.Nodes {
				id := st.def.Nodes[i].ID
				if nodeDone(st.node(id)) {
					if err := st.resolveOutgoing(ctx, id); err != nil && runErr == nil {
						runErr = err
						cancel()
					}
				}
			}
		}
		// Start what is ready, unless the run is failing or the process
		// is draining for shutdown (then the run is handed back once
		// what runs now has finished).
		if runErr == nil && x.draining.Load() {
			for _, n := range st.def.Nodes {
				if nodeDone(st.node(n.ID)) || running[n.ID] {
					continue
				}
				if ready, live := st.readiness(n.ID); ready && live {
					held = true
				}
			}
		} else if runErr == nil {
			for _, n := range st.def.Nodes {
				if len(running) >= max(1, x.MaxParallel) {
					break
				}
				if nodeDone(st.node(n.ID)) || running[n.ID] {
					continue
				}
				if ready, live := st.readiness(n.ID); ready && live {
					running[n.ID] = true
					go func(id string) { results <- result{id, x.runNode(ctx, st, id)} }(n.ID)
				}
			}
		}
		if len(running) == 0 {
			if runErr == nil && held {
				return ErrDraining
			}
			return runErr
		}
		r := <-results
		delete(running, r.id)
		if r.err != nil && runErr == nil {
			runErr = r.err
			cancel() // stop the other branches; the run fails
		}
	}
}

// node returns a node's latest checkpoint (nil if none). Checkpoints are
// immutable once stored, so the caller may read the fields unlocked.
func (st *runState) node(id string) *store.NodeRun {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.nodes[id]
}

// readiness reports whether every edge into a node is resolved, and
// whether at least one of them was taken (the node is live). Roots are
// ready and live.
func (st *runState) readiness(id string) (ready, live bool) {
	in := st.incoming[id]
	if len(in) == 0 {
		return true, true
	}
	for _, ei := range in {
		taken, resolved := st.taken[ei]
		if !resolved {
			return false, false
		}
		live = live || taken
	}
	return true, live
}

// resolveOutgoing decides, once a node is final, which of its edges are
// taken: the edge's port must be the one the node left by, and its
// condition must hold. A skipped or failed node takes no edge.
func (st *runState) resolveOutgoing(ctx context.Context, id string) error {
	n := st.node(id)
	for _, ei := range st.outgoing[id] {
		if _, done := st.taken[ei]; done {
			continue
		}
		e := st.def.Edges[ei]
		port := e.Port
		if port == "" {
			port = abi.DefaultOutputPort
		}
		take := n.Port != "" && port == n.Port && (n.Status == StatusSucceeded || n.Status == StatusFailed)
		if take && e.When != "" {
			ok, err := st.condition(ctx, ei, n)
			if err != nil {
				return fmt.Errorf("edges[%d] (%s → %s): condition: %w", ei, e.From, e.To, err)
			}
			take = ok
		}
		st.taken[ei] = take
	}
	return nil
}

// vars builds the CEL activation: the run input, finished nodes and the
// run itself. Outputs stored as artifacts are read back (outside the
// lock: that is I/O), so mappings see the values the nodes produced.
func (st *runState) vars(ctx context.Context) (map[string]any, error) {
	st.mu.Lock()
	done := make([]*store.NodeRun, 0, len(st.nodes))
	for _, n := range st.nodes {
		if nodeDone(n) && n.Status != StatusSkipped && n.Status != StatusCanceled {
			done = append(done, n)
		}
	}
	st.mu.Unlock()
	nodes := map[string]any{}
	for _, n := range done {
		out, err := st.parsedOutput(ctx, n)
		if err != nil {
			return nil, err
		}
		nodes[n.NodeID] = map[string]any{"output": out, "port": n.Port, "status": n.Status}
	}
	return map[string]any{
		"input": st.input,
		"nodes": nodes,
		"run":   map[string]any{"id": st.run.ID, "workflow": st.run.WorkflowID, "version": int64(st.run.Version)},
	}, nil
}

// parsedOutput returns a finished node's output decoded for CEL.
func (st *runState) parsedOutput(ctx context.Context, n *store.NodeRun) (any, error) {
	st.mu.Lock()
	out, ok := st.parsed[n.NodeID]
	st.mu.Unlock()
	if ok {
		return out, nil
	}
	doc, err := st.output(ctx, n)
	if err != nil {
		return nil, err
	}
	if out, err = fromJSON(doc); err != nil {
		return nil, fmt.Errorf("stored output of %s: %w", n.NodeID, err)
	}
	st.mu.Lock()
	st.parsed[n.NodeID] = out
	st.mu.Unlock()
	return out, nil
}

func (st *runState) program(edge bool, src string) (cel.Program, error) {
	return programs.get(edge, src)
}

func (st *runState) eval(ctx context.Context, edge bool, src string, vars map[string]any) (json.RawMessage, bool, error) {
	p, err := st.program(edge, src)
	if err != nil {
		return nil, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, celTimeout)
	defer cancel()
	out, _, err := p.ContextEval(ctx, vars)
	if err != nil {
		return nil, false, err
	}
	if b, ok := out.(types.Bool); ok {
		doc, _ := json.Marshal(bool(b))
		return doc, bool(b), nil
	}
	doc, err := toJSON(out)
	return doc, false, err
}

func (st *runState) condition(ctx context.Context, ei int, src *store.NodeRun) (bool, error) {
	vars, err := st.vars(ctx)
	if err != nil {
		return false, err
	}
	if vars["output"], err = st.parsedOutput(ctx, src); err != nil {
		return false, err
	}
	vars["port"] = src.Port
	doc, b, err := st.eval(ctx, true, st.def.Edges[ei].When, vars)
	if err != nil {
		return false, err
	}
	if string(doc) != "true" && string(doc) != "false" {
		return false, fmt.Errorf("produced %s, not true or false", doc)
	}
	return b, nil
}

// nodeInput computes a node's input: its mapping, else the output of its
// only upstream node, else the run input.
func (st *runState) nodeInput(ctx context.Context, n *Node) (json.RawMessage, error) {
	vars, err := st.vars(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case n.Input != nil && n.Input.Expression != "":
		doc, _, err := st.eval(ctx, false, n.Input.Expression, vars)
		if err != nil {
			return nil, fmt.Errorf("input.expression: %w", err)
		}
		return doc, nil
	case n.Input != nil:
		obj := map[string]json.RawMessage{}
		for name, src := range n.Input.Fields {
			doc, _, err := st.eval(ctx, false, src, vars)
			if err != nil {
				return nil, fmt.Errorf("input.fields.%s: %w", name, err)
			}
			obj[name] = doc
		}
		return json.Marshal(obj)
	}
	if in := st.incoming[n.ID]; len(in) == 1 {
		st.mu.Lock()
		up := st.nodes[st.def.Edges[in[0]].From]
		st.mu.Unlock()
		return st.output(ctx, up)
	}
	return st.run.Input, nil
}

func (x *Executor) checkpoint(ctx context.Context, st *runState, n *store.NodeRun) error {
	// Checkpoints must land even while the run is being cancelled, or a
	// resumed run would not know how far it got.
	if err := x.store.PutNodeRun(context.WithoutCancel(ctx), *n); err != nil {
		return err
	}
	// Store a copy: the node's goroutine goes on changing its own record
	// while the scheduler reads this one.
	saved := *n
	st.mu.Lock()
	st.nodes[n.NodeID] = &saved
	st.mu.Unlock()
	if n.Status == StatusRunning {
		return nil // a failed attempt before its retry: not an event
	}
	ev := Event{Type: "node.finished", RunID: n.RunID, NodeID: n.NodeID, Status: n.Status}
	if n.Error != "" {
		ev.Data, _ = json.Marshal(map[string]string{"error": n.Error})
	}
	x.Events.Publish(ev)
	return nil
}

// startAttempt records that a node attempt starts: at once in memory and
// on the event bus, and in the store only once the attempt has lasted
// RunningCheckpointDelay. Most nodes finish sooner, and then their final
// checkpoint is their only write; a crash before it runs the node once
// more either way, which is all the "running" checkpoint guarantees. The
// caller settles the returned checkpoint before writing the next one.
func (x *Executor) startAttempt(ctx context.Context, st *runState, cp *store.NodeRun) *pendingCheckpoint {
	saved := *cp
	st.mu.Lock()
	st.nodes[cp.NodeID] = &saved
	st.mu.Unlock()
	data, _ := json.Marshal(map[string]int{"attempt": cp.Attempts})
	x.Events.Publish(Event{Type: "node.started", RunID: cp.RunID, NodeID: cp.NodeID, Status: StatusRunning, Data: data})
	p := &pendingCheckpoint{}
	write := func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.settled {
			// Like every checkpoint, it must land even while the run is
			// being canceled.
			p.err = x.store.PutNodeRun(context.WithoutCancel(ctx), saved)
		}
	}
	if x.RunningCheckpointDelay <= 0 {
		write()
		return p
	}
	p.timer = time.AfterFunc(x.RunningCheckpointDelay, write)
	return p
}

// pendingCheckpoint is a "running" checkpoint that may not be written yet.
type pendingCheckpoint struct {
	timer   *time.Timer
	mu      sync.Mutex // held while the checkpoint is written
	settled bool
	err     error
}

// settle cancels the write if it has not started, or waits for it to end,
// so that no late "running" checkpoint can overwrite the final one. It
// returns the write's error, if it was written and failed.
func (p *pendingCheckpoint) settle() error {
	if p.timer != nil {
		p.timer.Stop()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.settled = true
	return p.err
}

// runNode executes one node with its retry policy and records the
// outcome. It returns an error only when the failure must fail the run.
func (x *Executor) runNode(ctx context.Context, st *runState, id string) error {
	n := &st.def.Nodes[st.index[id]]
	st.mu.Lock()
	prior := 0
	if cp := st.nodes[id]; cp != nil {
		prior = cp.Attempts // a crash interrupted an attempt
	}
	st.mu.Unlock()
	maxAttempts := 1
	if n.Retry != nil {
		maxAttempts = n.Retry.MaxAttempts
	}
	// An attempt cut short by a crash is not the module's fault: it gets
	// one more try whatever the retry policy says.
	maxAttempts = max(maxAttempts, prior+1)

	started := time.Now()
	cp := &store.NodeRun{RunID: st.run.ID, NodeID: id, Status: StatusRunning, StartedAt: &started}
	input, err := st.nodeInput(ctx, n)
	if err != nil {
		return x.nodeFailed(ctx, st, n, cp, failureOf("input", err.Error()))
	}
	if limit := x.Limits.WithDefaults().NodeInputBytes; int64(len(input)) > limit {
		le := &LimitError{Field: "the input", Size: int64(len(input)), Limit: limit, Of: "node inputs"}
		return x.nodeFailed(ctx, st, n, cp, failureOf("input", le.Error()))
	}
	if prior > 0 {
		// What an interrupted attempt stored is replaced or, when this
		// attempt's values are small, dropped.
		if err := x.store.DeleteArtifacts(context.WithoutCancel(ctx), st.run.ID, id); err != nil {
			return err
		}
	}
	if cp.Input, err = x.keep(ctx, st.run.ID, id, artifactInput, input); err != nil {
		return err
	}
	moduleID, version, _ := splitModule(n.Module)
	var failure *sandbox.Failure
	for attempt := prior + 1; attempt <= maxAttempts; attempt++ {
		cp.Attempts = attempt
		pending := x.startAttempt(ctx, st, cp)
		ictx, span := x.nodeSpan(ctx, st, n, attempt)
		res, _, err := x.invoker.Invoke(ictx, registry.InvokeRequest{
			ModuleID: moduleID, Version: version, Input: input, Config: n.Config,
			TimeoutCap: time.Duration(n.TimeoutMS) * time.Millisecond,
			OnProgress: func(p sandbox.Progress) {
				data, _ := json.Marshal(p)
				x.Events.Publish(Event{Type: "node.progress", RunID: st.run.ID, NodeID: id, Data: data})
			},
		})
		endNodeSpan(span, res, err)
		if err := pending.settle(); err != nil {
			return err
		}
		switch {
		case err != nil:
			failure = failureOf("invoke", err.Error())
		case res.Failure != nil:
			failure = res.Failure
			cp.Logs = logsJSON(res.Logs)
		default:
			output, err := x.keep(ctx, st.run.ID, id, artifactOutput, res.Output)
			if err != nil {
				return err
			}
			st.mu.Lock()
			st.values[id] = res.Output
			st.mu.Unlock()
			done := time.Now()
			cp.Status, cp.Output, cp.Port, cp.Logs, cp.Error, cp.FinishedAt = StatusSucceeded, output, res.Port, logsJSON(res.Logs), "", &done
			return x.checkpoint(ctx, st, cp)
		}
		if ctx.Err() != nil || attempt == maxAttempts {
			break
		}
		// The failed attempt is stored before the backoff, however short
		// it was: a crash while waiting must not reset the attempt count.
		cp.Error = failure.Error()
		if err := x.checkpoint(ctx, st, cp); err != nil {
			return err
		}
		if err := x.sleep(ctx, backoff(n.Retry, attempt)); err != nil {
			break
		}
	}
	if st.parent.Err() != nil && context.Cause(st.parent) != errRunCanceled {
		return st.parent.Err() // shutdown: the checkpoint stays "running"
	}
	if ctx.Err() != nil {
		// Another branch failed the run, or a user canceled it.
		done := time.Now()
		cp.Status, cp.Error, cp.FinishedAt = StatusCanceled, "canceled because the run failed", &done
		if context.Cause(st.parent) == errRunCanceled {
			cp.Error = "canceled by a user"
		}
		return errors.Join(x.checkpoint(ctx, st, cp), ctx.Err())
	}
	return x.nodeFailed(ctx, st, n, cp, failure)
}

func failureOf(kind, msg string) *sandbox.Failure {
	return &sandbox.Failure{Kind: sandbox.FailureKind(kind), Message: msg}
}

// nodeFailed records a final failure and applies the node's on_error.
func (x *Executor) nodeFailed(ctx context.Context, st *runState, n *Node, cp *store.NodeRun, f *sandbox.Failure) error {
	x.logger().Info("node failed", "run_id", st.run.ID, "node_id", n.ID, "module", n.Module, "kind", string(f.Kind), "error", f.Message)
	done := time.Now()
	cp.Status, cp.Error, cp.FinishedAt = StatusFailed, f.Error(), &done
	switch n.OnError {
	case "continue":
		cp.Output, cp.Port = json.RawMessage("null"), abi.DefaultOutputPort
		return x.checkpoint(ctx, st, cp)
	case "route":
		cp.Output, _ = json.Marshal(map[string]string{"error": f.Message, "kind": string(f.Kind)})
		cp.Port = abi.ErrorOutputPort
		return x.checkpoint(ctx, st, cp)
	}
	cp.Port = "" // takes no edge
	if err := x.checkpoint(ctx, st, cp); err != nil {
		return err
	}
	return fmt.Errorf("node %s failed: %s", n.ID, f.Error())
}

func splitModule(ref string) (id, version string, ok bool) {
	for i := len(ref) - 1; i >= 0; i-- {
		if ref[i] == '@' {
			return ref[:i], ref[i+1:], true
		}
	}
	return ref, "", false
}

func logsJSON(logs []sandbox.LogRecord) json.RawMessage {
	if logs == nil {
		logs = []sandbox.LogRecord{}
	}
	b, _ := json.Marshal(logs)
	return b
}

// backoff is the delay before attempt+1.
func backoff(r *Retry, attempt int) time.Duration {
	if r == nil {
		return 0
	}
	base, mult, ceiling := r.BackoffMS, r.Multiplier, r.MaxBackoffMS
	if base == 0 {
		base = 1000
	}
	if mult == 0 {
		mult = 2
	}
	if ceiling == 0 {
		ceiling = 60_000
	}
	ms := float64(base) * math.Pow(mult, float64(attempt-1))
	return time.Duration(min(ms, float64(ceiling))) * time.Millisecond
}

// finish stores the run's outcome. The output is an object holding the
// output of every node that succeeded and has no outgoing edge (as its
// checkpoint holds it: a reference, for an output stored as an artifact).
func (x *Executor) finish(ctx context.Context, st *runState, failure error) error {
	ctx = context.WithoutCancel(ctx)
	// The outcome becomes st.run only once stored: until then the run is
	// not finished, and execute releases its lease.
	run := st.run
	now := time.Now()
	run.FinishedAt = &now
	switch {
	case errors.Is(failure, errRunCanceled):
		run.Status, run.Error = StatusCanceled, "canceled by a user"
	case failure != nil:
		run.Status, run.Error = StatusFailed, failure.Error()
	default:
		out := map[string]json.RawMessage{}
		for _, n := range st.def.Nodes {
			if cp := st.node(n.ID); len(st.outgoing[n.ID]) == 0 && cp != nil && cp.Status == StatusSucceeded {
				out[n.ID] = cp.Output
			}
		}
		doc, err := json.Marshal(out)
		if err != nil {
			return err
		}
		// Large node outputs are references already; many small ones
		// together may still be too large to keep inline.
		if doc, err = x.keep(ctx, run.ID, "", artifactOutput, doc); err != nil {
			return err
		}
		run.Status, run.Output = StatusSucceeded, doc
	}
	if err := x.store.UpdateRun(ctx, run); err != nil {
		return err
	}
	st.run = run
	data, _ := json.Marshal(map[string]string{"error": st.run.Error})
	x.Events.Publish(Event{Type: "run.finished", RunID: st.run.ID, Status: st.run.Status, Data: data})
	if x.Observer != nil {
		x.Observer.RunFinished(st.run.Status)
	}
	x.logger().Debug("run finished", "run_id", st.run.ID, "status", st.run.Status, "error", st.run.Error)
	return nil
}
