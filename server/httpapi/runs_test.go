package httpapi_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/stretchr/testify/require"
)

// install uploads and grants the modules the run tests use, and publishes
// a workflow.
func (f *fixture) install(t *testing.T, workflowID string, wf map[string]any) {
	t.Helper()
	for _, m := range []struct{ guest, manifest, grant string }{
		{"echo", `{"abi":1,"id":"echo","name":"E","version":"1.0.0"}`, `{}`},
		{"sleeper", `{"abi":1,"id":"sleeper","name":"S","version":"1.0.0","limits":{"timeout_ms":60000}}`, `{}`},
		{"flaky", `{"abi":1,"id":"flaky","name":"F","version":"1.0.0","capabilities":{"kv":true}}`, `{"capabilities":{"kv":true}}`},
	} {
		r := f.upload(t, testguests.Wasm(t, m.guest), []byte(m.manifest))
		require.Contains(t, []int{http.StatusCreated, http.StatusOK}, r.status, string(r.body))
		var grant map[string]any
		json.Unmarshal([]byte(m.grant), &grant)
		require.Equal(t, http.StatusOK, f.doJSON(t, http.MethodPut, "/v1/modules/"+m.guest+"/versions/1.0.0/grants", grant).status)
	}
	r := f.doJSON(t, http.MethodPut, "/v1/workflows/"+workflowID, wf)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.Equal(t, http.StatusCreated, f.doJSON(t, http.MethodPost, "/v1/workflows/"+workflowID+"/publish", nil).status)
}

func (f *fixture) startRun(t *testing.T, workflowID string, input any) string {
	t.Helper()
	r := f.doJSON(t, http.MethodPost, "/v1/workflows/"+workflowID+"/runs", map[string]any{"input": input})
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	return r.json(t)["id"].(string)
}

func (f *fixture) waitRun(t *testing.T, id string) map[string]any {
	t.Helper()
	var run map[string]any
	require.Eventually(t, func() bool {
		run = f.doJSON(t, http.MethodGet, "/v1/runs/"+id, nil).json(t)
		s := run["status"]
		return s == "succeeded" || s == "failed" || s == "canceled"
	}, 30*time.Second, 20*time.Millisecond)
	return run
}

func nodeOf(run map[string]any, id string) map[string]any {
	for _, n := range run["nodes"].([]any) {
		if n.(map[string]any)["id"] == id {
			return n.(map[string]any)
		}
	}
	return nil
}

func TestCancelRetryRerun(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.install(t, "steps", map[string]any{
		"name": "steps",
		"nodes": []any{
			map[string]any{"id": "first", "module": "flaky@1.0.0", "input": map[string]any{"fields": map[string]any{"key": "'first' + string(input.k)", "succeed_on": "1"}}},
			map[string]any{"id": "second", "module": "flaky@1.0.0", "input": map[string]any{"fields": map[string]any{"key": "'second' + string(input.k)", "succeed_on": "2"}}},
			map[string]any{"id": "nap", "module": "sleeper@1.0.0", "input": map[string]any{"expression": "{'ms': input.nap}"}},
		},
		"edges": []any{map[string]any{"from": "first", "to": "second"}, map[string]any{"from": "second", "to": "nap"}},
	})

	// second fails on its first execution; retrying the run re-executes
	// only second (and what follows), never first.
	id := f.startRun(t, "steps", map[string]any{"k": 1, "nap": 1})
	run := f.waitRun(t, id)
	require.Equal(t, "failed", run["status"])
	require.Contains(t, run["error"], "node second failed")
	r := f.doJSON(t, http.MethodPost, "/v1/runs/"+id+"/retry", nil)
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	run = f.waitRun(t, id)
	require.Equal(t, "succeeded", run["status"], run["error"])
	require.Equal(t, map[string]any{"runs": float64(1)}, nodeOf(run, "first")["output"], "first was not executed again")
	require.Equal(t, map[string]any{"runs": float64(2)}, nodeOf(run, "second")["output"])
	require.Equal(t, http.StatusConflict, f.doJSON(t, http.MethodPost, "/v1/runs/"+id+"/retry", nil).status, "a succeeded run cannot be retried")

	// Rerun from second: a new run reuses first's stored output.
	r = f.doJSON(t, http.MethodPost, "/v1/runs/"+id+"/rerun", map[string]any{"from": "second"})
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	rerun := f.waitRun(t, r.json(t)["id"].(string))
	require.Equal(t, "succeeded", rerun["status"], rerun["error"])
	require.Equal(t, map[string]any{"runs": float64(1)}, nodeOf(rerun, "first")["output"], "reused, not executed")
	require.Equal(t, map[string]any{"runs": float64(3)}, nodeOf(rerun, "second")["output"], "executed again")
	require.Equal(t, http.StatusUnprocessableEntity, f.doJSON(t, http.MethodPost, "/v1/runs/"+id+"/rerun", map[string]any{"from": "ghost"}).status)

	// Cancel a run while it sleeps (k 1: second's counter is past 2, so it
	// succeeds at once).
	id = f.startRun(t, "steps", map[string]any{"k": 1, "nap": 30000})
	require.Eventually(t, func() bool {
		n := nodeOf(f.doJSON(t, http.MethodGet, "/v1/runs/"+id, nil).json(t), "nap")
		return n != nil && n["status"] == "running"
	}, 30*time.Second, 20*time.Millisecond)
	r = f.doJSON(t, http.MethodPost, "/v1/runs/"+id+"/cancel", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	run = f.waitRun(t, id)
	require.Equal(t, "canceled", run["status"])
	require.Eventually(t, func() bool {
		n := nodeOf(f.doJSON(t, http.MethodGet, "/v1/runs/"+id, nil).json(t), "nap")
		return n["status"] == "canceled"
	}, 10*time.Second, 20*time.Millisecond, "the running node is stopped")
	require.Equal(t, http.StatusConflict, f.doJSON(t, http.MethodPost, "/v1/runs/"+id+"/cancel", nil).status)

	// Listing, filtered and paged.
	r = f.doJSON(t, http.MethodGet, "/v1/runs?workflow=steps&limit=2", nil)
	require.Equal(t, http.StatusOK, r.status)
	page := r.json(t)
	require.Len(t, page["runs"], 2)
	require.NotEmpty(t, page["next_cursor"])
	r = f.doJSON(t, http.MethodGet, "/v1/runs?workflow=steps&limit=2&cursor="+page["next_cursor"].(string), nil)
	page2 := r.json(t)
	require.Len(t, page2["runs"], 1, "three runs in all")
	require.Nil(t, page2["next_cursor"])
	r = f.doJSON(t, http.MethodGet, "/v1/runs?status=canceled", nil)
	require.Len(t, r.json(t)["runs"], 1)
}

func TestRunEventStream(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.install(t, "evented", map[string]any{
		"name":  "evented",
		"nodes": []any{map[string]any{"id": "nap", "module": "sleeper@1.0.0", "input": map[string]any{"expression": "{'ms': 300}"}}, map[string]any{"id": "echo", "module": "echo@1.0.0"}},
		"edges": []any{map[string]any{"from": "nap", "to": "echo"}},
	})
	id := f.startRun(t, "evented", map[string]any{})

	read := func(lastID string) []map[string]any {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/v1/runs/"+id+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+f.admin)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
		var events []map[string]any
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var e map[string]any
				require.NoError(t, json.Unmarshal([]byte(data), &e))
				events = append(events, e)
			}
		}
		return events
	}
	events := read("")
	var types []string
	for _, e := range events {
		types = append(types, e["type"].(string)+":"+str(e["node_id"]))
	}
	require.Contains(t, types, "node.started:nap")
	require.Contains(t, types, "node.finished:echo")
	require.Equal(t, "run.finished:", types[len(types)-1], "the stream ends with the run")

	// Resuming after the first event replays only what came after it.
	again := read(itoa(int(events[0]["id"].(float64))))
	require.Len(t, again, len(events)-1)
}

// A retried run's stream ends at the retry's run.finished, not at the
// earlier attempt's, which is still in the event backlog.
func TestRetriedRunEventStream(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.install(t, "again", map[string]any{
		"name":  "again",
		"nodes": []any{map[string]any{"id": "once", "module": "flaky@1.0.0", "input": map[string]any{"fields": map[string]any{"key": "'again'", "succeed_on": "2"}}}},
	})
	id := f.startRun(t, "again", map[string]any{})
	require.Equal(t, "failed", f.waitRun(t, id)["status"])
	r := f.doJSON(t, http.MethodPost, "/v1/runs/"+id+"/retry", nil)
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	require.Equal(t, "succeeded", f.waitRun(t, id)["status"])

	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/v1/runs/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+f.admin)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var finishes []string
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var e map[string]any
			require.NoError(t, json.Unmarshal([]byte(data), &e))
			if e["type"] == "run.finished" {
				finishes = append(finishes, str(e["status"]))
			}
		}
	}
	require.Equal(t, []string{"succeeded"}, finishes, "the stream ends once, with the retried run's end")
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// readStream reads a Server-Sent Events answer into (event, data) pairs.
func readStream(t *testing.T, res *http.Response) (events []string, data []map[string]any) {
	t.Helper()
	defer res.Body.Close()
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	event := "message"
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "event: "); ok {
			event = name
		} else if d, ok := strings.CutPrefix(line, "data: "); ok {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(d), &m))
			events, data = append(events, event), append(data, m)
			event = "message"
		}
	}
	return events, data
}

// The streamed invocation reports each progress call as it happens, then
// the result; a failure ends it with the problem the plain call gives.
func TestInvokeStream(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.upload(t, testguests.Wasm(t, "hostcalls"), []byte(`{"abi":1,"id":"hostcalls","name":"H","version":"1.0.0"}`))
	require.Contains(t, []int{http.StatusCreated, http.StatusOK}, r.status, string(r.body))
	stream := func(body string) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/v1/modules/hostcalls/versions/1.0.0/invoke/stream", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+f.admin)
		req.Header.Set("Content-Type", "application/json")
		return http.DefaultClient.Do(req)
	}
	// Not granted yet: the stream's one event is the problem.
	res, err := stream(`{"input": {"n": 3}}`)
	require.NoError(t, err)
	events, data := readStream(t, res)
	require.Equal(t, []string{"problem"}, events)
	require.Equal(t, float64(http.StatusForbidden), data[0]["status"], data[0])

	require.Equal(t, http.StatusOK, f.doJSON(t, http.MethodPut, "/v1/modules/hostcalls/versions/1.0.0/grants", map[string]any{}).status)
	res, err = stream(`{"input": {"n": 3}}`)
	require.NoError(t, err)
	events, data = readStream(t, res)
	require.Equal(t, []string{"progress", "progress", "progress", "result"}, events)
	for i := range 3 {
		require.Equal(t, float64(i+1), data[i]["done"])
		require.Equal(t, float64(3), data[i]["total"])
	}
	require.Equal(t, map[string]any{"n": float64(3)}, data[3]["output"])
}

// Retries that race (a double click, a client retrying on a timeout) start
// the run once: one is accepted, the others are told it is not failed any
// more, and the failed node executes exactly once more.
func TestConcurrentRetriesStartTheRunOnce(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.install(t, "twice", map[string]any{
		"name": "twice",
		"nodes": []any{
			map[string]any{"id": "first", "module": "flaky@1.0.0", "input": map[string]any{"fields": map[string]any{"key": "'first'", "succeed_on": "1"}}},
			map[string]any{"id": "second", "module": "flaky@1.0.0", "input": map[string]any{"fields": map[string]any{"key": "'second'", "succeed_on": "2"}}},
		},
		"edges": []any{map[string]any{"from": "first", "to": "second"}},
	})
	id := f.startRun(t, "twice", map[string]any{})
	require.Equal(t, "failed", f.waitRun(t, id)["status"])

	const callers = 8
	statuses := make(chan int, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() { statuses <- f.doJSON(t, http.MethodPost, "/v1/runs/"+id+"/retry", nil).status })
	}
	wg.Wait()
	close(statuses)
	accepted := 0
	for s := range statuses {
		if s == http.StatusAccepted {
			accepted++
		} else {
			require.Equal(t, http.StatusConflict, s)
		}
	}
	require.Equal(t, 1, accepted)
	run := f.waitRun(t, id)
	require.Equal(t, "succeeded", run["status"], run["error"])
	require.Equal(t, map[string]any{"runs": float64(1)}, nodeOf(run, "first")["output"])
	require.Equal(t, map[string]any{"runs": float64(2)}, nodeOf(run, "second")["output"], "second executed once more, not once per retry")
}
