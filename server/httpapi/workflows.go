package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/engine"
)

// WorkflowIDPath names a workflow. (Exported: huma fills path
// parameters of embedded structs only when they are exported.)
type WorkflowIDPath struct {
	ID string `path:"id" pattern:"^[a-z][a-z0-9_-]{0,63}$" doc:"Workflow id."`
}

// WorkflowVersionPath names one published version of a workflow.
type WorkflowVersionPath struct {
	ID      string `path:"id" pattern:"^[a-z][a-z0-9_-]{0,63}$" doc:"Workflow id."`
	Version int    `path:"version" minimum:"1" doc:"A published version number."`
}

type saveWorkflowInput struct {
	WorkflowIDPath
	Body engine.Definition
}

type workflowOutput struct {
	Body *engine.Workflow
}

type workflowVersionOutput struct {
	Body *engine.WorkflowVersion
}

type listWorkflowsOutput struct {
	Body struct {
		Workflows []*engine.Workflow `json:"workflows"`
	}
}

func registerWorkflows(api huma.API, d *Deps) {
	huma.Register(api, secured(huma.Operation{
		OperationID: "save-workflow", Method: http.MethodPut, Path: "/v1/workflows/{id}", Tags: []string{"workflows"},
		Summary:     "Create a workflow or replace its draft",
		Description: "Validates the whole definition (graph, modules and grants, configs, CEL expressions, input mappings against the modules' schemas) and reports every problem with its location. Publishing makes the draft an immutable version.",
		Errors:      []int{http.StatusUnprocessableEntity},
	}, auth.ScopeWorkflowsWrite), func(ctx context.Context, in *saveWorkflowInput) (*workflowOutput, error) {
		wf, err := d.Workflows.SaveDraft(ctx, in.ID, &in.Body)
		if err != nil {
			return nil, problem(ctx, err)
		}
		return &workflowOutput{Body: wf}, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "list-workflows", Method: http.MethodGet, Path: "/v1/workflows", Tags: []string{"workflows"},
		Summary: "List workflows",
	}, auth.ScopeWorkflowsRead), func(ctx context.Context, _ *struct{}) (*listWorkflowsOutput, error) {
		all, err := d.Workflows.List(ctx)
		if err != nil {
			return nil, problem(ctx, err)
		}
		out := &listWorkflowsOutput{}
		out.Body.Workflows = all
		return out, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "get-workflow", Method: http.MethodGet, Path: "/v1/workflows/{id}", Tags: []string{"workflows"},
		Summary: "Get a workflow: its draft and published versions", Errors: []int{http.StatusNotFound},
	}, auth.ScopeWorkflowsRead), func(ctx context.Context, in *WorkflowIDPath) (*workflowOutput, error) {
		wf, err := d.Workflows.Get(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, err)
		}
		return &workflowOutput{Body: wf}, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "delete-workflow", Method: http.MethodDelete, Path: "/v1/workflows/{id}", Tags: []string{"workflows"},
		Summary: "Delete a workflow with its draft and versions", DefaultStatus: http.StatusNoContent, Errors: []int{http.StatusNotFound},
	}, auth.ScopeWorkflowsWrite), func(ctx context.Context, in *WorkflowIDPath) (*struct{}, error) {
		return nil, problem(ctx, d.Workflows.Delete(ctx, in.ID))
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "publish-workflow", Method: http.MethodPost, Path: "/v1/workflows/{id}/publish", Tags: []string{"workflows"},
		Summary:       "Publish the draft as the next immutable version",
		Description:   "Validates the draft again, since its modules or their grants may have changed since it was saved.",
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusNotFound, http.StatusUnprocessableEntity},
	}, auth.ScopeWorkflowsWrite), func(ctx context.Context, in *WorkflowIDPath) (*workflowVersionOutput, error) {
		v, err := d.Workflows.Publish(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, err)
		}
		return &workflowVersionOutput{Body: v}, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "get-workflow-version", Method: http.MethodGet, Path: "/v1/workflows/{id}/versions/{version}", Tags: []string{"workflows"},
		Summary: "Get a published version of a workflow", Errors: []int{http.StatusNotFound},
	}, auth.ScopeWorkflowsRead), func(ctx context.Context, in *WorkflowVersionPath) (*workflowVersionOutput, error) {
		v, err := d.Workflows.Version(ctx, in.ID, in.Version)
		if err != nil {
			return nil, problem(ctx, err)
		}
		return &workflowVersionOutput{Body: v}, nil
	})
}
