package training_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/accel/client"
	"github.com/millrace/millrace/accel/training/trainingtest"
	"github.com/millrace/millrace/accel/trainjob"
	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/datasets"
	"github.com/millrace/millrace/server/internal/acceltest"
	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/millrace/millrace/server/training"
)

var engine sandbox.Engine

func TestMain(m *testing.M) {
	ctx := context.Background()
	cache, err := os.MkdirTemp("", "millrace-training-test-")
	if err != nil {
		panic(err)
	}
	if engine, err = sandbox.NewEngine(ctx, sandbox.EngineConfig{Kind: sandbox.EngineWazero, CacheDir: cache}); err != nil {
		panic(err)
	}
	code := m.Run()
	engine.Close(ctx)
	os.RemoveAll(cache)
	testguests.Cleanup()
	acceltest.Cleanup()
	os.Exit(code)
}

// stack is the training part of a server on a real millrace-accel child.
type stack struct {
	dir      string
	db       store.Store
	sup      *accel.Supervisor
	models   *accel.Models
	datasets *datasets.Datasets
	reg      *registry.Registry
}

func setup(tb testing.TB) *stack {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	require.NoError(tb, err)
	tb.Cleanup(func() { db.Close() })
	s := &stack{dir: dir, db: db}
	s.sup = accel.New(accel.Config{Mode: accel.ModeOn, Binary: acceltest.Binary(tb), Library: acceltest.Library(tb),
		Dir: filepath.Join(dir, "accel"), Args: []string{"-intra-op-threads", "1"}, Logger: slog.New(slog.DiscardHandler)})
	s.models = accel.NewModels(db, s.sup)
	require.NoError(tb, s.sup.Start(ctx))
	tb.Cleanup(s.sup.Stop)
	s.datasets = datasets.New(db, datasets.Config{Dir: filepath.Join(dir, "datasets")})
	s.reg = registry.New(registry.Config{}, db, engine, nil)
	s.reg.SetAccel(s.models)
	return s
}

func (s *stack) manager() *training.Manager {
	m := training.New(s.db, s.sup, s.models, s.datasets, training.Config{Dir: filepath.Join(s.dir, "training"), Retry: 50 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	s.datasets.InUse = m.InUse
	return m
}

// importJSONL uploads examples as a dataset version.
func (s *stack) importJSONL(tb testing.TB, name string, data []byte) datasets.Version {
	tb.Helper()
	v, err := s.datasets.Import(context.Background(), bytes.NewReader(data), int64(len(data)), datasets.ImportOptions{Filename: name + ".jsonl", Seed: 3})
	require.NoError(tb, err)
	return v
}

func synthetic(tb testing.TB, n int) []byte {
	var b bytes.Buffer
	for _, ex := range trainingtest.Synthetic(n, 11) {
		line, err := json.Marshal(ex)
		require.NoError(tb, err)
		b.Write(append(line, '\n'))
	}
	return b.Bytes()
}

// waitJob polls the store until cond holds (a guard, not a timing
// assertion).
func waitJob(tb testing.TB, m *training.Manager, id string, cond func(*training.TrainingJob) bool) *training.TrainingJob {
	tb.Helper()
	var j *training.TrainingJob
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var err error
		j, err = m.Get(context.Background(), id)
		require.NoError(tb, err)
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			tb.Fatalf("training job %s: condition not met: %+v", id, j)
		}
		select {
		case <-m.Watch():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func finished(j *training.TrainingJob) bool { return trainjob.Terminal(j.State) }

func TestCreateValidates(t *testing.T) {
	t.Parallel()
	s := setup(t)
	m := s.manager()
	defer m.Stop()
	v := s.importJSONL(t, "mail", synthetic(t, 100))
	ctx := context.Background()
	for _, c := range []struct {
		req   training.TrainingJobRequest
		field string
	}{
		{training.TrainingJobRequest{DatasetID: v.ID, DatasetVersion: 1, ModelName: "Bad Name"}, "body.model_name"},
		{training.TrainingJobRequest{DatasetID: "ds_000000000000", DatasetVersion: 1, ModelName: "m"}, "body.dataset_id"},
		{training.TrainingJobRequest{DatasetID: v.ID, DatasetVersion: 9, ModelName: "m"}, "body.dataset_id"},
		{training.TrainingJobRequest{DatasetID: v.ID, DatasetVersion: 1, ModelName: "m", Task: "sdxl_lora"}, "body.task"},
		{training.TrainingJobRequest{DatasetID: v.ID, DatasetVersion: 1, ModelName: "m", Hyperparameters: trainjob.Hyperparameters{Buckets: 5}}, "body.hyperparameters.buckets"},
	} {
		_, err := m.Create(ctx, c.req)
		var te *training.Error
		require.True(t, errors.As(err, &te), "%+v: %v", c.req, err)
		require.Equal(t, 422, te.Status)
		require.Equal(t, c.field, te.Field, te.Msg)
	}
	_, err := m.Get(ctx, "tj_nope")
	var te *training.Error
	require.True(t, errors.As(err, &te))
	require.Equal(t, 404, te.Status)
}

// TestResumeAfterServerRestart stops the manager (a server restart) while
// a job runs; a new manager picks the job up from the store and finishes
// it, registers the model, and the dataset version cannot be deleted
// while the job exists.
func TestResumeAfterServerRestart(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := context.Background()
	v := s.importJSONL(t, "mail", synthetic(t, 400))
	m1 := s.manager()
	job, err := m1.Create(ctx, training.TrainingJobRequest{DatasetID: v.ID, DatasetVersion: v.Version, ModelName: "text_classifier",
		Hyperparameters: trainjob.Hyperparameters{Epochs: 30, Patience: -1, MaxFeatures: 64, Buckets: 1 << 12}})
	require.NoError(t, err)
	waitJob(t, m1, job.ID, func(j *training.TrainingJob) bool { return len(j.Epochs) >= 1 })
	m1.Stop()
	stopped, err := m1.Get(ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, trainjob.StateRunning, stopped.State, "the server stopped with the job unfinished")

	m2 := s.manager()
	require.NoError(t, m2.Start(ctx))
	defer m2.Stop()
	j := waitJob(t, m2, job.ID, finished)
	require.Equal(t, trainjob.StateSucceeded, j.State, j.Error)
	require.Len(t, j.Epochs, 30)
	require.NotNil(t, j.Result)
	require.GreaterOrEqual(t, j.Result.ValidationAccuracy, 0.9)

	model, err := s.models.Get(ctx, "text_classifier")
	require.NoError(t, err)
	require.NotNil(t, model.Training)
	require.Equal(t, job.ID, model.Training.JobID)
	require.Equal(t, j.Result.ValidationAccuracy, model.Training.Metrics.ValidationAccuracy)
	require.Empty(t, model.MetadataError)
	require.Equal(t, []string{"ids", "weights"}, []string{model.Inputs[0].Name, model.Inputs[1].Name})

	err = s.datasets.DeleteVersion(ctx, v.ID, v.Version)
	var de *datasets.Error
	require.True(t, errors.As(err, &de), "%v", err)
	require.Equal(t, datasets.KindConflict, de.Kind)

	// The job holds the model's files: it cannot go before the model.
	var te *training.Error
	require.True(t, errors.As(m2.Delete(ctx, job.ID), &te))
	require.Equal(t, 409, te.Status)
	require.NoError(t, s.models.Remove(ctx, "text_classifier"))
	require.NoError(t, m2.Delete(ctx, job.ID))
	_, err = os.Stat(filepath.Join(s.dir, "training", job.ID))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestCancel(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := context.Background()
	v := s.importJSONL(t, "mail", synthetic(t, 200))
	m := s.manager()
	defer m.Stop()
	job, err := m.Create(ctx, training.TrainingJobRequest{DatasetID: v.ID, DatasetVersion: v.Version, ModelName: "text_classifier",
		Hyperparameters: trainjob.Hyperparameters{Epochs: 1000, Patience: -1, MaxFeatures: 32, Buckets: 1 << 10}})
	require.NoError(t, err)
	waitJob(t, m, job.ID, func(j *training.TrainingJob) bool { return len(j.Epochs) >= 1 })
	j, err := m.Cancel(ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, trainjob.StateCancelled, j.State)
	var te *training.Error
	_, err = m.Cancel(ctx, job.ID)
	require.True(t, errors.As(err, &te))
	require.Equal(t, 409, te.Status)
	// The child stops too: its status says cancelled.
	cl, err := s.sup.Client()
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		st, err := cl.TrainingJob(ctx, job.ID)
		return err == nil && st.State == trainjob.StateCancelled
	}, time.Minute, 20*time.Millisecond)
	_, err = s.models.Get(ctx, "text_classifier")
	require.Error(t, err, "a cancelled job registers nothing")
}

// Cancelling a job as it finishes: either the cancel is refused (409, the
// job succeeded and its model is registered) or the job ends cancelled
// and registers nothing, as a cancelled job must; never a job that says
// cancelled while its model went into the registry, whose files Delete
// would then remove.
func TestCancelRacingCompletion(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := context.Background()
	v := s.importJSONL(t, "mail", synthetic(t, 100))
	m := s.manager()
	var cl *client.Client
	require.Eventually(t, func() bool {
		var err error
		cl, err = s.sup.Client()
		return err == nil
	}, 2*time.Minute, 10*time.Millisecond, "the accelerator starts")

	type outcome struct {
		job, model string
		cancelled  bool
	}
	outcomes := make(chan outcome, 8)
	var wg sync.WaitGroup
	for i := range cap(outcomes) {
		name := fmt.Sprintf("racer%d", i)
		job, err := m.Create(ctx, training.TrainingJobRequest{DatasetID: v.ID, DatasetVersion: v.Version, ModelName: name,
			Hyperparameters: trainjob.Hyperparameters{Epochs: 2, Patience: -1, MaxFeatures: 32, Buckets: 1 << 10}})
		require.NoError(t, err)
		wg.Go(func() {
			// Follow the job on the child as the driver does, and cancel
			// it the moment the child says it ended.
			var st *trainjob.Status
			for st == nil || !trainjob.Terminal(st.State) {
				after := 0
				if st != nil {
					after = len(st.Events)
				}
				next, err := cl.WaitTraining(ctx, job.ID, after, 5*time.Second)
				if err != nil {
					time.Sleep(5 * time.Millisecond) // not started on the child yet
					continue
				}
				st = next
			}
			_, err := m.Cancel(ctx, job.ID)
			var te *training.Error
			if err != nil && !(errors.As(err, &te) && te.Status == 409) {
				t.Errorf("cancel %s: %v", job.ID, err)
			}
			outcomes <- outcome{job.ID, name, err == nil}
		})
	}
	wg.Wait()
	close(outcomes)
	m.Stop() // every driver is done
	for o := range outcomes {
		j := waitJob(t, m, o.job, finished)
		_, err := s.models.Get(ctx, o.model)
		if o.cancelled {
			require.Equal(t, trainjob.StateCancelled, j.State)
			require.Error(t, err, "job %s was cancelled, yet registered its model", o.job)
		} else {
			require.Equal(t, trainjob.StateSucceeded, j.State, j.Error)
			require.NoError(t, err)
		}
	}
}

// Deleting a dataset version while jobs are being created on it: either
// the deletion comes first and every job is refused (422), or a job is
// stored first and the deletion is refused (409); never a job on a
// version that is gone.
func TestDeleteDatasetVersionRacingCreate(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := context.Background()
	require.Eventually(t, func() bool { _, err := s.sup.Client(); return err == nil }, 2*time.Minute, 10*time.Millisecond, "the accelerator starts")
	m := s.manager()
	defer m.Stop()
	v := s.importJSONL(t, "mail", synthetic(t, 50))

	created := make(chan string, 8)
	var deleted error
	var wg sync.WaitGroup
	for range cap(created) - 1 {
		wg.Go(func() {
			j, err := m.Create(ctx, training.TrainingJobRequest{DatasetID: v.ID, DatasetVersion: v.Version, ModelName: "racer",
				Hyperparameters: trainjob.Hyperparameters{Epochs: 1000, Patience: -1, MaxFeatures: 32, Buckets: 1 << 10}})
			var te *training.Error
			switch {
			case err == nil:
				created <- j.ID
			case !errors.As(err, &te) || te.Status != 422:
				t.Errorf("create: %v", err)
			}
		})
	}
	wg.Go(func() { deleted = s.datasets.DeleteVersion(ctx, v.ID, v.Version) })
	wg.Wait()
	close(created)
	jobs := 0
	for range created {
		jobs++
	}
	if deleted == nil {
		require.Zero(t, jobs, "the version was deleted, yet %d jobs were created on it", jobs)
		return
	}
	var de *datasets.Error
	require.ErrorAs(t, deleted, &de)
	require.Equal(t, datasets.KindConflict, de.Kind, deleted.Error())
	require.NotZero(t, jobs)
}
