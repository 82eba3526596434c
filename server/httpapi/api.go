// Package httpapi is Millrace's REST API: huma v2 operations, bearer-token
// auth with one scope per operation, and RFC 9457 problem details.
package httpapi

import (
	"context"
	"errors"
	"go.opentelemetry.io/otel/trace"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/audit"
	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/backup"
	"github.com/millrace/millrace/server/datasets"
	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/secrets"
	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/training"
	"github.com/millrace/millrace/server/trigger"
)

// Deps are the services the API exposes.
type Deps struct {
	Registry  *registry.Registry
	Workflows *engine.Workflows
	Runs      *engine.Runs
	Tokens    *auth.Tokens
	Vault     *secrets.Vault
	Store     store.Store
	Version   string // the server's version, shown in the OpenAPI document
	// Ready reports whether the server finished starting; nil means ready.
	Ready *atomic.Bool
	// Triggers creates triggers and answers webhook calls.
	Triggers *trigger.Service
	// Accel is the accelerator's supervisor and Models its model
	// registry; nil means local AI is off.
	Accel  *accel.Supervisor
	Models *accel.Models
	// Datasets keeps uploaded datasets; nil answers 503.
	Datasets *datasets.Datasets
	// Users, Sessions, Limiter and Audit serve console sign-in and the
	// audit log; Register makes default ones over Store when nil.
	Users    *auth.Users
	Sessions *auth.Sessions
	Limiter  *auth.Limiter
	Audit    *audit.Log
	// Backups streams backups and lists scheduled ones; nil answers 503.
	Backups *backup.Service
	// RotateKey re-encrypts every secret under a new key file; nil when
	// the key comes from the environment (answers 409).
	RotateKey func(context.Context) (int, error)
	// Tracer, if set, gives a manual run start a trigger span, the root
	// of the run's trace; nil records none.
	Tracer trace.Tracer
	// Training runs training jobs; nil means training is off.
	Training *training.Manager
}

const (
	securityScheme = "bearer"
	sessionScheme  = "session"
)

// Config returns the huma configuration: OpenAPI 3.1 at /openapi.json,
// the bearer scheme, and none of huma's CDN-hosted docs page (ours is
// served offline from the binary).
func Config(version string) huma.Config {
	cfg := huma.DefaultConfig("Millrace API", version)
	cfg.Info.Description = "Upload WebAssembly modules, grant them capabilities and run them in a sandbox. " +
		"Every operation except /healthz, /readyz, sign-in and the webhook endpoint /hooks/{trigger_id} (which takes its trigger's secret) needs `Authorization: Bearer <token>`, or the console's session cookie, holding the scope the operation lists. " +
		"With the session cookie, POST, PUT, PATCH and DELETE must also send the `X-CSRF-Token` header that sign-in returned. " +
		"Errors are RFC 9457 problem details."
	cfg.DocsPath = ""    // served by docsHandler, offline
	cfg.SchemasPath = "" // schemas live in the OpenAPI document
	cfg.CreateHooks = nil
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		securityScheme: {Type: "http", Scheme: "bearer", Description: "An API token (mr_…). The first start prints an admin token."},
		sessionScheme: {Type: "apiKey", In: "cookie", Name: auth.SessionCookie,
			Description: "The console's session, from POST /v1/auth/login. Unsafe methods also need the X-CSRF-Token header."},
	}
	return cfg
}

// Register adds every operation to api. Tests call it with humatest.
func Register(api huma.API, d *Deps) {
	if d.Users == nil {
		d.Users = auth.NewUsers(d.Store)
	}
	if d.Sessions == nil {
		d.Sessions = auth.NewSessions(d.Store, auth.SessionConfig{})
	}
	if d.Limiter == nil {
		d.Limiter = auth.NewLimiter(auth.LimitConfig{})
	}
	if d.Audit == nil {
		d.Audit = audit.New(d.Store)
	}
	api.UseMiddleware(authMiddleware(api, d))
	registerHealth(api, d)
	registerSignIn(api, d)
	registerOwnTokens(api, d)
	registerUsers(api, d)
	registerAudit(api, d)
	registerModules(api, d)
	registerSecrets(api, d)
	registerTokens(api, d)
	registerWorkflows(api, d)
	registerRuns(api, d)
	registerTriggers(api, d)
	registerModels(api, d)
	registerDatasets(api, d)
	registerBackups(api, d)
	registerTraining(api, d)
	registerEditorHelpers(api, d)
}

// Handler returns the whole HTTP handler: the API, the docs page and a
// request body limit.
func Handler(d *Deps, maxBodyBytes int64) http.Handler {
	mux := http.NewServeMux()
	api := humago.New(mux, Config(d.Version))
	Register(api, d)
	mux.Handle("GET /docs", docsHandler())
	mux.Handle("GET /docs/", docsHandler())
	return limitBody(withConsole(mux), maxBodyBytes, datasetUploadLimit(d))
}

// datasetUploadLimit is the body limit of dataset uploads, which are
// larger than anything else the API takes; 0 when there are none.
func datasetUploadLimit(d *Deps) int64 {
	if d.Datasets == nil {
		return 0
	}
	return d.Datasets.Config().MaxUploadBytes + 1<<20 // the multipart framing
}

// limitBody caps every request body, multipart uploads included, before
// anything buffers it. Dataset uploads (POST under /v1/datasets) get
// their own, larger cap when datasetMax is above n.
func limitBody(next http.Handler, n, datasetMax int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := n
		if datasetMax > n && r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/datasets") {
			n = datasetMax
		}
		if r.ContentLength > n {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			w.Write([]byte(`{"title":"Request Entity Too Large","status":413,"detail":"the request body is larger than this server accepts"}`))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, n)
		next.ServeHTTP(w, r)
	})
}

// caller is who sent a request, set by authMiddleware.
type caller struct {
	auth.Principal
	// SessionID is the session cookie's value when the request came with
	// it rather than a bearer token.
	SessionID string
	Session   store.Session
}

type callerKey struct{}

// callerFrom returns the request's caller, set by authMiddleware.
func callerFrom(ctx context.Context) (caller, bool) {
	c, ok := ctx.Value(callerKey{}).(caller)
	return c, ok
}

// requestInfo is what handlers need of the connection.
type requestInfo struct {
	ClientIP string
	TLS      bool
}

type requestKey struct{}

func requestFrom(ctx context.Context) requestInfo {
	r, _ := ctx.Value(requestKey{}).(requestInfo)
	return r
}

// clientIP is the peer's address. Forwarded headers are not trusted: a
// client could set them to dodge the sign-in limits.
func clientIP(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

// operationScopes returns the scopes an operation's bearer requirement
// lists, and whether it has one: operations without are open (health,
// sign-in) or check their own credentials (webhooks).
func operationScopes(op *huma.Operation) ([]string, bool) {
	if op == nil || len(op.Security) == 0 {
		return nil, false
	}
	scopes, ok := op.Security[0][securityScheme]
	return scopes, ok
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// auditSelf marks operations that write their own audit entries (with
// details the middleware cannot see).
const auditSelf = "audit-self"

// audited says whether the middleware records an operation: every change
// (an unsafe method), except runs and invocations, which the runs table
// already records and which would drown the log.
func audited(op *huma.Operation, scopes []string) bool {
	if !unsafeMethod(op.Method) || op.Metadata[auditSelf] != nil {
		return false
	}
	for _, s := range scopes {
		if strings.HasSuffix(s, ":run") || strings.HasSuffix(s, ":invoke") {
			return false
		}
	}
	return true
}

func outcomeOf(status int) string {
	switch {
	case status == http.StatusForbidden:
		return audit.Denied
	case status >= 400:
		return audit.Failure
	}
	return audit.Success
}

// authMiddleware enforces each operation's security requirement: a valid
// bearer token or session cookie (else 401), with the CSRF header when a
// cookie authenticates an unsafe method (else 403), holding the
// operation's scope (else 403). It records changes in the audit log.
func authMiddleware(api huma.API, d *Deps) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		info := requestInfo{ClientIP: clientIP(ctx.RemoteAddr()), TLS: ctx.TLS() != nil}
		ctx = huma.WithValue(ctx, requestKey{}, info)
		op := ctx.Operation()
		scopes, secured := operationScopes(op)
		if !secured {
			next(ctx)
			return
		}
		who, err := authenticate(ctx, d)
		if err != nil {
			if !errors.Is(err, auth.ErrUnauthenticated) && !errors.Is(err, auth.ErrTokenExpired) && !errors.Is(err, auth.ErrSessionExpired) {
				slog.ErrorContext(ctx.Context(), "authentication failed", "err", err)
				huma.WriteErr(api, ctx, http.StatusInternalServerError, "checking credentials failed")
				return
			}
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="millrace"`)
			msg := "a valid API token or session is required: send Authorization: Bearer <token>, or sign in with POST /v1/auth/login"
			if errors.Is(err, auth.ErrTokenExpired) || errors.Is(err, auth.ErrSessionExpired) {
				msg = err.Error()
			}
			huma.WriteErr(api, ctx, http.StatusUnauthorized, msg)
			return
		}
		ctx = huma.WithContext(ctx, audit.WithActor(ctx.Context(), audit.Actor{ID: who.ActorID(), Name: who.ActorName(), ClientIP: info.ClientIP}))
		record := audited(op, scopes)
		deny := func(msg string) {
			huma.WriteErr(api, ctx, http.StatusForbidden, msg)
			if record {
				d.Audit.Record(ctx.Context(), audit.Event{Action: op.OperationID, Target: ctx.URL().Path, Outcome: audit.Denied, Detail: msg})
			}
		}
		if who.SessionID != "" && unsafeMethod(ctx.Method()) && !auth.CheckCSRF(who.SessionID, ctx.Header(auth.CSRFHeader)) {
			deny("missing or wrong CSRF token: a request signed in with the session cookie must send the " + auth.CSRFHeader + " header that sign-in returned")
			return
		}
		for _, scope := range scopes {
			if !who.Has(scope) {
				deny(who.String() + " lacks the " + scope + " scope that " + op.OperationID + " needs")
				return
			}
		}
		ctx = huma.WithValue(ctx, callerKey{}, who)
		next(ctx)
		if record {
			d.Audit.Record(ctx.Context(), audit.Event{Action: op.OperationID, Target: ctx.URL().Path, Outcome: outcomeOf(ctx.Status())})
		}
	}
}

// authenticate resolves the request's credentials: the Authorization
// header if there is one (a bad one is not rescued by a cookie), else
// the session cookie.
func authenticate(ctx huma.Context, d *Deps) (caller, error) {
	if h := ctx.Header("Authorization"); h != "" {
		p, err := d.Tokens.Authenticate(ctx.Context(), h)
		return caller{Principal: p}, err
	}
	cookie, err := huma.ReadCookie(ctx, auth.SessionCookie)
	if err != nil {
		return caller{}, auth.ErrUnauthenticated
	}
	se, err := d.Sessions.Resolve(ctx.Context(), cookie.Value)
	if err != nil {
		return caller{}, err
	}
	p, err := d.Tokens.SessionPrincipal(ctx.Context(), se)
	return caller{Principal: p, SessionID: cookie.Value, Session: se}, err
}

// secured marks an operation as needing a scope, held by a bearer token
// or by the session cookie's user.
func secured(op huma.Operation, scope string) huma.Operation {
	op.Security = []map[string][]string{{securityScheme: {scope}}, {sessionScheme: {scope}}}
	op.Errors = append(op.Errors, http.StatusUnauthorized, http.StatusForbidden)
	return op
}

// authenticated marks an operation as needing a caller but no scope: it
// concerns only the caller's own credentials (who am I, sign out).
func authenticated(op huma.Operation) huma.Operation {
	op.Security = []map[string][]string{{securityScheme: {}}, {sessionScheme: {}}}
	op.Errors = append(op.Errors, http.StatusUnauthorized, http.StatusForbidden)
	return op
}

type healthOutput struct {
	Body struct {
		Status string `json:"status" example:"ok"`
	}
}

type readyOutput struct {
	Body struct {
		Status string `json:"status" example:"ready"`
		// Accel is informative: the server is ready whatever its state.
		Accel accel.Status `json:"accel" doc:"The accelerator's state (as GET /v1/accel). It does not decide readiness: the server serves everything but local AI without it, and a crashed child is restarted."`
	}
}

func registerHealth(api huma.API, d *Deps) {
	huma.Register(api, huma.Operation{
		OperationID: "healthz", Method: http.MethodGet, Path: "/healthz", Tags: []string{"health"},
		Summary: "Liveness: the process serves HTTP",
	}, func(ctx context.Context, _ *struct{}) (*healthOutput, error) {
		out := &healthOutput{}
		out.Body.Status = "ok"
		return out, nil
	})
	huma.Register(api, huma.Operation{
		OperationID: "readyz", Method: http.MethodGet, Path: "/readyz", Tags: []string{"health"},
		Summary:     "Readiness: the database answers and start-up finished",
		Description: "Also reports the accelerator's state, which does not make the server unready: modules that use no model run without it, and the ones that do get a clear error (busy) until it is back.",
		Errors:      []int{http.StatusServiceUnavailable},
	}, func(ctx context.Context, _ *struct{}) (*readyOutput, error) {
		if d.Ready != nil && !d.Ready.Load() {
			return nil, huma.Error503ServiceUnavailable("starting")
		}
		if err := d.Store.Ping(ctx); err != nil {
			return nil, huma.Error503ServiceUnavailable("the database does not answer: " + err.Error())
		}
		out := &readyOutput{}
		out.Body.Status = "ready"
		out.Body.Accel = accelStatus(ctx, d)
		return out, nil
	})
}
