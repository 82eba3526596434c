package training

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"

	"github.com/millrace/millrace/accel/trainjob"
)

// Jobs runs training jobs one at a time (each uses every core) and keeps
// their status in memory; the job folders keep what must survive a
// restart (Train resumes from them). It is safe for concurrent use.
type Jobs struct {
	log  *slog.Logger
	sem  chan struct{}
	mu   sync.Mutex
	jobs map[string]*job
	// changed is closed and replaced whenever any job changes, waking
	// long-polls.
	changed chan struct{}
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

type job struct {
	status trainjob.Status
	cancel context.CancelFunc
}

// NewJobs returns an empty job table; Close cancels what runs.
func NewJobs(log *slog.Logger) *Jobs {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Jobs{log: log, sem: make(chan struct{}, 1), jobs: map[string]*job{}, changed: make(chan struct{}), ctx: ctx, stop: stop}
}

// Close cancels the running jobs (their checkpoints stay) and waits for
// them. Safe twice.
func (j *Jobs) Close() {
	j.stop()
	j.wg.Wait()
}

var jobIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ErrBadID is returned for a job id that is not 1-128 letters, digits,
// '.', '_' or '-'.
var ErrBadID = errors.New("job id must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit")

// Start starts job id, or returns its status if it is already known (a
// client resubmitting after a lost connection). A job that failed or was
// cancelled in this process starts again when resubmitted.
func (j *Jobs) Start(id string, spec trainjob.Spec) (trainjob.Status, error) {
	if !jobIDPattern.MatchString(id) {
		return trainjob.Status{}, ErrBadID
	}
	if ferr := trainjob.ValidateSpec(spec); ferr != nil {
		return trainjob.Status{}, ferr
	}
	if spec.OutputDir == "" || spec.TrainPath == "" || spec.ValidationPath == "" {
		return trainjob.Status{}, &trainjob.FieldError{Field: "spec", Message: "train_path, validation_path and output_dir are required"}
	}
	if spec.Task == TaskFineTuneONNX && spec.BaseModelPath == "" {
		return trainjob.Status{}, &trainjob.FieldError{Field: "spec", Message: "base_model_path is required for task " + TaskFineTuneONNX}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if jb, ok := j.jobs[id]; ok && (!trainjob.Terminal(jb.status.State) || jb.status.State == trainjob.StateSucceeded) {
		return copyStatus(jb.status), nil
	}
	ctx, cancel := context.WithCancel(j.ctx)
	events, _ := ReadEvents(spec.OutputDir) // a resumed job shows its earlier epochs
	jb := &job{status: trainjob.Status{ID: id, State: trainjob.StateQueued, Events: events}, cancel: cancel}
	j.jobs[id] = jb
	j.notifyLocked()
	j.wg.Add(1)
	go j.run(ctx, jb, spec)
	return copyStatus(jb.status), nil
}

func (j *Jobs) run(ctx context.Context, jb *job, spec trainjob.Spec) {
	defer j.wg.Done()
	defer jb.cancel()
	select {
	case j.sem <- struct{}{}:
		defer func() { <-j.sem }()
	case <-ctx.Done():
		j.finish(jb, nil, ErrCancelled)
		return
	}
	j.update(jb, func(s *trainjob.Status) { s.State = trainjob.StateRunning })
	j.log.Info("training started", "job", jb.status.ID, "task", spec.Task, "output", spec.OutputDir)
	var res *JobResult
	var err error
	defer func() {
		// GoMLX reports some graph errors by panicking: they fail the
		// job, not the service.
		if p := recover(); p != nil {
			err = fmt.Errorf("training failed: %v", p)
		}
		j.finish(jb, res, err)
	}()
	res, err = Train(ctx, spec, func(ev Epoch) {
		j.update(jb, func(s *trainjob.Status) {
			for len(s.Events) > 0 && s.Events[len(s.Events)-1].Epoch >= ev.Epoch {
				s.Events = s.Events[:len(s.Events)-1]
			}
			s.Events = append(s.Events, ev)
		})
	})
}

func (j *Jobs) finish(jb *job, res *JobResult, err error) {
	j.update(jb, func(s *trainjob.Status) {
		switch {
		case err == nil:
			s.State, s.Result = trainjob.StateSucceeded, res
		case errors.Is(err, ErrCancelled):
			s.State = trainjob.StateCancelled
		default:
			s.State, s.Error = trainjob.StateFailed, err.Error()
		}
	})
	j.log.Info("training ended", "job", jb.status.ID, "state", jb.status.State, "error", jb.status.Error)
}

func (j *Jobs) update(jb *job, f func(*trainjob.Status)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	f(&jb.status)
	j.notifyLocked()
}

func (j *Jobs) notifyLocked() {
	close(j.changed)
	j.changed = make(chan struct{})
}

// Get returns job id's status.
func (j *Jobs) Get(id string) (trainjob.Status, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	jb, ok := j.jobs[id]
	if !ok {
		return trainjob.Status{}, false
	}
	return copyStatus(jb.status), true
}

// List returns every job's status.
func (j *Jobs) List() []trainjob.Status {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]trainjob.Status, 0, len(j.jobs))
	for _, jb := range j.jobs {
		out = append(out, copyStatus(jb.status))
	}
	return out
}

// Wait returns job id's status once it has more than after events or has
// ended, or when ctx ends (a long-poll).
func (j *Jobs) Wait(ctx context.Context, id string, after int) (trainjob.Status, bool) {
	for {
		j.mu.Lock()
		jb, ok := j.jobs[id]
		changed := j.changed
		var st trainjob.Status
		if ok {
			st = copyStatus(jb.status)
		}
		j.mu.Unlock()
		if !ok || len(st.Events) > after || trainjob.Terminal(st.State) {
			return st, ok
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return st, true
		}
	}
}

// Cancel cancels job id; its checkpoint stays. It reports whether the job
// is known.
func (j *Jobs) Cancel(id string) bool {
	j.mu.Lock()
	jb, ok := j.jobs[id]
	j.mu.Unlock()
	if ok {
		jb.cancel()
	}
	return ok
}

func copyStatus(s trainjob.Status) trainjob.Status {
	s.Events = append([]trainjob.Epoch(nil), s.Events...)
	return s
}
