// Package httpapi is Millrace's REST API: huma v2 operations, bearer-token
// auth with one scope per operation, and RFC 9457 problem details.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/secrets"
	"github.com/millrace/millrace/server/store"
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
}

const securityScheme = "bearer"

// Config returns the huma configuration: OpenAPI 3.1 at /openapi.json,
// the bearer scheme, and none of huma's CDN-hosted docs page (ours is
// served offline from the binary).
func Config(version string) huma.Config {
	cfg := huma.DefaultConfig("Millrace API", version)
	cfg.Info.Description = "Upload WebAssembly modules, grant them capabilities and run them in a sandbox. " +
		"Every operation except /healthz, /readyz and the webhook endpoint /hooks/{trigger_id} (which takes its trigger's secret) needs `Authorization: Bearer <token>` holding the scope the operation lists. " +
		"Errors are RFC 9457 problem details."
	cfg.DocsPath = ""    // served by docsHandler, offline
	cfg.SchemasPath = "" // schemas live in the OpenAPI document
	cfg.CreateHooks = nil
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		securityScheme: {Type: "http", Scheme: "bearer", Description: "An API token (mr_…). The first start prints an admin token."},
	}
	return cfg
}

// Register adds every operation to api. Tests call it with humatest.
func Register(api huma.API, d *Deps) {
	api.UseMiddleware(authMiddleware(api, d.Tokens))
	registerHealth(api, d)
	registerModules(api, d)
	registerSecrets(api, d)
	registerTokens(api, d)
	registerWorkflows(api, d)
	registerRuns(api, d)
	registerTriggers(api, d)
	registerModels(api, d)
	registerSessions(api, d)
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
	mux.Handle("GET /", consoleHandler())
	return limitBody(mux, maxBodyBytes)
}

// limitBody caps every request body, multipart uploads included, before
// anything buffers it.
func limitBody(next http.Handler, n int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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

type tokenKey struct{}

// authMiddleware enforces each operation's security requirement: a valid
// bearer token (else 401) holding the operation's scope (else 403).
func authMiddleware(api huma.API, tokens *auth.Tokens) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		op := ctx.Operation()
		// Only bearer operations are checked here: health checks are open,
		// and the webhook endpoint checks its trigger's secret itself.
		if op == nil || len(op.Security) == 0 || op.Security[0][securityScheme] == nil {
			next(ctx)
			return
		}
		tok, err := verifyCaller(ctx, tokens)
		if err == errCSRF {
			huma.WriteErr(api, ctx, http.StatusForbidden, errCSRF.Error())
			return
		}
		if err != nil {
			if err != auth.ErrUnauthenticated {
				slog.ErrorContext(ctx.Context(), "token lookup failed", "err", err)
				huma.WriteErr(api, ctx, http.StatusInternalServerError, "token lookup failed")
				return
			}
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="millrace"`)
			huma.WriteErr(api, ctx, http.StatusUnauthorized, "a valid API token is required: send Authorization: Bearer <token>")
			return
		}
		for _, scope := range op.Security[0][securityScheme] {
			if !auth.Has(tok, scope) {
				huma.WriteErr(api, ctx, http.StatusForbidden, "the token "+tok.ID+" lacks the "+scope+" scope that "+op.OperationID+" needs")
				return
			}
		}
		next(huma.WithValue(ctx, tokenKey{}, tok))
	}
}

// tokenFrom returns the caller's token, set by authMiddleware.
func tokenFrom(ctx context.Context) (store.Token, bool) {
	t, ok := ctx.Value(tokenKey{}).(store.Token)
	return t, ok
}

// secured marks an operation as needing a scope.
func secured(op huma.Operation, scope string) huma.Operation {
	op.Security = []map[string][]string{{securityScheme: {scope}}}
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
