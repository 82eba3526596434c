package storetest

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/millrace/millrace/server/store"
	"github.com/stretchr/testify/require"
)

// exerciseTriggers is the part of the suite about triggers, cron ticks
// and webhook deliveries.
func exerciseTriggers(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("Triggers", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		require.NoError(t, s.PutWorkflowDraft(ctx, "target", json.RawMessage(`{}`)))
		require.NoError(t, s.PutWorkflowDraft(ctx, "source", json.RawMessage(`{}`)))

		err := s.CreateTrigger(ctx, store.Trigger{ID: "trg_x", WorkflowID: "nope", Kind: "webhook", Config: json.RawMessage(`{}`)})
		require.ErrorIs(t, err, store.ErrNotFound, "the workflow must exist")
		err = s.CreateTrigger(ctx, store.Trigger{ID: "trg_x", WorkflowID: "target", Kind: "workflow_finished", Config: json.RawMessage(`{}`), SourceWorkflowID: "nope"})
		require.ErrorIs(t, err, store.ErrNotFound, "the followed workflow must exist")

		next := time.Now().Add(time.Hour).UTC().Truncate(time.Nanosecond)
		hook := store.Trigger{ID: "trg_1", WorkflowID: "target", Kind: "webhook", Config: json.RawMessage(`{"mode":"sync"}`), Secret: []byte{0, 1, 2}}
		cron := store.Trigger{ID: "trg_2", WorkflowID: "target", Kind: "cron", Config: json.RawMessage(`{"schedule":"@hourly"}`), NextFireAt: &next}
		after := store.Trigger{ID: "trg_3", WorkflowID: "target", Kind: "workflow_finished", Config: json.RawMessage(`{}`), SourceWorkflowID: "source"}
		for _, tr := range []store.Trigger{hook, cron, after} {
			require.NoError(t, s.CreateTrigger(ctx, tr))
		}
		require.ErrorIs(t, s.CreateTrigger(ctx, hook), store.ErrConflict)

		got, err := s.Trigger(ctx, "trg_1")
		require.NoError(t, err)
		require.Equal(t, "webhook", got.Kind)
		require.JSONEq(t, `{"mode":"sync"}`, string(got.Config))
		require.Equal(t, []byte{0, 1, 2}, got.Secret)
		require.Nil(t, got.NextFireAt)
		require.False(t, got.CreatedAt.IsZero())
		got, err = s.Trigger(ctx, "trg_2")
		require.NoError(t, err)
		require.Nil(t, got.Secret)
		require.True(t, next.Equal(*got.NextFireAt), "the next tick keeps nanoseconds: %v != %v", next, got.NextFireAt)
		got, err = s.Trigger(ctx, "trg_3")
		require.NoError(t, err)
		require.Equal(t, "source", got.SourceWorkflowID)
		_, err = s.Trigger(ctx, "trg_nope")
		require.ErrorIs(t, err, store.ErrNotFound)

		ids := func(f store.TriggerFilter) (out []string) {
			list, err := s.ListTriggers(ctx, f)
			require.NoError(t, err)
			for _, tr := range list {
				out = append(out, tr.ID)
			}
			return out
		}
		require.Equal(t, []string{"trg_1", "trg_2", "trg_3"}, ids(store.TriggerFilter{WorkflowID: "target"}))
		require.Equal(t, []string{"trg_2"}, ids(store.TriggerFilter{Kind: "cron"}))
		require.Equal(t, []string{"trg_3"}, ids(store.TriggerFilter{SourceWorkflowID: "source", Kind: "workflow_finished"}))
		require.Empty(t, ids(store.TriggerFilter{WorkflowID: "source"}))

		require.NoError(t, s.DeleteTrigger(ctx, "trg_1"))
		require.ErrorIs(t, s.DeleteTrigger(ctx, "trg_1"), store.ErrNotFound)

		require.NoError(t, s.DeleteWorkflow(ctx, "source"))
		require.Equal(t, []string{"trg_2"}, ids(store.TriggerFilter{}), "a trigger goes with the workflow it follows")
		require.NoError(t, s.DeleteWorkflow(ctx, "target"))
		require.Empty(t, ids(store.TriggerFilter{}), "and with the workflow it starts")
	})

	t.Run("CronTicks", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		require.NoError(t, s.PutWorkflowDraft(ctx, "w", json.RawMessage(`{}`)))
		now := time.Now()
		for i, at := range []time.Duration{-time.Hour, -time.Minute, time.Minute} {
			next := now.Add(at)
			require.NoError(t, s.CreateTrigger(ctx, store.Trigger{ID: []string{"trg_old", "trg_recent", "trg_future"}[i], WorkflowID: "w", Kind: "cron", Config: json.RawMessage(`{}`), NextFireAt: &next}))
		}
		require.NoError(t, s.CreateTrigger(ctx, store.Trigger{ID: "trg_hook", WorkflowID: "w", Kind: "webhook", Config: json.RawMessage(`{}`)}))

		due, err := s.DueCronTriggers(ctx, now, 10)
		require.NoError(t, err)
		require.Len(t, due, 2)
		require.Equal(t, "trg_old", due[0].ID, "earliest first")
		require.Equal(t, "trg_recent", due[1].ID)
		due, err = s.DueCronTriggers(ctx, now, 1)
		require.NoError(t, err)
		require.Len(t, due, 1)

		expected := *due[0].NextFireAt
		ok, err := s.ClaimCronTick(ctx, "trg_old", expected, now.Add(time.Hour))
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = s.ClaimCronTick(ctx, "trg_old", expected, now.Add(time.Hour))
		require.NoError(t, err)
		require.False(t, ok, "a tick is claimed once")
		ok, err = s.ClaimCronTick(ctx, "trg_nope", expected, now)
		require.NoError(t, err)
		require.False(t, ok, "a deleted trigger does not fire")
		due, err = s.DueCronTriggers(ctx, now, 10)
		require.NoError(t, err)
		require.Len(t, due, 1)
		require.Equal(t, "trg_recent", due[0].ID)

		// Many claimers of one tick: one wins.
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				ok, err := s.ClaimCronTick(ctx, "trg_recent", *due[0].NextFireAt, now.Add(time.Minute))
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		require.EqualValues(t, 1, wins.Load())
	})

	t.Run("WebhookDeliveries", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		require.NoError(t, s.PutWorkflowDraft(ctx, "w", json.RawMessage(`{}`)))
		require.NoError(t, s.CreateTrigger(ctx, store.Trigger{ID: "trg_1", WorkflowID: "w", Kind: "webhook", Config: json.RawMessage(`{}`)}))

		_, _, err := s.RecordDelivery(ctx, "trg_nope", "k", "")
		require.ErrorIs(t, err, store.ErrNotFound)

		existing, created, err := s.RecordDelivery(ctx, "trg_1", "k", "")
		require.NoError(t, err)
		require.True(t, created, "the key is reserved")
		require.Empty(t, existing)
		existing, created, err = s.RecordDelivery(ctx, "trg_1", "k", "")
		require.NoError(t, err)
		require.False(t, created)
		require.Empty(t, existing, "reserved, the run is being started")

		require.NoError(t, s.SetDeliveryRun(ctx, "trg_1", "k", "run_1"))
		require.ErrorIs(t, s.SetDeliveryRun(ctx, "trg_1", "k", "run_2"), store.ErrNotFound, "a recorded run is never replaced")
		existing, created, err = s.RecordDelivery(ctx, "trg_1", "k", "run_3")
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, "run_1", existing)

		existing, created, err = s.RecordDelivery(ctx, "trg_1", "other", "run_4")
		require.NoError(t, err)
		require.True(t, created, "keys are separate")
		require.Empty(t, existing)

		gone, err := s.ForgetDelivery(ctx, "trg_1", "k", time.Now().Add(time.Hour))
		require.NoError(t, err)
		require.False(t, gone, "a delivery with a run is not forgotten")
		_, _, err = s.RecordDelivery(ctx, "trg_1", "pending", "")
		require.NoError(t, err)
		gone, err = s.ForgetDelivery(ctx, "trg_1", "pending", time.Now().Add(-time.Minute))
		require.NoError(t, err)
		require.False(t, gone, "a fresh reservation stays")
		gone, err = s.ForgetDelivery(ctx, "trg_1", "pending", time.Now().Add(time.Second))
		require.NoError(t, err)
		require.True(t, gone)
		_, created, err = s.RecordDelivery(ctx, "trg_1", "pending", "run_5")
		require.NoError(t, err)
		require.True(t, created, "a forgotten key can be used again")

		n, err := s.PruneDeliveries(ctx, time.Now().Add(-time.Hour))
		require.NoError(t, err)
		require.Zero(t, n)
		n, err = s.PruneDeliveries(ctx, time.Now().Add(time.Second))
		require.NoError(t, err)
		require.EqualValues(t, 3, n)
		_, created, err = s.RecordDelivery(ctx, "trg_1", "k", "run_6")
		require.NoError(t, err)
		require.True(t, created, "pruned keys are forgotten")

		require.NoError(t, s.DeleteTrigger(ctx, "trg_1"))
		_, _, err = s.RecordDelivery(ctx, "trg_1", "k", "run_7")
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}
