package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/trigger"
)

// Helpers for editors (the console's workflow and trigger forms): they
// answer while the user types, before anything is saved.

type validateExpressionInput struct {
	Body struct {
		Expression string `json:"expression" maxLength:"65536" doc:"A CEL expression."`
		Context    string `json:"context,omitempty" enum:"mapping,edge" default:"mapping" doc:"mapping: a node's input mapping (sees input, nodes, run). edge: an edge condition (also sees output and port)."`
	}
}

type validateExpressionOutput struct {
	Body struct {
		Valid   bool   `json:"valid"`
		Message string `json:"message,omitempty" doc:"Why the expression does not compile, with line and column."`
	}
}

type cronPreviewInput struct {
	Body struct {
		trigger.CronConfig
		Count int `json:"count,omitempty" minimum:"1" maximum:"20" default:"5" doc:"How many fire times to return."`
	}
}

type cronPreviewOutput struct {
	Body struct {
		Next []time.Time `json:"next" doc:"The next fire times, in the schedule's time zone."`
	}
}

func registerEditorHelpers(api huma.API, _ *Deps) {
	huma.Register(api, secured(huma.Operation{
		OperationID: "validate-expression", Method: http.MethodPost, Path: "/v1/expressions/validate", Tags: []string{"workflows"},
		Summary:     "Check a CEL expression without saving anything",
		Description: "Compiles and type-checks the expression as a workflow would. A wrong expression is a 200 answer with valid false and the compiler's message; only a malformed request is an error.",
	}, auth.ScopeWorkflowsRead), func(ctx context.Context, in *validateExpressionInput) (*validateExpressionOutput, error) {
		out := &validateExpressionOutput{}
		if err := engine.CheckExpression(in.Body.Context == "edge", in.Body.Expression); err != nil {
			out.Body.Message = err.Error()
			return out, nil
		}
		out.Body.Valid = true
		return out, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "preview-cron", Method: http.MethodPost, Path: "/v1/cron/preview", Tags: []string{"triggers"},
		Summary: "Preview the next fire times of a cron schedule", Errors: []int{http.StatusUnprocessableEntity},
	}, auth.ScopeWorkflowsRead), func(ctx context.Context, in *cronPreviewInput) (*cronPreviewOutput, error) {
		times, err := trigger.PreviewCron(in.Body.CronConfig, time.Now(), in.Body.Count)
		if inv, ok := err.(*trigger.InvalidError); ok {
			// The body here is the cron config itself, not a trigger spec.
			field := strings.TrimPrefix(inv.Field, "cron.")
			return nil, huma.NewError(http.StatusUnprocessableEntity, "the schedule is not valid: "+inv.Msg, &huma.ErrorDetail{Location: "body." + field, Message: inv.Msg})
		}
		if err != nil {
			return nil, problem(ctx, err)
		}
		out := &cronPreviewOutput{}
		out.Body.Next = times
		return out, nil
	})
}
