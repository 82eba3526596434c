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

type rotateKeyOutput struct {
	Body struct {
		Reencrypted int `json:"reencrypted" doc:"How many sealed values (secrets and webhook secrets) were re-encrypted under the new key."`
	}
}

func registerSecrets(api huma.API, d *Deps) {
	huma.Register(api, secured(huma.Operation{
		OperationID: "rotate-secret-key", Method: http.MethodPost, Path: "/v1/secrets/rotate-key", Tags: []string{"secrets"},
		Summary: "Rotate the key secrets are sealed with",
		Description: "Makes a new random key, re-encrypts every secret and webhook secret under it in one database transaction, then replaces the key file (the previous key is kept as secret.key.old, for backups made before). " +
			"A crash part-way is finished at the next start. Other servers sharing a PostgreSQL database keep the old key in memory: stop them first, and give them the new key file.",
		Errors: []int{http.StatusConflict},
	}, auth.ScopeSecretsAdmin), func(ctx context.Context, _ *struct{}) (*rotateKeyOutput, error) {
		if d.RotateKey == nil {
			return nil, huma.Error409Conflict("the secret key comes from MILLRACE_SECRET_KEY: rotate it where it is kept (stop the server, run millrace secrets rotate-key with the key in a file, then set the new value)")
		}
		n, err := d.RotateKey(ctx)
		if err != nil {
			return nil, problem(ctx, err)
		}
		// The audit middleware records this POST with its caller.
		out := &rotateKeyOutput{}
		out.Body.Reencrypted = n
		return out, nil
	})
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
