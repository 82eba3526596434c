package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/millrace/millrace/server/store"
)

func nullJSON(b json.RawMessage) any {
	if b == nil {
		return nil
	}
	return string(b)
}

func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func timePtr(s sql.NullString) *time.Time {
	if !s.Valid {
		return nil
	}
	t := parseTime(s.String)
	return &t
}

func jsonPtr(s sql.NullString) json.RawMessage {
	if !s.Valid {
		return nil
	}
	return json.RawMessage(s.String)
}

// CreateRun stores a new run.
func (s *DB) CreateRun(ctx context.Context, r store.Run) error {
	return s.createRun(ctx, r, sql.NullString{}, sql.NullInt64{})
}

// CreateLeasedRun stores a new run leased to owner until the given time.
func (s *DB) CreateLeasedRun(ctx context.Context, r store.Run, owner string, until time.Time) error {
	return s.createRun(ctx, r, sql.NullString{String: owner, Valid: true}, sql.NullInt64{Int64: until.UnixNano(), Valid: true})
}

func (s *DB) createRun(ctx context.Context, r store.Run, owner sql.NullString, until sql.NullInt64) error {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO runs (id, workflow_id, version, status, input, output, error, trigger, created_at, started_at, finished_at, lease_owner, lease_until)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.WorkflowID, r.Version, r.Status, string(r.Input), nullJSON(r.Output), r.Error, r.Trigger,
		r.CreatedAt.UTC().Format(time.RFC3339Nano), nullTime(r.StartedAt), nullTime(r.FinishedAt), owner, until)
	if isUniqueViolation(err) {
		return store.ErrConflict
	}
	return err
}

// Run returns one run.
func (s *DB) Run(ctx context.Context, id string) (store.Run, error) {
	var r store.Run
	var input, created string
	var output, started, finished sql.NullString
	err := s.rd.QueryRowContext(ctx, `SELECT id, workflow_id, version, status, input, output, error, trigger, created_at, started_at, finished_at FROM runs WHERE id = ?`, id).
		Scan(&r.ID, &r.WorkflowID, &r.Version, &r.Status, &input, &output, &r.Error, &r.Trigger, &created, &started, &finished)
	if errors.Is(err, sql.ErrNoRows) {
		return r, store.ErrNotFound
	}
	if err != nil {
		return r, err
	}
	r.Input, r.Output = json.RawMessage(input), jsonPtr(output)
	r.CreatedAt, r.StartedAt, r.FinishedAt = parseTime(created), timePtr(started), timePtr(finished)
	return r, nil
}

// UpdateRun stores a run's status, output, error and times.
func (s *DB) UpdateRun(ctx context.Context, r store.Run) error {
	return expectOne(s.db.ExecContext(ctx, `UPDATE runs SET status = ?, output = ?, error = ?, started_at = ?, finished_at = ?,
		lease_owner = CASE WHEN ? THEN NULL ELSE lease_owner END, lease_until = CASE WHEN ? THEN NULL ELSE lease_until END WHERE id = ?`,
		r.Status, nullJSON(r.Output), r.Error, nullTime(r.StartedAt), nullTime(r.FinishedAt), store.Finished(r.Status), store.Finished(r.Status), r.ID))
}

// PutNodeRun creates or replaces a node checkpoint.
func (s *DB) PutNodeRun(ctx context.Context, n store.NodeRun) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO node_runs (run_id, node_id, status, attempts, input, output, port, logs, error, started_at, finished_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (run_id, node_id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts, input = excluded.input,
			output = excluded.output, port = excluded.port, logs = excluded.logs, error = excluded.error,
			started_at = excluded.started_at, finished_at = excluded.finished_at`,
		n.RunID, n.NodeID, n.Status, n.Attempts, nullJSON(n.Input), nullJSON(n.Output), n.Port, nullJSON(n.Logs), n.Error, nullTime(n.StartedAt), nullTime(n.FinishedAt))
	return err
}

// NodeRuns lists a run's checkpoints by start time.
func (s *DB) NodeRuns(ctx context.Context, runID string) ([]store.NodeRun, error) {
	rows, err := s.rd.QueryContext(ctx, `SELECT run_id, node_id, status, attempts, input, output, port, logs, error, started_at, finished_at
		FROM node_runs WHERE run_id = ? ORDER BY started_at IS NULL, started_at, node_id`, runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.NodeRun
	for rows.Next() {
		var n store.NodeRun
		var input, output, logs, started, finished sql.NullString
		if err := rows.Scan(&n.RunID, &n.NodeID, &n.Status, &n.Attempts, &input, &output, &n.Port, &logs, &n.Error, &started, &finished); err != nil {
			return nil, err
		}
		n.Input, n.Output, n.Logs = jsonPtr(input), jsonPtr(output), jsonPtr(logs)
		n.StartedAt, n.FinishedAt = timePtr(started), timePtr(finished)
		out = append(out, n)
	}
	return out, rows.Err()
}

// AcquireRunLease takes or renews a run's lease.
func (s *DB) AcquireRunLease(ctx context.Context, runID, owner string, until time.Time) (bool, time.Time, error) {
	now := time.Now().UnixNano()
	res, err := s.db.ExecContext(ctx, `UPDATE runs SET lease_owner = ?, lease_until = ?
		WHERE id = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?)`, owner, until.UnixNano(), runID, owner, now)
	if err != nil {
		return false, time.Time{}, err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, until, nil
	}
	var holderUntil sql.NullInt64
	err = s.db.QueryRowContext(ctx, `SELECT lease_until FROM runs WHERE id = ?`, runID).Scan(&holderUntil)
	if errors.Is(err, sql.ErrNoRows) {
		return false, time.Time{}, store.ErrNotFound
	}
	return false, time.Unix(0, holderUntil.Int64), err
}

// ReleaseRunLease drops owner's lease.
func (s *DB) ReleaseRunLease(ctx context.Context, runID, owner string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE runs SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?`, runID, owner)
	return err
}

// OrphanedRuns lists runs that need a worker.
func (s *DB) OrphanedRuns(ctx context.Context, now, queuedBefore time.Time, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM runs
		WHERE (status = 'running' AND (lease_until IS NULL OR lease_until < ?))
		   OR (status = 'queued' AND created_at < ? AND (lease_until IS NULL OR lease_until < ?))
		ORDER BY created_at LIMIT ?`, now.UnixNano(), queuedBefore.UTC().Format(time.RFC3339Nano), now.UnixNano(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// ListRuns lists runs newest first.
func (s *DB) ListRuns(ctx context.Context, f store.RunFilter) ([]store.Run, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	rows, err := s.rd.QueryContext(ctx, `SELECT id FROM runs
		WHERE (? = '' OR workflow_id = ?) AND (? = '' OR status = ?) AND (? = '' OR id < ?)
		ORDER BY id DESC LIMIT ?`, f.WorkflowID, f.WorkflowID, f.Status, f.Status, f.Before, f.Before, f.Limit)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// One connection: read the ids first, then each run, rather than
	// nesting queries on the single connection.
	out := make([]store.Run, 0, len(ids))
	for _, id := range ids {
		r, err := s.Run(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted (e.g. by retention) between the two reads
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// RetryRun queues a failed or canceled run again; the status check and
// the clean-up are one transaction, so of two racing retries one wins.
func (s *DB) RetryRun(ctx context.Context, id string) (bool, error) {
	retried := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE runs SET status = 'queued', output = NULL, error = '', finished_at = NULL
			WHERE id = ? AND status IN ('failed', 'canceled')`, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				err = tx.QueryRowContext(ctx, `SELECT 1 FROM runs WHERE id = ?`, id).Scan(new(int))
			}
			if errors.Is(err, sql.ErrNoRows) {
				return store.ErrNotFound
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM artifacts WHERE run_id = ? AND (node_id = '' OR node_id IN
			(SELECT node_id FROM node_runs WHERE run_id = ? AND status IN ('failed', 'canceled', 'running')))`, id, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM node_runs WHERE run_id = ? AND status IN ('failed', 'canceled', 'running')`, id); err != nil {
			return err
		}
		retried = true
		return nil
	})
	return retried, err
}

// CancelRun marks an unfinished run canceled.
func (s *DB) CancelRun(ctx context.Context, id string, at time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE runs SET status = 'canceled', error = 'canceled by a user', finished_at = ?
		WHERE id = ? AND status IN ('queued', 'running')`, at.UTC().Format(time.RFC3339Nano), id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
