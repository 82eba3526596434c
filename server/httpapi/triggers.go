package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/trigger"
)

// Security schemes of the webhook endpoint: a caller proves it knows the
// trigger's secret by sending it, or by signing with it. The auth
// middleware enforces only the bearer scheme; the webhook handler checks
// these.
const (
	webhookSecretScheme    = "webhookSecret"
	webhookSignatureScheme = "webhookSignature"
)

// TriggerIDPath names a trigger.
type TriggerIDPath struct {
	TriggerID string `path:"trigger_id" pattern:"^trg_[0-9a-f]{16}$" doc:"Trigger id."`
}

// TriggerSpec and CreatedTrigger name the trigger package's types in the
// OpenAPI document, where "Spec" and "Created" would say little.
type (
	TriggerSpec    struct{ trigger.Spec }
	CreatedTrigger struct{ *trigger.Created }
)

type createTriggerInput struct {
	WorkflowIDPath
	Body TriggerSpec
}

type createdTriggerOutput struct {
	Body CreatedTrigger
}

type listTriggersOutput struct {
	Body struct {
		Triggers []*trigger.Trigger `json:"triggers"`
	}
}

type webhookInput struct {
	// No pattern: a malformed id is refused like an unknown one, with 401.
	TriggerID      string `path:"trigger_id" maxLength:"64" doc:"The trigger's id, as in the path its creation returned."`
	Secret         string `header:"X-Millrace-Secret" doc:"auth secret: the trigger's secret."`
	Signature      string `header:"X-Millrace-Signature" doc:"auth hmac: sha256=<hex HMAC-SHA256(secret, timestamp + \".\" + body)>."`
	Timestamp      string `header:"X-Millrace-Timestamp" doc:"auth hmac: Unix seconds when the call was signed; refused when more than 5 minutes from the server's clock."`
	IdempotencyKey string `header:"Idempotency-Key" maxLength:"255" doc:"Calls with the same key get the run of the first call instead of starting another (remembered 24 hours)."`
	ContentType    string `header:"Content-Type"`
	RawBody        []byte `contentType:"application/json"`
}

// WebhookResult is what a webhook call started.
type WebhookResult struct {
	RunID  string          `json:"run_id" doc:"Follow it with GET /v1/runs/{id}."`
	Status string          `json:"status" enum:"queued,running,succeeded,failed,canceled"`
	Output json.RawMessage `json:"output,omitempty" doc:"sync, once the run succeeded: its output."`
}

type webhookOutput struct {
	Status int
	Body   WebhookResult
}

// runFailure is the problem a sync webhook answers when its run failed or
// was canceled, naming the run so the caller can look at it.
type runFailure struct {
	huma.ErrorModel
	RunID     string `json:"run_id"`
	RunStatus string `json:"run_status" enum:"failed,canceled"`
}

const webhookDescription = "Starts a run of the trigger's workflow (its latest published version) with the JSON body as input; an empty body is null. " +
	"Authenticate with the trigger's secret in `X-Millrace-Secret`, or, for a trigger created with `auth: hmac`, with `X-Millrace-Timestamp` (Unix seconds) and " +
	"`X-Millrace-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + \".\" + body)>`; a timestamp more than 5 minutes from the server's clock is refused, so a captured call cannot be replayed later. " +
	"An unknown trigger and wrong credentials get the same 401. " +
	"An async trigger answers 202 with the run id at once. A sync trigger waits for the run: 200 with its output, a 422 problem naming the run when it failed, " +
	"or 202 with the run id when it is still running after the trigger's timeout. " +
	"With `Idempotency-Key`, a repeated call gets the first call's run (a sync trigger waits for it) instead of starting another. " +
	"The body is at most 1 MiB."

func registerTriggers(api huma.API, d *Deps) {
	oapi := api.OpenAPI()
	oapi.Components.SecuritySchemes[webhookSecretScheme] = &huma.SecurityScheme{Type: "apiKey", In: "header", Name: "X-Millrace-Secret",
		Description: "A webhook trigger's secret, shown once when the trigger was created."}
	oapi.Components.SecuritySchemes[webhookSignatureScheme] = &huma.SecurityScheme{Type: "apiKey", In: "header", Name: "X-Millrace-Signature",
		Description: "For triggers with auth hmac: sha256=<hex HMAC-SHA256(secret, X-Millrace-Timestamp + \".\" + body)>, with X-Millrace-Timestamp in Unix seconds."}

	huma.Register(api, secured(huma.Operation{
		OperationID: "create-trigger", Method: http.MethodPost, Path: "/v1/workflows/{id}/triggers", Tags: []string{"triggers"},
		Summary: "Create a trigger: a webhook, a cron schedule, or another workflow's runs finishing",
		Description: "Triggers start the workflow's latest published version. " +
			"A **webhook** answers POST /hooks/{trigger_id}; its secret is in this answer and never shown again. " +
			"A **cron** trigger fires on its schedule in its time zone (daylight saving time included). Ticks are kept in the database: " +
			"ticks missed while no server ran fire once, for the most recent of them, when a server starts; then the schedule continues. " +
			"Its run input is {\"scheduled_at\": the tick (RFC 3339), \"trigger_id\"}. " +
			"A **workflow_finished** trigger starts the workflow when a run of after.workflow_id ends in one of after.statuses, " +
			"with input {\"run_id\", \"workflow_id\", \"status\", \"output\", \"error\"}; triggers that would make workflows start each other in a loop are refused.",
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusNotFound, http.StatusUnprocessableEntity},
	}, auth.ScopeWorkflowsWrite), func(ctx context.Context, in *createTriggerInput) (*createdTriggerOutput, error) {
		t, err := d.Triggers.Create(ctx, in.ID, in.Body.Spec)
		if err != nil {
			return nil, problem(ctx, err)
		}
		return &createdTriggerOutput{Body: CreatedTrigger{t}}, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "list-triggers", Method: http.MethodGet, Path: "/v1/workflows/{id}/triggers", Tags: []string{"triggers"},
		Summary: "List a workflow's triggers (never their secrets)", Errors: []int{http.StatusNotFound},
	}, auth.ScopeWorkflowsRead), func(ctx context.Context, in *WorkflowIDPath) (*listTriggersOutput, error) {
		list, err := d.Triggers.List(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, err)
		}
		out := &listTriggersOutput{}
		out.Body.Triggers = list
		return out, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "delete-trigger", Method: http.MethodDelete, Path: "/v1/triggers/{trigger_id}", Tags: []string{"triggers"},
		Summary: "Delete a trigger", DefaultStatus: http.StatusNoContent, Errors: []int{http.StatusNotFound},
	}, auth.ScopeWorkflowsWrite), func(ctx context.Context, in *TriggerIDPath) (*struct{}, error) {
		return nil, problem(ctx, d.Triggers.Delete(ctx, in.TriggerID))
	})

	huma.Register(api, huma.Operation{
		OperationID: "call-webhook", Method: http.MethodPost, Path: "/hooks/{trigger_id}", Tags: []string{"triggers"},
		Summary:     "Call a webhook trigger",
		Description: webhookDescription,
		Security:    []map[string][]string{{webhookSecretScheme: {}}, {webhookSignatureScheme: {}}},
		// The body is read whole (the signature covers it) and becomes a
		// run input, so it is capped well below uploads.
		MaxBodyBytes: trigger.MaxBodyBytes,
		// Any JSON value is a valid input; the handler checks it after
		// authentication, so strangers learn nothing from a 4xx.
		SkipValidateBody: true,
		Errors: []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusConflict,
			http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity},
	}, func(ctx context.Context, in *webhookInput) (*webhookOutput, error) {
		if ct := in.ContentType; ct != "" && len(in.RawBody) > 0 && !isJSON(ct) {
			return nil, huma.Error415UnsupportedMediaType("the body must be JSON (Content-Type: application/json), not " + ct)
		}
		res, err := d.Triggers.Deliver(ctx, trigger.Delivery{TriggerID: in.TriggerID, Secret: in.Secret, Signature: in.Signature,
			Timestamp: in.Timestamp, IdempotencyKey: in.IdempotencyKey, Body: in.RawBody})
		if err != nil {
			return nil, problem(ctx, err)
		}
		run := res.Run
		out := &webhookOutput{Status: http.StatusAccepted, Body: WebhookResult{RunID: run.ID, Status: run.Status}}
		if !res.Sync {
			return out, nil
		}
		switch run.Status {
		case engine.StatusSucceeded:
			out.Status, out.Body.Output = http.StatusOK, run.Output
		case engine.StatusFailed, engine.StatusCanceled:
			return nil, &runFailure{
				ErrorModel: huma.ErrorModel{Status: http.StatusUnprocessableEntity, Title: "Run " + run.Status, Detail: "run " + run.ID + " " + run.Status + ": " + run.Error},
				RunID:      run.ID, RunStatus: run.Status,
			}
		}
		return out, nil
	})
	// huma documents one success status, and makes a raw body required;
	// a webhook has two, and an empty body is a null input. (The handler
	// reads the same RequestBody.)
	if op := oapi.Paths["/hooks/{trigger_id}"].Post; op != nil {
		op.RequestBody.Required = false
		op.RequestBody.Content["application/json"].Schema = &huma.Schema{Description: "Any JSON value, at most 1 MiB; it becomes the run input."}
		ok := op.Responses["200"]
		ok.Description = "sync: the run succeeded; the body holds its output."
		op.Responses["202"] = &huma.Response{Description: "async: the run was started. sync: the run is still running after the trigger's timeout.", Content: ok.Content}
	}
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// triggerProblem maps the trigger package's errors to problems, for
// problem(); it returns nil for other errors.
func triggerProblem(err error) error {
	var inv *trigger.InvalidError
	var pe *trigger.PayloadError
	switch {
	case errors.As(err, &inv):
		return huma.NewError(http.StatusUnprocessableEntity, "the trigger is not valid: "+inv.Error(), &huma.ErrorDetail{Location: "body." + inv.Field, Message: inv.Msg})
	case errors.As(err, &pe):
		return huma.Error400BadRequest(pe.Msg)
	case errors.Is(err, trigger.ErrUnauthorized):
		return huma.Error401Unauthorized(err.Error())
	case errors.Is(err, trigger.ErrInProgress):
		return huma.Error409Conflict(err.Error())
	}
	return nil
}
