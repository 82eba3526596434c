package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/millrace/millrace/server/store"
	"github.com/stretchr/testify/require"
)

// exerciseArtifacts is the part of the suite about run artifacts and
// retention.
func exerciseArtifacts(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("Artifacts", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		art := func(id, run, node string, data []byte) store.Artifact {
			return store.Artifact{ID: id, RunID: run, NodeID: node, Name: "output", ContentType: "application/json", Size: int64(len(data)), SHA256: "d" + id, Data: data}
		}
		require.ErrorIs(t, s.PutArtifact(ctx, art("art_0", "nope", "a", []byte(`1`))), store.ErrNotFound, "an artifact belongs to a run")
		for _, id := range []string{"r1", "r2"} {
			require.NoError(t, s.CreateRun(ctx, store.Run{ID: id, WorkflowID: "w", Version: 1, Status: "running", Input: json.RawMessage(`{}`)}))
		}
		big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		require.NoError(t, s.PutArtifact(ctx, art("art_1", "r1", "a", big)))
		require.NoError(t, s.PutArtifact(ctx, art("art_2", "r1", "", []byte(`{"a":1}`))))

		got, err := s.Artifact(ctx, "r1", "art_1")
		require.NoError(t, err)
		require.True(t, bytes.Equal(big, got.Data), "the bytes come back exactly")
		require.Equal(t, store.Artifact{ID: "art_1", RunID: "r1", NodeID: "a", Name: "output", ContentType: "application/json",
			Size: int64(len(big)), SHA256: "dart_1", Data: got.Data, CreatedAt: got.CreatedAt}, got)
		require.WithinDuration(t, time.Now(), got.CreatedAt, time.Minute)
		_, err = s.Artifact(ctx, "r2", "art_1")
		require.ErrorIs(t, err, store.ErrNotFound, "another run's artifact is not found through this run")
		_, err = s.Artifact(ctx, "r1", "art_9")
		require.ErrorIs(t, err, store.ErrNotFound)

		// The same node and name again replaces the artifact.
		require.NoError(t, s.PutArtifact(ctx, art("art_3", "r1", "a", nil)))
		_, err = s.Artifact(ctx, "r1", "art_1")
		require.ErrorIs(t, err, store.ErrNotFound, "replaced")
		got, err = s.Artifact(ctx, "r1", "art_3")
		require.NoError(t, err)
		require.NotNil(t, got.Data, "empty bytes, not nil")
		require.Empty(t, got.Data)
		require.ErrorIs(t, s.PutArtifact(ctx, art("art_3", "r2", "a", nil)), store.ErrConflict, "ids are unique across runs")

		list, err := s.ListArtifacts(ctx, "r1")
		require.NoError(t, err)
		require.Len(t, list, 2)
		require.Equal(t, "art_2", list[0].ID, "by node: the run's own first")
		require.Equal(t, "art_3", list[1].ID)
		require.Nil(t, list[0].Data, "lists carry no bytes")
		require.EqualValues(t, 7, list[0].Size)
		list, err = s.ListArtifacts(ctx, "r2")
		require.NoError(t, err)
		require.Empty(t, list)

		require.NoError(t, s.DeleteArtifacts(ctx, "r1", "a"))
		list, err = s.ListArtifacts(ctx, "r1")
		require.NoError(t, err)
		require.Len(t, list, 1, "only that node's artifacts go")
		require.NoError(t, s.DeleteArtifacts(ctx, "r1", "a"), "deleting none is fine")
	})

	t.Run("PruneRuns", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		now := time.Now().UTC()
		ago := func(d time.Duration) *time.Time { at := now.Add(-d); return &at }
		day := 24 * time.Hour
		// Ids sort by creation, as the engine makes them.
		runs := []store.Run{
			{ID: "run_01", WorkflowID: "w", Status: "succeeded", FinishedAt: ago(40 * day)},
			{ID: "run_02", WorkflowID: "w", Status: "failed", FinishedAt: ago(40 * day)},
			{ID: "run_03", WorkflowID: "w", Status: "running"},
			{ID: "run_04", WorkflowID: "w", Status: "queued"},
			{ID: "run_05", WorkflowID: "w", Status: "canceled", FinishedAt: ago(time.Hour)},
			{ID: "run_06", WorkflowID: "v", Status: "succeeded", FinishedAt: ago(time.Hour)},
			{ID: "run_07", WorkflowID: "w", Status: "succeeded", FinishedAt: ago(time.Minute)},
			{ID: "run_08", WorkflowID: "w", Status: "running"},
		}
		for _, r := range runs {
			r.Version, r.Input, r.CreatedAt = 1, json.RawMessage(`{}`), now.Add(-50*day)
			require.NoError(t, s.CreateRun(ctx, r))
		}
		require.NoError(t, s.PutNodeRun(ctx, store.NodeRun{RunID: "run_01", NodeID: "a", Status: "succeeded", Output: json.RawMessage(`1`)}))
		require.NoError(t, s.PutArtifact(ctx, store.Artifact{ID: "art_1", RunID: "run_01", NodeID: "a", Name: "output", ContentType: "application/json", Size: 1, SHA256: "x", Data: []byte("1")}))
		left := func() (ids []string) {
			all, err := s.ListRuns(ctx, store.RunFilter{Limit: 100})
			require.NoError(t, err)
			for i := len(all) - 1; i >= 0; i-- {
				ids = append(ids, all[i].ID)
			}
			return ids
		}

		n, err := s.PruneRuns(ctx, time.Time{}, 0, 100)
		require.NoError(t, err)
		require.Zero(t, n, "no age and no count: nothing goes")

		n, err = s.PruneRuns(ctx, now.Add(-30*day), 0, 100)
		require.NoError(t, err)
		require.EqualValues(t, 2, n)
		require.Equal(t, []string{"run_03", "run_04", "run_05", "run_06", "run_07", "run_08"}, left(),
			"runs finished 40 days ago go; an old running run stays")
		nodes, err := s.NodeRuns(ctx, "run_01")
		require.NoError(t, err)
		require.Empty(t, nodes, "checkpoints go with their run")
		_, err = s.Artifact(ctx, "run_01", "art_1")
		require.ErrorIs(t, err, store.ErrNotFound, "artifacts go with their run")

		n, err = s.PruneRuns(ctx, time.Time{}, 1, 100)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		require.Equal(t, []string{"run_03", "run_04", "run_06", "run_07", "run_08"}, left(),
			"w keeps its newest finished run (unfinished ones do not count), v its only one")

		// Batches: limit bounds one call; the oldest go first.
		for i := range 5 {
			at := ago(time.Duration(5-i) * time.Second)
			require.NoError(t, s.CreateRun(ctx, store.Run{ID: fmt.Sprintf("run_1%d", i), WorkflowID: "v", Version: 1, Status: "succeeded", Input: json.RawMessage(`{}`), FinishedAt: at}))
		}
		n, err = s.PruneRuns(ctx, time.Time{}, 2, 2)
		require.NoError(t, err)
		require.EqualValues(t, 2, n)
		require.Equal(t, []string{"run_03", "run_04", "run_07", "run_08", "run_11", "run_12", "run_13", "run_14"}, left())
		n, err = s.PruneRuns(ctx, time.Time{}, 2, 2)
		require.NoError(t, err)
		require.EqualValues(t, 2, n)
		n, err = s.PruneRuns(ctx, time.Time{}, 2, 2)
		require.NoError(t, err)
		require.Zero(t, n)
		require.Equal(t, []string{"run_03", "run_04", "run_07", "run_08", "run_13", "run_14"}, left())

		require.NoError(t, s.ReclaimSpace(ctx))
	})
}
