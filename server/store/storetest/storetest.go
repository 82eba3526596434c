// Package storetest is the conformance suite every store backend must pass.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/millrace/millrace/server/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Exercise runs the suite against fresh, empty stores made by newStore.
func Exercise(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("Tokens", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		tok := store.Token{ID: "tok_1", Name: "ci", Hash: []byte("h1"), Scopes: []string{"modules:read"}}
		require.NoError(t, s.CreateToken(ctx, tok))
		require.ErrorIs(t, s.CreateToken(ctx, store.Token{ID: "tok_2", Name: "dup", Hash: []byte("h1"), Scopes: []string{}}), store.ErrConflict)

		got, err := s.TokenByHash(ctx, []byte("h1"))
		require.NoError(t, err)
		require.Equal(t, "ci", got.Name)
		require.Equal(t, []string{"modules:read"}, got.Scopes)
		_, err = s.TokenByHash(ctx, []byte("nope"))
		require.ErrorIs(t, err, store.ErrNotFound)

		list, err := s.ListTokens(ctx)
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Nil(t, list[0].LastUsedAt, "TokenByHash does not write")
		used := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		require.NoError(t, s.TouchToken(ctx, "tok_1", used))
		got, err = s.Token(ctx, "tok_1")
		require.NoError(t, err)
		require.Equal(t, used, *got.LastUsedAt)
		require.Empty(t, got.UserID)
		require.Nil(t, got.ExpiresAt)
		require.ErrorIs(t, s.TouchToken(ctx, "tok_nope", used), store.ErrNotFound)

		require.NoError(t, s.DeleteToken(ctx, "tok_1"))
		require.ErrorIs(t, s.DeleteToken(ctx, "tok_1"), store.ErrNotFound)
		_, err = s.Token(ctx, "tok_1")
		require.ErrorIs(t, err, store.ErrNotFound)
	})

	t.Run("Users", func(t *testing.T) { t.Parallel(); exerciseUsers(t, newStore(t)) })
	t.Run("Sessions", func(t *testing.T) { t.Parallel(); exerciseSessions(t, newStore(t)) })
	t.Run("Audit", func(t *testing.T) { t.Parallel(); exerciseAudit(t, newStore(t)) })

	t.Run("ModuleVersions", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		mv := store.ModuleVersion{ModuleID: "echo", Version: "1.0.0", SHA256: "aa", Size: 3, Manifest: json.RawMessage(`{"id":"echo"}`)}
		created, err := s.PutModuleVersion(ctx, mv, []byte("abc"))
		require.NoError(t, err)
		require.True(t, created)

		created, err = s.PutModuleVersion(ctx, mv, []byte("abc"))
		require.NoError(t, err, "same bytes twice is idempotent")
		require.False(t, created)

		other := mv
		other.SHA256 = "bb"
		_, err = s.PutModuleVersion(ctx, other, []byte("xyz"))
		require.ErrorIs(t, err, store.ErrConflict, "same version, other bytes")

		// A second version sharing the bytes.
		v2 := mv
		v2.Version = "1.1.0"
		_, err = s.PutModuleVersion(ctx, v2, []byte("abc"))
		require.NoError(t, err)

		got, err := s.ModuleVersion(ctx, "echo", "1.0.0")
		require.NoError(t, err)
		require.Equal(t, "aa", got.SHA256)
		require.JSONEq(t, `{"id":"echo"}`, string(got.Manifest))
		require.Nil(t, got.Grant)

		require.NoError(t, s.SetGrant(ctx, "echo", "1.0.0", json.RawMessage(`{"capabilities":{}}`)))
		got, _ = s.ModuleVersion(ctx, "echo", "1.0.0")
		require.JSONEq(t, `{"capabilities":{}}`, string(got.Grant))
		require.ErrorIs(t, s.SetGrant(ctx, "echo", "9.9.9", json.RawMessage(`{}`)), store.ErrNotFound)

		all, err := s.ListModuleVersions(ctx, "")
		require.NoError(t, err)
		require.Len(t, all, 2)
		one, err := s.ListModuleVersions(ctx, "nope")
		require.NoError(t, err)
		require.Empty(t, one)

		wasm, err := s.ModuleWasm(ctx, "aa")
		require.NoError(t, err)
		require.Equal(t, []byte("abc"), wasm)

		require.NoError(t, s.DeleteModuleVersion(ctx, "echo", "1.0.0"))
		_, err = s.ModuleWasm(ctx, "aa")
		require.NoError(t, err, "bytes still used by 1.1.0")
		require.NoError(t, s.DeleteModuleVersion(ctx, "echo", "1.1.0"))
		_, err = s.ModuleWasm(ctx, "aa")
		require.ErrorIs(t, err, store.ErrNotFound, "bytes dropped with their last version")
		require.ErrorIs(t, s.DeleteModuleVersion(ctx, "echo", "1.1.0"), store.ErrNotFound)
	})

	t.Run("KV", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		_, err := s.KVGet(ctx, "a", "k")
		require.ErrorIs(t, err, store.ErrNotFound)
		require.NoError(t, s.KVSet(ctx, "a", "k", []byte("v1"), 100))
		require.NoError(t, s.KVSet(ctx, "a", "empty", nil, 100))
		v, err := s.KVGet(ctx, "a", "k")
		require.NoError(t, err)
		require.Equal(t, []byte("v1"), v)
		v, err = s.KVGet(ctx, "a", "empty")
		require.NoError(t, err)
		require.Empty(t, v)

		_, err = s.KVGet(ctx, "b", "k")
		require.ErrorIs(t, err, store.ErrNotFound, "namespaces are separate")

		require.ErrorIs(t, s.KVSet(ctx, "a", "big", make([]byte, 200), 100), store.ErrQuota)
		require.NoError(t, s.KVSet(ctx, "a", "k", make([]byte, 80), 100), "replacing a value counts only the new size")

		require.NoError(t, s.KVDelete(ctx, "a", "k"))
		require.NoError(t, s.KVDelete(ctx, "a", "k"), "deleting a missing key is fine")

		n, err := s.KVAdd(ctx, "a", "n", 5)
		require.NoError(t, err)
		require.EqualValues(t, 5, n)
		n, err = s.KVAdd(ctx, "a", "n", -7)
		require.NoError(t, err)
		require.EqualValues(t, -2, n)
		require.NoError(t, s.KVSet(ctx, "a", "text", []byte("x"), 0))
		_, err = s.KVAdd(ctx, "a", "text", 1)
		require.ErrorIs(t, err, store.ErrNotInteger)
		require.NoError(t, s.KVSet(ctx, "a", "max", []byte("9223372036854775807"), 0))
		_, err = s.KVAdd(ctx, "a", "max", 1)
		require.ErrorIs(t, err, store.ErrNotInteger, "overflow")
	})

	t.Run("KVAddIsAtomic", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for range 50 {
			wg.Go(func() {
				if _, err := s.KVAdd(ctx, "c", "n", 1); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		v, err := s.KVGet(ctx, "c", "n")
		require.NoError(t, err)
		require.Equal(t, "50", string(v))
	})

	t.Run("Secrets", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		_, err := s.Secret(ctx, "K")
		require.ErrorIs(t, err, store.ErrNotFound)
		require.NoError(t, s.PutSecret(ctx, "K", []byte("sealed1")))
		require.NoError(t, s.PutSecret(ctx, "K", []byte("sealed2")))
		v, err := s.Secret(ctx, "K")
		require.NoError(t, err)
		require.Equal(t, []byte("sealed2"), v)
		list, err := s.ListSecrets(ctx)
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Equal(t, "K", list[0].Name)
		require.NoError(t, s.DeleteSecret(ctx, "K"))
		require.ErrorIs(t, s.DeleteSecret(ctx, "K"), store.ErrNotFound)
	})

	t.Run("ResealAll", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		require.NoError(t, s.PutSecret(ctx, "A", []byte("a")))
		require.NoError(t, s.PutSecret(ctx, "B", []byte("b")))
		require.NoError(t, s.PutWorkflowDraft(ctx, "w", json.RawMessage(`{}`)))
		require.NoError(t, s.CreateTrigger(ctx, store.Trigger{ID: "trg_hook", WorkflowID: "w", Kind: "webhook", Config: json.RawMessage(`{}`), Secret: []byte("t")}))
		require.NoError(t, s.CreateTrigger(ctx, store.Trigger{ID: "trg_cron", WorkflowID: "w", Kind: "cron", Config: json.RawMessage(`{}`)}))

		// A failure half-way changes nothing.
		seen := 0
		_, err := s.ResealAll(ctx, func(v store.SealedValue) ([]byte, error) {
			if seen++; seen == 2 {
				return nil, errors.New("cannot open")
			}
			return append([]byte("new-"), v.Sealed...), nil
		})
		require.ErrorContains(t, err, "cannot open")
		v, err := s.Secret(ctx, "A")
		require.NoError(t, err)
		require.Equal(t, "a", string(v))

		var got []store.SealedValue
		n, err := s.ResealAll(ctx, func(v store.SealedValue) ([]byte, error) {
			got = append(got, v)
			return append([]byte("new-"), v.Sealed...), nil
		})
		require.NoError(t, err)
		require.Equal(t, 3, n)
		require.ElementsMatch(t, []store.SealedValue{{Kind: store.SealedSecret, ID: "A", Sealed: []byte("a")}, {Kind: store.SealedSecret, ID: "B", Sealed: []byte("b")},
			{Kind: store.SealedTrigger, ID: "trg_hook", Sealed: []byte("t")}}, got)
		v, err = s.Secret(ctx, "B")
		require.NoError(t, err)
		require.Equal(t, "new-b", string(v))
		tr, err := s.Trigger(ctx, "trg_hook")
		require.NoError(t, err)
		require.Equal(t, "new-t", string(tr.Secret))
		tr, err = s.Trigger(ctx, "trg_cron")
		require.NoError(t, err)
		require.Nil(t, tr.Secret)
	})

	t.Run("Workflows", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		_, err := s.Workflow(ctx, "w")
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = s.PublishWorkflow(ctx, "w", json.RawMessage(`{}`))
		require.ErrorIs(t, err, store.ErrNotFound, "publishing needs a draft first")

		require.NoError(t, s.PutWorkflowDraft(ctx, "w", json.RawMessage(`{"nodes":[1]}`)))
		require.NoError(t, s.PutWorkflowDraft(ctx, "w", json.RawMessage(`{"nodes":[2]}`)))
		w, err := s.Workflow(ctx, "w")
		require.NoError(t, err)
		require.JSONEq(t, `{"nodes":[2]}`, string(w.Draft))
		require.Zero(t, w.LatestVersion)

		v1, err := s.PublishWorkflow(ctx, "w", json.RawMessage(`{"v":1}`))
		require.NoError(t, err)
		v2, err := s.PublishWorkflow(ctx, "w", json.RawMessage(`{"v":2}`))
		require.NoError(t, err)
		require.Equal(t, []int{1, 2}, []int{v1, v2})
		got, err := s.WorkflowVersion(ctx, "w", 1)
		require.NoError(t, err)
		require.JSONEq(t, `{"v":1}`, string(got.Definition))
		_, err = s.WorkflowVersion(ctx, "w", 3)
		require.ErrorIs(t, err, store.ErrNotFound)
		vs, err := s.ListWorkflowVersions(ctx, "w")
		require.NoError(t, err)
		require.Len(t, vs, 2)
		w, _ = s.Workflow(ctx, "w")
		require.Equal(t, 2, w.LatestVersion)

		require.NoError(t, s.PutWorkflowDraft(ctx, "a", json.RawMessage(`{}`)))
		list, err := s.ListWorkflows(ctx)
		require.NoError(t, err)
		require.Equal(t, "a", list[0].ID)
		require.Len(t, list, 2)

		require.NoError(t, s.DeleteWorkflow(ctx, "w"))
		_, err = s.WorkflowVersion(ctx, "w", 1)
		require.ErrorIs(t, err, store.ErrNotFound, "versions go with their workflow")
		require.ErrorIs(t, s.DeleteWorkflow(ctx, "w"), store.ErrNotFound)
	})

	t.Run("Runs", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		_, err := s.Run(ctx, "r1")
		require.ErrorIs(t, err, store.ErrNotFound)
		require.NoError(t, s.CreateRun(ctx, store.Run{ID: "r1", WorkflowID: "w", Version: 2, Status: "queued", Input: json.RawMessage(`{"a":1}`), Trigger: "manual"}))
		require.ErrorIs(t, s.CreateRun(ctx, store.Run{ID: "r1", WorkflowID: "w", Version: 2, Status: "queued", Input: json.RawMessage(`{}`)}), store.ErrConflict)

		r, err := s.Run(ctx, "r1")
		require.NoError(t, err)
		require.Equal(t, "queued", r.Status)
		require.JSONEq(t, `{"a":1}`, string(r.Input))
		require.Nil(t, r.Output)
		require.Nil(t, r.StartedAt)

		now := time.Now().UTC().Truncate(time.Millisecond)
		r.Status, r.Output, r.StartedAt, r.FinishedAt = "succeeded", json.RawMessage(`{"ok":true}`), &now, &now
		require.NoError(t, s.UpdateRun(ctx, r))
		r, err = s.Run(ctx, "r1")
		require.NoError(t, err)
		require.Equal(t, "succeeded", r.Status)
		require.JSONEq(t, `{"ok":true}`, string(r.Output))
		require.WithinDuration(t, now, *r.FinishedAt, time.Millisecond)
		require.ErrorIs(t, s.UpdateRun(ctx, store.Run{ID: "nope", Status: "failed"}), store.ErrNotFound)

		later := now.Add(time.Second)
		require.NoError(t, s.PutNodeRun(ctx, store.NodeRun{RunID: "r1", NodeID: "b", Status: "running", Attempts: 1, Input: json.RawMessage(`1`), StartedAt: &later}))
		require.NoError(t, s.PutNodeRun(ctx, store.NodeRun{RunID: "r1", NodeID: "a", Status: "running", Attempts: 1, StartedAt: &now}))
		require.NoError(t, s.PutNodeRun(ctx, store.NodeRun{RunID: "r1", NodeID: "a", Status: "succeeded", Attempts: 2, Output: json.RawMessage(`"x"`), Port: "default",
			Logs: json.RawMessage(`[{"message":"hi"}]`), StartedAt: &now, FinishedAt: &later}))
		nodes, err := s.NodeRuns(ctx, "r1")
		require.NoError(t, err)
		require.Len(t, nodes, 2)
		require.Equal(t, "a", nodes[0].NodeID, "ordered by start time")
		require.Equal(t, "succeeded", nodes[0].Status)
		require.Equal(t, 2, nodes[0].Attempts)
		require.JSONEq(t, `"x"`, string(nodes[0].Output))
		require.JSONEq(t, `[{"message":"hi"}]`, string(nodes[0].Logs))
		require.Nil(t, nodes[1].Output)
		require.JSONEq(t, `1`, string(nodes[1].Input))
	})

	t.Run("ListRuns", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		for i, wf := range []string{"a", "b", "a", "a"} {
			status := "succeeded"
			if i == 2 {
				status = "failed"
			}
			require.NoError(t, s.CreateRun(ctx, store.Run{ID: fmt.Sprintf("run_%d", i), WorkflowID: wf, Version: 1, Status: status, Input: json.RawMessage(`{}`)}))
		}
		ids := func(runs []store.Run) (out []string) {
			for _, r := range runs {
				out = append(out, r.ID)
			}
			return out
		}
		all, err := s.ListRuns(ctx, store.RunFilter{})
		require.NoError(t, err)
		require.Equal(t, []string{"run_3", "run_2", "run_1", "run_0"}, ids(all), "newest first")
		page, err := s.ListRuns(ctx, store.RunFilter{WorkflowID: "a", Limit: 2})
		require.NoError(t, err)
		require.Equal(t, []string{"run_3", "run_2"}, ids(page))
		page, err = s.ListRuns(ctx, store.RunFilter{WorkflowID: "a", Limit: 2, Before: "run_2"})
		require.NoError(t, err)
		require.Equal(t, []string{"run_0"}, ids(page), "the cursor continues after the last id")
		failed, err := s.ListRuns(ctx, store.RunFilter{Status: "failed"})
		require.NoError(t, err)
		require.Equal(t, []string{"run_2"}, ids(failed))

		ok, err := s.CancelRun(ctx, "run_0", time.Now())
		require.NoError(t, err)
		require.False(t, ok, "a finished run cannot be canceled")
		require.NoError(t, s.CreateRun(ctx, store.Run{ID: "run_9", WorkflowID: "a", Version: 1, Status: "running", Input: json.RawMessage(`{}`)}))
		ok, err = s.CancelRun(ctx, "run_9", time.Now())
		require.NoError(t, err)
		require.True(t, ok)
		r, err := s.Run(ctx, "run_9")
		require.NoError(t, err)
		require.Equal(t, "canceled", r.Status)
		require.NotNil(t, r.FinishedAt)
	})

	t.Run("RetryRun", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		finished := time.Now()
		require.NoError(t, s.CreateRun(ctx, store.Run{ID: "r", WorkflowID: "w", Version: 1, Status: "failed", Input: json.RawMessage(`{}`),
			Output: json.RawMessage(`{"a":1}`), Error: "node b failed", StartedAt: &finished, FinishedAt: &finished}))
		for node, status := range map[string]string{"a": "succeeded", "b": "failed", "c": "canceled", "d": "running", "e": "skipped"} {
			require.NoError(t, s.PutNodeRun(ctx, store.NodeRun{RunID: "r", NodeID: node, Status: status}))
			require.NoError(t, s.PutArtifact(ctx, store.Artifact{ID: "art_" + node, RunID: "r", NodeID: node, Name: "output", Data: []byte(`1`)}))
		}
		require.NoError(t, s.PutArtifact(ctx, store.Artifact{ID: "art_run", RunID: "r", Name: "output", Data: []byte(`1`)}))

		ok, err := s.RetryRun(ctx, "r")
		require.NoError(t, err)
		require.True(t, ok)
		r, err := s.Run(ctx, "r")
		require.NoError(t, err)
		require.Equal(t, "queued", r.Status)
		require.Empty(t, r.Error)
		require.Nil(t, r.Output)
		require.Nil(t, r.FinishedAt)
		nodes, err := s.NodeRuns(ctx, "r")
		require.NoError(t, err)
		var kept []string
		for _, n := range nodes {
			kept = append(kept, n.NodeID)
		}
		require.ElementsMatch(t, []string{"a", "e"}, kept, "finished checkpoints stay; unfinished ones go")
		arts, err := s.ListArtifacts(ctx, "r")
		require.NoError(t, err)
		kept = nil
		for _, a := range arts {
			kept = append(kept, a.ID)
		}
		require.ElementsMatch(t, []string{"art_a", "art_e"}, kept, "the run's own artifact and the retried nodes' go")

		ok, err = s.RetryRun(ctx, "r")
		require.NoError(t, err)
		require.False(t, ok, "a queued run is not retried again")
		_, err = s.RetryRun(ctx, "nope")
		require.ErrorIs(t, err, store.ErrNotFound)

		// Racing retries of one failed run: exactly one wins.
		require.NoError(t, s.CreateRun(ctx, store.Run{ID: "race", WorkflowID: "w", Version: 1, Status: "canceled", Input: json.RawMessage(`{}`)}))
		wins := make(chan bool, 8)
		var wg sync.WaitGroup
		for range cap(wins) {
			wg.Go(func() {
				ok, err := s.RetryRun(ctx, "race")
				assert.NoError(t, err)
				wins <- ok
			})
		}
		wg.Wait()
		close(wins)
		won := 0
		for ok := range wins {
			if ok {
				won++
			}
		}
		require.Equal(t, 1, won)
	})

	t.Run("RunLeases", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		old := time.Now().Add(-time.Hour)
		require.NoError(t, s.CreateRun(ctx, store.Run{ID: "r", WorkflowID: "w", Version: 1, Status: "running", Input: json.RawMessage(`{}`), CreatedAt: old}))
		require.NoError(t, s.CreateRun(ctx, store.Run{ID: "q", WorkflowID: "w", Version: 1, Status: "queued", Input: json.RawMessage(`{}`), CreatedAt: old}))
		require.NoError(t, s.CreateRun(ctx, store.Run{ID: "fresh", WorkflowID: "w", Version: 1, Status: "queued", Input: json.RawMessage(`{}`)}))

		orphans, err := s.OrphanedRuns(ctx, time.Now(), time.Now().Add(-time.Minute), 10)
		require.NoError(t, err)
		require.ElementsMatch(t, []string{"r", "q"}, orphans, "a running run without a lease and an old queued run need a worker")

		until := time.Now().Add(time.Minute)
		ok, _, err := s.AcquireRunLease(ctx, "r", "a", until)
		require.NoError(t, err)
		require.True(t, ok)
		ok, holder, err := s.AcquireRunLease(ctx, "r", "b", time.Now().Add(time.Minute))
		require.NoError(t, err)
		require.False(t, ok, "b cannot take a's live lease")
		require.WithinDuration(t, until, holder, time.Millisecond)
		ok, _, err = s.AcquireRunLease(ctx, "r", "a", time.Now().Add(2*time.Minute))
		require.NoError(t, err)
		require.True(t, ok, "the holder renews")

		orphans, err = s.OrphanedRuns(ctx, time.Now(), time.Now().Add(-time.Minute), 10)
		require.NoError(t, err)
		require.Equal(t, []string{"q"}, orphans, "a leased run is not orphaned")
		orphans, err = s.OrphanedRuns(ctx, time.Now().Add(time.Hour), time.Now().Add(-time.Minute), 10)
		require.NoError(t, err)
		require.ElementsMatch(t, []string{"r", "q"}, orphans, "an expired lease is")

		require.NoError(t, s.ReleaseRunLease(ctx, "r", "b"), "releasing someone else's lease does nothing")
		ok, _, _ = s.AcquireRunLease(ctx, "r", "b", time.Now().Add(time.Minute))
		require.False(t, ok)
		require.NoError(t, s.ReleaseRunLease(ctx, "r", "a"))
		ok, _, _ = s.AcquireRunLease(ctx, "r", "b", time.Now().Add(time.Minute))
		require.True(t, ok, "a released lease is free")

		_, _, err = s.AcquireRunLease(ctx, "nope", "a", until)
		require.ErrorIs(t, err, store.ErrNotFound)

		// An eager start: the run is created running and leased in one
		// write, so no other worker takes it while its lease lasts, and
		// finishing it drops the lease.
		started := time.Now().UTC().Truncate(time.Millisecond)
		leased := store.Run{ID: "eager", WorkflowID: "w", Version: 1, Status: "running", Input: json.RawMessage(`{}`), CreatedAt: old, StartedAt: &started}
		require.NoError(t, s.CreateLeasedRun(ctx, leased, "a", time.Now().Add(time.Minute)))
		require.ErrorIs(t, s.CreateLeasedRun(ctx, leased, "a", time.Now().Add(time.Minute)), store.ErrConflict)
		ok, _, err = s.AcquireRunLease(ctx, "eager", "b", time.Now().Add(time.Minute))
		require.NoError(t, err)
		require.False(t, ok, "the creator holds the lease")
		orphans, err = s.OrphanedRuns(ctx, time.Now(), time.Now().Add(-time.Minute), 10)
		require.NoError(t, err)
		require.NotContains(t, orphans, "eager")
		orphans, err = s.OrphanedRuns(ctx, time.Now().Add(time.Hour), time.Now().Add(-time.Minute), 10)
		require.NoError(t, err)
		require.Contains(t, orphans, "eager", "its creator died: recovery finds it once the lease expires")
		leased.Status = "running"
		require.NoError(t, s.UpdateRun(ctx, leased))
		ok, _, _ = s.AcquireRunLease(ctx, "eager", "b", time.Now().Add(time.Minute))
		require.False(t, ok, "an unfinished status keeps the lease")
		leased.Status, leased.FinishedAt = "succeeded", &started
		require.NoError(t, s.UpdateRun(ctx, leased))
		ok, _, err = s.AcquireRunLease(ctx, "eager", "b", time.Now().Add(time.Minute))
		require.NoError(t, err)
		require.True(t, ok, "a finished run's lease is dropped")
	})

	exerciseTriggers(t, newStore)
	exerciseArtifacts(t, newStore)
	exerciseModels(t, newStore)
	exerciseDatasets(t, newStore)
	exerciseTrainingJobs(t, newStore)

	t.Run("ErrorsWrap", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		_, err := s.ModuleVersion(ctx, "x", "1.0.0")
		require.True(t, errors.Is(err, store.ErrNotFound), fmt.Sprint(err))
	})
}
