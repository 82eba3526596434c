package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/store"
)

// Follower fires workflow_finished triggers. It listens to this
// process's run events, so the process that finishes a run starts the
// runs that follow it; a process that dies between the two steps loses
// them (see RATIONALE.md).
type Follower struct {
	svc *Service

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// NewFollower returns a follower for the service's workflow_finished
// triggers.
func NewFollower(svc *Service) *Follower { return &Follower{svc: svc} }

// Start subscribes to run events; runs finishing from now on start their
// followers.
func (f *Follower) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cancel != nil {
		return fmt.Errorf("the follower is already running")
	}
	events, _, unsubscribe := f.svc.runs.Events().Subscribe(0, func(e engine.Event) bool { return e.Type == "run.finished" })
	ctx, f.cancel = context.WithCancel(context.WithoutCancel(ctx))
	f.done = make(chan struct{})

	// The bus drops events for a subscriber that falls 256 behind, and
	// starting a run takes a few store writes: a reader moves events into
	// an unbounded queue at once, a worker starts the runs.
	var (
		qmu     sync.Mutex
		pending []engine.Event
		wake    = make(chan struct{}, 1)
		wg      sync.WaitGroup
	)
	wg.Go(func() {
		defer unsubscribe()
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-events:
				qmu.Lock()
				pending = append(pending, e)
				qmu.Unlock()
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
			for {
				qmu.Lock()
				if len(pending) == 0 {
					qmu.Unlock()
					break
				}
				e := pending[0]
				pending = pending[1:]
				qmu.Unlock()
				f.follow(ctx, e.RunID)
			}
		}
	})
	go func() {
		wg.Wait()
		close(f.done)
	}()
	return nil
}

// Stop stops following; runs finishing afterwards start nothing. It is
// safe before Start and more than once.
func (f *Follower) Stop() {
	f.mu.Lock()
	cancel, done := f.cancel, f.done
	f.cancel = nil
	f.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// follow starts the workflows whose triggers follow the finished run's
// workflow and its status.
func (f *Follower) follow(ctx context.Context, runID string) {
	s := f.svc
	run, err := s.store.Run(ctx, runID)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			s.logger.Warn("reading a finished run for its followers", "run", runID, "err", err)
		}
		return
	}
	triggers, err := s.store.ListTriggers(ctx, store.TriggerFilter{Kind: KindWorkflowFinished, SourceWorkflowID: run.WorkflowID})
	if err != nil {
		s.logger.Warn("looking for workflow_finished triggers", "workflow", run.WorkflowID, "err", err)
		return
	}
	for _, t := range triggers {
		var c AfterConfig
		if err := json.Unmarshal(t.Config, &c); err != nil {
			s.logger.Error("workflow_finished trigger is damaged", "trigger", t.ID, "err", err)
			continue
		}
		if !slices.Contains(c.Statuses, run.Status) {
			continue
		}
		input := map[string]any{"run_id": run.ID, "workflow_id": run.WorkflowID, "status": run.Status, "output": run.Output}
		if run.Error != "" {
			input["error"] = run.Error
		}
		started, err := s.startRun(ctx, t, input)
		if err != nil {
			s.logger.Warn("workflow_finished trigger could not start a run", "trigger", t.ID, "workflow", t.WorkflowID, "after_run", run.ID, "err", err)
			continue
		}
		s.logger.Info("workflow_finished trigger started a run", "trigger", t.ID, "run", started.ID, "after_run", run.ID)
	}
}
