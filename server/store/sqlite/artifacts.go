package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/millrace/millrace/server/store"
)

// autoVacuumIncremental is PRAGMA auto_vacuum's value for INCREMENTAL.
const autoVacuumIncremental = 2

// useIncrementalVacuum converts a database created before auto_vacuum was
// set (by an older millrace) with a one-time VACUUM: SQLite changes the
// mode of a database that has tables only while rebuilding it. The
// rebuild takes about as long as copying the file, and as much free disk.
func (s *DB) useIncrementalVacuum(ctx context.Context) error {
	var mode int
	if err := s.db.QueryRowContext(ctx, `PRAGMA auto_vacuum`).Scan(&mode); err != nil {
		return err
	}
	if mode == autoVacuumIncremental {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, `PRAGMA auto_vacuum = INCREMENTAL`); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("converting the database to incremental auto-vacuum: %w (it needs free disk space about the size of the database)", err)
	}
	return nil
}

// PutArtifact stores an artifact, replacing the one with the same run,
// node and name.
func (s *DB) PutArtifact(ctx context.Context, a store.Artifact) error {
	if a.CreatedAt.IsZero() {
		a.CreatedAt = time.Now()
	}
	if a.Data == nil {
		a.Data = []byte{} // NOT NULL
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM runs WHERE id = ?`, a.RunID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("run %s: %w", a.RunID, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM artifacts WHERE run_id = ? AND node_id = ? AND name = ?`, a.RunID, a.NodeID, a.Name); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO artifacts (id, run_id, node_id, name, content_type, size, sha256, data, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.RunID, a.NodeID, a.Name, a.ContentType, a.Size, a.SHA256, a.Data, a.CreatedAt.UTC().Format(time.RFC3339Nano))
		if isUniqueViolation(err) {
			return fmt.Errorf("artifact %s: %w", a.ID, store.ErrConflict)
		}
		return err
	})
}

// Artifact returns one of a run's artifacts with its bytes.
func (s *DB) Artifact(ctx context.Context, runID, id string) (store.Artifact, error) {
	var a store.Artifact
	var created string
	err := s.rd.QueryRowContext(ctx, `SELECT id, run_id, node_id, name, content_type, size, sha256, data, created_at
		FROM artifacts WHERE id = ? AND run_id = ?`, id, runID).
		Scan(&a.ID, &a.RunID, &a.NodeID, &a.Name, &a.ContentType, &a.Size, &a.SHA256, &a.Data, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("artifact %s of run %s: %w", id, runID, store.ErrNotFound)
	}
	if a.Data == nil && err == nil {
		a.Data = []byte{}
	}
	a.CreatedAt = parseTime(created)
	return a, err
}

// ListArtifacts lists a run's artifacts without their bytes.
func (s *DB) ListArtifacts(ctx context.Context, runID string) ([]store.Artifact, error) {
	rows, err := s.rd.QueryContext(ctx, `SELECT id, run_id, node_id, name, content_type, size, sha256, created_at
		FROM artifacts WHERE run_id = ? ORDER BY node_id, name`, runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.Artifact{}
	for rows.Next() {
		var a store.Artifact
		var created string
		if err := rows.Scan(&a.ID, &a.RunID, &a.NodeID, &a.Name, &a.ContentType, &a.Size, &a.SHA256, &created); err != nil {
			return nil, err
		}
		a.CreatedAt = parseTime(created)
		out = append(out, a)
	}
	return out, rows.Err()
}

// DeleteArtifacts removes the artifacts of one node of a run.
func (s *DB) DeleteArtifacts(ctx context.Context, runID, nodeID string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM artifacts WHERE run_id = ? AND node_id = ?`, runID, nodeID)
	return err
}

// PruneRuns deletes finished runs past the retention policy; node
// checkpoints and artifacts follow by ON DELETE CASCADE.
func (s *DB) PruneRuns(ctx context.Context, finishedBefore time.Time, keepPerWorkflow, limit int) (int64, error) {
	if limit <= 0 {
		limit = 500
	}
	cutoff := ""
	if !finishedBefore.IsZero() {
		cutoff = finishedBefore.UTC().Format(time.RFC3339Nano)
	}
	// Run ids sort by creation, so "newest" ranks by id.
	res, err := s.db.ExecContext(ctx, `DELETE FROM runs WHERE status IN ('succeeded', 'failed', 'canceled') AND id IN (
		SELECT id FROM (
			SELECT id, finished_at, ROW_NUMBER() OVER (PARTITION BY workflow_id ORDER BY id DESC) AS newer
			FROM runs WHERE status IN ('succeeded', 'failed', 'canceled')
		) WHERE (? <> '' AND finished_at < ?) OR (? > 0 AND newer > ?)
		ORDER BY id LIMIT ?)`, cutoff, cutoff, keepPerWorkflow, keepPerWorkflow, limit)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// ReclaimSpace returns the pages of deleted rows to the file system:
// incremental_vacuum moves them to the end of the file and truncates it,
// and a checkpoint makes the truncation reach the main file (in WAL mode
// it waits in the write-ahead log until then).
func (s *DB) ReclaimSpace(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `PRAGMA incremental_vacuum`); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	return err
}
