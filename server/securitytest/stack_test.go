package securitytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

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

func TestMain(m *testing.M) {
	code := m.Run()
	testguests.Cleanup()
	os.Exit(code)
}

// stack is the whole server but its listener: real SQLite, real wazero,
// real River queue, the real HTTP API, served by httptest.
type stack struct {
	srv    *httptest.Server
	admin  string
	db     *sqlite.DB
	vault  *secrets.Vault
	tokens *auth.Tokens
	dir    string
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "millrace.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	eng, err := sandbox.NewWazero(ctx, sandbox.WazeroConfig{CacheDir: filepath.Join(dir, "cache")})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close(context.Background()) })
	key, err := secrets.LoadOrCreateKey(filepath.Join(dir, "secret.key"), "")
	require.NoError(t, err)
	vault, err := secrets.New(key, db)
	require.NoError(t, err)
	reg := registry.New(registry.Config{MaxModuleBytes: 48 << 20}, db, eng, vault)
	tokens := auth.New(db)
	admin, err := tokens.Bootstrap(ctx)
	require.NoError(t, err)
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
	srv := httptest.NewServer(httpapi.Handler(deps, 49<<20))
	t.Cleanup(srv.Close)
	return &stack{srv: srv, admin: admin, db: db, vault: vault, tokens: tokens, dir: dir}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), string(r.body))
	return m
}

func (s *stack) do(t *testing.T, token, method, path string, body io.Reader, headers map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, body)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return response{res.StatusCode, res.Header, b}
}

func (s *stack) json(t *testing.T, method, path string, body any) response {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	return s.do(t, s.admin, method, path, r, map[string]string{"Content-Type": "application/json"})
}

// install uploads a guest as module id@1.0.0 with the manifest extra
// (capability requests), grants what grant says, and publishes workflow id
// running it as node "n" with the given input mapping (nil: the run input).
func (s *stack) install(t *testing.T, id, guest, extra string, grant map[string]any, input map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("wasm", "module.wasm")
	w.Write(testguests.Wasm(t, guest))
	w, _ = mw.CreateFormFile("manifest", "manifest.json")
	fmt.Fprintf(w, `{"abi":1,"id":%q,"name":%q,"version":"1.0.0","limits":{"timeout_ms":30000}%s}`, id, id, extra)
	require.NoError(t, mw.Close())
	r := s.do(t, s.admin, http.MethodPost, "/v1/modules", &buf, map[string]string{"Content-Type": mw.FormDataContentType()})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	if grant == nil {
		grant = map[string]any{}
	}
	r = s.json(t, http.MethodPut, "/v1/modules/"+id+"/versions/1.0.0/grants", grant)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	node := map[string]any{"id": "n", "module": id + "@1.0.0"}
	if input != nil {
		node["input"] = input
	}
	r = s.json(t, http.MethodPut, "/v1/workflows/"+id, map[string]any{"name": id, "nodes": []any{node}})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	r = s.json(t, http.MethodPost, "/v1/workflows/"+id+"/publish", nil)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
}

// run starts a run of workflow id and waits until it finishes.
func (s *stack) run(t *testing.T, id string, input any) map[string]any {
	t.Helper()
	r := s.json(t, http.MethodPost, "/v1/workflows/"+id+"/runs", map[string]any{"input": input})
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	return s.finished(t, r.json(t)["id"].(string))
}

func (s *stack) finished(t *testing.T, runID string) map[string]any {
	t.Helper()
	var run map[string]any
	require.Eventually(t, func() bool {
		run = s.json(t, http.MethodGet, "/v1/runs/"+runID, nil).json(t)
		return run["status"] == "succeeded" || run["status"] == "failed"
	}, time.Minute, 20*time.Millisecond)
	return run
}

// webhook creates a sync webhook trigger on workflow id and returns a
// function that calls it with a body and headers.
func (s *stack) webhook(t *testing.T, id string) func(body []byte, headers map[string]string) response {
	t.Helper()
	r := s.json(t, http.MethodPost, "/v1/workflows/"+id+"/triggers", map[string]any{"kind": "webhook", "webhook": map[string]any{"mode": "sync"}})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	m := r.json(t)
	path, secret := m["path"].(string), m["secret"].(string)
	return func(body []byte, headers map[string]string) response {
		h := map[string]string{"X-Millrace-Secret": secret}
		for k, v := range headers {
			h[k] = v
		}
		return s.do(t, "", http.MethodPost, path, bytes.NewReader(body), h)
	}
}
