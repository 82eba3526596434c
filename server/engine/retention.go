package engine

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/millrace/millrace/server/store"
)

// RetentionPolicy says which finished runs are kept. Queued and running
// runs are always kept.
type RetentionPolicy struct {
	// MaxAge deletes runs that finished longer ago than this; 0 keeps
	// runs of any age.
	MaxAge time.Duration
	// MaxRuns keeps at most this many finished runs per workflow, the
	// newest; 0 keeps any number.
	MaxRuns int
	// Every is how often the policy is applied; default 5 minutes.
	Every time.Duration
}

// DefaultRetention returns the policy a server has unless told otherwise:
// 30 days and 1000 runs per workflow, applied every 5 minutes.
func DefaultRetention() RetentionPolicy {
	return RetentionPolicy{MaxAge: 30 * 24 * time.Hour, MaxRuns: 1000, Every: 5 * time.Minute}
}

// pruneBatch bounds the runs one statement deletes, so that a first pass
// over a large backlog does not hold SQLite's one writer for long.
const pruneBatch = 500

// Retention deletes finished runs past a policy, with their checkpoints
// and artifacts, and gives the space back to the database: at start and
// then periodically.
type Retention struct {
	store  store.Store
	policy RetentionPolicy
	logger *slog.Logger

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// NewRetention returns a retention service over a store. A nil logger
// means slog's default.
func NewRetention(s store.Store, p RetentionPolicy, logger *slog.Logger) *Retention {
	if p.Every <= 0 {
		p.Every = DefaultRetention().Every
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Retention{store: s, policy: p, logger: logger}
}

// Start applies the policy now and then every p.Every, in the background,
// until Stop. Starting a policy that keeps everything does nothing.
func (r *Retention) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil || (r.policy.MaxAge <= 0 && r.policy.MaxRuns <= 0) {
		return nil
	}
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.done = make(chan struct{})
	go r.loop(ctx, r.done)
	return nil
}

// Stop ends the loop and waits for a pass in progress. It is safe to call
// twice, and before Start.
func (r *Retention) Stop() {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel, r.done = nil, nil
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (r *Retention) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(r.policy.Every)
	defer t.Stop()
	for {
		if _, err := r.Apply(ctx); err != nil && ctx.Err() == nil {
			r.logger.Warn("applying the run retention policy", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Apply deletes the runs the policy no longer keeps, in batches, then
// reclaims their space if it deleted any. It returns how many it deleted.
func (r *Retention) Apply(ctx context.Context) (int64, error) {
	var before time.Time
	if r.policy.MaxAge > 0 {
		before = time.Now().Add(-r.policy.MaxAge)
	}
	keep := max(r.policy.MaxRuns, 0)
	if before.IsZero() && keep == 0 {
		return 0, nil
	}
	var total int64
	for {
		n, err := r.store.PruneRuns(ctx, before, keep, pruneBatch)
		total += n
		if err != nil {
			return total, err
		}
		if n < pruneBatch {
			break
		}
	}
	if total == 0 {
		return 0, nil
	}
	start := time.Now()
	if err := r.store.ReclaimSpace(ctx); err != nil {
		return total, err
	}
	r.logger.Info("deleted runs past the retention policy", "runs", total, "max_age", r.policy.MaxAge, "max_runs", r.policy.MaxRuns,
		"reclaim_ms", time.Since(start).Milliseconds())
	return total, nil
}
