package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/millrace/millrace/server/store"
	"github.com/stretchr/testify/require"
)

// exerciseTrainingJobs is the part of the suite about training jobs.
func exerciseTrainingJobs(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("TrainingJobs", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		_, err := s.TrainingJob(ctx, "tj_1")
		require.ErrorIs(t, err, store.ErrNotFound)

		created := time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC)
		for _, v := range []store.DatasetVersion{{DatasetID: "ds_a", Version: 1}, {DatasetID: "ds_a", Version: 2}, {DatasetID: "ds_b", Version: 1}} {
			v.Meta = json.RawMessage(`{}`)
			require.NoError(t, s.CreateDatasetVersion(ctx, store.Dataset{ID: v.DatasetID, Name: v.DatasetID}, v))
		}
		j := store.TrainingJob{
			ID: "tj_1", Task: "text_classification", DatasetID: "ds_a", DatasetVersion: 2, ModelName: "spam",
			Hyperparameters: json.RawMessage(`{"epochs": 5}`), State: "queued", OutputDir: "/data/training/tj_1", CreatedAt: created,
		}
		require.NoError(t, s.CreateTrainingJob(ctx, j))
		require.ErrorIs(t, s.CreateTrainingJob(ctx, j), store.ErrConflict)
		got, err := s.TrainingJob(ctx, "tj_1")
		require.NoError(t, err)
		require.Equal(t, "spam", got.ModelName)
		require.Equal(t, 2, got.DatasetVersion)
		require.JSONEq(t, `{"epochs": 5}`, string(got.Hyperparameters))
		require.JSONEq(t, `[]`, string(got.Events))
		require.Nil(t, got.Result)
		require.Nil(t, got.StartedAt)
		require.True(t, created.Equal(got.CreatedAt))

		// Progress: running with one epoch.
		started := created.Add(time.Second)
		got.State, got.StartedAt = "running", &started
		got.Events = json.RawMessage(`[{"epoch": 1, "train_loss": 0.5}]`)
		ok, err := s.UpdateTrainingJob(ctx, got)
		require.NoError(t, err)
		require.True(t, ok)
		got, _ = s.TrainingJob(ctx, "tj_1")
		require.Equal(t, "running", got.State)
		require.JSONEq(t, `[{"epoch": 1, "train_loss": 0.5}]`, string(got.Events))
		require.True(t, started.Equal(*got.StartedAt))

		require.NoError(t, s.CreateTrainingJob(ctx, store.TrainingJob{
			ID: "tj_2", Task: "text_classification", DatasetID: "ds_b", DatasetVersion: 1, ModelName: "other",
			Hyperparameters: json.RawMessage(`{}`), State: "queued", OutputDir: "/x", CreatedAt: created,
		}))
		all, err := s.ListTrainingJobs(ctx, store.TrainingJobFilter{})
		require.NoError(t, err)
		require.Len(t, all, 2)
		require.Equal(t, "tj_2", all[0].ID, "newest first")
		byDataset, err := s.ListTrainingJobs(ctx, store.TrainingJobFilter{DatasetID: "ds_a", DatasetVersion: 2})
		require.NoError(t, err)
		require.Len(t, byDataset, 1)
		none, err := s.ListTrainingJobs(ctx, store.TrainingJobFilter{DatasetID: "ds_a", DatasetVersion: 3})
		require.NoError(t, err)
		require.Empty(t, none)
		byModel, err := s.ListTrainingJobs(ctx, store.TrainingJobFilter{ModelName: "other"})
		require.NoError(t, err)
		require.Len(t, byModel, 1)

		// Cancelling wins over a later update from the runner.
		cancelled, err := s.CancelTrainingJob(ctx, "tj_2", created.Add(time.Minute))
		require.NoError(t, err)
		require.True(t, cancelled)
		again, err := s.CancelTrainingJob(ctx, "tj_2", created.Add(2*time.Minute))
		require.NoError(t, err)
		require.False(t, again)
		two, _ := s.TrainingJob(ctx, "tj_2")
		two.State = "running"
		ok, err = s.UpdateTrainingJob(ctx, two)
		require.NoError(t, err)
		require.False(t, ok)
		two, _ = s.TrainingJob(ctx, "tj_2")
		require.Equal(t, "cancelled", two.State)
		require.NotNil(t, two.FinishedAt)
		unfinished, err := s.ListTrainingJobs(ctx, store.TrainingJobFilter{Unfinished: true})
		require.NoError(t, err)
		require.Len(t, unfinished, 1)
		require.Equal(t, "tj_1", unfinished[0].ID)

		// Success with a result.
		finished := created.Add(time.Hour)
		got.State, got.FinishedAt, got.Result = "succeeded", &finished, json.RawMessage(`{"validation_accuracy": 0.97}`)
		ok, err = s.UpdateTrainingJob(ctx, got)
		require.NoError(t, err)
		require.True(t, ok)
		got, _ = s.TrainingJob(ctx, "tj_1")
		require.JSONEq(t, `{"validation_accuracy": 0.97}`, string(got.Result))
		_, err = s.UpdateTrainingJob(ctx, store.TrainingJob{ID: "tj_nope", State: "running"})
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = s.CancelTrainingJob(ctx, "tj_nope", finished)
		require.ErrorIs(t, err, store.ErrNotFound)

		require.NoError(t, s.DeleteTrainingJob(ctx, "tj_2"))
		require.ErrorIs(t, s.DeleteTrainingJob(ctx, "tj_2"), store.ErrNotFound)

		// A job needs its dataset version, and a version (or dataset) a
		// job uses cannot be deleted.
		j.ID, j.DatasetVersion = "tj_3", 3
		require.ErrorIs(t, s.CreateTrainingJob(ctx, j), store.ErrNotFound)
		require.ErrorIs(t, s.DeleteDatasetVersion(ctx, "ds_a", 2), store.ErrConflict)
		require.ErrorIs(t, s.DeleteDataset(ctx, "ds_a"), store.ErrConflict)
		require.NoError(t, s.DeleteDatasetVersion(ctx, "ds_a", 1))
		require.NoError(t, s.DeleteDataset(ctx, "ds_b"), "its job was deleted")
	})

	t.Run("TrainingJobRacingDatasetVersionDeletion", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		require.NoError(t, s.CreateDatasetVersion(ctx, store.Dataset{ID: "ds_r", Name: "r"}, store.DatasetVersion{DatasetID: "ds_r", Version: 1, Meta: json.RawMessage(`{}`)}))
		var created, deleted atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				if i%2 == 0 {
					err := s.DeleteDatasetVersion(ctx, "ds_r", 1)
					if err == nil {
						deleted.Add(1)
					} else if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
						t.Errorf("delete: %v", err)
					}
					return
				}
				err := s.CreateTrainingJob(ctx, store.TrainingJob{ID: fmt.Sprintf("tj_r%d", i), Task: "text_classification", DatasetID: "ds_r", DatasetVersion: 1,
					ModelName: "r", Hyperparameters: json.RawMessage(`{}`), State: "queued", OutputDir: "/x"})
				if err == nil {
					created.Add(1)
				} else if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("create: %v", err)
				}
			})
		}
		wg.Wait()
		jobs, err := s.ListTrainingJobs(ctx, store.TrainingJobFilter{DatasetID: "ds_r", DatasetVersion: 1})
		require.NoError(t, err)
		require.Len(t, jobs, int(created.Load()))
		if deleted.Load() > 0 {
			require.Equal(t, int32(1), deleted.Load())
			require.Empty(t, jobs, "the version was deleted, yet jobs use it")
		} else {
			require.NotEmpty(t, jobs)
		}
	})
}
