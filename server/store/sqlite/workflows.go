package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/millrace/millrace/server/store"
)

// PutWorkflowDraft creates a workflow or replaces its draft.
func (s *DB) PutWorkflowDraft(ctx context.Context, id string, draft json.RawMessage) error {
	ts := now()
	_, err := s.db.ExecContext(ctx, `INSERT INTO workflows (id, draft, created_at, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET draft = excluded.draft, updated_at = excluded.updated_at`, id, string(draft), ts, ts)
	return err
}

const workflowColumns = `id, draft, latest_version, created_at, updated_at`

func scanWorkflow(row interface{ Scan(...any) error }) (store.Workflow, error) {
	var w store.Workflow
	var draft, created, updated string
	if err := row.Scan(&w.ID, &draft, &w.LatestVersion, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return w, store.ErrNotFound
		}
		return w, err
	}
	w.Draft = json.RawMessage(draft)
	w.CreatedAt, w.UpdatedAt = parseTime(created), parseTime(updated)
	return w, nil
}

// Workflow returns a workflow and its draft.
func (s *DB) Workflow(ctx context.Context, id string) (store.Workflow, error) {
	return scanWorkflow(s.rd.QueryRowContext(ctx, `SELECT `+workflowColumns+` FROM workflows WHERE id = ?`, id))
}

// ListWorkflows lists workflows by id.
func (s *DB) ListWorkflows(ctx context.Context) ([]store.Workflow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+workflowColumns+` FROM workflows ORDER BY id`)
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

// DeleteWorkflow removes a workflow and its versions.
func (s *DB) DeleteWorkflow(ctx context.Context, id string) error {
	return expectOne(s.db.ExecContext(ctx, `DELETE FROM workflows WHERE id = ?`, id))
}

// PublishWorkflow stores the next version of a workflow.
func (s *DB) PublishWorkflow(ctx context.Context, id string, definition json.RawMessage) (int, error) {
	var version int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `UPDATE workflows SET latest_version = latest_version + 1 WHERE id = ? RETURNING latest_version`, id).Scan(&version); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return store.ErrNotFound
			}
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO workflow_versions (workflow_id, version, definition, created_at) VALUES (?, ?, ?, ?)`,
			id, version, string(definition), now())
		return err
	})
	return version, err
}

func scanWorkflowVersion(row interface{ Scan(...any) error }) (store.WorkflowVersion, error) {
	var v store.WorkflowVersion
	var def, created string
	if err := row.Scan(&v.WorkflowID, &v.Version, &def, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return v, store.ErrNotFound
		}
		return v, err
	}
	v.Definition, v.CreatedAt = json.RawMessage(def), parseTime(created)
	return v, nil
}

// WorkflowVersion returns one published version.
func (s *DB) WorkflowVersion(ctx context.Context, id string, version int) (store.WorkflowVersion, error) {
	return scanWorkflowVersion(s.rd.QueryRowContext(ctx, `SELECT workflow_id, version, definition, created_at FROM workflow_versions WHERE workflow_id = ? AND version = ?`, id, version))
}

// ListWorkflowVersions lists versions oldest first.
func (s *DB) ListWorkflowVersions(ctx context.Context, id string) ([]store.WorkflowVersion, error) {
	rows, err := s.rd.QueryContext(ctx, `SELECT workflow_id, version, definition, created_at FROM workflow_versions WHERE workflow_id = ? ORDER BY version`, id)
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
