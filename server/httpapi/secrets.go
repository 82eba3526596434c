package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/millrace/millrace/server/auth"
)

type SecretPath struct {
	Name string `path:"name" pattern:"^[A-Za-z_][A-Za-z0-9_]{0,127}$" doc:"Secret name, as modules request it."`
}

type putSecretInput struct {
	SecretPath
	Body struct {
		Value string `json:"value" maxLength:"65536" doc:"The secret value. It is sealed at rest and never returned by the API."`
	}
}

type secretInfo struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

type listSecretsOutput struct {
	Body struct {
		Secrets []secretInfo `json:"secrets"`
	}
}

func registerSecrets(api huma.API, d *Deps) {
	huma.Register(api, secured(huma.Operation{
		OperationID: "put-secret", Method: http.MethodPut, Path: "/v1/secrets/{name}", Tags: []string{"secrets"},
		Summary: "Create or replace a secret", DefaultStatus: http.StatusNoContent,
	}, auth.ScopeSecretsWrite), func(ctx context.Context, in *putSecretInput) (*struct{}, error) {
		return nil, problem(ctx, d.Vault.Put(ctx, in.Name, []byte(in.Body.Value)))
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "list-secrets", Method: http.MethodGet, Path: "/v1/secrets", Tags: []string{"secrets"},
		Summary: "List secret names (never values)",
	}, auth.ScopeSecretsRead), func(ctx context.Context, _ *struct{}) (*listSecretsOutput, error) {
		list, err := d.Store.ListSecrets(ctx)
		if err != nil {
			return nil, problem(ctx, err)
		}
		out := &listSecretsOutput{}
		out.Body.Secrets = make([]secretInfo, 0, len(list))
		for _, s := range list {
			out.Body.Secrets = append(out.Body.Secrets, secretInfo{Name: s.Name, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt})
		}
		return out, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "delete-secret", Method: http.MethodDelete, Path: "/v1/secrets/{name}", Tags: []string{"secrets"},
		Summary: "Delete a secret", DefaultStatus: http.StatusNoContent, Errors: []int{http.StatusNotFound},
	}, auth.ScopeSecretsWrite), func(ctx context.Context, in *SecretPath) (*struct{}, error) {
		return nil, problem(ctx, d.Store.DeleteSecret(ctx, in.Name))
	})
}
