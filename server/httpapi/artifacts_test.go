package httpapi_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A run input over the limit is refused with a problem naming it.
func TestRunInputOverTheLimit(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.install(t, "tiny", map[string]any{"name": "tiny", "nodes": []any{map[string]any{"id": "e", "module": "echo@1.0.0"}}})
	r := f.doJSON(t, http.MethodPost, "/v1/workflows/tiny/runs", map[string]any{"input": strings.Repeat("x", 1<<20)})
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status, string(r.body))
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
	p := r.json(t)
	require.Contains(t, p["detail"], "input is 1048578 bytes, over the server's 1048576-byte limit on run inputs")
	require.Equal(t, "body.input", p["errors"].([]any)[0].(map[string]any)["location"])

	// Text with HTML's special characters counts as the bytes it is, not
	// as Go's escaped JSON (\u003c for "<").
	body := `{"input": "` + strings.Repeat("<", 600<<10) + `"}`
	r = f.do(t, f.admin, http.MethodPost, "/v1/workflows/tiny/runs", strings.NewReader(body), "application/json")
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
}

// A node output over the inline threshold (256 KiB) is stored as an
// artifact: the run view refers to it, the download gives its exact
// bytes, and downstream nodes see the whole value.
func TestLargeOutputIsAnArtifact(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.install(t, "large", map[string]any{
		"name": "large",
		"nodes": []any{
			map[string]any{"id": "big", "module": "echo@1.0.0"},
			map[string]any{"id": "measure", "module": "echo@1.0.0", "input": map[string]any{"expression": "{'n': size(nodes.big.output.s)}"}},
			map[string]any{"id": "copy", "module": "echo@1.0.0"},
		},
		"edges": []any{map[string]any{"from": "big", "to": "measure"}, map[string]any{"from": "big", "to": "copy"}},
	})
	s := strings.Repeat("x", 600<<10)
	want := `{"s":"` + s + `"}` // the run input as stored, which echo returns
	id := f.startRun(t, "large", map[string]any{"s": s})
	run := f.waitRun(t, id)
	require.Equal(t, "succeeded", run["status"], run["error"])

	big := nodeOf(run, "big")
	ref := big["output"].(map[string]any)
	require.EqualValues(t, len(want), ref["size"])
	sum := sha256.Sum256([]byte(want))
	require.Equal(t, hex.EncodeToString(sum[:]), ref["sha256"])
	artifact := func(node map[string]any, name string) map[string]any {
		for _, a := range node["artifacts"].([]any) {
			if a := a.(map[string]any); a["name"] == name {
				return a
			}
		}
		t.Fatalf("node %s has no %s artifact", node["id"], name)
		return nil
	}
	out := artifact(big, "output")
	require.Equal(t, ref["$artifact"], out["id"])
	require.Equal(t, "/v1/runs/"+id+"/artifacts/"+out["id"].(string), out["url"])

	r := f.do(t, f.admin, http.MethodGet, out["url"].(string), nil, "")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.True(t, want == string(r.body), "the download is exactly the output (%d bytes, want %d)", len(r.body), len(want))
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.Equal(t, strconv.Itoa(len(want)), r.header.Get("Content-Length"))
	require.Equal(t, `attachment; filename=`+id+`-big-output.json`, r.header.Get("Content-Disposition"))
	require.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"))

	require.Equal(t, map[string]any{"n": float64(len(s))}, nodeOf(run, "measure")["output"], "the mapping saw the whole output")
	r = f.do(t, f.admin, http.MethodGet, artifact(nodeOf(run, "copy"), "output")["url"].(string), nil, "")
	require.Equal(t, http.StatusOK, r.status)
	require.True(t, want == string(r.body), "the plain edge passed the whole output")
	require.Equal(t, nodeOf(run, "copy")["output"], run["output"].(map[string]any)["copy"], "the run output refers to copy's artifact")

	// Another run's artifact, and an unknown one, are not found here.
	other := f.waitRun(t, f.startRun(t, "large", map[string]any{"s": "small"}))
	require.Equal(t, "succeeded", other["status"], other["error"])
	require.Nil(t, nodeOf(other, "big")["artifacts"], "small values stay inline")
	require.Equal(t, http.StatusNotFound, f.do(t, f.admin, http.MethodGet, "/v1/runs/"+other["id"].(string)+"/artifacts/"+out["id"].(string), nil, "").status)
	require.Equal(t, http.StatusNotFound, f.do(t, f.admin, http.MethodGet, "/v1/runs/"+id+"/artifacts/art_"+strings.Repeat("0", 32), nil, "").status)

	// A rerun reuses big's output through its own copy of the artifact.
	r = f.doJSON(t, http.MethodPost, "/v1/runs/"+id+"/rerun", map[string]any{"from": "measure"})
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	rerun := f.waitRun(t, r.json(t)["id"].(string))
	require.Equal(t, "succeeded", rerun["status"], rerun["error"])
	require.Equal(t, map[string]any{"n": float64(len(s))}, nodeOf(rerun, "measure")["output"])
	copied := artifact(nodeOf(rerun, "big"), "output")
	require.NotEqual(t, out["id"], copied["id"])
	require.Equal(t, copied["id"], nodeOf(rerun, "big")["output"].(map[string]any)["$artifact"])
	r = f.do(t, f.admin, http.MethodGet, copied["url"].(string), nil, "")
	require.Equal(t, http.StatusOK, r.status)
	require.True(t, want == string(r.body))
}
