package httpapi_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/httpapi"
	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/millrace/millrace/server/store"
	"github.com/stretchr/testify/require"
)

// credential is how a test request authenticates: a bearer token, or the
// session cookie with (or without) the CSRF header.
type credential struct {
	bearer string
	cookie *http.Cookie
	csrf   string
}

func (c credential) String() string {
	if c.bearer != "" {
		return "bearer"
	}
	return "session"
}

// call sends a request with a credential. Event streams are not read:
// their status and headers are all a test needs.
func (f *fixture) call(t testing.TB, c credential, method, path string, body any) response {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	return f.send(t, f.srv.Client(), f.srv.URL, c, method, path, r)
}

func (f *fixture) send(t testing.TB, client *http.Client, base string, c credential, method, path string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, base+path, body)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	if c.csrf != "" {
		req.Header.Set(auth.CSRFHeader, c.csrf)
	}
	res, err := client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		return response{res.StatusCode, res.Header, nil}
	}
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return response{res.StatusCode, res.Header, b}
}

// signIn logs in and returns the session credential with its CSRF token,
// the cookie as the server set it, and the response body.
func (f *fixture) signIn(t testing.TB, body map[string]any) (credential, *http.Cookie, map[string]any) {
	t.Helper()
	r := f.call(t, credential{}, http.MethodPost, "/v1/auth/login", body)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	res := http.Response{Header: r.header}
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == auth.SessionCookie {
			cookie = c
		}
	}
	require.NotNil(t, cookie, "login sets the session cookie")
	m := r.json(t)
	return credential{cookie: &http.Cookie{Name: cookie.Name, Value: cookie.Value}, csrf: m["csrf_token"].(string)}, cookie, m
}

// echoWorkflow uploads and grants the echo module and returns a valid
// workflow that uses it.
func (f *fixture) echoWorkflow(t *testing.T) map[string]any {
	t.Helper()
	require.Equal(t, http.StatusCreated, f.upload(t, testguests.Wasm(t, "echo"), testguests.Manifest(t, "echo")).status)
	require.Equal(t, http.StatusOK, f.call(t, credential{bearer: f.admin}, http.MethodPut, "/v1/modules/echo/versions/1.0.0/grants", map[string]any{}).status)
	return map[string]any{"name": "W", "nodes": []any{map[string]any{"id": "a", "module": "echo@1.0.0"}}}
}

// createUser makes a user through the API as the bootstrap admin.
func (f *fixture) createUser(t testing.TB, username, password, role string) string {
	t.Helper()
	r := f.call(t, credential{bearer: f.admin}, http.MethodPost, "/v1/users", map[string]any{"username": username, "password": password, "role": role})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	return r.json(t)["id"].(string)
}

// expectedMinRole is the role matrix the README documents: the least
// trusted role that may use a scope.
func expectedMinRole(scope string) string {
	switch scope {
	case auth.ScopeSecretsRead:
		return auth.RoleEditor // names only
	}
	area, action, _ := strings.Cut(scope, ":")
	switch {
	case slices.Contains([]string{"secrets", "tokens", "users", "audit"}, area):
		return auth.RoleAdmin
	case action == "read":
		return auth.RoleViewer
	case action == "run" || action == "invoke":
		return auth.RoleOperator
	case action == "write":
		return auth.RoleEditor
	}
	return auth.RoleAdmin
}

// concretePath fills an OpenAPI path's parameters with well-formed values
// that name nothing, so allowed operations answer 404 or 422 and change
// nothing.
func concretePath(path string) string {
	return regexp.MustCompile(`\{[^}]+\}`).ReplaceAllStringFunc(path, func(p string) string {
		switch p {
		case "{version}":
			if strings.HasPrefix(path, "/v1/workflows") {
				return "1"
			}
			return "1.0.0"
		case "{id}":
			switch {
			case strings.HasPrefix(path, "/v1/tokens"):
				return "tok_000000000000"
			case strings.HasPrefix(path, "/v1/runs"):
				return "run_000000000000000000000"
			case strings.HasPrefix(path, "/v1/users"):
				return "usr_0000000000000000"
			}
			return "nothing"
		case "{trigger_id}":
			return "trg_0000000000000000"
		case "{artifact_id}":
			return "art_" + strings.Repeat("0", 32)
		}
		return "NOTHING"
	})
}

// A user of each role, with a bearer token and with a session cookie
// (and its CSRF token), may call exactly the operations the role matrix
// gives the role: every operation of the OpenAPI document is tried.
func TestEveryRoleMayCallExactlyItsOperations(t *testing.T) {
	t.Parallel()
	f := setup(t)
	// An event in the bus makes the event streams answer at once.
	f.events.Publish(engine.Event{Type: "test"})
	doc := openAPI(t, f)
	for _, role := range auth.Roles {
		password := "a long password for " + role
		uid := f.createUser(t, role+"-user", password, role)
		r := f.call(t, credential{bearer: f.admin}, http.MethodPost, "/v1/tokens", map[string]any{"name": role, "role": role, "user_id": uid})
		require.Equal(t, http.StatusCreated, r.status, string(r.body))
		bearer := r.json(t)["token"].(string)
		session, _, me := f.signIn(t, map[string]any{"username": role + "-user", "password": password})
		require.Equal(t, role, me["role"])

		checked := 0
		for path, item := range doc["paths"].(map[string]any) {
			for method, raw := range item.(map[string]any) {
				op := raw.(map[string]any)
				sec, _ := op["security"].([]any)
				if len(sec) == 0 {
					continue
				}
				scopes, isBearer := sec[0].(map[string]any)["bearer"].([]any)
				if !isBearer || len(scopes) == 0 {
					continue // webhooks; get-me and logout are tested on their own
				}
				scope := scopes[0].(string)
				allowed := slices.Index(auth.Roles, role) >= slices.Index(auth.Roles, expectedMinRole(scope))
				m, p := strings.ToUpper(method), concretePath(path)
				for _, c := range []credential{{bearer: bearer}, session} {
					r := f.call(t, c, m, p, map[string]any{})
					if allowed {
						require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, r.status, "%s with %s: %s %s (%s): %s", role, c, m, p, scope, r.body)
						require.NotEqual(t, http.StatusInternalServerError, r.status, "%s %s: %s", m, p, r.body)
					} else {
						require.Equal(t, http.StatusForbidden, r.status, "%s with %s: %s %s (%s): %s", role, c, m, p, scope, r.body)
						require.Contains(t, r.json(t)["detail"], scope)
					}
					checked++
				}
			}
		}
		require.Greater(t, checked, 60)
		// Both credentials may ask who they are.
		for _, c := range []credential{{bearer: bearer}, session} {
			r := f.call(t, c, http.MethodGet, "/v1/auth/me", nil)
			require.Equal(t, http.StatusOK, r.status)
			require.Equal(t, role, r.json(t)["role"])
			require.Equal(t, role+"-user", r.json(t)["user"].(map[string]any)["username"])
		}
	}
}

func TestSessionCookieAndCSRF(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createUser(t, "ed", "an editor's long password", auth.RoleEditor)
	session, cookie, body := f.signIn(t, map[string]any{"username": "ed", "password": "an editor's long password"})

	// The cookie cannot be read by scripts or sent by other sites.
	require.True(t, cookie.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, cookie.SameSite)
	require.Equal(t, "/", cookie.Path)
	require.False(t, cookie.Secure, "plain HTTP: a Secure cookie would never come back")
	require.Len(t, cookie.Value, 43)
	require.Equal(t, "editor", body["role"])
	require.Equal(t, map[string]any{"id": body["user"].(map[string]any)["id"], "username": "ed", "role": "editor"}, body["user"])
	require.Contains(t, body["scopes"], auth.ScopeWorkflowsWrite)
	expires, err := time.Parse(time.RFC3339, body["expires_at"].(string))
	require.NoError(t, err)
	require.True(t, expires.After(time.Now()))
	// Only a hash of the session id is stored.
	_, err = f.db.SessionByHash(context.Background(), []byte(cookie.Value))
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = f.db.SessionByHash(context.Background(), auth.Hash(cookie.Value))
	require.NoError(t, err)

	// /me answers the same with the cookie.
	r := f.call(t, credential{cookie: session.cookie}, http.MethodGet, "/v1/auth/me", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, session.csrf, r.json(t)["csrf_token"])
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	require.Equal(t, body["user"], r.json(t)["user"])

	// Safe methods need no CSRF token; unsafe ones do.
	noCSRF := credential{cookie: session.cookie}
	require.Equal(t, http.StatusOK, f.call(t, noCSRF, http.MethodGet, "/v1/workflows", nil).status)
	wf := f.echoWorkflow(t)
	for _, c := range []credential{noCSRF, {cookie: session.cookie, csrf: "wrong"}, {cookie: session.cookie, csrf: session.csrf + "x"}} {
		for _, req := range []struct{ method, path string }{{http.MethodPut, "/v1/workflows/w"}, {http.MethodDelete, "/v1/workflows/w"}, {http.MethodPost, "/v1/auth/logout"}, {http.MethodPost, "/v1/workflows/w/publish"}} {
			r := f.call(t, c, req.method, req.path, wf)
			require.Equal(t, http.StatusForbidden, r.status, "%s %s with csrf %q", req.method, req.path, c.csrf)
			require.Contains(t, r.json(t)["detail"], "missing or wrong CSRF token")
		}
	}
	r = f.call(t, session, http.MethodPut, "/v1/workflows/w", wf)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	// Another session's CSRF token does not fit this one.
	other, _, _ := f.signIn(t, map[string]any{"username": "ed", "password": "an editor's long password"})
	require.Equal(t, http.StatusForbidden, f.call(t, credential{cookie: session.cookie, csrf: other.csrf}, http.MethodDelete, "/v1/workflows/w", nil).status)
	// Bearer tokens need none.
	require.Equal(t, http.StatusOK, f.call(t, credential{bearer: f.admin}, http.MethodPut, "/v1/workflows/w2", wf).status)
	// A bad bearer token is not rescued by a good cookie.
	require.Equal(t, http.StatusUnauthorized, f.call(t, credential{bearer: "mr_bogus", cookie: session.cookie, csrf: session.csrf}, http.MethodGet, "/v1/workflows", nil).status)

	// Logout ends the session server-side and clears the cookie.
	r = f.call(t, session, http.MethodPost, "/v1/auth/logout", nil)
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	cleared := (&http.Response{Header: r.header}).Cookies()
	require.Len(t, cleared, 1)
	require.Equal(t, auth.SessionCookie, cleared[0].Name)
	require.Empty(t, cleared[0].Value)
	require.Less(t, cleared[0].MaxAge, 0)
	r = f.call(t, session, http.MethodGet, "/v1/auth/me", nil)
	require.Equal(t, http.StatusUnauthorized, r.status, "the old cookie no longer works")
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
	require.Equal(t, http.StatusOK, f.call(t, other, http.MethodGet, "/v1/auth/me", nil).status, "other sessions live on")

	// Over TLS the cookie is also Secure.
	tlsSrv := httptest.NewTLSServer(httpapi.Handler(f.deps, 1<<20))
	defer tlsSrv.Close()
	b, _ := json.Marshal(map[string]any{"username": "ed", "password": "an editor's long password"})
	r = f.send(t, tlsSrv.Client(), tlsSrv.URL, credential{}, http.MethodPost, "/v1/auth/login", bytes.NewReader(b))
	require.Equal(t, http.StatusOK, r.status)
	secure := (&http.Response{Header: r.header}).Cookies()
	require.Len(t, secure, 1)
	require.True(t, secure[0].Secure)
	require.True(t, secure[0].HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, secure[0].SameSite)
	_ = tls.VersionTLS13
}

func TestLoginFailuresAndLockout(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createUser(t, "vic", "the viewer's long password", auth.RoleViewer)

	for _, body := range []map[string]any{{"username": "vic", "password": "wrong password!"}, {"username": "nobody", "password": "wrong password!"}} {
		r := f.call(t, credential{}, http.MethodPost, "/v1/auth/login", body)
		require.Equal(t, http.StatusUnauthorized, r.status)
		require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
		require.Equal(t, "wrong username or password", r.json(t)["detail"], "unknown users and wrong passwords look alike")
		require.Empty(t, r.header.Get("Set-Cookie"))
	}
	// Malformed sign-ins name the field.
	for body, location := range map[string]string{`{"username":"vic"}`: "body.password", `{}`: "body.username", `{"username":"vic","password":"x","token":"mr_x"}`: "body.token", `{"username":"vic","password":"x","extra":1}`: "body.extra"} {
		r := f.send(t, f.srv.Client(), f.srv.URL, credential{}, http.MethodPost, "/v1/auth/login", strings.NewReader(body))
		require.Equal(t, http.StatusUnprocessableEntity, r.status, body)
		require.Contains(t, string(r.body), location, body)
	}

	// Usernames are looked up in lower case: "VIC" is vic, and counts
	// against vic's limit.
	for range auth.DefaultLimits.UserFailures - 1 {
		r := f.call(t, credential{}, http.MethodPost, "/v1/auth/login", map[string]any{"username": "VIC", "password": "still wrong!!"})
		require.Equal(t, http.StatusUnauthorized, r.status)
	}
	r := f.call(t, credential{}, http.MethodPost, "/v1/auth/login", map[string]any{"username": "vic", "password": "the viewer's long password"})
	require.Equal(t, http.StatusTooManyRequests, r.status, "locked out, even with the right password")
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
	retry, err := strconv.Atoi(r.header.Get("Retry-After"))
	require.NoError(t, err)
	require.Greater(t, retry, 0)
	require.LessOrEqual(t, retry, int(auth.DefaultLimits.Lockout/time.Second))

	// Sign-in with a token still works from this address, which has
	// failed fewer than its limit.
	_, _, me := f.signIn(t, map[string]any{"token": f.admin})
	require.Equal(t, "admin", me["role"])
	require.Equal(t, "admin", me["user"].(map[string]any)["username"], "the first start's token belongs to the admin user")
	r = f.call(t, credential{}, http.MethodPost, "/v1/auth/login", map[string]any{"token": "mr_not-a-token"})
	require.Equal(t, http.StatusUnauthorized, r.status)

	// The address's own limit: many usernames, then even a new one waits.
	for i := 0; ; i++ {
		r := f.call(t, credential{}, http.MethodPost, "/v1/auth/login", map[string]any{"username": "guess" + strconv.Itoa(i), "password": "wrong password!"})
		if r.status == http.StatusTooManyRequests {
			break
		}
		require.Equal(t, http.StatusUnauthorized, r.status)
		require.Less(t, i, auth.DefaultLimits.IPFailures)
	}
}

func TestExpiredRevokedAndDisabledCredentials(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	uid := f.createUser(t, "eve", "the editor's long password", auth.RoleEditor)

	// An expired token is refused, as a bearer and for sign-in.
	past := time.Now().Add(-time.Second)
	_, expired, err := f.tokens.IssueToken(ctx, auth.TokenSpec{Name: "old", Role: auth.RoleViewer, ExpiresAt: &past})
	require.NoError(t, err)
	r := f.call(t, credential{bearer: expired}, http.MethodGet, "/v1/modules", nil)
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Contains(t, r.json(t)["detail"], "expired")
	require.Equal(t, http.StatusUnauthorized, f.call(t, credential{}, http.MethodPost, "/v1/auth/login", map[string]any{"token": expired}).status)
	// Tokens with an expiry in the past cannot be made through the API.
	r = f.call(t, credential{bearer: f.admin}, http.MethodPost, "/v1/tokens", map[string]any{"name": "x", "role": "viewer", "expires_at": past})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Contains(t, string(r.body), "body.expires_at")

	// A revoked token stops working, and so do the sessions it started.
	r = f.call(t, credential{bearer: f.admin}, http.MethodPost, "/v1/tokens", map[string]any{"name": "eve's", "role": "editor", "user_id": uid, "expires_at": time.Now().Add(time.Hour)})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	tok := r.json(t)
	viaToken, _, _ := f.signIn(t, map[string]any{"token": tok["token"]})
	require.Equal(t, http.StatusOK, f.call(t, viaToken, http.MethodGet, "/v1/auth/me", nil).status)
	require.Equal(t, http.StatusNoContent, f.call(t, credential{bearer: f.admin}, http.MethodDelete, "/v1/tokens/"+tok["id"].(string), nil).status)
	require.Equal(t, http.StatusUnauthorized, f.call(t, credential{bearer: tok["token"].(string)}, http.MethodGet, "/v1/modules", nil).status, "reuse after revocation")
	require.Equal(t, http.StatusUnauthorized, f.call(t, viaToken, http.MethodGet, "/v1/auth/me", nil).status)

	// Sessions past their absolute lifetime or idle too long are refused
	// (and removed).
	now := time.Now().UTC()
	for name, s := range map[string]store.Session{
		"expired": {UserID: uid, CreatedAt: now.Add(-8 * 24 * time.Hour), LastSeenAt: now, ExpiresAt: now.Add(-time.Minute)},
		"idle":    {UserID: uid, CreatedAt: now.Add(-24 * time.Hour), LastSeenAt: now.Add(-auth.DefaultSessionConfig.IdleTimeout - time.Minute), ExpiresAt: now.Add(24 * time.Hour)},
	} {
		id := strings.Repeat(name[:1], 43)
		s.Hash = auth.Hash(id)
		require.NoError(t, f.db.CreateSession(ctx, s))
		c := credential{cookie: &http.Cookie{Name: auth.SessionCookie, Value: id}}
		r := f.call(t, c, http.MethodGet, "/v1/auth/me", nil)
		require.Equal(t, http.StatusUnauthorized, r.status, name)
		require.Contains(t, r.json(t)["detail"], "sign in again")
		_, err := f.db.SessionByHash(ctx, s.Hash)
		require.ErrorIs(t, err, store.ErrNotFound, name)
	}

	// A demotion applies at once to the user's sessions and tokens; a
	// disabled user is locked out of both.
	session, _, _ := f.signIn(t, map[string]any{"username": "eve", "password": "the editor's long password"})
	r = f.call(t, credential{bearer: f.admin}, http.MethodPost, "/v1/tokens", map[string]any{"name": "eve's", "role": "editor", "user_id": uid})
	require.Equal(t, http.StatusCreated, r.status)
	bearer := credential{bearer: r.json(t)["token"].(string)}
	wf := f.echoWorkflow(t)
	require.Equal(t, http.StatusOK, f.call(t, session, http.MethodPut, "/v1/workflows/w", wf).status)
	require.Equal(t, http.StatusOK, f.call(t, bearer, http.MethodPut, "/v1/workflows/w", wf).status)
	require.Equal(t, http.StatusOK, f.call(t, credential{bearer: f.admin}, http.MethodPatch, "/v1/users/"+uid, map[string]any{"role": "viewer"}).status)
	for _, c := range []credential{session, bearer} {
		require.Equal(t, http.StatusForbidden, f.call(t, c, http.MethodPut, "/v1/workflows/w", wf).status, c.String())
		require.Equal(t, http.StatusOK, f.call(t, c, http.MethodGet, "/v1/workflows/w", nil).status, c.String())
	}
	r = f.call(t, bearer, http.MethodGet, "/v1/auth/me", nil)
	require.Equal(t, "viewer", r.json(t)["role"], "the token follows its user down")
	require.Equal(t, http.StatusOK, f.call(t, credential{bearer: f.admin}, http.MethodPatch, "/v1/users/"+uid, map[string]any{"disabled": true}).status)
	for _, c := range []credential{session, bearer} {
		require.Equal(t, http.StatusUnauthorized, f.call(t, c, http.MethodGet, "/v1/workflows", nil).status, c.String())
	}
	r = f.call(t, credential{}, http.MethodPost, "/v1/auth/login", map[string]any{"username": "eve", "password": "the editor's long password"})
	require.Equal(t, http.StatusUnauthorized, r.status, "a disabled user cannot sign in")
}

func TestUsersAPI(t *testing.T) {
	t.Parallel()
	f := setup(t)
	admin := credential{bearer: f.admin}
	uid := f.createUser(t, "olga", "the operator's password", auth.RoleOperator)

	r := f.call(t, admin, http.MethodPost, "/v1/users", map[string]any{"username": "olga", "password": "another long password", "role": "viewer"})
	require.Equal(t, http.StatusConflict, r.status)
	for location, body := range map[string]map[string]any{
		"body.password": {"username": "pat", "password": "short", "role": "viewer"},
		"body.role":     {"username": "pat", "password": "a long password!", "role": "root"},
		"body.username": {"username": "Pat Smith", "password": "a long password!", "role": "viewer"},
	} {
		r := f.call(t, admin, http.MethodPost, "/v1/users", body)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, location)
		require.Contains(t, string(r.body), location)
	}

	r = f.call(t, admin, http.MethodGet, "/v1/users", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.NotContains(t, string(r.body), "argon2", "password hashes are never returned")
	users := r.json(t)["users"].([]any)
	require.Len(t, users, 2) // admin, olga
	require.Equal(t, "admin", users[0].(map[string]any)["username"])
	require.Equal(t, false, users[0].(map[string]any)["has_password"])
	require.Equal(t, true, users[1].(map[string]any)["has_password"])

	r = f.call(t, admin, http.MethodGet, "/v1/users/"+uid, nil)
	require.Equal(t, "operator", r.json(t)["role"])

	// A new password ends the user's sessions, and the old one stops working.
	session, _, _ := f.signIn(t, map[string]any{"username": "olga", "password": "the operator's password"})
	r = f.call(t, admin, http.MethodPatch, "/v1/users/"+uid, map[string]any{"password": "a brand new password"})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.Equal(t, http.StatusUnauthorized, f.call(t, session, http.MethodGet, "/v1/auth/me", nil).status)
	require.Equal(t, http.StatusUnauthorized, f.call(t, credential{}, http.MethodPost, "/v1/auth/login", map[string]any{"username": "olga", "password": "the operator's password"}).status)
	f.signIn(t, map[string]any{"username": "olga", "password": "a brand new password"})

	// The bootstrap admin gets a password and signs in with it; an admin
	// cannot lock themself out.
	adminID := users[0].(map[string]any)["id"].(string)
	require.Equal(t, http.StatusOK, f.call(t, admin, http.MethodPatch, "/v1/users/"+adminID, map[string]any{"password": "the admin's password"}).status)
	me, _, _ := f.signIn(t, map[string]any{"username": "admin", "password": "the admin's password"})
	for _, body := range []map[string]any{{"role": "viewer"}, {"disabled": true}} {
		r := f.call(t, me, http.MethodPatch, "/v1/users/"+adminID, body)
		require.Equal(t, http.StatusConflict, r.status, "%v", body)
	}
	require.Equal(t, http.StatusConflict, f.call(t, me, http.MethodDelete, "/v1/users/"+adminID, nil).status)

	// Deleting a user deletes their tokens.
	r = f.call(t, admin, http.MethodPost, "/v1/tokens", map[string]any{"name": "olga's", "role": "operator", "user_id": uid})
	require.Equal(t, http.StatusCreated, r.status)
	olgaToken := r.json(t)["token"].(string)
	require.Equal(t, http.StatusNoContent, f.call(t, me, http.MethodDelete, "/v1/users/"+uid, nil).status)
	require.Equal(t, http.StatusNotFound, f.call(t, admin, http.MethodGet, "/v1/users/"+uid, nil).status)
	require.Equal(t, http.StatusUnauthorized, f.call(t, credential{bearer: olgaToken}, http.MethodGet, "/v1/modules", nil).status)
}

// Changes of one user that race (an admin disabling a user while another
// resets their password) both stick: neither writes back what it read
// before the other's change, so the password reset does not enable the
// user again, nor does the disabling restore the old password.
func TestConcurrentUserUpdatesKeepEachChange(t *testing.T) {
	t.Parallel()
	f := setup(t)
	admin := credential{bearer: f.admin}
	uid := f.createUser(t, "una", "the old long password", auth.RoleOperator)

	const callers = 8
	statuses := make(chan int, callers)
	var wg sync.WaitGroup
	for i := range callers {
		body := map[string]any{"password": "the new long password"}
		if i%2 == 0 {
			body = map[string]any{"disabled": true}
		}
		wg.Go(func() { statuses <- f.call(t, admin, http.MethodPatch, "/v1/users/"+uid, body).status })
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		require.Equal(t, http.StatusOK, s)
	}
	u, err := f.db.User(context.Background(), uid)
	require.NoError(t, err)
	require.True(t, u.Disabled, "a password change does not enable the user again")
	require.True(t, auth.VerifyPassword(u.PasswordHash, "the new long password"), "disabling the user does not restore the old password")
}

// Tokens are never wider than their creator or their user.
func TestTokensStayWithinTheirCreatorAndUser(t *testing.T) {
	t.Parallel()
	f := setup(t)
	uid := f.createUser(t, "vera", "the viewer's long password", auth.RoleViewer)
	admin := credential{bearer: f.admin}

	r := f.call(t, admin, http.MethodPost, "/v1/tokens", map[string]any{"name": "x", "role": "editor", "user_id": uid})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Contains(t, r.json(t)["detail"], "vera")
	r = f.call(t, admin, http.MethodPost, "/v1/tokens", map[string]any{"name": "x", "scopes": []string{"workflows:write"}, "user_id": uid})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	r = f.call(t, admin, http.MethodPost, "/v1/tokens", map[string]any{"name": "x", "scopes": []string{"modules:read"}, "role": "viewer"})
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "scopes or role, not both")

	// A token holding tokens:admin but little else cannot mint a wider one.
	_, narrow, err := f.tokens.Issue(context.Background(), "narrow", []string{auth.ScopeTokensAdmin, auth.ScopeModulesRead})
	require.NoError(t, err)
	r = f.call(t, credential{bearer: narrow}, http.MethodPost, "/v1/tokens", map[string]any{"name": "wider", "scopes": []string{"modules:write"}})
	require.Equal(t, http.StatusForbidden, r.status)
	require.Contains(t, r.json(t)["detail"], "modules:write")
	r = f.call(t, credential{bearer: narrow}, http.MethodPost, "/v1/tokens", map[string]any{"name": "all", "scopes": []string{"*"}})
	require.Equal(t, http.StatusForbidden, r.status)
	r = f.call(t, credential{bearer: narrow}, http.MethodPost, "/v1/tokens", map[string]any{"name": "same", "scopes": []string{"modules:read"}})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))

	// Token lists show owner, role and expiry, never secrets; last use is
	// recorded.
	r = f.call(t, admin, http.MethodGet, "/v1/tokens", nil)
	require.NotContains(t, string(r.body), narrow)
	var bootstrap map[string]any
	for _, tok := range r.json(t)["tokens"].([]any) {
		if tok.(map[string]any)["name"] == "admin" {
			bootstrap = tok.(map[string]any)
		}
	}
	require.NotEmpty(t, bootstrap["user_id"])
	require.NotEmpty(t, bootstrap["last_used_at"])
}

// Every user may make tokens for themself, no wider than their rights,
// and see and revoke only their own.
func TestOwnTokens(t *testing.T) {
	t.Parallel()
	f := setup(t)
	uid := f.createUser(t, "opal", "the operator's password", auth.RoleOperator)
	f.createUser(t, "vi", "the viewer's long password", auth.RoleViewer)
	opal, _, _ := f.signIn(t, map[string]any{"username": "opal", "password": "the operator's password"})
	vi, _, _ := f.signIn(t, map[string]any{"username": "vi", "password": "the viewer's long password"})

	r := f.call(t, opal, http.MethodPost, "/v1/auth/tokens", map[string]any{"name": "ci", "role": "editor"})
	require.Equal(t, http.StatusForbidden, r.status, "wider than its creator")
	r = f.call(t, opal, http.MethodPost, "/v1/auth/tokens", map[string]any{"name": "ci", "scopes": []string{"workflows:run"}})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	tok := r.json(t)
	require.Equal(t, uid, tok["user_id"])
	ci := credential{bearer: tok["token"].(string)}
	require.Equal(t, http.StatusForbidden, f.call(t, ci, http.MethodGet, "/v1/workflows", nil).status, "only the scopes asked for")
	require.Equal(t, http.StatusNotFound, f.call(t, ci, http.MethodPost, "/v1/workflows/none/runs", map[string]any{}).status)

	r = f.call(t, opal, http.MethodGet, "/v1/auth/tokens", nil)
	require.Len(t, r.json(t)["tokens"], 1)
	r = f.call(t, vi, http.MethodGet, "/v1/auth/tokens", nil)
	require.Empty(t, r.json(t)["tokens"], "others' tokens are not listed")
	require.Equal(t, http.StatusNotFound, f.call(t, vi, http.MethodDelete, "/v1/auth/tokens/"+tok["id"].(string), nil).status, "nor revocable by others")
	require.Equal(t, http.StatusConflict, f.call(t, ci, http.MethodDelete, "/v1/auth/tokens/"+tok["id"].(string), nil).status)
	require.Equal(t, http.StatusForbidden, f.call(t, credential{cookie: opal.cookie}, http.MethodDelete, "/v1/auth/tokens/"+tok["id"].(string), nil).status, "CSRF applies")
	require.Equal(t, http.StatusNoContent, f.call(t, opal, http.MethodDelete, "/v1/auth/tokens/"+tok["id"].(string), nil).status)
	require.Equal(t, http.StatusUnauthorized, f.call(t, ci, http.MethodGet, "/v1/auth/me", nil).status)

	// A token of no user cannot mint tokens for itself.
	_, legacy, err := f.tokens.Issue(context.Background(), "legacy", []string{auth.ScopeModulesRead})
	require.NoError(t, err)
	require.Equal(t, http.StatusConflict, f.call(t, credential{bearer: legacy}, http.MethodPost, "/v1/auth/tokens", map[string]any{"name": "x", "scopes": []string{"modules:read"}}).status)
}

// The audit log records who did what, with the outcome and the client's
// address, and nothing in the API can change it.
func TestAuditLogRecordsWhoDidWhat(t *testing.T) {
	t.Parallel()
	f := setup(t)
	admin := credential{bearer: f.admin}
	uid := f.createUser(t, "ed", "an editor's long password", auth.RoleEditor)
	require.Equal(t, http.StatusUnauthorized, f.call(t, credential{}, http.MethodPost, "/v1/auth/login", map[string]any{"username": "ed", "password": "not the password"}).status)
	ed, _, _ := f.signIn(t, map[string]any{"username": "ed", "password": "an editor's long password"})

	// The editor builds a workflow; the admin grants, keeps secrets and
	// manages tokens.
	require.Equal(t, http.StatusCreated, f.upload(t, testguests.Wasm(t, "echo"), testguests.Manifest(t, "echo")).status)
	require.Equal(t, http.StatusOK, f.call(t, admin, http.MethodPut, "/v1/modules/echo/versions/1.0.0/grants", map[string]any{}).status)
	require.Equal(t, http.StatusForbidden, f.call(t, ed, http.MethodPut, "/v1/modules/echo/versions/1.0.0/grants", map[string]any{}).status)
	wf := map[string]any{"name": "W", "nodes": []any{map[string]any{"id": "a", "module": "echo@1.0.0"}}}
	require.Equal(t, http.StatusOK, f.call(t, ed, http.MethodPut, "/v1/workflows/w", wf).status)
	require.Equal(t, http.StatusCreated, f.call(t, ed, http.MethodPost, "/v1/workflows/w/publish", nil).status)
	r := f.call(t, ed, http.MethodPost, "/v1/workflows/w/triggers", map[string]any{"kind": "webhook"})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	require.Equal(t, http.StatusNoContent, f.call(t, ed, http.MethodDelete, "/v1/triggers/"+r.json(t)["id"].(string), nil).status)
	require.Equal(t, http.StatusNoContent, f.call(t, admin, http.MethodPut, "/v1/secrets/KEY", map[string]any{"value": "hunter2"}).status)
	require.Equal(t, http.StatusNoContent, f.call(t, admin, http.MethodDelete, "/v1/secrets/KEY", nil).status)
	r = f.call(t, admin, http.MethodPost, "/v1/tokens", map[string]any{"name": "ci", "role": "operator"})
	require.Equal(t, http.StatusCreated, r.status)
	tokID := r.json(t)["id"].(string)
	require.Equal(t, http.StatusNoContent, f.call(t, admin, http.MethodDelete, "/v1/tokens/"+tokID, nil).status)
	require.Equal(t, http.StatusOK, f.call(t, admin, http.MethodPatch, "/v1/users/"+uid, map[string]any{"role": "operator"}).status)
	require.Equal(t, http.StatusNoContent, f.call(t, admin, http.MethodDelete, "/v1/workflows/w", nil).status)
	require.Equal(t, http.StatusNoContent, f.call(t, admin, http.MethodDelete, "/v1/modules/echo/versions/1.0.0", nil).status)
	// Viewers, operators and editors cannot read the log.
	require.Equal(t, http.StatusForbidden, f.call(t, ed, http.MethodGet, "/v1/audit", nil).status)
	require.Equal(t, http.StatusNoContent, f.call(t, ed, http.MethodPost, "/v1/auth/logout", nil).status)

	r = f.call(t, admin, http.MethodGet, "/v1/audit?limit=500", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	type entry struct{ ActorID, ActorName, Action, Target, Outcome, ClientIP, Detail string }
	var got []entry
	for _, raw := range r.json(t)["entries"].([]any) {
		e := raw.(map[string]any)
		detail, _ := e["detail"].(string)
		got = append(got, entry{e["actor_id"].(string), e["actor_name"].(string), e["action"].(string), e["target"].(string), e["outcome"].(string), e["client_ip"].(string), detail})
		require.NotContains(t, detail, "hunter2")
	}
	has := func(actor, action, outcome, target string) {
		t.Helper()
		for _, e := range got {
			if e.ActorName == actor && e.Action == action && e.Outcome == outcome && strings.Contains(e.Target, target) {
				require.Equal(t, "127.0.0.1", e.ClientIP)
				return
			}
		}
		t.Errorf("no audit entry %s %s %s %s in %+v", actor, action, outcome, target, got)
	}
	has("admin", "create-user", "success", uid)
	has("ed", "login", "failure", "session")
	has("ed", "login", "success", "session")
	has("admin", "upload-module", "success", "/v1/modules")
	has("admin", "put-grant", "success", "/v1/modules/echo/versions/1.0.0/grants")
	has("ed", "put-grant", "denied", "/v1/modules/echo/versions/1.0.0/grants")
	has("ed", "save-workflow", "success", "/v1/workflows/w")
	has("ed", "publish-workflow", "success", "/v1/workflows/w/publish")
	has("ed", "create-trigger", "success", "/v1/workflows/w/triggers")
	has("ed", "delete-trigger", "success", "/v1/triggers/")
	has("admin", "put-secret", "success", "/v1/secrets/KEY")
	has("admin", "delete-secret", "success", "/v1/secrets/KEY")
	has("admin", "create-token", "success", tokID)
	has("admin", "delete-token", "success", tokID)
	has("admin", "update-user", "success", uid)
	has("admin", "delete-workflow", "success", "/v1/workflows/w")
	has("admin", "delete-module-version", "success", "/v1/modules/echo/versions/1.0.0")
	has("ed", "logout", "success", "session")
	for _, e := range got {
		if e.Action == "update-user" {
			require.Contains(t, e.Detail, "role=editor->operator")
		}
		if e.ActorName == "ed" && e.Outcome != "failure" {
			require.Equal(t, uid, e.ActorID)
		}
	}

	// Filters and paging.
	r = f.call(t, admin, http.MethodGet, "/v1/audit?actor=ed&action=login", nil)
	require.Len(t, r.json(t)["entries"], 2)
	r = f.call(t, admin, http.MethodGet, "/v1/audit?actor="+uid, nil)
	require.NotEmpty(t, r.json(t)["entries"])
	r = f.call(t, admin, http.MethodGet, "/v1/audit?since="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339), nil)
	require.Empty(t, r.json(t)["entries"])
	r = f.call(t, admin, http.MethodGet, "/v1/audit?until="+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), nil)
	require.Empty(t, r.json(t)["entries"])
	var paged int
	cursor := ""
	for {
		r := f.call(t, admin, http.MethodGet, "/v1/audit?limit=4&cursor="+cursor, nil)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		paged += len(r.json(t)["entries"].([]any))
		next, _ := r.json(t)["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	require.GreaterOrEqual(t, paged, len(got), "paging reaches every entry (reads add none)")
	r = f.call(t, admin, http.MethodGet, "/v1/audit?cursor=abc", nil)
	require.Equal(t, http.StatusUnprocessableEntity, r.status)

	// Nothing in the API writes to it: only GET exists, on /v1/audit only.
	doc := openAPI(t, f)
	for path, item := range doc["paths"].(map[string]any) {
		if strings.HasPrefix(path, "/v1/audit") {
			require.Equal(t, "/v1/audit", path)
			require.Len(t, item.(map[string]any), 1)
			require.Contains(t, item.(map[string]any), "get")
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		r := f.call(t, admin, m, "/v1/audit", map[string]any{})
		require.Equal(t, http.StatusMethodNotAllowed, r.status, m)
		require.Equal(t, http.StatusNotFound, f.call(t, admin, m, "/v1/audit/1", map[string]any{}).status, m)
	}
	r = f.call(t, admin, http.MethodGet, "/v1/audit?limit=500", nil)
	require.Len(t, r.json(t)["entries"], len(got), "the attempts changed nothing")
}

// Sign-in bodies come from anyone: whatever they hold, the answer is a
// success or a problem, never a server error.
func FuzzLoginBody(f *testing.F) {
	fx := setup(f)
	f.Add([]byte(`{"username":"admin","password":"x"}`))
	f.Add([]byte(`{"token":"mr_x"}`))
	f.Add([]byte(`{"username":"\u0000","password":""}`))
	f.Add([]byte(`{"username":1}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"token":"` + fx.admin + `"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := fx.send(t, fx.srv.Client(), fx.srv.URL, credential{}, http.MethodPost, "/v1/auth/login", bytes.NewReader(body))
		require.Contains(t, []int{http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusUnprocessableEntity, http.StatusTooManyRequests}, r.status, string(r.body))
		if r.status != http.StatusOK {
			require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
		}
	})
}

// Cookie and CSRF headers come from anyone: without a live session the
// answer is 401, never a server error.
func FuzzSessionCookieHeader(f *testing.F) {
	fx := setup(f)
	f.Add(auth.SessionCookie+"="+strings.Repeat("a", 43), "x")
	f.Add(auth.SessionCookie+"=;;;", "")
	f.Add("a=b; "+auth.SessionCookie+"=\"quoted\"", "\xff")
	f.Fuzz(func(t *testing.T, cookie, csrf string) {
		req, err := http.NewRequest(http.MethodPost, fx.srv.URL+"/v1/auth/logout", nil)
		require.NoError(t, err)
		req.Header["Cookie"] = []string{cookie}
		req.Header[auth.CSRFHeader] = []string{csrf}
		res, err := fx.srv.Client().Do(req)
		if err != nil {
			return // the client refused to send a malformed header
		}
		res.Body.Close()
		require.Contains(t, []int{http.StatusUnauthorized, http.StatusBadRequest}, res.StatusCode)
	})
}
