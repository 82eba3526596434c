package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/millrace/millrace/server/store"
)

// PutArtifact stores an artifact, replacing the one with the same run,
// node and name. One upsert, so that two writers of the same artifact
// cannot both insert.
func (s *DB) PutArtifact(ctx context.Context, a store.Artifact) error {
	if a.CreatedAt.IsZero() {
		a.CreatedAt = time.Now()
	}
	if a.Data == nil {
		a.Data = []byte{} // NOT NULL, as SQLite stores an empty blob
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO artifacts (id, run_id, node_id, name, content_type, size, sha256, data, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (run_id, node_id, name) DO UPDATE SET id = excluded.id, content_type = excluded.content_type,
			size = excluded.size, sha256 = excluded.sha256, data = excluded.data, created_at = excluded.created_at`,
		a.ID, a.RunID, a.NodeID, a.Name, a.ContentType, a.Size, a.SHA256, a.Data, a.CreatedAt.UTC())
	switch {
	case hasCode(err, foreignKeyViolation):
		return fmt.Errorf("run %s: %w", a.RunID, store.ErrNotFound)
	case isUniqueViolation(err):
		return fmt.Errorf("artifact %s: %w", a.ID, store.ErrConflict)
	}
	return err
}

// Artifact returns one of a run's artifacts with its bytes.
func (s *DB) Artifact(ctx context.Context, runID, id string) (store.Artifact, error) {
	var a store.Artifact
	err := s.pool.QueryRow(ctx, `SELECT id, run_id, node_id, name, content_type, size, sha256, data, created_at
		FROM artifacts WHERE id = $1 AND run_id = $2`, id, runID).
		Scan(&a.ID, &a.RunID, &a.NodeID, &a.Name, &a.ContentType, &a.Size, &a.SHA256, &a.Data, &a.CreatedAt)
	if err != nil {
		if err = notFound(err); err == store.ErrNotFound {
			err = fmt.Errorf("artifact %s of run %s: %w", id, runID, store.ErrNotFound)
		}
		return a, err
	}
	if a.Data == nil {
		a.Data = []byte{}
	}
	a.CreatedAt = a.CreatedAt.UTC()
	return a, nil
}

// ListArtifacts lists a run's artifacts without their bytes.
func (s *DB) ListArtifacts(ctx context.Context, runID string) ([]store.Artifact, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, run_id, node_id, name, content_type, size, sha256, created_at
		FROM artifacts WHERE run_id = $1 ORDER BY node_id, name`, runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.Artifact{}
	for rows.Next() {
		var a store.Artifact
		if err := rows.Scan(&a.ID, &a.RunID, &a.NodeID, &a.Name, &a.ContentType, &a.Size, &a.SHA256, &a.CreatedAt); err != nil {
			return nil, err
		}
		a.CreatedAt = a.CreatedAt.UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// DeleteArtifacts removes the artifacts of one node of a run.
func (s *DB) DeleteArtifacts(ctx context.Context, runID, nodeID string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM artifacts WHERE run_id = $1 AND node_id = $2`, runID, nodeID)
	return err
}

// PruneRuns deletes finished runs past the retention policy; node
// checkpoints and artifacts follow by ON DELETE CASCADE. The outer status
// check is evaluated again on a row that changed while the DELETE waited
// for it (a run retried meanwhile is queued again, and stays).
func (s *DB) PruneRuns(ctx context.Context, finishedBefore time.Time, keepPerWorkflow, limit int) (int64, error) {
	if limit <= 0 {
		limit = 500
	}
	var cutoff *time.Time
	if !finishedBefore.IsZero() {
		u := finishedBefore.UTC()
		cutoff = &u
	}
	// Run ids sort by creation (bytewise, "C" collation), so "newest"
	// ranks by id.
	tag, err := s.pool.Exec(ctx, `DELETE FROM runs WHERE status IN ('succeeded', 'failed', 'canceled') AND id IN (
		SELECT id FROM (
			SELECT id, finished_at, row_number() OVER (PARTITION BY workflow_id ORDER BY id DESC) AS newer
			FROM runs WHERE status IN ('succeeded', 'failed', 'canceled')
		) ranked WHERE ($1::timestamptz IS NOT NULL AND finished_at < $1) OR ($2::int > 0 AND newer > $2)
		ORDER BY id LIMIT $3)`, cutoff, keepPerWorkflow, limit)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// ReclaimSpace vacuums the tables retention deletes from. A plain VACUUM
// (not FULL) takes no lock that stops readers or writers: it makes the
// space of deleted rows, TOASTed artifact bytes included, reusable by new
// rows and gives empty pages at the end of a table back to the file
// system. Autovacuum would get there too, but only once a fifth of a
// table is dead, and an artifacts table holds few rows of many bytes.
func (s *DB) ReclaimSpace(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `VACUUM runs, node_runs, artifacts`)
	return err
}
