package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/stretchr/testify/require"
)

func TestWorkflowLifecycle(t *testing.T) {
	t.Parallel()
	f := setup(t)
	require.Equal(t, http.StatusCreated, f.upload(t, testguests.Wasm(t, "echo"), testguests.Manifest(t, "echo")).status)
	require.Equal(t, http.StatusCreated, f.upload(t, testguests.Wasm(t, "porter"), []byte(`{"abi":1,"id":"porter","name":"P","version":"1.0.0","ports":["yes","no"]}`)).status)
	wf := map[string]any{
		"name": "Branching",
		"nodes": []any{
			map[string]any{"id": "decide", "module": "porter@1.0.0", "input": map[string]any{"fields": map[string]any{"port": "input.big ? 'yes' : 'no'"}}},
			map[string]any{"id": "yes", "module": "echo@1.0.0"},
			map[string]any{"id": "no", "module": "echo@1.0.0"},
		},
		"edges": []any{
			map[string]any{"from": "decide", "port": "yes", "to": "yes"},
			map[string]any{"from": "decide", "port": "no", "to": "no"},
		},
	}

	// Not granted yet: saving names both nodes' modules.
	r := f.doJSON(t, http.MethodPut, "/v1/workflows/branching", wf)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, string(r.body))
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
	locations := map[string]bool{}
	for _, e := range r.json(t)["errors"].([]any) {
		locations[e.(map[string]any)["location"].(string)] = true
	}
	require.True(t, locations["body.nodes[0].module"], locations)
	require.True(t, locations["body.nodes[1].module"], locations)

	for _, m := range []string{"echo", "porter"} {
		require.Equal(t, http.StatusOK, f.doJSON(t, http.MethodPut, "/v1/modules/"+m+"/versions/1.0.0/grants", map[string]any{}).status)
	}
	r = f.doJSON(t, http.MethodPut, "/v1/workflows/branching", wf)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.EqualValues(t, 0, r.json(t)["latest_version"])

	// Unknown fields are refused by the schema, with their path.
	bad := map[string]any{"name": "x", "nodes": []any{map[string]any{"id": "a", "module": "echo@1.0.0", "retries": 3}}}
	r = f.doJSON(t, http.MethodPut, "/v1/workflows/bad", bad)
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Contains(t, string(r.body), "retries")

	r = f.doJSON(t, http.MethodPost, "/v1/workflows/branching/publish", nil)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	require.EqualValues(t, 1, r.json(t)["version"])
	r = f.doJSON(t, http.MethodPost, "/v1/workflows/branching/publish", nil)
	require.EqualValues(t, 2, r.json(t)["version"])

	r = f.doJSON(t, http.MethodGet, "/v1/workflows/branching/versions/1", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "Branching", r.json(t)["definition"].(map[string]any)["name"])
	require.Equal(t, http.StatusNotFound, f.doJSON(t, http.MethodGet, "/v1/workflows/branching/versions/9", nil).status)

	r = f.doJSON(t, http.MethodGet, "/v1/workflows", nil)
	require.Len(t, r.json(t)["workflows"], 1)

	// Run it: the manual trigger answers at once; the run finishes in the
	// background, taking the branch the module chose.
	r = f.doJSON(t, http.MethodPost, "/v1/workflows/branching/runs", map[string]any{"input": map[string]any{"big": true}})
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	runID := r.json(t)["id"].(string)
	var run map[string]any
	require.Eventually(t, func() bool {
		run = f.doJSON(t, http.MethodGet, "/v1/runs/"+runID, nil).json(t)
		return run["status"] == "succeeded" || run["status"] == "failed"
	}, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, "succeeded", run["status"], run["error"])
	statuses := map[string]string{}
	for _, n := range run["nodes"].([]any) {
		statuses[n.(map[string]any)["id"].(string)] = n.(map[string]any)["status"].(string)
	}
	require.Equal(t, map[string]string{"decide": "succeeded", "yes": "succeeded", "no": "skipped"}, statuses)
	require.Equal(t, http.StatusNotFound, f.doJSON(t, http.MethodGet, "/v1/runs/run_0000000000000deadbeef", nil).status)
	r = f.doJSON(t, http.MethodPost, "/v1/workflows/nope/runs", map[string]any{})
	require.Equal(t, http.StatusNotFound, r.status)

	// Revoking a grant makes publishing fail again, naming the node.
	r = f.doJSON(t, http.MethodDelete, "/v1/modules/porter/versions/1.0.0", nil)
	require.Equal(t, http.StatusNoContent, r.status)
	r = f.doJSON(t, http.MethodPost, "/v1/workflows/branching/publish", nil)
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Contains(t, string(r.body), "body.nodes[0].module")

	require.Equal(t, http.StatusNoContent, f.doJSON(t, http.MethodDelete, "/v1/workflows/branching", nil).status)
	require.Equal(t, http.StatusNotFound, f.doJSON(t, http.MethodGet, "/v1/workflows/branching", nil).status)
}
