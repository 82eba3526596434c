package httpapi_test

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/millrace/millrace/server/trigger"
	"github.com/stretchr/testify/require"
)

// installWorkflow uploads and grants a guest as module "id@1.0.0" and
// publishes workflow id running it as its one node "n".
func (f *fixture) installWorkflow(t *testing.T, id, guest string) {
	t.Helper()
	r := f.upload(t, testguests.Wasm(t, guest), testManifest(id, `,"limits":{"timeout_ms":30000}`))
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	require.Equal(t, http.StatusOK, f.doJSON(t, http.MethodPut, "/v1/modules/"+id+"/versions/1.0.0/grants", map[string]any{}).status)
	wf := map[string]any{"name": id, "nodes": []any{map[string]any{"id": "n", "module": id + "@1.0.0"}}}
	r = f.doJSON(t, http.MethodPut, "/v1/workflows/"+id, wf)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	r = f.doJSON(t, http.MethodPost, "/v1/workflows/"+id+"/publish", nil)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
}

// createTrigger creates a trigger and returns its path and secret.
func (f *fixture) createTrigger(t *testing.T, workflow string, spec map[string]any) (path, secret string) {
	t.Helper()
	r := f.doJSON(t, http.MethodPost, "/v1/workflows/"+workflow+"/triggers", spec)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	m := r.json(t)
	path, _ = m["path"].(string)
	secret, _ = m["secret"].(string)
	return path, secret
}

// hook calls a webhook with the given headers.
func (f *fixture) hook(t *testing.T, path string, headers map[string]string, body []byte) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(res.Body)
	require.NoError(t, err)
	return response{res.StatusCode, res.Header, buf.Bytes()}
}

// runIDs lists the ids of a workflow's runs.
func (f *fixture) runIDs(t *testing.T, workflow string) []string {
	t.Helper()
	r := f.doJSON(t, http.MethodGet, "/v1/runs?workflow="+workflow, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var ids []string
	for _, run := range r.json(t)["runs"].([]any) {
		ids = append(ids, run.(map[string]any)["id"].(string))
	}
	return ids
}

func (f *fixture) finishedRun(t *testing.T, id string) map[string]any {
	t.Helper()
	var run map[string]any
	require.Eventually(t, func() bool {
		run = f.doJSON(t, http.MethodGet, "/v1/runs/"+id, nil).json(t)
		return run["status"] == "succeeded" || run["status"] == "failed"
	}, 30*time.Second, 20*time.Millisecond)
	return run
}

func TestWebhookAsync(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.installWorkflow(t, "greet", "echo")
	path, secret := f.createTrigger(t, "greet", map[string]any{"kind": "webhook"})
	require.Regexp(t, `^/hooks/trg_[0-9a-f]{16}$`, path)
	require.NotEmpty(t, secret)

	r := f.hook(t, path, map[string]string{"X-Millrace-Secret": secret}, []byte(`{"name":"Ada"}`))
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	res := r.json(t)
	require.Equal(t, "queued", res["status"])
	require.NotContains(t, res, "output")
	run := f.finishedRun(t, res["run_id"].(string))
	require.Equal(t, "succeeded", run["status"], run["error"])
	require.Equal(t, map[string]any{"name": "Ada"}, run["input"])
	require.Equal(t, map[string]any{"n": map[string]any{"name": "Ada"}}, run["output"])
	require.True(t, strings.HasPrefix(run["trigger"].(string), "webhook:trg_"), run["trigger"])

	// Wrong or missing secrets are refused alike, and start nothing.
	for _, h := range []map[string]string{{}, {"X-Millrace-Secret": secret + "x"}, {"X-Millrace-Secret": secret[:10]}, {"Authorization": "Bearer " + f.admin}} {
		r = f.hook(t, path, h, []byte(`{}`))
		require.Equal(t, http.StatusUnauthorized, r.status, "%v", h)
		require.Contains(t, r.json(t)["detail"], "unknown trigger, or missing or wrong credentials")
	}
	require.Len(t, f.runIDs(t, "greet"), 1)

	// The listing shows the path but never the secret.
	r = f.doJSON(t, http.MethodGet, "/v1/workflows/greet/triggers", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, string(r.body), path)
	require.NotContains(t, string(r.body), secret)

	// A deleted trigger answers like an unknown one.
	id := strings.TrimPrefix(path, "/hooks/")
	require.Equal(t, http.StatusNoContent, f.doJSON(t, http.MethodDelete, "/v1/triggers/"+id, nil).status)
	require.Equal(t, http.StatusNotFound, f.doJSON(t, http.MethodDelete, "/v1/triggers/"+id, nil).status)
	require.Equal(t, http.StatusUnauthorized, f.hook(t, path, map[string]string{"X-Millrace-Secret": secret}, []byte(`{}`)).status)
}

func TestWebhookSync(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.installWorkflow(t, "echoer", "echo")
	f.installWorkflow(t, "boom", "panic")
	f.installWorkflow(t, "slow", "sleeper")

	path, secret := f.createTrigger(t, "echoer", map[string]any{"kind": "webhook", "webhook": map[string]any{"mode": "sync"}})
	r := f.hook(t, path, map[string]string{"X-Millrace-Secret": secret}, []byte(`[1,2,3]`))
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	res := r.json(t)
	require.Equal(t, "succeeded", res["status"])
	require.Equal(t, map[string]any{"n": []any{1.0, 2.0, 3.0}}, res["output"], "the workflow's output")
	require.Regexp(t, `^run_`, res["run_id"])

	// A failed run is a problem naming the run.
	path, secret = f.createTrigger(t, "boom", map[string]any{"kind": "webhook", "webhook": map[string]any{"mode": "sync"}})
	r = f.hook(t, path, map[string]string{"X-Millrace-Secret": secret}, nil)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, string(r.body))
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
	p := r.json(t)
	require.Equal(t, "failed", p["run_status"])
	require.Contains(t, p["detail"], p["run_id"])

	// A run slower than the timeout: 202 with its id.
	path, secret = f.createTrigger(t, "slow", map[string]any{"kind": "webhook", "webhook": map[string]any{"mode": "sync", "timeout_ms": 200}})
	r = f.hook(t, path, map[string]string{"X-Millrace-Secret": secret}, []byte(`{"ms":3000}`))
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	res = r.json(t)
	require.Contains(t, []string{"queued", "running"}, res["status"])
	require.Equal(t, "succeeded", f.finishedRun(t, res["run_id"].(string))["status"], "the run goes on")
}

func TestWebhookHMAC(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.installWorkflow(t, "signed", "echo")
	path, secret := f.createTrigger(t, "signed", map[string]any{"kind": "webhook", "webhook": map[string]any{"auth": "hmac"}})
	body := []byte(`{"event":"push"}`)
	signed := func(at time.Time, body []byte) map[string]string {
		ts := strconv.FormatInt(at.Unix(), 10)
		return map[string]string{"X-Millrace-Timestamp": ts, "X-Millrace-Signature": trigger.Sign(secret, ts, body)}
	}

	r := f.hook(t, path, signed(time.Now(), body), body)
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))

	bad := signed(time.Now(), body)
	bad["X-Millrace-Signature"] = trigger.Sign(secret, bad["X-Millrace-Timestamp"], []byte(`{"event":"delete"}`))
	require.Equal(t, http.StatusUnauthorized, f.hook(t, path, bad, body).status, "a signature of another body")
	require.Equal(t, http.StatusUnauthorized, f.hook(t, path, signed(time.Now().Add(-10*time.Minute), body), body).status, "a stale timestamp")
	require.Equal(t, http.StatusUnauthorized, f.hook(t, path, signed(time.Now().Add(10*time.Minute), body), body).status, "a timestamp from the future")
	require.Equal(t, http.StatusUnauthorized, f.hook(t, path, map[string]string{"X-Millrace-Secret": secret}, body).status, "an hmac trigger wants a signature")
	require.Len(t, f.runIDs(t, "signed"), 1)
}

func TestWebhookIdempotencyKey(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.installWorkflow(t, "once", "echo")
	path, secret := f.createTrigger(t, "once", map[string]any{"kind": "webhook"})
	call := func(key string) string {
		r := f.hook(t, path, map[string]string{"X-Millrace-Secret": secret, "Idempotency-Key": key}, []byte(`{"order":7}`))
		require.Equal(t, http.StatusAccepted, r.status, string(r.body))
		return r.json(t)["run_id"].(string)
	}
	first := call("order-7")
	require.Equal(t, first, call("order-7"), "the same key gets the same run")
	require.Equal(t, []string{first}, f.runIDs(t, "once"), "and starts only one")

	// Concurrent calls with one key start one run between them.
	ids := make([]string, 6)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() { ids[i] = call("order-8") })
	}
	wg.Wait()
	for _, id := range ids {
		require.Equal(t, ids[0], id)
	}
	require.NotEqual(t, first, ids[0], "another key, another run")
	require.Len(t, f.runIDs(t, "once"), 2)

	// A sync trigger answers a repeated key with the first run's output.
	path, secret = f.createTrigger(t, "once", map[string]any{"kind": "webhook", "webhook": map[string]any{"mode": "sync"}})
	h := map[string]string{"X-Millrace-Secret": secret, "Idempotency-Key": "k"}
	a := f.hook(t, path, h, []byte(`{"v":1}`))
	b := f.hook(t, path, h, []byte(`{"v":1}`))
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	require.Equal(t, http.StatusOK, b.status, string(b.body))
	require.JSONEq(t, string(a.body), string(b.body))

	long := strings.Repeat("k", 256)
	r := f.hook(t, path, map[string]string{"X-Millrace-Secret": secret, "Idempotency-Key": long}, nil)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "keys are at most 255 bytes")
	require.Equal(t, "header.Idempotency-Key", r.json(t)["errors"].([]any)[0].(map[string]any)["location"])
}

func TestWebhookBodies(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.installWorkflow(t, "bodies", "echo")
	path, secret := f.createTrigger(t, "bodies", map[string]any{"kind": "webhook"})
	h := map[string]string{"X-Millrace-Secret": secret}

	r := f.hook(t, path, h, make([]byte, trigger.MaxBodyBytes+1))
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status)
	r = f.hook(t, path, h, []byte(`{"a":`))
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	require.Contains(t, r.json(t)["detail"], "not valid JSON")
	r = f.hook(t, path, map[string]string{"X-Millrace-Secret": secret, "Content-Type": "text/plain"}, []byte(`hello`))
	require.Equal(t, http.StatusUnsupportedMediaType, r.status, string(r.body))
	require.Empty(t, f.runIDs(t, "bodies"))

	r = f.hook(t, path, map[string]string{"X-Millrace-Secret": secret, "Content-Type": "application/vnd.github+json"}, nil)
	require.Equal(t, http.StatusAccepted, r.status, "an empty body is a null input: %s", r.body)
	require.Nil(t, f.finishedRun(t, r.json(t)["run_id"].(string))["input"])
}

func TestTriggerProblemsNameTheField(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.installWorkflow(t, "target", "echo")
	for _, c := range []struct {
		spec     map[string]any
		location string
		detail   string
	}{
		{map[string]any{"kind": "cron", "cron": map[string]any{"schedule": "0 25 * * *"}}, "body.cron.schedule", "not a cron schedule"},
		{map[string]any{"kind": "cron", "cron": map[string]any{"schedule": "@daily", "timezone": "Berlin"}}, "body.cron.timezone", "not a known IANA time zone"},
		{map[string]any{"kind": "workflow_finished", "after": map[string]any{"workflow_id": "ghost"}}, "body.after.workflow_id", "does not exist"},
		{map[string]any{"kind": "workflow_finished", "after": map[string]any{"workflow_id": "target"}}, "body.after.workflow_id", "target → target"},
		{map[string]any{"kind": "email"}, "body.kind", "expected value to be one of"},
		{map[string]any{"kind": "webhook", "webhook": map[string]any{"mode": "sync", "timeout_ms": 400000}}, "body.webhook.timeout_ms", "300000"},
		{map[string]any{"kind": "webhook", "colour": "red"}, "body.colour", "unexpected property"},
	} {
		r := f.doJSON(t, http.MethodPost, "/v1/workflows/target/triggers", c.spec)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, string(r.body))
		p := r.json(t)
		require.Contains(t, string(r.body), c.detail)
		require.Equal(t, c.location, p["errors"].([]any)[0].(map[string]any)["location"], string(r.body))
	}
	require.Equal(t, http.StatusNotFound, f.doJSON(t, http.MethodPost, "/v1/workflows/ghost/triggers", map[string]any{"kind": "webhook"}).status)
	require.Equal(t, http.StatusNotFound, f.doJSON(t, http.MethodGet, "/v1/workflows/ghost/triggers", nil).status)

	r := f.doJSON(t, http.MethodPost, "/v1/workflows/target/triggers", map[string]any{"kind": "cron", "cron": map[string]any{"schedule": "0 9 * * 1-5", "timezone": "Europe/Berlin"}})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	created := r.json(t)
	require.NotContains(t, created, "secret")
	next, err := time.Parse(time.RFC3339, created["next_fire_at"].(string))
	require.NoError(t, err)
	berlin, _ := time.LoadLocation("Europe/Berlin")
	require.Equal(t, 9, next.In(berlin).Hour(), "the next tick is 9:00 in Berlin")
}
