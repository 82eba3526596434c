package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/datasets"
	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/millrace/millrace/server/store"
)

// problem turns a domain error into an RFC 9457 problem. It is the one
// place that decides status codes, so handlers just return errors.
func problem(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var se huma.StatusError
	if errors.As(err, &se) {
		return err
	}
	if p := triggerProblem(err); p != nil {
		return p
	}
	var ie *engine.InvalidError
	if errors.As(err, &ie) {
		details := make([]error, 0, len(ie.Problems))
		for _, p := range ie.Problems {
			details = append(details, &huma.ErrorDetail{Location: "body." + p.Location, Message: p.Message})
		}
		return huma.NewError(http.StatusUnprocessableEntity, "the workflow is not valid: "+ie.Error(), details...)
	}
	var le *engine.LimitError
	if errors.As(err, &le) {
		return huma.NewError(http.StatusRequestEntityTooLarge, le.Error(), &huma.ErrorDetail{Location: "body." + le.Field, Message: le.Error()})
	}
	var stateErr *engine.StateError
	if errors.As(err, &stateErr) {
		return huma.Error409Conflict(stateErr.Error())
	}
	var np *engine.NotPublishedError
	if errors.As(err, &np) {
		return huma.Error409Conflict(np.Error())
	}
	var nf *engine.NotFoundError
	if errors.As(err, &nf) {
		return huma.Error404NotFound(nf.Error())
	}
	var ae *accel.Error
	if errors.As(err, &ae) {
		status := http.StatusUnprocessableEntity
		if ae.NotFound {
			status = http.StatusNotFound
		}
		where := "body." + ae.Field
		if ae.Field == "name" {
			where = "path.name"
		}
		return huma.NewError(status, ae.Error(), &huma.ErrorDetail{Message: ae.Msg, Location: where})
	}
	var de *datasets.Error
	if errors.As(err, &de) {
		return datasetProblem(de)
	}
	var re *registry.Error
	if errors.As(err, &re) {
		status := map[registry.Kind]int{
			registry.KindInvalid:    http.StatusUnprocessableEntity,
			registry.KindTooLarge:   http.StatusRequestEntityTooLarge,
			registry.KindConflict:   http.StatusConflict,
			registry.KindNotFound:   http.StatusNotFound,
			registry.KindNotGranted: http.StatusForbidden,
			registry.KindBusy:       http.StatusServiceUnavailable,
		}[re.Kind]
		if status == 0 {
			status = http.StatusInternalServerError
		}
		detail := &huma.ErrorDetail{Message: re.Msg, Location: re.Field}
		if re.Field == "" {
			return huma.NewError(status, re.Msg)
		}
		return huma.NewError(status, re.Error(), detail)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return huma.Error404NotFound(err.Error())
	case errors.Is(err, store.ErrConflict):
		return huma.Error409Conflict(err.Error())
	case errors.Is(err, context.Canceled):
		return huma.NewError(499, "the client closed the request")
	}
	slog.ErrorContext(ctx, "request failed", "err", err)
	return huma.Error500InternalServerError("internal error; the server log has details")
}

// invokeFailure is the problem returned when a module ran and failed. It
// carries the logs and the duration as extension members, so the caller
// sees what the module printed before it failed.
type invokeFailure struct {
	huma.ErrorModel
	Kind       sandbox.FailureKind `json:"kind" doc:"Why the module failed: module_error, exit, trap, timeout, memory_limit, output_limit, invalid_output, denied, capacity."`
	Module     string              `json:"module"`
	Version    string              `json:"version"`
	Logs       []sandbox.LogRecord `json:"logs"`
	DurationMS float64             `json:"duration_ms"`
}

func failureStatus(k sandbox.FailureKind) int {
	switch k {
	case sandbox.FailDenied:
		return http.StatusForbidden
	case sandbox.FailBusy:
		return http.StatusServiceUnavailable
	case sandbox.FailInternal:
		return http.StatusInternalServerError
	case sandbox.FailCanceled:
		return 499
	}
	return http.StatusUnprocessableEntity
}
