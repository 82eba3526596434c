package httpapi_test

// Tests of the temporary session shim (session.go); they go with it when
// the trust-auth sign-in lands.

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// cookieDo sends a request with a session cookie and, if given, a CSRF
// token, and no Authorization header.
func (f *fixture) cookieDo(t *testing.T, cookie *http.Cookie, csrf, method, path, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if cookie != nil {
		req.AddCookie(cookie)
	}
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	buf, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return response{res.StatusCode, res.Header, buf}
}

func TestSessionSignInAndCSRF(t *testing.T) {
	t.Parallel()
	f := setup(t)

	bad := f.cookieDo(t, nil, "", http.MethodPost, "/v1/auth/login", `{"token":"mr_wrong"}`)
	require.Equal(t, http.StatusUnauthorized, bad.status)
	require.Contains(t, string(bad.body), "body.token")
	none := f.cookieDo(t, nil, "", http.MethodPost, "/v1/auth/login", `{"username":"ada","password":"x"}`)
	require.Equal(t, http.StatusUnprocessableEntity, none.status)

	login := f.cookieDo(t, nil, "", http.MethodPost, "/v1/auth/login", `{"token":"`+f.admin+`"}`)
	require.Equal(t, http.StatusOK, login.status, string(login.body))
	info := login.json(t)
	require.Equal(t, "admin", info["role"])
	require.Equal(t, []any{"*"}, info["scopes"])
	csrf := info["csrf_token"].(string)
	require.NotEmpty(t, csrf)
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: login.header}).Cookies() {
		if c.Name == "millrace_session" {
			cookie = c
		}
	}
	require.NotNil(t, cookie)
	require.True(t, cookie.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, cookie.SameSite)

	// Safe requests need only the cookie.
	require.Equal(t, http.StatusOK, f.cookieDo(t, cookie, "", http.MethodGet, "/v1/modules", "").status)
	me := f.cookieDo(t, cookie, "", http.MethodGet, "/v1/auth/me", "")
	require.Equal(t, http.StatusOK, me.status)
	require.Equal(t, csrf, me.json(t)["csrf_token"])

	// Unsafe ones also need the CSRF token: a forged cross-site form
	// cannot know it.
	put := `{"value":"s3cret"}`
	forged := f.cookieDo(t, cookie, "", http.MethodPut, "/v1/secrets/db", put)
	require.Equal(t, http.StatusForbidden, forged.status)
	require.Contains(t, string(forged.body), "X-CSRF-Token")
	require.Equal(t, http.StatusForbidden, f.cookieDo(t, cookie, "wrong", http.MethodPut, "/v1/secrets/db", put).status)
	require.Equal(t, http.StatusNoContent, f.cookieDo(t, cookie, csrf, http.MethodPut, "/v1/secrets/db", put).status)

	// A token with fewer scopes gives a session with fewer rights.
	_, viewer, err := f.tokens.Issue(t.Context(), "viewer", []string{"modules:read"})
	require.NoError(t, err)
	vlogin := f.cookieDo(t, nil, "", http.MethodPost, "/v1/auth/login", `{"token":"`+viewer+`"}`)
	require.Equal(t, "viewer", vlogin.json(t)["role"])
	var vcookie *http.Cookie
	for _, c := range (&http.Response{Header: vlogin.header}).Cookies() {
		vcookie = c
	}
	require.Equal(t, http.StatusForbidden, f.cookieDo(t, vcookie, "", http.MethodGet, "/v1/secrets", "").status)

	// Signing out ends the session.
	out := f.cookieDo(t, cookie, "", http.MethodPost, "/v1/auth/logout", "")
	require.Equal(t, http.StatusNoContent, out.status)
	require.Equal(t, http.StatusUnauthorized, f.cookieDo(t, cookie, "", http.MethodGet, "/v1/modules", "").status)
}
