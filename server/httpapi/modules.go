package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/sse"
	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/sandbox"
)

type uploadForm struct {
	Wasm     huma.FormFile `form:"wasm" required:"true" doc:"The module, a WebAssembly binary. It may carry its manifest in a custom section named millrace.manifest."`
	Manifest huma.FormFile `form:"manifest" required:"false" doc:"manifest.json (see abi/ABI.md §6). Required unless the module embeds it."`
}

type uploadInput struct {
	RawBody huma.MultipartFormFiles[uploadForm]
}

type versionOutput struct {
	Body *registry.Version
}

type uploadOutput struct {
	Status int
	Body   *registry.Version
}

type moduleSummary struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Type        string   `json:"type,omitempty"`
	Category    string   `json:"category,omitempty"`
	Icon        string   `json:"icon,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	Latest      string   `json:"latest" doc:"The highest version by semantic-version order."`
	Versions    []string `json:"versions"`
}

type listModulesOutput struct {
	Body struct {
		Modules []moduleSummary `json:"modules"`
	}
}

type moduleVersionsOutput struct {
	Body struct {
		Versions []*registry.Version `json:"versions"`
	}
}

type idPath struct {
	ID string `path:"id" pattern:"^[a-z][a-z0-9_-]{0,63}$" doc:"Module id."`
}

type VersionPath struct {
	ID      string `path:"id" pattern:"^[a-z][a-z0-9_-]{0,63}$" doc:"Module id."`
	Version string `path:"version" maxLength:"128" doc:"A semantic version, or latest."`
}

type grantInput struct {
	VersionPath
	Body sandbox.Grant
}

type grantOutput struct {
	Body *sandbox.Grant
}

type invokeInput struct {
	VersionPath
	Body struct {
		Input  any            `json:"input,omitempty" doc:"The module's input, checked against its inputs schema."`
		Config map[string]any `json:"config,omitempty" doc:"The module's config, checked against its config schema."`
	}
}

type invokeOutput struct {
	Body invokeResult
}

// invokeResult is what a module invocation that succeeded returns.
type invokeResult struct {
	Module      string              `json:"module"`
	Version     string              `json:"version"`
	Output      any                 `json:"output"`
	Logs        []sandbox.LogRecord `json:"logs"`
	LogsDropped int                 `json:"logs_dropped,omitempty"`
	Progress    *sandbox.Progress   `json:"progress,omitempty"`
	DurationMS  float64             `json:"duration_ms"`
}

// invokeProblem is the stream's last event when the invocation did not
// succeed: the problem the plain endpoint answers with, and, when the
// module ran and failed, why and its logs.
type invokeProblem struct {
	Status     int                 `json:"status"`
	Title      string              `json:"title"`
	Detail     string              `json:"detail,omitempty"`
	Errors     []*huma.ErrorDetail `json:"errors,omitempty"`
	Kind       sandbox.FailureKind `json:"kind,omitempty"`
	Logs       []sandbox.LogRecord `json:"logs,omitempty"`
	DurationMS float64             `json:"duration_ms,omitempty"`
}

func registerModules(api huma.API, d *Deps) {
	huma.Register(api, secured(huma.Operation{
		OperationID: "upload-module", Method: http.MethodPost, Path: "/v1/modules", Tags: []string{"modules"},
		Summary:       "Upload a module version",
		Description:   "Validates the manifest, the module's imports against the ABI and its capability requests, compiles the module and stores it. Uploading the same bytes for an existing version is idempotent (200); the same version with other bytes is a 409.",
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity},
	}, auth.ScopeModulesWrite), func(ctx context.Context, in *uploadInput) (*uploadOutput, error) {
		form := in.RawBody.Data()
		max := d.Registry.Config().MaxModuleBytes
		wasm, err := readPart(form.Wasm.File, max, "wasm")
		if err != nil {
			return nil, err
		}
		var manifest []byte
		if form.Manifest.IsSet {
			if manifest, err = readPart(form.Manifest.File, abi.MaxManifestBytes, "manifest"); err != nil {
				return nil, err
			}
		}
		v, created, err := d.Registry.Upload(ctx, wasm, manifest)
		if err != nil {
			return nil, problem(ctx, err)
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		return &uploadOutput{Status: status, Body: v}, nil
	})

	huma.Register(api, secured(huma.Operation{
		OperationID: "list-modules", Method: http.MethodGet, Path: "/v1/modules", Tags: []string{"modules"},
		Summary: "List modules",
	}, auth.ScopeModulesRead), func(ctx context.Context, _ *struct{}) (*listModulesOutput, error) {
		all, err := d.Registry.List(ctx, "")
		if err != nil {
			return nil, problem(ctx, err)
		}
		out := &listModulesOutput{}
		out.Body.Modules = []moduleSummary{}
		for _, v := range all { // sorted by id, then version
			n := len(out.Body.Modules)
			if n == 0 || out.Body.Modules[n-1].ID != v.ModuleID {
				out.Body.Modules = append(out.Body.Modules, moduleSummary{ID: v.ModuleID})
				n++
			}
			s := &out.Body.Modules[n-1]
			m := v.Manifest
			s.Name, s.Description, s.Type, s.Category, s.Icon, s.Tags = m.Name, m.Description, m.Type, m.Category, m.Icon, m.Tags
			s.Latest = v.Version
			s.Versions = append(s.Versions, v.Version)
		}
		return out, nil
	})

	huma.Register(api, secured(huma.Operation{
		OperationID: "get-module", Method: http.MethodGet, Path: "/v1/modules/{id}", Tags: []string{"modules"},
		Summary: "List a module's versions", Errors: []int{http.StatusNotFound},
	}, auth.ScopeModulesRead), func(ctx context.Context, in *idPath) (*moduleVersionsOutput, error) {
		vs, err := d.Registry.List(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, err)
		}
		out := &moduleVersionsOutput{}
		out.Body.Versions = vs
		return out, nil
	})

	huma.Register(api, secured(huma.Operation{
		OperationID: "delete-module", Method: http.MethodDelete, Path: "/v1/modules/{id}", Tags: []string{"modules"},
		Summary: "Delete every version of a module", DefaultStatus: http.StatusNoContent, Errors: []int{http.StatusNotFound},
	}, auth.ScopeModulesWrite), func(ctx context.Context, in *idPath) (*struct{}, error) {
		return nil, problem(ctx, d.Registry.Delete(ctx, in.ID, ""))
	})

	huma.Register(api, secured(huma.Operation{
		OperationID: "get-module-version", Method: http.MethodGet, Path: "/v1/modules/{id}/versions/{version}", Tags: []string{"modules"},
		Summary: "Get a module version", Errors: []int{http.StatusNotFound},
	}, auth.ScopeModulesRead), func(ctx context.Context, in *VersionPath) (*versionOutput, error) {
		v, err := d.Registry.Get(ctx, in.ID, in.Version)
		if err != nil {
			return nil, problem(ctx, err)
		}
		return &versionOutput{Body: v}, nil
	})

	huma.Register(api, secured(huma.Operation{
		OperationID: "delete-module-version", Method: http.MethodDelete, Path: "/v1/modules/{id}/versions/{version}", Tags: []string{"modules"},
		Summary: "Delete a module version", DefaultStatus: http.StatusNoContent, Errors: []int{http.StatusNotFound},
	}, auth.ScopeModulesWrite), func(ctx context.Context, in *VersionPath) (*struct{}, error) {
		return nil, problem(ctx, d.Registry.Delete(ctx, in.ID, in.Version))
	})

	huma.Register(api, secured(huma.Operation{
		OperationID: "get-grant", Method: http.MethodGet, Path: "/v1/modules/{id}/versions/{version}/grants", Tags: []string{"grants"},
		Summary: "Get what a module version is granted", Errors: []int{http.StatusNotFound},
	}, auth.ScopeModulesRead), func(ctx context.Context, in *VersionPath) (*grantOutput, error) {
		v, err := d.Registry.Get(ctx, in.ID, in.Version)
		if err != nil {
			return nil, problem(ctx, err)
		}
		if v.Grant == nil {
			return nil, huma.Error404NotFound(fmt.Sprintf("%s@%s has no grant yet", v.ModuleID, v.Version))
		}
		return &grantOutput{Body: v.Grant}, nil
	})

	huma.Register(api, secured(huma.Operation{
		OperationID: "put-grant", Method: http.MethodPut, Path: "/v1/modules/{id}/versions/{version}/grants", Tags: []string{"grants"},
		Summary:     "Grant capabilities and limits to a module version",
		Description: "Replaces the grant. It may be narrower than the manifest's request, never wider. Only granted capabilities' host functions are linked when the module runs.",
		Errors:      []int{http.StatusNotFound, http.StatusUnprocessableEntity},
	}, auth.ScopeModulesGrant), func(ctx context.Context, in *grantInput) (*grantOutput, error) {
		v, err := d.Registry.SetGrant(ctx, in.ID, in.Version, in.Body)
		if err != nil {
			return nil, problem(ctx, err)
		}
		return &grantOutput{Body: v.Grant}, nil
	})

	huma.Register(api, secured(huma.Operation{
		OperationID: "invoke-module", Method: http.MethodPost, Path: "/v1/modules/{id}/versions/{version}/invoke", Tags: []string{"modules"},
		Summary:     "Run a module version once",
		Description: "Runs the module in a fresh sandbox with its grant and returns its output, logs and duration. A module that fails (error, trap, timeout, memory or output limit) gives a problem whose kind names the cause, with the logs it wrote.",
		Errors:      []int{http.StatusNotFound, http.StatusUnprocessableEntity, http.StatusServiceUnavailable},
	}, auth.ScopeModulesInvoke), func(ctx context.Context, in *invokeInput) (*invokeOutput, error) {
		res, err := invoke(ctx, d, in, nil)
		if err != nil {
			return nil, err
		}
		return &invokeOutput{Body: *res}, nil
	})

	sse.Register(api, secured(huma.Operation{
		OperationID: "invoke-module-stream", Method: http.MethodPost, Path: "/v1/modules/{id}/versions/{version}/invoke/stream", Tags: []string{"modules"},
		Summary:     "Run a module version once, with live progress (Server-Sent Events)",
		Description: "As invoke-module, but the answer is a stream: a progress event each time the module reports progress (with its preview image, if any), then one result event, or one problem event (the problem invoke-module would answer with).",
	}, auth.ScopeModulesInvoke), map[string]any{"progress": sandbox.Progress{}, "result": invokeResult{}, "problem": invokeProblem{}},
		func(ctx context.Context, in *invokeInput, send sse.Sender) {
			// Progress is reported from the guest's own goroutine, the
			// one running this handler, so sends never overlap.
			res, err := invoke(ctx, d, in, func(p sandbox.Progress) { send.Data(p) })
			if err != nil {
				send.Data(problemOf(err))
				return
			}
			send.Data(*res)
		})
}

// invoke runs a module version once, reporting progress to onProgress
// (if set); a failure is the problem to answer with.
func invoke(ctx context.Context, d *Deps, in *invokeInput, onProgress func(sandbox.Progress)) (*invokeResult, error) {
	req := registry.InvokeRequest{ModuleID: in.ID, Version: in.Version, OnProgress: onProgress}
	var err error
	if in.Body.Input != nil {
		if req.Input, err = json.Marshal(in.Body.Input); err != nil {
			return nil, huma.Error422UnprocessableEntity("input: " + err.Error())
		}
	}
	if in.Body.Config != nil {
		if req.Config, err = json.Marshal(in.Body.Config); err != nil {
			return nil, huma.Error422UnprocessableEntity("config: " + err.Error())
		}
	}
	res, v, err := d.Registry.Invoke(ctx, req)
	if err != nil {
		return nil, problem(ctx, err)
	}
	ms := float64(res.Duration.Microseconds()) / 1000
	if f := res.Failure; f != nil {
		status := failureStatus(f.Kind)
		return nil, &invokeFailure{
			ErrorModel: huma.ErrorModel{Status: status, Title: "Module failed", Detail: f.Message},
			Kind:       f.Kind, Module: v.ModuleID, Version: v.Version, Logs: res.Logs, DurationMS: ms,
		}
	}
	out := &invokeResult{Module: v.ModuleID, Version: v.Version, Output: json.RawMessage(res.Output),
		Logs: res.Logs, LogsDropped: res.LogsDropped, Progress: res.Progress, DurationMS: ms}
	if out.Logs == nil {
		out.Logs = []sandbox.LogRecord{}
	}
	return out, nil
}

// problemOf turns an error of invoke into the stream's problem event.
func problemOf(err error) invokeProblem {
	switch e := err.(type) {
	case *invokeFailure:
		return invokeProblem{Status: e.Status, Title: e.Title, Detail: e.Detail, Kind: e.Kind, Logs: e.Logs, DurationMS: e.DurationMS}
	case *huma.ErrorModel:
		return invokeProblem{Status: e.Status, Title: e.Title, Detail: e.Detail, Errors: e.Errors}
	case huma.StatusError:
		return invokeProblem{Status: e.GetStatus(), Title: http.StatusText(e.GetStatus()), Detail: e.Error()}
	}
	return invokeProblem{Status: http.StatusInternalServerError, Title: "Internal Server Error", Detail: err.Error()}
}

// readPart reads one uploaded file, refusing more than max bytes.
func readPart(f multipart.File, max int64, field string) ([]byte, error) {
	if f == nil {
		return nil, huma.Error422UnprocessableEntity(field+": is required", &huma.ErrorDetail{Location: "body." + field, Message: "is required"})
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, huma.Error400BadRequest(field + ": " + err.Error())
	}
	if int64(len(b)) > max {
		return nil, huma.Error413RequestEntityTooLarge(fmt.Sprintf("%s: is over the %d-byte limit", field, max), &huma.ErrorDetail{Location: "body." + field, Message: fmt.Sprintf("over %d bytes", max)})
	}
	return b, nil
}
