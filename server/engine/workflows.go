package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/millrace/millrace/server/store"
)

var workflowIDPattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

// Workflows keeps workflow definitions: one editable draft per workflow
// and immutable published versions. Saving and publishing validate.
type Workflows struct {
	store   store.Store
	catalog Catalog
}

// NewWorkflows returns the definitions service.
func NewWorkflows(s store.Store, cat Catalog) *Workflows {
	return &Workflows{store: s, catalog: cat}
}

// Workflow is a workflow as the API shows it.
type Workflow struct {
	ID            string      `json:"id"`
	Draft         *Definition `json:"draft"`
	LatestVersion int         `json:"latest_version" doc:"0 until the workflow is first published."`
	Versions      []int       `json:"versions"`
	CreatedAt     time.Time   `json:"created_at"`
	UpdatedAt     time.Time   `json:"updated_at"`
}

// WorkflowVersion is one published version.
type WorkflowVersion struct {
	WorkflowID  string      `json:"workflow_id"`
	Version     int         `json:"version"`
	Definition  *Definition `json:"definition"`
	PublishedAt time.Time   `json:"published_at"`
}

// NotFoundError says which workflow or version does not exist.
type NotFoundError struct{ What string }

func (e *NotFoundError) Error() string { return e.What + " does not exist" }

// CheckID validates a workflow id.
func CheckID(id string) error {
	if !workflowIDPattern.MatchString(id) {
		return &InvalidError{[]Problem{{"id", fmt.Sprintf("%q is not a valid workflow id: use 1-64 lower-case letters, digits, '_' or '-', starting with a letter", id)}}}
	}
	return nil
}

// SaveDraft validates a definition and stores it as the workflow's draft,
// creating the workflow if needed.
func (w *Workflows) SaveDraft(ctx context.Context, id string, d *Definition) (*Workflow, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	if err := Validate(ctx, d, w.catalog); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	if err := w.store.PutWorkflowDraft(ctx, id, raw); err != nil {
		return nil, err
	}
	return w.Get(ctx, id)
}

// Get returns a workflow with its draft and version numbers.
func (w *Workflows) Get(ctx context.Context, id string) (*Workflow, error) {
	sw, err := w.store.Workflow(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &NotFoundError{fmt.Sprintf("workflow %q", id)}
	}
	if err != nil {
		return nil, err
	}
	return w.toWorkflow(ctx, sw)
}

func (w *Workflows) toWorkflow(ctx context.Context, sw store.Workflow) (*Workflow, error) {
	var d Definition
	if err := json.Unmarshal(sw.Draft, &d); err != nil {
		return nil, fmt.Errorf("stored draft of %s is malformed: %w", sw.ID, err)
	}
	versions, err := w.store.ListWorkflowVersions(ctx, sw.ID)
	if err != nil {
		return nil, err
	}
	out := &Workflow{ID: sw.ID, Draft: &d, LatestVersion: sw.LatestVersion, Versions: []int{}, CreatedAt: sw.CreatedAt, UpdatedAt: sw.UpdatedAt}
	for _, v := range versions {
		out.Versions = append(out.Versions, v.Version)
	}
	return out, nil
}

// List returns every workflow, by id.
func (w *Workflows) List(ctx context.Context) ([]*Workflow, error) {
	all, err := w.store.ListWorkflows(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*Workflow, 0, len(all))
	for _, sw := range all {
		wf, err := w.toWorkflow(ctx, sw)
		if err != nil {
			return nil, err
		}
		out = append(out, wf)
	}
	return out, nil
}

// Delete removes a workflow with its draft and versions.
func (w *Workflows) Delete(ctx context.Context, id string) error {
	err := w.store.DeleteWorkflow(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return &NotFoundError{fmt.Sprintf("workflow %q", id)}
	}
	return err
}

// Publish validates the draft again (its modules or grants may have
// changed since it was saved) and stores it as the next version.
func (w *Workflows) Publish(ctx context.Context, id string) (*WorkflowVersion, error) {
	wf, err := w.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := Validate(ctx, wf.Draft, w.catalog); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(wf.Draft)
	if err != nil {
		return nil, err
	}
	n, err := w.store.PublishWorkflow(ctx, id, raw)
	if err != nil {
		return nil, err
	}
	return w.Version(ctx, id, n)
}

// Version returns one published version.
func (w *Workflows) Version(ctx context.Context, id string, version int) (*WorkflowVersion, error) {
	sv, err := w.store.WorkflowVersion(ctx, id, version)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &NotFoundError{fmt.Sprintf("version %d of workflow %q", version, id)}
	}
	if err != nil {
		return nil, err
	}
	var d Definition
	if err := json.Unmarshal(sv.Definition, &d); err != nil {
		return nil, fmt.Errorf("stored version %d of %s is malformed: %w", version, id, err)
	}
	return &WorkflowVersion{WorkflowID: sv.WorkflowID, Version: sv.Version, Definition: &d, PublishedAt: sv.CreatedAt}, nil
}
