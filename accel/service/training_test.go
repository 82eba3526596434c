package service_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/accel/client"
	"github.com/millrace/millrace/accel/service"
	"github.com/millrace/millrace/accel/sessions"
	"github.com/millrace/millrace/accel/training"
	"github.com/millrace/millrace/accel/training/trainingtest"
	"github.com/millrace/millrace/accel/trainjob"
)

func trainingFixture(t *testing.T) (*fixture, trainjob.Spec) {
	t.Helper()
	jobs := training.NewJobs(nil)
	t.Cleanup(jobs.Close)
	f := setup(t, sessions.Config{}, service.Config{Jobs: jobs})
	dir := t.TempDir()
	all := trainingtest.Synthetic(300, 5)
	_, err := trainingtest.WriteVersion(filepath.Join(dir, "data"), "mail", 1, all[:240], all[240:])
	require.NoError(t, err)
	return f, trainjob.Spec{
		Task:           trainjob.TaskTextClassification,
		TrainPath:      filepath.Join(dir, "data", "train.jsonl"),
		ValidationPath: filepath.Join(dir, "data", "validation.jsonl"),
		OutputDir:      filepath.Join(dir, "out"),
		Hyperparameters: trainjob.Hyperparameters{
			Epochs: 3, EmbeddingDim: 8, Buckets: 1 << 10, MaxFeatures: 64, LearningRate: 0.05,
		},
	}
}

// TestTrainingJobOverHTTP starts a job, follows its epochs by long-poll
// and reads the result; starting it again returns the same job.
func TestTrainingJobOverHTTP(t *testing.T) {
	t.Parallel()
	f, spec := trainingFixture(t)
	ctx := context.Background()
	st, err := f.c.StartTraining(ctx, "job-1", spec)
	require.NoError(t, err)
	require.Contains(t, []string{trainjob.StateQueued, trainjob.StateRunning}, st.State)

	seen := 0
	for !trainjob.Terminal(st.State) {
		st, err = f.c.WaitTraining(ctx, "job-1", seen, 30*time.Second)
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(st.Events), seen, "events only grow")
		seen = len(st.Events)
	}
	require.Equal(t, trainjob.StateSucceeded, st.State, st.Error)
	require.Len(t, st.Events, 3)
	require.NotNil(t, st.Result)
	require.Equal(t, []string{"ham", "spam"}, st.Result.Labels)

	again, err := f.c.StartTraining(ctx, "job-1", spec)
	require.NoError(t, err)
	require.Equal(t, trainjob.StateSucceeded, again.State)

	_, err = f.c.TrainingJob(ctx, "nope")
	require.Equal(t, 404, client.StatusOf(err))
}

func TestTrainingJobErrors(t *testing.T) {
	t.Parallel()
	f, spec := trainingFixture(t)
	ctx := context.Background()
	bad := spec
	bad.Hyperparameters.LearningRate = -1
	_, err := f.c.StartTraining(ctx, "job-2", bad)
	require.Equal(t, 422, client.StatusOf(err))
	require.ErrorContains(t, err, "hyperparameters.learning_rate")
	_, err = f.c.StartTraining(ctx, "../escape", spec)
	require.Equal(t, 422, client.StatusOf(err))
	bad = spec
	bad.Task = "sdxl_lora"
	_, err = f.c.StartTraining(ctx, "job-3", bad)
	require.ErrorContains(t, err, "task")
	code, msg := f.post(t, "/v2/training/jobs", nil, `{"id":"x","spec":{"task":"text_classification"},"extra":1}`)
	require.Equal(t, 400, code)
	require.Contains(t, msg, "extra")

	// A missing split fails the job with the file's name.
	bad = spec
	bad.TrainPath = filepath.Join(t.TempDir(), "missing.jsonl")
	_, err = f.c.StartTraining(ctx, "job-4", bad)
	require.NoError(t, err)
	st, err := f.c.WaitTraining(ctx, "job-4", 1000, 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, trainjob.StateFailed, st.State)
	require.Contains(t, st.Error, "missing.jsonl")
}

func TestTrainingJobCancel(t *testing.T) {
	t.Parallel()
	f, spec := trainingFixture(t)
	spec.Hyperparameters.Epochs = 1000
	spec.Hyperparameters.Patience = -1
	ctx := context.Background()
	_, err := f.c.StartTraining(ctx, "long", spec)
	require.NoError(t, err)
	st, err := f.c.WaitTraining(ctx, "long", 0, 30*time.Second)
	require.NoError(t, err)
	require.NotEmpty(t, st.Events)
	require.NoError(t, f.c.CancelTraining(ctx, "long"))
	st, err = f.c.WaitTraining(ctx, "long", 1<<30, 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, trainjob.StateCancelled, st.State)
}
