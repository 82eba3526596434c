package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/tracing"
	"go.opentelemetry.io/otel/trace"
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

type startRunInput struct {
	WorkflowIDPath
	Body struct {
		Input   any `json:"input,omitempty" doc:"The run input, checked against the workflow's input_schema."`
		Version int `json:"version,omitempty" minimum:"0" doc:"A published version; 0 or absent means the latest."`
	}
}

type runOutput struct {
	Body *engine.RunView
}

// runInputLimit is the largest run input the server accepts.
func runInputLimit(d *Deps) int64 {
	if d.Runs == nil {
		return engine.DefaultLimits().RunInputBytes
	}
	return d.Runs.Limits.WithDefaults().RunInputBytes
}

func registerWorkflows(api huma.API, d *Deps) {
	huma.Register(api, secured(huma.Operation{
		OperationID: "start-run", Method: http.MethodPost, Path: "/v1/workflows/{id}/runs", Tags: []string{"runs"},
		Summary:       "Start a run (manual trigger)",
		Description:   "Creates a run of the latest published version (or the one named) and queues it; the answer comes at once with the run's id. Follow it with GET /v1/runs/{id}. An input over the server's limit (1 MiB by default) is refused with 413.",
		DefaultStatus: http.StatusAccepted,
		Errors:        []int{http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity},
		// Room for an input at the limit and its envelope, so that the
		// limit is checked on the input and the problem names it; bodies
		// larger still are refused before they are parsed.
		MaxBodyBytes: runInputLimit(d) + 64<<10,
	}, auth.ScopeWorkflowsRun), func(ctx context.Context, in *startRunInput) (*runOutput, error) {
		var input json.RawMessage
		if in.Body.Input != nil {
			// Without HTML escaping, which would count "<" as six bytes
			// against the limit.
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(in.Body.Input); err != nil {
				return nil, huma.Error422UnprocessableEntity("input: " + err.Error())
			}
			input = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		}
		var span trace.Span
		if d.Tracer != nil {
			ctx, span = d.Tracer.Start(ctx, "trigger manual", trace.WithAttributes(tracing.AttrTrigger.String("manual"), tracing.AttrWorkflowID.String(in.ID)))
		}
		run, err := d.Runs.Start(ctx, in.ID, in.Body.Version, input, "manual")
		if span != nil {
			if run != nil {
				span.SetAttributes(tracing.AttrRunID.String(run.ID))
			}
			tracing.End(span, err)
		}
		if err != nil {
			return nil, problem(ctx, err)
		}
		return &runOutput{Body: run}, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "get-run", Method: http.MethodGet, Path: "/v1/runs/{id}", Tags: []string{"runs"},
		Summary: "Get a run with its node timeline: inputs, outputs, logs, attempts, timings, errors", Errors: []int{http.StatusNotFound},
	}, auth.ScopeWorkflowsRead), func(ctx context.Context, in *struct {
		ID string `path:"id" pattern:"^run_[0-9a-f]{21}$" doc:"Run id."`
	}) (*runOutput, error) {
		run, err := d.Runs.Get(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, err)
		}
		return &runOutput{Body: run}, nil
	})

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
