package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/tracing"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivermigrate"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// RunArgs is the River job that executes one workflow run. One job runs a
// whole run (nodes execute in process, checkpointed in the store): River
// completes jobs in batches every ~250 ms, so a job per node would add
// that much to every hop (see ../shared/reference/river-measured.md).
type RunArgs struct {
	RunID string `json:"run_id"`
	// Trace is the W3C trace context (traceparent, tracestate) of what
	// queued the run, so that the run's span, in whichever process
	// executes it, joins the trigger's trace. Empty when tracing is off.
	Trace map[string]string `json:"trace,omitempty"`
}

// Kind names the job kind in River's tables.
func (RunArgs) Kind() string { return "workflow_run" }

type runWorker struct {
	river.WorkerDefaults[RunArgs]
	exec   *Executor
	tracer trace.Tracer // nil: tracing off
}

// Timeout is unlimited: a run may be long, and each module invocation
// has its own timeout.
func (w *runWorker) Timeout(*river.Job[RunArgs]) time.Duration { return -1 }

func (w *runWorker) Work(ctx context.Context, job *river.Job[RunArgs]) error {
	var span trace.Span
	if w.tracer != nil {
		ctx, span = w.tracer.Start(tracing.Extract(ctx, job.Args.Trace), "run",
			trace.WithAttributes(tracing.AttrRunID.String(job.Args.RunID), attribute.Int("millrace.job_attempt", job.Attempt)))
	}
	run, err := w.exec.Execute(ctx, job.Args.RunID)
	if span != nil {
		span.SetAttributes(tracing.AttrWorkflowID.String(run.WorkflowID), tracing.AttrStatus.String(run.Status))
		tracing.End(span, err)
	}
	if w.exec.Draining() && (errors.Is(err, ErrDraining) || ctx.Err() != nil) {
		// Shutdown: the run is handed back (its lease released, its
		// finished nodes checkpointed). Available again at once, so
		// another process, or this one's next start, resumes it without
		// waiting for a lease to expire or a retry backoff.
		return river.JobSnooze(0)
	}
	var held *LeaseHeldError
	if errors.As(err, &held) {
		// Someone else executes it; look again when their lease would
		// have expired, in case they died.
		return river.JobSnooze(max(time.Until(held.Until), time.Second))
	}
	if errors.Is(err, store.ErrNotFound) {
		// The run is gone (retention deleted it after it finished, and
		// this is a duplicate job): retrying cannot help.
		return river.JobCancel(err)
	}
	return err
}

// QueueConfig tunes the durable queue.
type QueueConfig struct {
	Workers int // runs executed at once by this process; default 64
	// RecoverEvery is how often orphaned runs (their worker died) are
	// looked for and queued again; default a third of the lease TTL.
	RecoverEvery time.Duration
	// QueuedGrace is how long a queued run may wait for its job before
	// it is considered lost and queued again; default 10 minutes.
	QueuedGrace time.Duration
	Logger      *slog.Logger
	// Tracer, if set, gives each execution of a run a span, the child of
	// the span that queued it; nil records none.
	Tracer trace.Tracer
}

// Queue executes runs durably through River.
type Queue struct {
	insert     func(ctx context.Context, runID string) error
	start      func(ctx context.Context) error
	stop       func(ctx context.Context) error
	cancelJobs func(ctx context.Context) error
	exec       *Executor
	cfg        QueueConfig
	stopped    chan struct{}
	cancel     context.CancelFunc
	// requeued remembers when recovery last queued each run; only the
	// recovery goroutine touches it.
	requeued map[string]time.Time

	// Eager starts (ExecuteNow): slots bounds how many run at once,
	// eagerCtx is their lifetime (canceled when the shutdown grace period
	// ends), and eagerRuns counts those still executing.
	slots       chan struct{}
	eagerMu     sync.Mutex // guards accepting and eagerRuns.Add against Stop
	accepting   bool
	eagerRuns   sync.WaitGroup
	eagerCtx    context.Context
	eagerCancel context.CancelFunc
}

// Outcome is how an eagerly started run ended in this process: finished,
// or (Err set, Run not finished) handed to the queue to be resumed.
type Outcome struct {
	Run   store.Run
	Nodes []store.NodeRun // the run's checkpoints, in the definition's order
	Err   error
}

// NewQueue migrates River's tables and prepares a client on driver. The
// executor's runs are the queue's jobs.
func NewQueue[TTx any](ctx context.Context, driver riverdriver.Driver[TTx], exec *Executor, cfg QueueConfig) (*Queue, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.RecoverEvery <= 0 {
		cfg.RecoverEvery = exec.LeaseTTL / 3
	}
	if cfg.QueuedGrace <= 0 {
		cfg.QueuedGrace = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		return nil, err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return nil, fmt.Errorf("migrating River's tables: %w", err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &runWorker{exec: exec, tracer: cfg.Tracer})
	client, err := river.NewClient(driver, &river.Config{
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers}},
		Workers: workers,
		// Fetch promptly: a webhook waits for its run. A run inserted by
		// this process triggers a fetch at once (River does so for
		// drivers without a listener; PostgreSQL's LISTEN does it for
		// every process), so polling is only the backstop for runs other
		// processes insert; polling every 5 ms cost the single SQLite
		// connection 200 transactions a second under load.
		FetchCooldown:     time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		// Our own recovery (leases) resumes runs of dead workers within
		// the lease TTL; River's rescue is only a backstop.
		RescueStuckJobsAfter: 15 * time.Minute,
		MaxAttempts:          25,
		Logger:               cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	return &Queue{
		insert: func(ctx context.Context, runID string) error {
			_, err := client.Insert(ctx, RunArgs{RunID: runID, Trace: tracing.Inject(ctx)}, nil)
			return err
		},
		start:      client.Start,
		stop:       client.Stop,
		cancelJobs: client.StopAndCancel,
		exec:       exec,
		cfg:        cfg,
		stopped:    make(chan struct{}),
		requeued:   map[string]time.Time{},
		slots:      make(chan struct{}, cfg.Workers),
	}, nil
}

// Enqueue schedules a run for execution.
func (q *Queue) Enqueue(ctx context.Context, runID string) error { return q.insert(ctx, runID) }

// Start starts working jobs and the recovery loop. Runs left running by a
// previous process are queued again at once.
func (q *Queue) Start(ctx context.Context) error {
	// River stops hard (cancelling jobs mid-node) when its start context
	// ends; the stop is Stop's to make, gracefully.
	if err := q.start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	ctx, q.cancel = context.WithCancel(context.WithoutCancel(ctx))
	q.eagerMu.Lock()
	q.eagerCtx, q.eagerCancel = context.WithCancel(context.WithoutCancel(ctx))
	q.accepting = true
	q.eagerMu.Unlock()
	go q.recoverLoop(ctx)
	return nil
}

// ExecuteNow creates run (leased to this process, running) and executes
// it here at once, in the background, calling done with the outcome: an
// eager start. A caller that waits for the run (a sync webhook) so skips
// the queue's insert, fetch and completion, three writes and a poll of
// latency. Durability is the lease's: if this process dies, the lease
// expires and recovery queues the run like any orphan; a run that cannot
// finish here (shutdown, a store error) is handed to the queue at once.
//
// ok is false, and nothing is created, when this process cannot take the
// run now: the queue is not started or is stopping, or Workers eager runs
// are executing already. The caller queues the run instead.
func (q *Queue) ExecuteNow(ctx context.Context, run store.Run, def *Definition, done func(Outcome)) (ok bool, err error) {
	q.eagerMu.Lock()
	if !q.accepting || q.exec.Draining() {
		q.eagerMu.Unlock()
		return false, nil
	}
	select {
	case q.slots <- struct{}{}:
	default:
		q.eagerMu.Unlock()
		return false, nil
	}
	q.eagerRuns.Add(1)
	runCtx := q.eagerCtx
	q.eagerMu.Unlock()
	release := func() { <-q.slots; q.eagerRuns.Done() }

	now := time.Now()
	run.Status, run.StartedAt = StatusRunning, &now
	if err := q.exec.store.CreateLeasedRun(ctx, run, q.exec.Owner, now.Add(q.exec.LeaseTTL)); err != nil {
		release()
		return false, err
	}
	var span trace.Span
	if q.cfg.Tracer != nil {
		// The run's span, as the queue's worker would start it, under
		// the caller's (the trigger's) span; runCtx itself outlives the
		// caller.
		runCtx, span = q.cfg.Tracer.Start(trace.ContextWithSpanContext(runCtx, trace.SpanContextFromContext(ctx)), "run",
			trace.WithAttributes(tracing.AttrRunID.String(run.ID), tracing.AttrWorkflowID.String(run.WorkflowID)))
	}
	go func() {
		defer release()
		out, nodes, err := q.exec.ExecuteLeased(runCtx, run, def)
		if span != nil {
			span.SetAttributes(tracing.AttrStatus.String(out.Status))
			tracing.End(span, err)
		}
		if !finished(out.Status) {
			if err == nil {
				err = errors.New("the run stopped unfinished")
			}
			q.handBack(runCtx, run.ID, err)
		}
		done(Outcome{Run: out, Nodes: nodes, Err: err})
	}()
	return true, nil
}

// handBack queues an eagerly started run that did not finish here, so
// that a worker (this process's next start, or another process) resumes
// it from its checkpoints. Should this fail too, recovery still finds the
// run: it is running, and its lease was released.
func (q *Queue) handBack(runCtx context.Context, runID string, cause error) {
	// The job carries the run's trace (the context's span), not its end.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(runCtx), 10*time.Second)
	defer cancel()
	if err := q.insert(ctx, runID); err != nil {
		q.cfg.Logger.Warn("handing an eagerly started run to the queue", "run_id", runID, "cause", cause, "err", err)
		return
	}
	q.cfg.Logger.Info("eagerly started run handed to the queue", "run_id", runID, "cause", cause)
}

// Stop shuts the queue down gracefully: it stops fetching jobs and
// starting nodes, lets the nodes executing now finish until ctx is done
// (the grace period), then cancels what still runs. Every run not finished
// is handed back: its job is available again at once and its lease
// released, so another process or the next start resumes it; a node cut
// off by the end of the grace period runs once more there, a finished one
// never does.
func (q *Queue) Stop(ctx context.Context) error {
	if q.cancel == nil {
		return nil
	}
	q.exec.Drain()
	q.eagerMu.Lock()
	q.accepting = false
	q.eagerMu.Unlock()
	q.cancel()
	<-q.stopped
	eagerDone := make(chan struct{})
	go func() { q.eagerRuns.Wait(); close(eagerDone) }()
	err := q.stop(ctx)
	riverStopped := err == nil
	if riverStopped {
		select {
		case <-eagerDone:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err != nil && ctx.Err() != nil {
		// The grace period is over: cancel the nodes still running (they
		// checkpoint as interrupted) and wait for River to record the
		// jobs handed back, and for eager runs to be handed to it.
		cancelCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		q.cfg.Logger.Warn("shutdown grace period over: interrupting the nodes still running")
		q.eagerCancel()
		if !riverStopped {
			err = q.cancelJobs(cancelCtx)
		}
		select {
		case <-eagerDone:
		case <-cancelCtx.Done():
		}
	}
	return err
}

func (q *Queue) recoverLoop(ctx context.Context) {
	defer close(q.stopped)
	t := time.NewTicker(q.cfg.RecoverEvery)
	defer t.Stop()
	for {
		q.recoverOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// recoverOnce queues again runs whose worker died (their lease expired)
// and queued runs whose job was lost. A duplicate job is harmless: the
// lease admits one executor, and a finished run is not executed again.
func (q *Queue) recoverOnce(ctx context.Context) {
	now := time.Now()
	ids, err := q.exec.store.OrphanedRuns(ctx, now, now.Add(-q.cfg.QueuedGrace), 100)
	if err != nil {
		if ctx.Err() == nil {
			q.cfg.Logger.Warn("looking for orphaned runs", "err", err)
		}
		return
	}
	for id, at := range q.requeued {
		if now.Sub(at) > 2*q.exec.LeaseTTL {
			delete(q.requeued, id)
		}
	}
	for _, id := range ids {
		// A run queued again recently is waiting for a worker; don't
		// pile up jobs for it.
		if _, recent := q.requeued[id]; recent {
			continue
		}
		q.requeued[id] = now
		if err := q.insert(ctx, id); err != nil {
			q.cfg.Logger.Warn("queueing an orphaned run", "run_id", id, "err", err)
			continue
		}
		q.cfg.Logger.Info("resuming an orphaned run", "run_id", id)
	}
}
