package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/httpapi"
	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/millrace/millrace/server/secrets"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/millrace/millrace/server/trigger"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the committed openapi.json")

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	testguests.Cleanup()
	os.Exit(code)
}

type fixture struct {
	srv    *httptest.Server
	admin  string
	tokens *auth.Tokens
	db     *sqlite.DB
	deps   *httpapi.Deps
	events *engine.Bus
}

func setup(t testing.TB) *fixture { t.Helper(); return setupWith(t, nil) }

// setupWith lets a test add to the API's dependencies.
func setupWith(t testing.TB, more func(d *httpapi.Deps)) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	eng, err := sandbox.NewWazero(ctx, sandbox.WazeroConfig{CacheDir: filepath.Join(dir, "cache")})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close(context.Background()) })
	vault, err := secrets.New(make([]byte, 32), db)
	require.NoError(t, err)
	reg := registry.New(registry.Config{MaxModuleBytes: 48 << 20}, db, eng, vault)
	tokens := auth.New(db)
	admin, err := tokens.Bootstrap(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, admin)
	workflows := engine.NewWorkflows(db, reg)
	events := engine.NewBus(1000)
	executor := engine.NewExecutor(db, reg)
	executor.Events = events
	queue, err := engine.NewQueue(ctx, riversqlite.New(db.SQL()), executor, engine.QueueConfig{})
	require.NoError(t, err)
	require.NoError(t, queue.Start(ctx))
	t.Cleanup(func() { queue.Stop(context.Background()) })
	runs := engine.NewRuns(db, workflows, queue, events)
	triggers := trigger.New(db, runs, vault, trigger.Config{})
	deps := &httpapi.Deps{Registry: reg, Workflows: workflows, Runs: runs, Tokens: tokens, Vault: vault, Store: db, Version: "test", Triggers: triggers}
	if more != nil {
		more(deps)
	}
	srv := httptest.NewServer(httpapi.Handler(deps, 49<<20))
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, admin: admin, tokens: tokens, db: db, deps: deps, events: events}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), string(r.body))
	return m
}

func (f *fixture) do(t *testing.T, token, method, path string, body io.Reader, contentType string) response {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return response{res.StatusCode, res.Header, b}
}

func (f *fixture) doJSON(t *testing.T, method, path string, body any) response {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	return f.do(t, f.admin, method, path, r, "application/json")
}

func (f *fixture) upload(t *testing.T, wasm, manifest []byte) response {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("wasm", "module.wasm")
	w.Write(wasm)
	if manifest != nil {
		w, _ = mw.CreateFormFile("manifest", "manifest.json")
		w.Write(manifest)
	}
	require.NoError(t, mw.Close())
	return f.do(t, f.admin, http.MethodPost, "/v1/modules", &buf, mw.FormDataContentType())
}

func testManifest(id string, extra string) []byte {
	return []byte(fmt.Sprintf(`{"abi":1,"id":%q,"name":%q,"version":"1.0.0"%s}`, id, id, extra))
}

// The whole life of a module over HTTP, as a new user would go through it.
func TestModuleLifecycle(t *testing.T) {
	t.Parallel()
	f := setup(t)
	echo, manifest := testguests.Wasm(t, "echo"), testguests.Manifest(t, "echo")

	r := f.upload(t, echo, manifest)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	v := r.json(t)
	require.Equal(t, "echo", v["id"])
	require.Nil(t, v["grant"])
	require.Len(t, v["sha256"], 64)

	r = f.upload(t, echo, manifest)
	require.Equal(t, http.StatusOK, r.status, "re-uploading the same bytes is idempotent")

	r = f.upload(t, testguests.Wasm(t, "noop"), manifest)
	require.Equal(t, http.StatusConflict, r.status)
	require.Contains(t, r.json(t)["detail"], "versions are immutable")

	r = f.doJSON(t, http.MethodGet, "/v1/modules", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, string(r.body), `"latest":"1.0.0"`)

	// Not granted yet: refused, with a hint.
	r = f.doJSON(t, http.MethodPost, "/v1/modules/echo/versions/1.0.0/invoke", map[string]any{"input": "hi"})
	require.Equal(t, http.StatusForbidden, r.status)
	require.Contains(t, r.json(t)["detail"], "PUT /v1/modules/echo/versions/1.0.0/grants")

	r = f.doJSON(t, http.MethodPut, "/v1/modules/echo/versions/1.0.0/grants", map[string]any{"capabilities": map[string]any{}, "limits": map[string]any{"timeout_ms": 2000}})
	require.Equal(t, http.StatusOK, r.status, string(r.body))

	r = f.doJSON(t, http.MethodPost, "/v1/modules/echo/versions/1.0.0/invoke", map[string]any{"input": map[string]any{"hello": "world"}})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	out := r.json(t)
	require.Equal(t, map[string]any{"hello": "world"}, out["output"])
	require.NotEmpty(t, out["logs"])
	require.Contains(t, out, "duration_ms")

	r = f.doJSON(t, http.MethodGet, "/v1/modules/echo/versions/1.0.0/grants", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.JSONEq(t, `{"capabilities":{},"limits":{"timeout_ms":2000}}`, string(r.body))

	r = f.doJSON(t, http.MethodDelete, "/v1/modules/echo/versions/1.0.0", nil)
	require.Equal(t, http.StatusNoContent, r.status)
	r = f.doJSON(t, http.MethodGet, "/v1/modules/echo", nil)
	require.Equal(t, http.StatusNotFound, r.status)
}

// Errors are RFC 9457 problem details naming the field, import or limit.
func TestProblemDetails(t *testing.T) {
	t.Parallel()
	f := setup(t)
	noop := testguests.Wasm(t, "noop")
	cases := []struct {
		name     string
		wasm     []byte
		manifest []byte
		status   int
		location string
		detail   string
	}{
		{"unknown manifest field", noop, testManifest("a", `,"colour":"red"`), 422, "manifest.colour", "unknown field"},
		{"not wasm", []byte("hello"), testManifest("a", ""), 422, "wasm", "not a WebAssembly binary"},
		{"ungranted import", testguests.Wasm(t, "secretuser"), testManifest("a", ""), 422, "wasm", "import millrace_v1.secret_get"},
		{"missing manifest", noop, nil, 422, "manifest", "no manifest"},
		{"limit over max", noop, testManifest("a", `,"limits":{"timeout_ms":999999}`), 422, "manifest.limits.timeout_ms", "maximum"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := f.upload(t, c.wasm, c.manifest)
			require.Equal(t, c.status, r.status, string(r.body))
			require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
			p := r.json(t)
			require.EqualValues(t, c.status, p["status"])
			require.Contains(t, p["detail"], c.detail)
			errs := p["errors"].([]any)
			require.Equal(t, c.location, errs[0].(map[string]any)["location"])
		})
	}

	// Input that does not match the module's schema names the field.
	r := f.upload(t, noop, testManifest("typed", `,"inputs":{"type":"object","properties":{"n":{"type":"integer"}}}`))
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	f.doJSON(t, http.MethodPut, "/v1/modules/typed/versions/1.0.0/grants", map[string]any{})
	r = f.doJSON(t, http.MethodPost, "/v1/modules/typed/versions/1.0.0/invoke", map[string]any{"input": map[string]any{"n": "seven"}})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Equal(t, "input.n", r.json(t)["errors"].([]any)[0].(map[string]any)["location"])

	// A grant wider than the request names the entry.
	r = f.doJSON(t, http.MethodPut, "/v1/modules/typed/versions/1.0.0/grants", map[string]any{"capabilities": map[string]any{"kv": true}})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Equal(t, "capabilities.kv", r.json(t)["errors"].([]any)[0].(map[string]any)["location"])

	// Malformed JSON bodies and oversized bodies.
	r = f.do(t, f.admin, http.MethodPut, "/v1/secrets/A", strings.NewReader(`{"value":`), "application/json")
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	r = f.do(t, f.admin, http.MethodPost, "/v1/modules", bytes.NewReader(make([]byte, 50<<20)), "multipart/form-data; boundary=x")
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status)
}

func TestFailingModuleGivesProblemWithLogs(t *testing.T) {
	t.Parallel()
	f := setup(t)
	require.Equal(t, http.StatusCreated, f.upload(t, testguests.Wasm(t, "loop"), testManifest("loop", `,"limits":{"timeout_ms":300}`)).status)
	f.doJSON(t, http.MethodPut, "/v1/modules/loop/versions/1.0.0/grants", map[string]any{})
	r := f.doJSON(t, http.MethodPost, "/v1/modules/loop/versions/1.0.0/invoke", map[string]any{})
	require.Equal(t, http.StatusUnprocessableEntity, r.status, string(r.body))
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
	p := r.json(t)
	require.Equal(t, "timeout", p["kind"])
	require.Contains(t, p["detail"], "timeout_ms (300 ms)")
	require.Contains(t, p, "logs")
	require.Contains(t, p, "duration_ms")
}

// Hostile modules run while good invocations keep succeeding.
func TestServerKeepsServingBesideHostileModules(t *testing.T) {
	t.Parallel()
	f := setup(t)
	hostile := map[string]string{
		"loop":      `,"limits":{"timeout_ms":1000}`,
		"membomb":   `,"limits":{"memory_mb":64}`,
		"bigoutput": `,"limits":{"memory_mb":512}`,
		"panic":     ``,
		"recursion": `,"limits":{"memory_mb":64}`,
	}
	for name, extra := range hostile {
		require.Equal(t, http.StatusCreated, f.upload(t, testguests.Wasm(t, name), testManifest(name, extra)).status)
		f.doJSON(t, http.MethodPut, "/v1/modules/"+name+"/versions/1.0.0/grants", map[string]any{})
	}
	require.Equal(t, http.StatusCreated, f.upload(t, testguests.Wasm(t, "echo"), testguests.Manifest(t, "echo")).status)
	f.doJSON(t, http.MethodPut, "/v1/modules/echo/versions/1.0.0/grants", map[string]any{})

	var wg sync.WaitGroup
	for name := range hostile {
		wg.Go(func() {
			r := f.doJSON(t, http.MethodPost, "/v1/modules/"+name+"/versions/1.0.0/invoke", map[string]any{"input": map[string]any{"mib": 100}})
			if r.status != http.StatusUnprocessableEntity {
				t.Errorf("%s: status %d: %s", name, r.status, r.body)
			}
		})
	}
	for i := range 20 {
		wg.Go(func() {
			r := f.doJSON(t, http.MethodPost, "/v1/modules/echo/versions/1.0.0/invoke", map[string]any{"input": i})
			if r.status != http.StatusOK || !strings.Contains(string(r.body), fmt.Sprintf(`"output":%d`, i)) {
				t.Errorf("echo %d: %d %s", i, r.status, r.body)
			}
		})
	}
	wg.Wait()
	r := f.do(t, "", http.MethodGet, "/healthz", nil, "")
	require.Equal(t, http.StatusOK, r.status)
}

func TestSecretsAndTokens(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.doJSON(t, http.MethodPut, "/v1/secrets/API_KEY", map[string]any{"value": "hunter2"})
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	r = f.doJSON(t, http.MethodGet, "/v1/secrets", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, string(r.body), "API_KEY")
	require.NotContains(t, string(r.body), "hunter2", "values are never returned")

	r = f.doJSON(t, http.MethodPost, "/v1/tokens", map[string]any{"name": "reader", "scopes": []string{"modules:read"}})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	tok := r.json(t)
	reader := tok["token"].(string)
	require.True(t, strings.HasPrefix(reader, "mr_"))

	require.Equal(t, http.StatusOK, f.do(t, reader, http.MethodGet, "/v1/modules", nil, "").status)
	require.Equal(t, http.StatusForbidden, f.do(t, reader, http.MethodGet, "/v1/secrets", nil, "").status)

	r = f.doJSON(t, http.MethodPost, "/v1/tokens", map[string]any{"name": "x", "scopes": []string{"root"}})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)

	r = f.doJSON(t, http.MethodGet, "/v1/tokens", nil)
	require.NotContains(t, string(r.body), reader, "token secrets are never listed")

	require.Equal(t, http.StatusNoContent, f.doJSON(t, http.MethodDelete, "/v1/tokens/"+tok["id"].(string), nil).status)
	require.Equal(t, http.StatusUnauthorized, f.do(t, reader, http.MethodGet, "/v1/modules", nil, "").status, "a revoked token stops working")
}

// openAPI fetches the served document.
func openAPI(t *testing.T, f *fixture) map[string]any {
	t.Helper()
	r := f.do(t, "", http.MethodGet, "/openapi.json", nil, "")
	require.Equal(t, http.StatusOK, r.status)
	return r.json(t)
}

// Every operation in the OpenAPI document answers 401 without a token and
// 403 with a token that lacks its scope; only health checks are open.
func TestEveryOperationNeedsTheRightToken(t *testing.T) {
	t.Parallel()
	f := setup(t)
	doc := openAPI(t, f)
	require.Equal(t, "3.1.0", doc["openapi"])
	param := regexp.MustCompile(`\{[^}]+\}`)
	var open, webhooks, anyScope []string
	ops := 0
	for path, item := range doc["paths"].(map[string]any) {
		for method, raw := range item.(map[string]any) {
			op := raw.(map[string]any)
			id := op["operationId"].(string)
			sec, _ := op["security"].([]any)
			if len(sec) == 0 {
				open = append(open, id)
				continue
			}
			bearer, isBearer := sec[0].(map[string]any)["bearer"].([]any)
			if !isBearer {
				webhooks = append(webhooks, id) // checked below
				continue
			}
			if len(bearer) == 0 {
				anyScope = append(anyScope, id) // any caller may ask about itself
				m := strings.ToUpper(method)
				require.Equal(t, http.StatusUnauthorized, f.do(t, "", m, path, nil, "").status, "%s %s without a token", m, path)
				continue
			}
			ops++
			scope := bearer[0].(string)
			concrete := param.ReplaceAllStringFunc(path, func(p string) string {
				switch p {
				case "{version}":
					if strings.HasPrefix(path, "/v1/workflows") {
						return "1"
					}
					return "1.0.0"
				case "{id}":
					if strings.HasPrefix(path, "/v1/tokens") {
						return "tok_000000000000"
					}
					if strings.HasPrefix(path, "/v1/runs") {
						return "run_000000000000000000000"
					}
					if strings.HasPrefix(path, "/v1/users") {
						return "usr_0000000000000000"
					}
					return "echo"
				case "{trigger_id}":
					return "trg_0000000000000000"
				case "{artifact_id}":
					return "art_" + strings.Repeat("0", 32)
				}
				return "NAME"
			})
			m := strings.ToUpper(method)
			r := f.do(t, "", m, concrete, strings.NewReader(`{}`), "application/json")
			require.Equal(t, http.StatusUnauthorized, r.status, "%s %s without a token", m, concrete)
			require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))

			r = f.do(t, "mr_not-a-real-token", m, concrete, strings.NewReader(`{}`), "application/json")
			require.Equal(t, http.StatusUnauthorized, r.status, "%s %s with a bogus token", m, concrete)

			others := slices.DeleteFunc(slices.Clone(auth.AllScopes), func(s string) bool { return s == scope })
			_, lacking, err := f.tokens.Issue(context.Background(), "lacks "+scope, others)
			require.NoError(t, err)
			r = f.do(t, lacking, m, concrete, strings.NewReader(`{}`), "application/json")
			require.Equal(t, http.StatusForbidden, r.status, "%s %s with a token lacking %s: %s", m, concrete, scope, r.body)
			require.Contains(t, r.json(t)["detail"], scope)
		}
	}
	slices.Sort(open)
	require.Equal(t, []string{"healthz", "login", "readyz"}, open)
	slices.Sort(anyScope)
	require.Equal(t, []string{"create-own-token", "delete-own-token", "get-me", "list-own-tokens", "logout"}, anyScope)

	// The webhook endpoint takes its trigger's secret, not a token; it
	// answers 401 alike for an unknown trigger and wrong credentials.
	require.Equal(t, []string{"call-webhook"}, webhooks)
	for _, header := range []map[string]string{{}, {"X-Millrace-Secret": "wrong"}, {"Authorization": "Bearer " + f.admin}} {
		req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/hooks/trg_0000000000000000", strings.NewReader(`{}`))
		require.NoError(t, err)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusUnauthorized, res.StatusCode, "webhook with %v", header)
		require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	}
	require.GreaterOrEqual(t, ops, 23)
}

// The committed openapi.json matches what the server serves. Run
// `make openapi` after changing the API.
func TestOpenAPIGolden(t *testing.T) {
	f := setup(t)
	var doc any = openAPI(t, f)
	got, err := json.MarshalIndent(doc, "", "  ")
	require.NoError(t, err)
	got = append(got, '\n')
	golden := filepath.Join("..", "..", "openapi.json")
	if *update {
		require.NoError(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run make openapi")
	if string(want) != string(got) {
		// Name the first differing line rather than dumping 50 kB.
		w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
		for i := range min(len(w), len(g)) {
			if w[i] != g[i] {
				t.Fatalf("the API changed (line %d: committed %q, served %q): run make openapi and commit openapi.json", i+1, w[i], g[i])
			}
		}
		t.Fatalf("the API changed (%d lines committed, %d served): run make openapi and commit openapi.json", len(w), len(g))
	}
}

func TestDocsPageWorksOffline(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.do(t, "", http.MethodGet, "/docs", nil, "")
	require.Equal(t, http.StatusOK, r.status)
	page := string(r.body)
	require.Contains(t, page, "/docs/assets/swagger-ui-bundle.js", "the viewer is not built in: run make web")
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		require.True(t, strings.HasPrefix(m[1], "/"), "%s is not served by us", m[1])
		a := f.do(t, "", http.MethodGet, m[1], nil, "")
		require.Equal(t, http.StatusOK, a.status, m[1])
		require.Greater(t, len(a.body), 10, m[1])
	}
	require.Contains(t, r.header.Get("Content-Security-Policy"), "default-src 'self'")
}

func TestHealth(t *testing.T) {
	t.Parallel()
	f := setup(t)
	require.Equal(t, http.StatusOK, f.do(t, "", http.MethodGet, "/healthz", nil, "").status)
	require.Equal(t, http.StatusOK, f.do(t, "", http.MethodGet, "/readyz", nil, "").status)
}
