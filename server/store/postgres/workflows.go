package postgres

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5"
	"github.com/millrace/millrace/server/store"
)

// PutWorkflowDraft creates a workflow or replaces its draft.
func (s *DB) PutWorkflowDraft(ctx context.Context, id string, draft json.RawMessage) error {
	ts := now()
	_, err := s.pool.Exec(ctx, `INSERT INTO workflows (id, draft, created_at, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET draft = excluded.draft, updated_at = excluded.updated_at`, id, string(draft), ts, ts)
	return err
}

const workflowColumns = `id, draft, latest_version, created_at, updated_at`

func scanWorkflow(row pgx.Row) (store.Workflow, error) {
	var w store.Workflow
	var draft string
	if err := row.Scan(&w.ID, &draft, &w.LatestVersion, &w.CreatedAt, &w.UpdatedAt); err != nil {
		return w, notFound(err)
	}
	w.Draft = json.RawMessage(draft)
	w.CreatedAt, w.UpdatedAt = w.CreatedAt.UTC(), w.UpdatedAt.UTC()
	return w, nil
}

// Workflow returns a workflow and its draft.
func (s *DB) Workflow(ctx context.Context, id string) (store.Workflow, error) {
	return scanWorkflow(s.pool.QueryRow(ctx, `SELECT `+workflowColumns+` FROM workflows WHERE id = $1`, id))
}

// ListWorkflows lists workflows by id.
func (s *DB) ListWorkflows(ctx context.Context) ([]store.Workflow, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+workflowColumns+` FROM workflows ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Workflow
	for rows.Next() {
		w, err := scanWorkflow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// DeleteWorkflow removes a workflow and, by cascade, its versions.
func (s *DB) DeleteWorkflow(ctx context.Context, id string) error {
	return expectOne(s.pool.Exec(ctx, `DELETE FROM workflows WHERE id = $1`, id))
}

// PublishWorkflow stores the next version of a workflow. The UPDATE takes
// the workflow's row lock, so concurrent publishers get 1, 2, 3… in turn.
func (s *DB) PublishWorkflow(ctx context.Context, id string, definition json.RawMessage) (int, error) {
	var version int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `UPDATE workflows SET latest_version = latest_version + 1 WHERE id = $1 RETURNING latest_version`, id).Scan(&version); err != nil {
			return notFound(err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO workflow_versions (workflow_id, version, definition, created_at) VALUES ($1, $2, $3, $4)`,
			id, version, string(definition), now())
		return err
	})
	return version, err
}

func scanWorkflowVersion(row pgx.Row) (store.WorkflowVersion, error) {
	var v store.WorkflowVersion
	var def string
	if err := row.Scan(&v.WorkflowID, &v.Version, &def, &v.CreatedAt); err != nil {
		return v, notFound(err)
	}
	v.Definition, v.CreatedAt = json.RawMessage(def), v.CreatedAt.UTC()
	return v, nil
}

// WorkflowVersion returns one published version.
func (s *DB) WorkflowVersion(ctx context.Context, id string, version int) (store.WorkflowVersion, error) {
	return scanWorkflowVersion(s.pool.QueryRow(ctx, `SELECT workflow_id, version, definition, created_at FROM workflow_versions WHERE workflow_id = $1 AND version = $2`, id, version))
}

// ListWorkflowVersions lists versions oldest first.
func (s *DB) ListWorkflowVersions(ctx context.Context, id string) ([]store.WorkflowVersion, error) {
	rows, err := s.pool.Query(ctx, `SELECT workflow_id, version, definition, created_at FROM workflow_versions WHERE workflow_id = $1 ORDER BY version`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.WorkflowVersion
	for rows.Next() {
		v, err := scanWorkflowVersion(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
