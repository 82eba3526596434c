package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/millrace/millrace/server/store"
)

// CreateTrigger stores a trigger after checking that the workflows it
// names exist (the foreign keys would refuse it too, but not say which).
func (s *DB) CreateTrigger(ctx context.Context, t store.Trigger) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		for _, wf := range []string{t.WorkflowID, t.SourceWorkflowID} {
			if wf == "" {
				continue
			}
			var one int
			if err := tx.QueryRow(ctx, `SELECT 1 FROM workflows WHERE id = $1`, wf).Scan(&one); err != nil {
				if errors.Is(err, pgx.ErrNoRows) {
					return fmt.Errorf("workflow %q: %w", wf, store.ErrNotFound)
				}
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO triggers (id, workflow_id, kind, config, secret, source_workflow_id, next_fire_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			t.ID, t.WorkflowID, t.Kind, string(t.Config), t.Secret, nullString(t.SourceWorkflowID), nullNanos(t.NextFireAt), t.CreatedAt.UTC())
		switch {
		case isUniqueViolation(err):
			return fmt.Errorf("trigger %s: %w", t.ID, store.ErrConflict)
		case hasCode(err, foreignKeyViolation):
			// A workflow deleted since the check above.
			return fmt.Errorf("trigger %s: its workflow is gone: %w", t.ID, store.ErrNotFound)
		}
		return err
	})
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullNanos(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixNano()
}

const triggerColumns = `id, workflow_id, kind, config, secret, source_workflow_id, next_fire_at, created_at`

func scanTrigger(row pgx.Row) (store.Trigger, error) {
	var t store.Trigger
	var config string
	var source *string
	var next *int64
	if err := row.Scan(&t.ID, &t.WorkflowID, &t.Kind, &config, &t.Secret, &source, &next, &t.CreatedAt); err != nil {
		return t, notFound(err)
	}
	t.Config, t.CreatedAt = []byte(config), t.CreatedAt.UTC()
	if source != nil {
		t.SourceWorkflowID = *source
	}
	if next != nil {
		n := time.Unix(0, *next).UTC()
		t.NextFireAt = &n
	}
	return t, nil
}

func (s *DB) queryTriggers(ctx context.Context, query string, args ...any) ([]store.Trigger, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Trigger
	for rows.Next() {
		t, err := scanTrigger(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Trigger returns one trigger.
func (s *DB) Trigger(ctx context.Context, id string) (store.Trigger, error) {
	return scanTrigger(s.pool.QueryRow(ctx, `SELECT `+triggerColumns+` FROM triggers WHERE id = $1`, id))
}

// ListTriggers lists triggers oldest first.
func (s *DB) ListTriggers(ctx context.Context, f store.TriggerFilter) ([]store.Trigger, error) {
	var where []string
	var args []any
	for _, c := range []struct{ column, value string }{{"workflow_id", f.WorkflowID}, {"kind", f.Kind}, {"source_workflow_id", f.SourceWorkflowID}} {
		if c.value != "" {
			args = append(args, c.value)
			where = append(where, c.column+" = $"+strconv.Itoa(len(args)))
		}
	}
	q := `SELECT ` + triggerColumns + ` FROM triggers`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	return s.queryTriggers(ctx, q+` ORDER BY created_at, id`, args...)
}

// DeleteTrigger removes a trigger and, by cascade, its recorded deliveries.
func (s *DB) DeleteTrigger(ctx context.Context, id string) error {
	return expectOne(s.pool.Exec(ctx, `DELETE FROM triggers WHERE id = $1`, id))
}

// DueCronTriggers lists triggers whose next tick has come.
func (s *DB) DueCronTriggers(ctx context.Context, now time.Time, limit int) ([]store.Trigger, error) {
	return s.queryTriggers(ctx, `SELECT `+triggerColumns+` FROM triggers WHERE next_fire_at IS NOT NULL AND next_fire_at <= $1
		ORDER BY next_fire_at, id LIMIT $2`, now.UnixNano(), limit)
}

// ClaimCronTick moves a trigger's next tick if nobody moved it first.
// Concurrent claimers queue on the row lock; once the winner commits, the
// others' WHERE no longer matches (READ COMMITTED rechecks the new row),
// so exactly one of them claims the tick.
func (s *DB) ClaimCronTick(ctx context.Context, id string, expectedNext, newNext time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE triggers SET next_fire_at = $1 WHERE id = $2 AND next_fire_at = $3`,
		newNext.UnixNano(), id, expectedNext.UnixNano())
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// RecordDelivery inserts a delivery or returns the run of the one already
// recorded under the key. Two deliveries with one key may arrive at once:
// the insert that loses waits for the winner to commit and then reads the
// winner's row, so exactly one is created.
func (s *DB) RecordDelivery(ctx context.Context, triggerID, key, runID string) (string, bool, error) {
	for range 3 {
		tag, err := s.pool.Exec(ctx, `INSERT INTO webhook_deliveries (trigger_id, idempotency_key, run_id, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (trigger_id, idempotency_key) DO NOTHING`, triggerID, key, runID, now())
		if hasCode(err, foreignKeyViolation) {
			return "", false, fmt.Errorf("trigger %s: %w", triggerID, store.ErrNotFound)
		}
		if err != nil {
			return "", false, err
		}
		if tag.RowsAffected() == 1 {
			return "", true, nil
		}
		var existing string
		err = s.pool.QueryRow(ctx, `SELECT run_id FROM webhook_deliveries WHERE trigger_id = $1 AND idempotency_key = $2`, triggerID, key).Scan(&existing)
		if err == nil {
			return existing, false, nil
		}
		// Forgotten or pruned between the two statements: try again.
		if !errors.Is(err, pgx.ErrNoRows) {
			return "", false, err
		}
	}
	return "", false, fmt.Errorf("delivery %q of trigger %s keeps being forgotten while recording it", key, triggerID)
}

// SetDeliveryRun fills in the run of a reserved delivery.
func (s *DB) SetDeliveryRun(ctx context.Context, triggerID, key, runID string) error {
	return expectOne(s.pool.Exec(ctx, `UPDATE webhook_deliveries SET run_id = $1 WHERE trigger_id = $2 AND idempotency_key = $3 AND run_id = ''`,
		runID, triggerID, key))
}

// ForgetDelivery removes a delivery still reserved since before the given
// time.
func (s *DB) ForgetDelivery(ctx context.Context, triggerID, key string, reservedBefore time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhook_deliveries WHERE trigger_id = $1 AND idempotency_key = $2 AND run_id = '' AND created_at < $3`,
		triggerID, key, reservedBefore.UTC())
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// PruneDeliveries forgets deliveries recorded before the given time.
func (s *DB) PruneDeliveries(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhook_deliveries WHERE created_at < $1`, before.UTC())
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}
