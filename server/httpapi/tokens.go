package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/store"
)

type tokenInfo struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

func toTokenInfo(t store.Token) tokenInfo {
	return tokenInfo{ID: t.ID, Name: t.Name, Scopes: t.Scopes, CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt}
}

type createTokenInput struct {
	Body struct {
		Name   string   `json:"name" minLength:"1" maxLength:"100"`
		Scopes []string `json:"scopes" maxItems:"16" doc:"Any of modules:read, modules:write, modules:grant, modules:invoke, secrets:read, secrets:write, tokens:admin, workflows:read, workflows:write, workflows:run; or * for every scope, present and future."`
	}
}

type createTokenOutput struct {
	Body struct {
		tokenInfo
		Token string `json:"token" doc:"The secret. It is shown only now; store it safely."`
	}
}

type listTokensOutput struct {
	Body struct {
		Tokens []tokenInfo `json:"tokens"`
	}
}

type tokenPath struct {
	ID string `path:"id" pattern:"^tok_[0-9a-f]{12}$"`
}

func registerTokens(api huma.API, d *Deps) {
	huma.Register(api, secured(huma.Operation{
		OperationID: "create-token", Method: http.MethodPost, Path: "/v1/tokens", Tags: []string{"tokens"},
		Summary: "Create an API token", DefaultStatus: http.StatusCreated, Errors: []int{http.StatusUnprocessableEntity},
	}, auth.ScopeTokensAdmin), func(ctx context.Context, in *createTokenInput) (*createTokenOutput, error) {
		for i, s := range in.Body.Scopes {
			if s != auth.ScopeAll && !slices.Contains(auth.AllScopes, s) {
				return nil, huma.Error422UnprocessableEntity("unknown scope "+s, &huma.ErrorDetail{Location: "body.scopes[" + strconv.Itoa(i) + "]", Message: "unknown scope", Value: s})
			}
		}
		rec, secret, err := d.Tokens.Issue(ctx, in.Body.Name, in.Body.Scopes)
		if err != nil {
			return nil, problem(ctx, err)
		}
		out := &createTokenOutput{}
		out.Body.tokenInfo, out.Body.Token = toTokenInfo(rec), secret
		return out, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "list-tokens", Method: http.MethodGet, Path: "/v1/tokens", Tags: []string{"tokens"},
		Summary: "List API tokens (never their secrets)",
	}, auth.ScopeTokensAdmin), func(ctx context.Context, _ *struct{}) (*listTokensOutput, error) {
		list, err := d.Store.ListTokens(ctx)
		if err != nil {
			return nil, problem(ctx, err)
		}
		out := &listTokensOutput{}
		out.Body.Tokens = make([]tokenInfo, 0, len(list))
		for _, t := range list {
			out.Body.Tokens = append(out.Body.Tokens, toTokenInfo(t))
		}
		return out, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "delete-token", Method: http.MethodDelete, Path: "/v1/tokens/{id}", Tags: []string{"tokens"},
		Summary: "Revoke an API token", DefaultStatus: http.StatusNoContent, Errors: []int{http.StatusNotFound},
	}, auth.ScopeTokensAdmin), func(ctx context.Context, in *tokenPath) (*struct{}, error) {
		if me, ok := tokenFrom(ctx); ok && me.ID == in.ID {
			return nil, huma.Error409Conflict("a token cannot revoke itself; use another admin token")
		}
		return nil, problem(ctx, d.Store.DeleteToken(ctx, in.ID))
	})
}
