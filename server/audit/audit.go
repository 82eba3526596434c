// Package audit records who did what: sign-ins and their failures, user,
// token, module, workflow, secret, trigger and model changes, backups and
// restores. The log is append-only: the store has no method to change or
// delete an entry, and the API only reads it. Entries leave only by age
// (Retention).
package audit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/millrace/millrace/server/store"
)

// Outcomes of an audited action.
const (
	Success = "success"
	Failure = "failure" // attempted and failed (bad input, wrong password, not found)
	Denied  = "denied"  // refused for lack of a right (403)
)

// DefaultRetention keeps a year of entries.
const DefaultRetention = 365 * 24 * time.Hour

// Actor is who acts: set on the request's context by the API, or left
// unset for the server itself (then the entry names "system").
type Actor struct {
	ID       string // usr_… or tok_…; "" when unknown (a failed sign-in)
	Name     string
	ClientIP string
}

type actorKey struct{}

// WithActor returns a context whose audit entries name actor.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor WithActor set.
func ActorFrom(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}

// Event is one action to record.
type Event struct {
	Action  string // e.g. "login", "create-user", "backup-create"
	Target  string // what it acted on, e.g. "/v1/users/usr_…" or a file name
	Outcome string // Success, Failure or Denied; "" means Success
	Detail  string // anything else worth keeping (never a secret)
}

// Log writes audit entries to the store.
type Log struct {
	store store.Store
	// Retention is how long entries are kept; 0 keeps them forever.
	Retention time.Duration
	Now       func() time.Time

	mu        sync.Mutex
	lastPrune time.Time
}

// New returns a log keeping DefaultRetention of entries.
func New(s store.Store) *Log { return &Log{store: s, Retention: DefaultRetention, Now: time.Now} }

// Record appends an entry naming the context's actor. A failure to write
// is logged and returned; callers whose action already happened may
// ignore it. A nil Log records nothing.
func (l *Log) Record(ctx context.Context, e Event) error {
	if l == nil {
		return nil
	}
	actor, ok := ActorFrom(ctx)
	if !ok {
		actor = Actor{Name: "system"}
	}
	if e.Outcome == "" {
		e.Outcome = Success
	}
	now := l.Now().UTC()
	// The action has happened: record it even if the request was
	// cancelled meanwhile.
	ctx = context.WithoutCancel(ctx)
	err := l.store.AppendAudit(ctx, store.AuditEntry{At: now, ActorID: actor.ID, ActorName: actor.Name, Action: e.Action, Target: e.Target,
		Outcome: e.Outcome, ClientIP: actor.ClientIP, Detail: e.Detail})
	if err != nil {
		slog.ErrorContext(ctx, "writing the audit log", "action", e.Action, "target", e.Target, "err", err)
		return err
	}
	l.prune(ctx, now)
	return nil
}

// prune drops entries past retention, at most once an hour, from the
// write path: the log only grows through writes.
func (l *Log) prune(ctx context.Context, now time.Time) {
	if l.Retention <= 0 {
		return
	}
	l.mu.Lock()
	due := now.Sub(l.lastPrune) > time.Hour
	if due {
		l.lastPrune = now
	}
	l.mu.Unlock()
	if due {
		if _, err := l.store.PruneAudit(ctx, now.Add(-l.Retention)); err != nil {
			slog.WarnContext(ctx, "pruning the audit log", "err", err)
		}
	}
}
