package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/millrace/millrace/server/audit"
	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/store"
)

// LoginBody is a sign-in: a username and password, or an API token.
// (Exported for the fuzz test, which decodes it as the server does.)
type LoginBody struct {
	Username string `json:"username,omitempty" maxLength:"64" doc:"With password: a console user's name."`
	Password string `json:"password,omitempty" maxLength:"1024" doc:"With username: the user's password."`
	Token    string `json:"token,omitempty" maxLength:"256" doc:"Instead of a username and password: an API token (mr_…). The session then has the token's rights."`
}

type loginInput struct {
	Body LoginBody
}

type userRef struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Role     string `json:"role"`
}

type sessionBody struct {
	User      *userRef   `json:"user" doc:"The signed-in user; null for a token that belongs to no user (made before users existed)."`
	Role      string     `json:"role" doc:"The caller's role; empty for a token with explicit scopes."`
	Scopes    []string   `json:"scopes" doc:"What the caller may do; * means everything."`
	CSRFToken string     `json:"csrf_token,omitempty" doc:"Send it as the X-CSRF-Token header on POST, PUT, PATCH and DELETE made with the session cookie. Absent for bearer tokens, which need none."`
	ExpiresAt *time.Time `json:"expires_at,omitempty" doc:"When the session ends unless used again (the idle timeout, capped by its absolute lifetime); for a bearer token, its expiry if it has one."`
}

// noStore keeps CSRF tokens out of caches.
const noStore = "no-store"

type loginOutput struct {
	SetCookie    http.Cookie `header:"Set-Cookie" doc:"The session: HttpOnly, SameSite=Strict, Path=/, and Secure over TLS."`
	CacheControl string      `header:"Cache-Control"`
	Body         sessionBody
}

type meOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         sessionBody
}

type logoutOutput struct {
	SetCookie http.Cookie `header:"Set-Cookie" doc:"Clears the session cookie."`
}

func bodyFor(p auth.Principal) sessionBody {
	b := sessionBody{Role: p.Role, Scopes: p.Scopes}
	if p.UserID != "" {
		b.User = &userRef{ID: p.UserID, Username: p.Username, Role: p.Role}
	}
	if b.Scopes == nil {
		b.Scopes = []string{}
	}
	return b
}

func sessionCookie(value string, expires time.Time, tls bool) http.Cookie {
	return http.Cookie{Name: auth.SessionCookie, Value: value, Path: "/", Expires: expires, HttpOnly: true, Secure: tls, SameSite: http.SameSiteStrictMode}
}

func registerSignIn(api huma.API, d *Deps) {
	huma.Register(api, huma.Operation{
		OperationID: "login", Method: http.MethodPost, Path: "/v1/auth/login", Tags: []string{"auth"},
		Summary: "Sign in to the console",
		Description: "Takes a username and password, or an API token, and starts a session: the response sets the session cookie and returns the CSRF token to send with unsafe requests. " +
			"Sessions end after " + auth.DefaultSessionConfig.IdleTimeout.String() + " without use and after " + auth.DefaultSessionConfig.Lifetime.String() + " at most. " +
			"After " + strconv.Itoa(auth.DefaultLimits.UserFailures) + " failures for one username, or " + strconv.Itoa(auth.DefaultLimits.IPFailures) + " from one address, within " + auth.DefaultLimits.Window.String() +
			", sign-in is refused (429, with Retry-After) for " + auth.DefaultLimits.Lockout.String() + ".",
		Errors:   []int{http.StatusUnauthorized, http.StatusUnprocessableEntity, http.StatusTooManyRequests},
		Metadata: map[string]any{auditSelf: true},
	}, func(ctx context.Context, in *loginInput) (*loginOutput, error) {
		return login(ctx, d, in.Body)
	})
	huma.Register(api, authenticated(huma.Operation{
		OperationID: "get-me", Method: http.MethodGet, Path: "/v1/auth/me", Tags: []string{"auth"},
		Summary:     "Who am I: the caller's user, role, scopes and, for a session, its CSRF token",
		Description: "Needs no particular scope: any valid token or session may ask about itself.",
	}), func(ctx context.Context, _ *struct{}) (*meOutput, error) {
		who, _ := callerFrom(ctx)
		out := &meOutput{Body: bodyFor(who.Principal), CacheControl: noStore}
		if who.SessionID != "" {
			out.Body.CSRFToken = auth.CSRFToken(who.SessionID)
			exp := d.Sessions.ExpiresAt(who.Session)
			out.Body.ExpiresAt = &exp
		} else if tok, err := d.Store.Token(ctx, who.TokenID); err == nil {
			out.Body.ExpiresAt = tok.ExpiresAt
		}
		return out, nil
	})
	huma.Register(api, authenticated(huma.Operation{
		OperationID: "logout", Method: http.MethodPost, Path: "/v1/auth/logout", Tags: []string{"auth"},
		Summary:       "Sign out: end the session and clear its cookie",
		DefaultStatus: http.StatusNoContent,
		Metadata:      map[string]any{auditSelf: true},
	}), func(ctx context.Context, _ *struct{}) (*logoutOutput, error) {
		who, _ := callerFrom(ctx)
		if who.SessionID != "" {
			if err := d.Sessions.End(ctx, who.SessionID); err != nil {
				return nil, problem(ctx, err)
			}
			d.Audit.Record(ctx, audit.Event{Action: "logout", Target: "session"})
		}
		c := sessionCookie("", time.Unix(0, 0), requestFrom(ctx).TLS)
		c.MaxAge = -1
		return &logoutOutput{SetCookie: c}, nil
	})
}

func login(ctx context.Context, d *Deps, body LoginBody) (*loginOutput, error) {
	req := requestFrom(ctx)
	switch {
	case body.Token != "" && (body.Username != "" || body.Password != ""):
		return nil, huma.Error422UnprocessableEntity("send a username and password, or a token, not both", &huma.ErrorDetail{Location: "body.token", Message: "not with username and password"})
	case body.Token == "" && body.Username == "":
		return nil, huma.Error422UnprocessableEntity("send a username and password, or a token", &huma.ErrorDetail{Location: "body.username", Message: "required unless token is given"})
	case body.Token == "" && body.Password == "":
		return nil, huma.Error422UnprocessableEntity("the password is missing", &huma.ErrorDetail{Location: "body.password", Message: "required with username"})
	}
	username := auth.NormalizeUsername(body.Username)
	now := time.Now()
	if wait, ok := d.Limiter.Allow(username, req.ClientIP, now); !ok {
		secs := int(wait.Round(time.Second) / time.Second)
		if secs < 1 {
			secs = 1
		}
		failed := audit.WithActor(ctx, audit.Actor{Name: username, ClientIP: req.ClientIP})
		d.Audit.Record(failed, audit.Event{Action: "login", Target: "session", Outcome: audit.Denied, Detail: "locked out after repeated failures"})
		return nil, huma.ErrorWithHeaders(huma.Error429TooManyRequests("too many failed sign-ins: try again in "+strconv.Itoa(secs)+" s"),
			http.Header{"Retry-After": {strconv.Itoa(secs)}})
	}

	var who auth.Principal
	var userID, tokenID string
	var err error
	if body.Token != "" {
		var tok store.Token
		tok, err = d.Tokens.VerifySecret(ctx, body.Token)
		if err == nil {
			who, err = d.Tokens.Principal(ctx, tok)
			tokenID = tok.ID
		}
	} else {
		var u store.User
		u, err = d.Users.Authenticate(ctx, username, body.Password)
		if err == nil {
			who, userID = auth.UserPrincipal(u), u.ID
		}
	}
	if err != nil {
		if !errors.Is(err, auth.ErrBadCredentials) && !errors.Is(err, auth.ErrUnauthenticated) && !errors.Is(err, auth.ErrTokenExpired) {
			return nil, problem(ctx, err)
		}
		d.Limiter.Fail(username, req.ClientIP, now)
		failed := audit.WithActor(ctx, audit.Actor{Name: username, ClientIP: req.ClientIP})
		d.Audit.Record(failed, audit.Event{Action: "login", Target: "session", Outcome: audit.Failure, Detail: err.Error()})
		if body.Token != "" {
			return nil, huma.Error401Unauthorized("the token is not valid: it is unknown, revoked or expired")
		}
		return nil, huma.Error401Unauthorized(auth.ErrBadCredentials.Error())
	}
	if username != "" {
		d.Limiter.Succeed(username)
	}
	sess, err := d.Sessions.Create(ctx, userID, tokenID)
	if err != nil {
		return nil, problem(ctx, err)
	}
	ok := audit.WithActor(ctx, audit.Actor{ID: who.ActorID(), Name: who.ActorName(), ClientIP: req.ClientIP})
	method := "password"
	if tokenID != "" {
		method = "token " + tokenID
	}
	d.Audit.Record(ok, audit.Event{Action: "login", Target: "session", Detail: "with " + method})
	out := &loginOutput{Body: bodyFor(who), SetCookie: sessionCookie(sess.ID, sess.ExpiresAt, req.TLS), CacheControl: noStore}
	out.Body.CSRFToken = sess.CSRFToken
	exp := d.Sessions.ExpiresAt(store.Session{ExpiresAt: sess.ExpiresAt})
	out.Body.ExpiresAt = &exp
	return out, nil
}
