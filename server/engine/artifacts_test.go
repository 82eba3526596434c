package engine_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/store"
	"github.com/stretchr/testify/require"
)

type ref struct {
	Artifact string `json:"$artifact"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
}

func refOf(t *testing.T, doc json.RawMessage) ref {
	t.Helper()
	var r ref
	require.NoError(t, json.Unmarshal(doc, &r), string(doc))
	require.Regexp(t, `^art_[0-9a-f]{32}$`, r.Artifact, string(doc))
	return r
}

const fanOut = `{"name": "big", "nodes": [
  {"id": "big", "module": "echo@1.0.0", "input": {"expression": "{'s': input.s}"}},
  {"id": "measure", "module": "echo@1.0.0", "input": {"expression": "{'n': size(nodes.big.output.s)}"}},
  {"id": "copy", "module": "echo@1.0.0"}
], "edges": [{"from": "big", "to": "measure"}, {"from": "big", "to": "copy"}]}`

// Outputs and inputs over the inline threshold are stored as artifacts;
// checkpoints keep references, and downstream nodes (mappings and plain
// edges alike) still see the values themselves.
func TestLargeValuesBecomeArtifacts(t *testing.T) {
	t.Parallel()
	f := newExec(t)
	f.exec.Limits = engine.Limits{InlineBytes: 1024}
	ctx := context.Background()
	s := strings.Repeat("x", 10_000)
	runID := f.start(t, fanOut, `{"s":"`+s+`"}`)
	run, err := f.exec.Execute(ctx, runID)
	require.NoError(t, err)
	require.Equal(t, engine.StatusSucceeded, run.Status, run.Error)
	nodes := f.nodes(t, runID)

	out := refOf(t, nodes["big"].Output)
	a, err := f.db.Artifact(ctx, runID, out.Artifact)
	require.NoError(t, err)
	require.JSONEq(t, `{"s":"`+s+`"}`, string(a.Data))
	sum := sha256.Sum256(a.Data)
	require.Equal(t, hex.EncodeToString(sum[:]), out.SHA256)
	require.EqualValues(t, len(a.Data), out.Size)
	require.Equal(t, "big", a.NodeID)
	require.Equal(t, "application/json", a.ContentType)
	refOf(t, nodes["big"].Input) // the input was large too

	require.JSONEq(t, `{"n": 10000}`, string(nodes["measure"].Output), "the mapping saw the whole output")
	copied, err := f.db.Artifact(ctx, runID, refOf(t, nodes["copy"].Output).Artifact)
	require.NoError(t, err)
	require.Equal(t, a.Data, copied.Data, "the plain edge passed the whole output")

	var runOut map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(run.Output, &runOut))
	require.JSONEq(t, `{"n": 10000}`, string(runOut["measure"]))
	require.Equal(t, refOf(t, nodes["copy"].Output), refOf(t, runOut["copy"]), "the run output refers to the node's artifact")

	arts, err := f.db.ListArtifacts(ctx, runID)
	require.NoError(t, err)
	var names []string
	for _, a := range arts {
		names = append(names, a.NodeID+"/"+a.Name)
	}
	require.Equal(t, []string{"big/input", "big/output", "copy/input", "copy/output"}, names)
}

// Many small outputs can make a run output too large to keep inline.
func TestLargeRunOutputBecomesAnArtifact(t *testing.T) {
	t.Parallel()
	f := newExec(t)
	f.exec.Limits = engine.Limits{InlineBytes: 1024}
	ctx := context.Background()
	doc := `{"name": "wide", "nodes": [
	  {"id": "a", "module": "echo@1.0.0", "input": {"expression": "input.s"}},
	  {"id": "b", "module": "echo@1.0.0", "input": {"expression": "input.s"}}]}`
	s := strings.Repeat("y", 700)
	run, err := f.exec.Execute(ctx, f.start(t, doc, `{"s":"`+s+`"}`))
	require.NoError(t, err)
	require.Equal(t, engine.StatusSucceeded, run.Status, run.Error)
	a, err := f.db.Artifact(ctx, run.ID, refOf(t, run.Output).Artifact)
	require.NoError(t, err)
	require.Empty(t, a.NodeID, "the run's own artifact")
	require.JSONEq(t, `{"a": "`+s+`", "b": "`+s+`"}`, string(a.Data))
}

// A run resumed by another executor reads outputs back from artifacts;
// a module cannot pass off a reference to an artifact it did not write.
func TestReferencesResolveOnlyToTheNodesOwnArtifact(t *testing.T) {
	t.Parallel()
	f := newExec(t)
	ctx := context.Background()
	doc := `{"name": "resumed", "nodes": [
	  {"id": "big", "module": "echo@1.0.0"},
	  {"id": "fake", "module": "echo@1.0.0"},
	  {"id": "readbig", "module": "echo@1.0.0", "input": {"expression": "nodes.big.output"}},
	  {"id": "readfake", "module": "echo@1.0.0", "input": {"expression": "nodes.fake.output"}}
	], "edges": [{"from": "big", "to": "readbig"}, {"from": "fake", "to": "readfake"}]}`
	runID := f.start(t, doc, `{}`)
	data := []byte(`{"whole":"value"}`)
	sum := sha256.Sum256(data)
	art := store.Artifact{ID: "art_" + strings.Repeat("ab", 16), RunID: runID, NodeID: "big", Name: "output", ContentType: "application/json",
		Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Data: data}
	require.NoError(t, f.db.PutArtifact(ctx, art))
	bigRef, _ := json.Marshal(ref{art.ID, art.Size, art.SHA256})
	now := time.Now()
	// As if an earlier process had executed big, and fake had printed
	// big's reference as its own output.
	for _, id := range []string{"big", "fake"} {
		require.NoError(t, f.db.PutNodeRun(ctx, store.NodeRun{RunID: runID, NodeID: id, Status: engine.StatusSucceeded, Attempts: 1,
			Output: bigRef, Port: "default", StartedAt: &now, FinishedAt: &now}))
	}
	run, err := f.exec.Execute(ctx, runID)
	require.NoError(t, err)
	require.Equal(t, engine.StatusSucceeded, run.Status, run.Error)
	nodes := f.nodes(t, runID)
	require.JSONEq(t, string(data), string(nodes["readbig"].Output))
	require.JSONEq(t, string(bigRef), string(nodes["readfake"].Output), "fake's output is what it printed, not big's artifact")
}

func TestNodeInputLimit(t *testing.T) {
	t.Parallel()
	f := newExec(t)
	f.exec.Limits = engine.Limits{NodeInputBytes: 100}
	doc := `{"name": "wide", "nodes": [{"id": "a", "module": "echo@1.0.0", "input": {"expression": "input.s + input.s"}}]}`
	run, err := f.exec.Execute(context.Background(), f.start(t, doc, `{"s":"`+strings.Repeat("z", 60)+`"}`))
	require.NoError(t, err)
	require.Equal(t, engine.StatusFailed, run.Status)
	require.Contains(t, run.Error, "node a failed")
	require.Contains(t, run.Error, "the input is 122 bytes, over the server's 100-byte limit on node inputs")
}

func TestRunInputLimit(t *testing.T) {
	t.Parallel()
	f := newExec(t)
	runs := engine.NewRuns(f.db, f.wf, nil, engine.NewBus(10))
	runs.Limits = engine.Limits{RunInputBytes: 10}
	_, err := runs.Start(context.Background(), "any", 0, json.RawMessage(`"0123456789"`), "manual")
	var le *engine.LimitError
	require.True(t, errors.As(err, &le), "%v", err)
	require.Equal(t, "input", le.Field)
	require.EqualValues(t, 12, le.Size)
	require.EqualValues(t, 10, le.Limit)
	require.Equal(t, "input is 12 bytes, over the server's 10-byte limit on run inputs", le.Error())
}

func TestRetention(t *testing.T) {
	t.Parallel()
	_, db := catalogAndStore(t)
	ctx := context.Background()
	old := time.Now().Add(-48 * time.Hour)
	for _, r := range []store.Run{
		{ID: "run_1", Status: engine.StatusSucceeded, FinishedAt: &old},
		{ID: "run_2", Status: engine.StatusRunning},
		{ID: "run_3", Status: engine.StatusFailed, FinishedAt: &old},
		{ID: "run_4", Status: engine.StatusSucceeded, FinishedAt: &old},
	} {
		r.WorkflowID, r.Version, r.Input = "w", 1, json.RawMessage(`{}`)
		require.NoError(t, db.CreateRun(ctx, r))
	}
	ids := func() (out []string) {
		runs, err := db.ListRuns(ctx, store.RunFilter{})
		require.NoError(t, err)
		for _, r := range runs {
			out = append(out, r.ID)
		}
		return out
	}

	n, err := engine.NewRetention(db, engine.RetentionPolicy{}, nil).Apply(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "a zero policy keeps everything")
	n, err = engine.NewRetention(db, engine.RetentionPolicy{MaxRuns: 2}, nil).Apply(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.Equal(t, []string{"run_4", "run_3", "run_2"}, ids())

	// The loop applies the policy at start.
	r := engine.NewRetention(db, engine.RetentionPolicy{MaxAge: time.Hour, Every: time.Hour}, nil)
	r.Stop() // before Start: nothing to stop
	require.NoError(t, r.Start(ctx))
	require.NoError(t, r.Start(ctx), "starting twice is harmless")
	require.Eventually(t, func() bool { return len(ids()) == 1 }, 10*time.Second, 10*time.Millisecond)
	r.Stop()
	r.Stop()
	require.Equal(t, []string{"run_2"}, ids(), "the running run stays, whatever its age")
}
