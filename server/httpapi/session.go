package httpapi

// Browser sessions, a stand-in for the console until the trust-auth work
// (user accounts, roles) lands with the same contract: POST
// /v1/auth/login with an API token answers with the caller's scopes and a
// CSRF token and sets an HttpOnly, SameSite=Strict cookie; unsafe requests
// that authenticate with the cookie must repeat the CSRF token in
// X-CSRF-Token. Sessions live in memory: a restart signs everyone out.

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/store"
)

const (
	sessionCookie = "millrace_session"
	csrfHeader    = "X-CSRF-Token"
	sessionTTL    = 12 * time.Hour
)

type session struct {
	// token is the API token the user signed in with, kept in memory
	// only: every request re-verifies it, so revoking the token ends the
	// session at once.
	token   string
	csrf    string
	expires time.Time
}

type sessionStore struct {
	mu sync.Mutex
	m  map[string]session
}

// sessions is process-wide so that every handler built in this process
// (tests build several) agrees; ids are random, so they cannot collide.
var sessions = &sessionStore{m: map[string]session{}}

func randomID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessionStore) create(token string) (string, session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for id, se := range s.m { // drop expired sessions as new ones come
		if now.After(se.expires) {
			delete(s.m, id)
		}
	}
	id := randomID()
	se := session{token: token, csrf: randomID(), expires: now.Add(sessionTTL)}
	s.m[id] = se
	return id, se
}

func (s *sessionStore) get(id string) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.m[id]
	if !ok || time.Now().After(se.expires) {
		delete(s.m, id)
		return session{}, false
	}
	return se, true
}

func (s *sessionStore) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

var errCSRF = huma.Error403Forbidden("this request authenticates with the session cookie, so it must send the csrf_token from POST /v1/auth/login in the " + csrfHeader + " header")

// verifyCaller resolves the caller's token: the Authorization header when
// present, else the session cookie (with the CSRF check for unsafe
// methods). It returns auth.ErrUnauthenticated when neither is valid.
func verifyCaller(ctx huma.Context, tokens *auth.Tokens) (store.Token, error) {
	if h := ctx.Header("Authorization"); h != "" {
		return tokens.Verify(ctx.Context(), h)
	}
	c, err := huma.ReadCookie(ctx, sessionCookie)
	if err != nil {
		return store.Token{}, auth.ErrUnauthenticated
	}
	se, ok := sessions.get(c.Value)
	if !ok {
		return store.Token{}, auth.ErrUnauthenticated
	}
	switch ctx.Method() {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if subtle.ConstantTimeCompare([]byte(ctx.Header(csrfHeader)), []byte(se.csrf)) != 1 {
			return store.Token{}, errCSRF
		}
	}
	return tokens.Verify(ctx.Context(), "Bearer "+se.token)
}

type loginInput struct {
	Body struct {
		Token    string `json:"token,omitempty" maxLength:"200" doc:"An API token (mr_…)."`
		Username string `json:"username,omitempty" maxLength:"200" doc:"A user name (user accounts are not available yet on this server)."`
		Password string `json:"password,omitempty" maxLength:"1000"`
	}
}

// SessionUser names a console user. This server has no user accounts
// yet, so sessions started with a token carry none (user is null), as the
// trust-auth contract has it for tokens that belong to no user.
type SessionUser struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Role     string `json:"role"`
}

// SessionInfo describes who is signed in and what they may do.
type SessionInfo struct {
	User      *SessionUser `json:"user" doc:"The signed-in user; null for a token that belongs to no user."`
	Role      string       `json:"role" doc:"admin, editor, operator or viewer, derived from the scopes."`
	Scopes    []string     `json:"scopes" doc:"The scopes the session holds; * means every scope."`
	CSRFToken string       `json:"csrf_token,omitempty" doc:"Send it in X-CSRF-Token with every unsafe request that uses the session cookie."`
	ExpiresAt *time.Time   `json:"expires_at,omitempty" doc:"When the session ends."`
}

type loginOutput struct {
	SetCookie http.Cookie `header:"Set-Cookie"`
	Body      SessionInfo
}

type meInput struct {
	Session string `cookie:"millrace_session"`
}

type meOutput struct {
	Body SessionInfo
}

type logoutOutput struct {
	SetCookie http.Cookie `header:"Set-Cookie"`
}

// roleOf names the broadest role whose scopes a token holds, by the
// scopes' suffixes (:admin, :write, :run, :read).
func roleOf(tok store.Token) string {
	if auth.Has(tok, auth.ScopeTokensAdmin) {
		return "admin"
	}
	for _, r := range []struct{ suffix, role string }{{":write", "editor"}, {":run", "operator"}} {
		if slices.ContainsFunc(tok.Scopes, func(s string) bool { return len(s) > len(r.suffix) && s[len(s)-len(r.suffix):] == r.suffix }) {
			return r.role
		}
	}
	return "viewer"
}

func infoOf(tok store.Token) SessionInfo {
	return SessionInfo{Role: roleOf(tok), Scopes: slices.Clone(tok.Scopes)}
}

// signedIn secures an operation that any valid caller may use, whatever
// its scopes.
func signedIn(op huma.Operation) huma.Operation {
	op.Security = []map[string][]string{{securityScheme: {}}}
	op.Errors = append(op.Errors, http.StatusUnauthorized)
	return op
}

func registerSessions(api huma.API, d *Deps) {
	huma.Register(api, huma.Operation{
		OperationID: "login", Method: http.MethodPost, Path: "/v1/auth/login", Tags: []string{"auth"},
		Summary:     "Sign in: start a browser session",
		Description: "Exchanges an API token for an HttpOnly, SameSite=Strict session cookie (millrace_session). Unsafe requests made with the cookie must send the returned csrf_token in X-CSRF-Token.",
		Errors:      []int{http.StatusUnauthorized, http.StatusUnprocessableEntity},
	}, func(ctx context.Context, in *loginInput) (*loginOutput, error) {
		if in.Body.Token == "" {
			if in.Body.Username != "" {
				return nil, huma.Error422UnprocessableEntity("this server has no user accounts yet: sign in with an API token", &huma.ErrorDetail{Location: "body.username", Message: "user accounts are not available; use token"})
			}
			return nil, huma.Error422UnprocessableEntity("give an API token", &huma.ErrorDetail{Location: "body.token", Message: "is required"})
		}
		tok, err := d.Tokens.Verify(ctx, "Bearer "+in.Body.Token)
		if err == auth.ErrUnauthenticated {
			return nil, huma.NewError(http.StatusUnauthorized, "this token is not valid: it may have been revoked or mistyped", &huma.ErrorDetail{Location: "body.token", Message: "is not a valid API token"})
		}
		if err != nil {
			return nil, problem(ctx, err)
		}
		id, se := sessions.create(in.Body.Token)
		out := &loginOutput{Body: infoOf(tok)}
		out.Body.CSRFToken, out.Body.ExpiresAt = se.csrf, &se.expires
		out.SetCookie = http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Expires: se.expires}
		return out, nil
	})
	huma.Register(api, signedIn(huma.Operation{
		OperationID: "whoami", Method: http.MethodGet, Path: "/v1/auth/me", Tags: []string{"auth"},
		Summary: "Who is signed in, with what scopes",
	}), func(ctx context.Context, in *meInput) (*meOutput, error) {
		tok, _ := tokenFrom(ctx)
		out := &meOutput{Body: infoOf(tok)}
		if se, ok := sessions.get(in.Session); ok {
			out.Body.CSRFToken, out.Body.ExpiresAt = se.csrf, &se.expires
		}
		return out, nil
	})
	huma.Register(api, huma.Operation{
		OperationID: "logout", Method: http.MethodPost, Path: "/v1/auth/logout", Tags: []string{"auth"},
		Summary: "Sign out: end the browser session", DefaultStatus: http.StatusNoContent,
	}, func(ctx context.Context, in *meInput) (*logoutOutput, error) {
		// Open to anyone: ending a session needs no right, and a
		// cross-site request cannot carry the SameSite=Strict cookie.
		sessions.drop(in.Session)
		return &logoutOutput{SetCookie: http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1}}, nil
	})
}
