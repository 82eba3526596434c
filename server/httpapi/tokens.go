package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/millrace/millrace/server/audit"
	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/store"
)

type tokenInfo struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	Role       string     `json:"role,omitempty" doc:"The token's role, when it was given one instead of scopes."`
	UserID     string     `json:"user_id,omitempty" doc:"The user the token acts for; it never does more than their role allows."`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty" doc:"Updated at most once a minute."`
}

func toTokenInfo(t store.Token) tokenInfo {
	return tokenInfo{ID: t.ID, Name: t.Name, Scopes: t.Scopes, Role: t.Role, UserID: t.UserID, ExpiresAt: t.ExpiresAt, CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt}
}

type createTokenInput struct {
	Body createTokenBody
}

type createTokenBody struct {
	Name   string   `json:"name" minLength:"1" maxLength:"100"`
	Scopes []string `json:"scopes,omitempty" maxItems:"32" doc:"Any of modules:read, modules:write, modules:grant, modules:invoke, secrets:read, secrets:write, tokens:admin, workflows:read, workflows:write, workflows:run, models:read, models:admin, users:admin, audit:read; or * for every scope, present and future. Give scopes or role, not both."`
	Role   string   `json:"role,omitempty" enum:"viewer,operator,editor,admin," doc:"Instead of scopes: the role's scopes, present and future."`
	UserID string   `json:"user_id,omitempty" pattern:"^usr_[0-9a-f]{16}$" doc:"The user the token acts for; default the caller's user. The token never does more than that user's role allows."`
	// A time rather than a duration: what the admin sees in the list.
	ExpiresAt *time.Time `json:"expires_at,omitempty" doc:"When the token stops working; absent means never."`
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
	self := map[string]any{auditSelf: true}
	huma.Register(api, secured(huma.Operation{
		OperationID: "create-token", Method: http.MethodPost, Path: "/v1/tokens", Tags: []string{"tokens"},
		Summary: "Create an API token", DefaultStatus: http.StatusCreated, Errors: []int{http.StatusUnprocessableEntity},
		Description: "A token has a role or explicit scopes, no wider than the caller's own, and may belong to a user and expire.",
		Metadata:    self,
	}, auth.ScopeTokensAdmin), func(ctx context.Context, in *createTokenInput) (*createTokenOutput, error) {
		return createTokenAudited(ctx, d, in.Body, in.Body.UserID)
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
		Description: "The token stops working at once, and so do the console sessions signed in with it.",
		Metadata:    self,
	}, auth.ScopeTokensAdmin), func(ctx context.Context, in *tokenPath) (*struct{}, error) {
		if me, ok := callerFrom(ctx); ok && me.TokenID == in.ID {
			return nil, huma.Error409Conflict("a token cannot revoke itself; use another admin token")
		}
		if err := d.Store.DeleteToken(ctx, in.ID); err != nil {
			d.Audit.Record(ctx, audit.Event{Action: "delete-token", Target: in.ID, Outcome: audit.Failure, Detail: err.Error()})
			return nil, problem(ctx, err)
		}
		d.Audit.Record(ctx, audit.Event{Action: "delete-token", Target: in.ID})
		return nil, nil
	})
}

// ownTokenInput is a token a caller makes for themself.
type ownTokenInput struct {
	Body ownTokenBody
}

type ownTokenBody struct {
	Name      string     `json:"name" minLength:"1" maxLength:"100"`
	Scopes    []string   `json:"scopes,omitempty" maxItems:"32" doc:"Scopes you hold; give scopes or role, not both."`
	Role      string     `json:"role,omitempty" enum:"viewer,operator,editor,admin," doc:"Instead of scopes: a role no higher than yours."`
	ExpiresAt *time.Time `json:"expires_at,omitempty" doc:"When the token stops working; absent means never."`
}

type ownTokenPath struct {
	ID string `path:"id" pattern:"^tok_[0-9a-f]{12}$"`
}

// registerOwnTokens lets every user manage tokens for themself (for
// scripts and CI), never wider than their own rights; admins manage
// everyone's with /v1/tokens.
func registerOwnTokens(api huma.API, d *Deps) {
	self := map[string]any{auditSelf: true}
	huma.Register(api, authenticated(huma.Operation{
		OperationID: "create-own-token", Method: http.MethodPost, Path: "/v1/auth/tokens", Tags: []string{"auth"},
		Summary: "Create an API token for yourself", DefaultStatus: http.StatusCreated, Errors: []int{http.StatusConflict, http.StatusUnprocessableEntity},
		Description: "Needs no particular scope: the token acts for you and never does more than you may.",
		Metadata:    self,
	}), func(ctx context.Context, in *ownTokenInput) (*createTokenOutput, error) {
		who, _ := callerFrom(ctx)
		if who.UserID == "" {
			return nil, huma.Error409Conflict("this token belongs to no user, so it cannot make tokens for itself; an admin can, with POST /v1/tokens")
		}
		b := in.Body
		var body createTokenBody
		body.Name, body.Scopes, body.Role, body.ExpiresAt = b.Name, b.Scopes, b.Role, b.ExpiresAt
		return createTokenAudited(ctx, d, body, who.UserID)
	})
	huma.Register(api, authenticated(huma.Operation{
		OperationID: "list-own-tokens", Method: http.MethodGet, Path: "/v1/auth/tokens", Tags: []string{"auth"},
		Summary: "List your API tokens (never their secrets)",
	}), func(ctx context.Context, _ *struct{}) (*listTokensOutput, error) {
		who, _ := callerFrom(ctx)
		list, err := d.Store.ListTokens(ctx)
		if err != nil {
			return nil, problem(ctx, err)
		}
		out := &listTokensOutput{}
		out.Body.Tokens = []tokenInfo{}
		for _, t := range list {
			if who.UserID != "" && t.UserID == who.UserID {
				out.Body.Tokens = append(out.Body.Tokens, toTokenInfo(t))
			}
		}
		return out, nil
	})
	huma.Register(api, authenticated(huma.Operation{
		OperationID: "delete-own-token", Method: http.MethodDelete, Path: "/v1/auth/tokens/{id}", Tags: []string{"auth"},
		Summary: "Revoke one of your API tokens", DefaultStatus: http.StatusNoContent, Errors: []int{http.StatusNotFound, http.StatusConflict},
		Metadata: self,
	}), func(ctx context.Context, in *ownTokenPath) (*struct{}, error) {
		who, _ := callerFrom(ctx)
		tok, err := d.Store.Token(ctx, in.ID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && (who.UserID == "" || tok.UserID != who.UserID)) {
			// Another user's token is none of your business, nor is
			// whether it exists.
			return nil, huma.Error404NotFound("you have no token " + in.ID)
		} else if err != nil {
			return nil, problem(ctx, err)
		}
		if who.TokenID == in.ID {
			return nil, huma.Error409Conflict("a token cannot revoke itself; use another token or the console")
		}
		if err := d.Store.DeleteToken(ctx, in.ID); err != nil {
			return nil, problem(ctx, err)
		}
		d.Audit.Record(ctx, audit.Event{Action: "delete-token", Target: in.ID})
		return nil, nil
	})
}

// createTokenAudited creates a token for userID ("" means the caller's
// user) and records the attempt.
func createTokenAudited(ctx context.Context, d *Deps, b createTokenBody, userID string) (*createTokenOutput, error) {
	b.UserID = userID
	rec, secret, err := createToken(ctx, d, b)
	if err != nil {
		d.Audit.Record(ctx, audit.Event{Action: "create-token", Target: b.Name, Outcome: outcomeOf(statusOf(err)), Detail: err.Error()})
		return nil, err
	}
	detail := "name=" + rec.Name + " scopes=" + strings.Join(rec.Scopes, ",")
	if rec.Role != "" {
		detail = "name=" + rec.Name + " role=" + rec.Role
	}
	if rec.UserID != "" {
		detail += " user=" + rec.UserID
	}
	d.Audit.Record(ctx, audit.Event{Action: "create-token", Target: rec.ID, Detail: detail})
	out := &createTokenOutput{}
	out.Body.tokenInfo, out.Body.Token = toTokenInfo(rec), secret
	return out, nil
}

func statusOf(err error) int {
	var se huma.StatusError
	if errors.As(err, &se) {
		return se.GetStatus()
	}
	return http.StatusInternalServerError
}

// createToken checks a token request against the caller's and the owning
// user's rights, then issues it.
func createToken(ctx context.Context, d *Deps, b createTokenBody) (store.Token, string, error) {
	who, _ := callerFrom(ctx)
	if b.Role != "" && len(b.Scopes) > 0 {
		return store.Token{}, "", huma.Error422UnprocessableEntity("give scopes or a role, not both", &huma.ErrorDetail{Location: "body.role", Message: "not with scopes"})
	}
	for i, s := range b.Scopes {
		if s != auth.ScopeAll && !slices.Contains(auth.AllScopes, s) {
			return store.Token{}, "", huma.Error422UnprocessableEntity("unknown scope "+s, &huma.ErrorDetail{Location: "body.scopes[" + strconv.Itoa(i) + "]", Message: "unknown scope", Value: s})
		}
	}
	if b.ExpiresAt != nil && !b.ExpiresAt.After(time.Now()) {
		return store.Token{}, "", huma.Error422UnprocessableEntity("expires_at is in the past", &huma.ErrorDetail{Location: "body.expires_at", Message: "must be in the future", Value: b.ExpiresAt})
	}
	want, where := b.Scopes, "body.scopes"
	if b.Role != "" {
		want, where = auth.RoleScopes(b.Role), "body.role"
	}
	if missing, ok := auth.Within(want, who.Scopes); !ok {
		return store.Token{}, "", huma.Error403Forbidden("a token cannot hold more than its creator: "+who.String()+" lacks "+missing, &huma.ErrorDetail{Location: where, Message: "wider than the caller's rights", Value: missing})
	}
	userID := b.UserID
	if userID == "" {
		userID = who.UserID
	}
	if userID != "" {
		u, err := d.Store.User(ctx, userID)
		if errors.Is(err, store.ErrNotFound) {
			return store.Token{}, "", huma.Error422UnprocessableEntity("no such user", &huma.ErrorDetail{Location: "body.user_id", Message: "no such user", Value: userID})
		} else if err != nil {
			return store.Token{}, "", problem(ctx, err)
		}
		if missing, ok := auth.Within(want, auth.RoleScopes(u.Role)); !ok {
			return store.Token{}, "", huma.Error422UnprocessableEntity("the token would hold "+missing+", which the user "+u.Username+" ("+u.Role+") lacks",
				&huma.ErrorDetail{Location: where, Message: "wider than the user's role", Value: missing})
		}
	}
	rec, secret, err := d.Tokens.IssueToken(ctx, auth.TokenSpec{Name: b.Name, UserID: userID, Role: b.Role, Scopes: b.Scopes, ExpiresAt: b.ExpiresAt})
	if err != nil {
		return store.Token{}, "", problem(ctx, err)
	}
	return rec, secret, nil
}
