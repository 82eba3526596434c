package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/auth"
)

type ModelPath struct {
	Name string `path:"name" maxLength:"128" doc:"Model name: lower-case letters, digits, '.', '_' and '-'. Modules load it by this name and grants list it."`
}

type putModelInput struct {
	ModelPath
	Body struct {
		Path        string `json:"path,omitempty" maxLength:"4096" doc:"Where the model is on the server's disk: an absolute path to a folder holding model.onnx (and its external data files), to an .onnx file, or to a pipeline folder holding model_index.json (Stable Diffusion XL as Hugging Face Optimum exports it; every part is checked, and modules granted NAME load its networks as NAME/unet, NAME/text_encoder, …). Leave it out on a server with a remote accelerator (MILLRACE_ACCEL_URL), which holds its own models."`
		Description string `json:"description,omitempty" maxLength:"4000"`
		Version     string `json:"version,omitempty" maxLength:"128" doc:"Free text for people, such as the model's release."`
	}
}

type modelOutput struct {
	Body *accel.Model
}

type putModelOutput struct {
	Status int
	Body   *accel.Model
}

type listModelsOutput struct {
	Body struct {
		Models []*accel.Model `json:"models"`
	}
}

type accelOutput struct {
	Body accel.Status
}

func registerModels(api huma.API, d *Deps) {
	huma.Register(api, secured(huma.Operation{
		OperationID: "put-model", Method: http.MethodPut, Path: "/v1/models/{name}", Tags: []string{"models"},
		Summary: "Register a model, or replace its registration",
		Description: "Registers a model file or folder on the server's disk under a name. The accelerator serves exactly the registered models, " +
			"and a module may load one (wasi_ephemeral_nn.load_by_name) only if its grant lists it (capabilities.accel.models). " +
			"201 when the name is new, 200 when a registration was replaced.",
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusUnprocessableEntity, http.StatusServiceUnavailable},
	}, auth.ScopeModelsAdmin), func(ctx context.Context, in *putModelInput) (*putModelOutput, error) {
		if d.Models == nil {
			return nil, noAccel()
		}
		m, created, err := d.Models.Register(ctx, in.Name, accel.Registration{Path: in.Body.Path, Description: in.Body.Description, Version: in.Body.Version})
		if err != nil {
			return nil, problem(ctx, err)
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		return &putModelOutput{Status: status, Body: m}, nil
	})

	huma.Register(api, secured(huma.Operation{
		OperationID: "list-models", Method: http.MethodGet, Path: "/v1/models", Tags: []string{"models"},
		Summary: "List registered models", Errors: []int{http.StatusServiceUnavailable},
	}, auth.ScopeModelsRead), func(ctx context.Context, _ *struct{}) (*listModelsOutput, error) {
		if d.Models == nil {
			return nil, noAccel()
		}
		list, err := d.Models.List(ctx)
		if err != nil {
			return nil, problem(ctx, err)
		}
		out := &listModelsOutput{}
		out.Body.Models = list
		return out, nil
	})

	huma.Register(api, secured(huma.Operation{
		OperationID: "get-model", Method: http.MethodGet, Path: "/v1/models/{name}", Tags: []string{"models"},
		Summary:     "Get a registered model with its inputs and outputs",
		Description: "The inputs and outputs (names, datatypes, shapes) come from the accelerator, which loads the model to answer; they are cached. When the accelerator cannot answer, metadata_error says why.",
		Errors:      []int{http.StatusNotFound, http.StatusServiceUnavailable},
	}, auth.ScopeModelsRead), func(ctx context.Context, in *ModelPath) (*modelOutput, error) {
		if d.Models == nil {
			return nil, noAccel()
		}
		m, err := d.Models.Get(ctx, in.Name)
		if err != nil {
			return nil, problem(ctx, err)
		}
		return &modelOutput{Body: m}, nil
	})

	huma.Register(api, secured(huma.Operation{
		OperationID: "delete-model", Method: http.MethodDelete, Path: "/v1/models/{name}", Tags: []string{"models"},
		Summary: "Remove a model's registration", Description: "The accelerator unloads it; the file on disk stays.",
		DefaultStatus: http.StatusNoContent, Errors: []int{http.StatusNotFound, http.StatusServiceUnavailable},
	}, auth.ScopeModelsAdmin), func(ctx context.Context, in *ModelPath) (*struct{}, error) {
		if d.Models == nil {
			return nil, noAccel()
		}
		return nil, problem(ctx, d.Models.Remove(ctx, in.Name))
	})

	huma.Register(api, secured(huma.Operation{
		OperationID: "get-accel", Method: http.MethodGet, Path: "/v1/accel", Tags: []string{"models"},
		Summary:     "The accelerator's state",
		Description: "Whether the accelerator (a millrace-accel child process, or a remote server) can run models, why not, how to fix it, and how often the child was restarted.",
	}, auth.ScopeModelsRead), func(ctx context.Context, _ *struct{}) (*accelOutput, error) {
		return &accelOutput{Body: accelStatus(ctx, d)}, nil
	})
}

// accelStatus is the accelerator's state; disabled when the server has
// none configured.
func accelStatus(ctx context.Context, d *Deps) accel.Status {
	if d.Accel == nil {
		return accel.New(accel.Config{Mode: accel.ModeOff}).Status(ctx)
	}
	return d.Accel.Status(ctx)
}

func noAccel() error {
	return huma.Error503ServiceUnavailable("this server has no model registry")
}
