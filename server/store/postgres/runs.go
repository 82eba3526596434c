package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/millrace/millrace/server/store"
)

// nullJSON stores a missing document as NULL and any other, even an empty
// one, as its text, as the SQLite backend does.
func nullJSON(b json.RawMessage) any {
	if b == nil {
		return nil
	}
	return string(b)
}

func jsonPtr(s *string) json.RawMessage {
	if s == nil {
		return nil
	}
	return json.RawMessage(*s)
}

func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC()
}

// CreateRun stores a new run.
func (s *DB) CreateRun(ctx context.Context, r store.Run) error {
	return s.createRun(ctx, r, nil, nil)
}

// CreateLeasedRun stores a new run leased to owner until the given time.
func (s *DB) CreateLeasedRun(ctx context.Context, r store.Run, owner string, until time.Time) error {
	until = until.UTC()
	return s.createRun(ctx, r, &owner, &until)
}

func (s *DB) createRun(ctx context.Context, r store.Run, owner *string, until *time.Time) error {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO runs (id, workflow_id, version, status, input, output, error, trigger, created_at, started_at, finished_at, lease_owner, lease_until)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		r.ID, r.WorkflowID, r.Version, r.Status, string(r.Input), nullJSON(r.Output), r.Error, r.Trigger,
		r.CreatedAt.UTC(), nullTime(r.StartedAt), nullTime(r.FinishedAt), owner, until)
	if isUniqueViolation(err) {
		return store.ErrConflict
	}
	return err
}

const runColumns = `id, workflow_id, version, status, input, output, error, trigger, created_at, started_at, finished_at`

func scanRun(row pgx.Row) (store.Run, error) {
	var r store.Run
	var input string
	var output *string
	if err := row.Scan(&r.ID, &r.WorkflowID, &r.Version, &r.Status, &input, &output, &r.Error, &r.Trigger, &r.CreatedAt, &r.StartedAt, &r.FinishedAt); err != nil {
		return r, notFound(err)
	}
	r.Input, r.Output = json.RawMessage(input), jsonPtr(output)
	r.CreatedAt, r.StartedAt, r.FinishedAt = r.CreatedAt.UTC(), utcPtr(r.StartedAt), utcPtr(r.FinishedAt)
	return r, nil
}

// Run returns one run.
func (s *DB) Run(ctx context.Context, id string) (store.Run, error) {
	return scanRun(s.pool.QueryRow(ctx, `SELECT `+runColumns+` FROM runs WHERE id = $1`, id))
}

// ListRuns lists runs newest first: by id, which sorts by creation (ids
// compare bytewise, as in SQLite, by the column's "C" collation).
func (s *DB) ListRuns(ctx context.Context, f store.RunFilter) ([]store.Run, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	rows, err := s.pool.Query(ctx, `SELECT `+runColumns+` FROM runs
		WHERE ($1::text = '' OR workflow_id = $1) AND ($2::text = '' OR status = $2) AND ($3::text = '' OR id < $3)
		ORDER BY id DESC LIMIT $4`, f.WorkflowID, f.Status, f.Before, f.Limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.Run{} // empty, not nil, like the SQLite backend's
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// CancelRun marks an unfinished run canceled.
func (s *DB) CancelRun(ctx context.Context, id string, at time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE runs SET status = 'canceled', error = 'canceled by a user', finished_at = $1
		WHERE id = $2 AND status IN ('queued', 'running')`, at.UTC(), id)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// UpdateRun stores a run's status, output, error and times.
func (s *DB) UpdateRun(ctx context.Context, r store.Run) error {
	return expectOne(s.pool.Exec(ctx, `UPDATE runs SET status = $1, output = $2, error = $3, started_at = $4, finished_at = $5,
		lease_owner = CASE WHEN $6 THEN NULL ELSE lease_owner END, lease_until = CASE WHEN $6 THEN NULL ELSE lease_until END WHERE id = $7`,
		r.Status, nullJSON(r.Output), r.Error, nullTime(r.StartedAt), nullTime(r.FinishedAt), store.Finished(r.Status), r.ID))
}

// PutNodeRun creates or replaces a node checkpoint.
func (s *DB) PutNodeRun(ctx context.Context, n store.NodeRun) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO node_runs (run_id, node_id, status, attempts, input, output, port, logs, error, started_at, finished_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (run_id, node_id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts, input = excluded.input,
			output = excluded.output, port = excluded.port, logs = excluded.logs, error = excluded.error,
			started_at = excluded.started_at, finished_at = excluded.finished_at`,
		n.RunID, n.NodeID, n.Status, n.Attempts, nullJSON(n.Input), nullJSON(n.Output), n.Port, nullJSON(n.Logs), n.Error, nullTime(n.StartedAt), nullTime(n.FinishedAt))
	return err
}

// RetryRun queues a failed or canceled run again. The UPDATE takes the
// run's row lock first: a racing retry waits for it, then finds the run
// queued and changes nothing.
func (s *DB) RetryRun(ctx context.Context, id string) (bool, error) {
	retried := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE runs SET status = 'queued', output = NULL, error = '', finished_at = NULL
			WHERE id = $1 AND status IN ('failed', 'canceled')`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			err := tx.QueryRow(ctx, `SELECT 1 FROM runs WHERE id = $1`, id).Scan(new(int))
			if errors.Is(err, pgx.ErrNoRows) {
				return store.ErrNotFound
			}
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM artifacts WHERE run_id = $1 AND (node_id = '' OR node_id IN
			(SELECT node_id FROM node_runs WHERE run_id = $1 AND status IN ('failed', 'canceled', 'running')))`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM node_runs WHERE run_id = $1 AND status IN ('failed', 'canceled', 'running')`, id); err != nil {
			return err
		}
		retried = true
		return nil
	})
	return retried, err
}

// NodeRuns lists a run's checkpoints by start time, unstarted ones last.
func (s *DB) NodeRuns(ctx context.Context, runID string) ([]store.NodeRun, error) {
	rows, err := s.pool.Query(ctx, `SELECT run_id, node_id, status, attempts, input, output, port, logs, error, started_at, finished_at
		FROM node_runs WHERE run_id = $1 ORDER BY started_at NULLS LAST, node_id`, runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.NodeRun
	for rows.Next() {
		var n store.NodeRun
		var input, output, logs *string
		if err := rows.Scan(&n.RunID, &n.NodeID, &n.Status, &n.Attempts, &input, &output, &n.Port, &logs, &n.Error, &n.StartedAt, &n.FinishedAt); err != nil {
			return nil, err
		}
		n.Input, n.Output, n.Logs = jsonPtr(input), jsonPtr(output), jsonPtr(logs)
		n.StartedAt, n.FinishedAt = utcPtr(n.StartedAt), utcPtr(n.FinishedAt)
		out = append(out, n)
	}
	return out, rows.Err()
}

// AcquireRunLease takes or renews a run's lease. Expiry is judged by this
// process's clock, as the holder's until was, and as in the SQLite backend.
func (s *DB) AcquireRunLease(ctx context.Context, runID, owner string, until time.Time) (bool, time.Time, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE runs SET lease_owner = $1, lease_until = $2
		WHERE id = $3 AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < $4)`, owner, until.UTC(), runID, time.Now().UTC())
	if err != nil {
		return false, time.Time{}, err
	}
	if tag.RowsAffected() == 1 {
		return true, until, nil
	}
	var holderUntil *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT lease_until FROM runs WHERE id = $1`, runID).Scan(&holderUntil); err != nil {
		return false, time.Time{}, notFound(err)
	}
	if holderUntil == nil {
		// Only a lease-less run is takeable, so this needs a concurrent
		// release; SQLite answers the zero Unix time here too.
		return false, time.Unix(0, 0).UTC(), nil
	}
	return false, holderUntil.UTC(), nil
}

// ReleaseRunLease drops owner's lease.
func (s *DB) ReleaseRunLease(ctx context.Context, runID, owner string) error {
	_, err := s.pool.Exec(ctx, `UPDATE runs SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2`, runID, owner)
	return err
}

// OrphanedRuns lists runs that need a worker, oldest first.
func (s *DB) OrphanedRuns(ctx context.Context, now, queuedBefore time.Time, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM runs
		WHERE (status = 'running' AND (lease_until IS NULL OR lease_until < $1))
		   OR (status = 'queued' AND created_at < $2 AND (lease_until IS NULL OR lease_until < $1))
		ORDER BY created_at LIMIT $3`, now.UTC(), queuedBefore.UTC(), limit)
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
