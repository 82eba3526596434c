package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/millrace/millrace/server/store"
	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// CreateTrigger stores a trigger after checking that the workflows it
// names exist (the foreign keys would refuse it too, but not say which).
func (s *DB) CreateTrigger(ctx context.Context, t store.Trigger) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, wf := range []string{t.WorkflowID, t.SourceWorkflowID} {
			if wf == "" {
				continue
			}
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM workflows WHERE id = ?`, wf).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("workflow %q: %w", wf, store.ErrNotFound)
			}
			if err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO triggers (id, workflow_id, kind, config, secret, source_workflow_id, next_fire_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.WorkflowID, t.Kind, string(t.Config), t.Secret, nullString(t.SourceWorkflowID), nullNanos(t.NextFireAt),
			t.CreatedAt.UTC().Format(time.RFC3339Nano))
		if isUniqueViolation(err) {
			return fmt.Errorf("trigger %s: %w", t.ID, store.ErrConflict)
		}
		return err
	})
}

func isForeignKeyViolation(err error) bool {
	var se *sqlitedrv.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
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

func scanTrigger(row interface{ Scan(...any) error }) (store.Trigger, error) {
	var t store.Trigger
	var config, created string
	var source sql.NullString
	var next sql.NullInt64
	if err := row.Scan(&t.ID, &t.WorkflowID, &t.Kind, &config, &t.Secret, &source, &next, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return t, store.ErrNotFound
		}
		return t, err
	}
	t.Config, t.SourceWorkflowID, t.CreatedAt = []byte(config), source.String, parseTime(created)
	if next.Valid {
		n := time.Unix(0, next.Int64).UTC()
		t.NextFireAt = &n
	}
	return t, nil
}

func (s *DB) queryTriggers(ctx context.Context, query string, args ...any) ([]store.Trigger, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
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
	return scanTrigger(s.rd.QueryRowContext(ctx, `SELECT `+triggerColumns+` FROM triggers WHERE id = ?`, id))
}

// ListTriggers lists triggers oldest first.
func (s *DB) ListTriggers(ctx context.Context, f store.TriggerFilter) ([]store.Trigger, error) {
	var where []string
	var args []any
	for _, c := range []struct{ column, value string }{{"workflow_id", f.WorkflowID}, {"kind", f.Kind}, {"source_workflow_id", f.SourceWorkflowID}} {
		if c.value != "" {
			where = append(where, c.column+" = ?")
			args = append(args, c.value)
		}
	}
	q := `SELECT ` + triggerColumns + ` FROM triggers`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	return s.queryTriggers(ctx, q+` ORDER BY created_at, id`, args...)
}

// DeleteTrigger removes a trigger and its recorded deliveries.
func (s *DB) DeleteTrigger(ctx context.Context, id string) error {
	return expectOne(s.db.ExecContext(ctx, `DELETE FROM triggers WHERE id = ?`, id))
}

// DueCronTriggers lists triggers whose next tick has come.
func (s *DB) DueCronTriggers(ctx context.Context, now time.Time, limit int) ([]store.Trigger, error) {
	return s.queryTriggers(ctx, `SELECT `+triggerColumns+` FROM triggers WHERE next_fire_at IS NOT NULL AND next_fire_at <= ?
		ORDER BY next_fire_at, id LIMIT ?`, now.UnixNano(), limit)
}

// ClaimCronTick moves a trigger's next tick if nobody moved it first.
func (s *DB) ClaimCronTick(ctx context.Context, id string, expectedNext, newNext time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE triggers SET next_fire_at = ? WHERE id = ? AND next_fire_at = ?`,
		newNext.UnixNano(), id, expectedNext.UnixNano())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RecordDelivery inserts a delivery or returns the run of the one already
// recorded under the key.
func (s *DB) RecordDelivery(ctx context.Context, triggerID, key, runID string) (string, bool, error) {
	var existing string
	created := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT run_id FROM webhook_deliveries WHERE trigger_id = ? AND idempotency_key = ?`, triggerID, key).Scan(&existing)
		if err == nil || !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (trigger_id, idempotency_key, run_id, created_at) VALUES (?, ?, ?, ?)`,
			triggerID, key, runID, time.Now().UnixNano())
		if isForeignKeyViolation(err) {
			return fmt.Errorf("trigger %s: %w", triggerID, store.ErrNotFound)
		}
		created = err == nil
		return err
	})
	return existing, created, err
}

// SetDeliveryRun fills in the run of a reserved delivery.
func (s *DB) SetDeliveryRun(ctx context.Context, triggerID, key, runID string) error {
	return expectOne(s.db.ExecContext(ctx, `UPDATE webhook_deliveries SET run_id = ? WHERE trigger_id = ? AND idempotency_key = ? AND run_id = ''`,
		runID, triggerID, key))
}

// ForgetDelivery removes a delivery still reserved since before the given
// time.
func (s *DB) ForgetDelivery(ctx context.Context, triggerID, key string, reservedBefore time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE trigger_id = ? AND idempotency_key = ? AND run_id = '' AND created_at < ?`,
		triggerID, key, reservedBefore.UnixNano())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// PruneDeliveries forgets deliveries recorded before the given time.
func (s *DB) PruneDeliveries(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE created_at < ?`, before.UnixNano())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
