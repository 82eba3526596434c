package training

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/millrace/millrace/accel/client"
	"github.com/millrace/millrace/accel/trainjob"
	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/store"
)

// longPoll is how long one wait for the next epoch lasts.
const longPoll = 25 * time.Second

// drive starts rec's driver unless one runs.
func (m *Manager) drive(rec store.TrainingJob) {
	m.mu.Lock()
	if _, ok := m.drivers[rec.ID]; ok || m.ctx.Err() != nil {
		m.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	m.drivers[rec.ID] = cancel
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		defer func() {
			m.mu.Lock()
			delete(m.drivers, rec.ID)
			m.mu.Unlock()
			cancel()
		}()
		m.run(ctx, rec)
	}()
}

// run drives one job to its end: start (or resume) it on the current
// child, follow its epochs, start it again when the child goes away.
func (m *Manager) run(ctx context.Context, rec store.TrainingJob) {
	ds, err := m.datasets.Version(ctx, rec.DatasetID, rec.DatasetVersion)
	if err != nil {
		if ctx.Err() == nil {
			m.end(ctx, rec, trainjob.StateFailed, fmt.Sprintf("dataset %s version %d: %v", rec.DatasetID, rec.DatasetVersion, err), nil)
		}
		return
	}
	var set settings
	if err := json.Unmarshal(rec.Hyperparameters, &set); err != nil {
		m.end(ctx, rec, trainjob.StateFailed, "stored hyperparameters: "+err.Error(), nil)
		return
	}
	spec := trainjob.Spec{
		Task: rec.Task, TrainPath: ds.TrainPath, ValidationPath: ds.ValidationPath, Labels: ds.Labels,
		OutputDir: rec.OutputDir, Hyperparameters: set.Hyperparameters, BaseModel: set.BaseModel,
	}
	if rec.Task == trainjob.TaskFineTuneONNX {
		spec.BaseModelPath = filepath.Join(rec.OutputDir, baseFile)
	}
	for ctx.Err() == nil {
		cl, err := m.accel.Client()
		if err != nil {
			m.sleep(ctx)
			continue
		}
		st, err := cl.StartTraining(ctx, rec.ID, spec)
		if code := client.StatusOf(err); code == 400 || code == 422 {
			m.end(ctx, rec, trainjob.StateFailed, err.Error(), nil)
			return
		}
		if err != nil {
			m.log.Info("training job waits for the accelerator", "job", rec.ID, "err", err)
			m.sleep(ctx)
			continue
		}
		for ctx.Err() == nil {
			var stop bool
			if rec, stop = m.record(ctx, rec, st); stop {
				return
			}
			if trainjob.Terminal(st.State) {
				if st.State == trainjob.StateCancelled {
					// Nobody here cancelled it (that ends ctx first): the
					// child was stopped. Start it again from its checkpoint.
					m.sleep(ctx)
					break
				}
				m.finish(ctx, rec, st)
				return
			}
			pctx, cancel := context.WithTimeout(ctx, longPoll+10*time.Second)
			next, err := cl.WaitTraining(pctx, rec.ID, len(st.Events), longPoll)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					m.log.Warn("lost the training job on the accelerator; starting it again from its checkpoint", "job", rec.ID, "err", err)
					m.sleep(ctx)
				}
				break
			}
			st = next
		}
	}
}

func (m *Manager) sleep(ctx context.Context) {
	t := time.NewTimer(m.cfg.Retry)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// record stores st's progress when it adds to rec, and reports stop when
// the job was cancelled meanwhile.
func (m *Manager) record(ctx context.Context, rec store.TrainingJob, st *trainjob.Status) (store.TrainingJob, bool) {
	var have []trainjob.Epoch
	_ = json.Unmarshal(rec.Events, &have)
	changed := false
	if rec.State == trainjob.StateQueued && st.State != trainjob.StateQueued {
		now := time.Now().UTC()
		rec.State, rec.StartedAt, changed = trainjob.StateRunning, &now, true
	}
	if len(st.Events) != len(have) {
		events, err := json.Marshal(st.Events)
		if err == nil {
			rec.Events, changed = events, true
		}
	}
	if !changed {
		return rec, false
	}
	ok, err := m.store.UpdateTrainingJob(ctx, rec)
	if err != nil {
		m.log.Warn("storing a training job's progress", "job", rec.ID, "err", err)
		return rec, false
	}
	m.notify()
	return rec, !ok
}

// finish ends a job the child finished: on success, the model is
// registered before the job says succeeded.
func (m *Manager) finish(ctx context.Context, rec store.TrainingJob, st *trainjob.Status) {
	if st.State != trainjob.StateSucceeded || st.Result == nil {
		m.end(ctx, rec, trainjob.StateFailed, st.Error, nil)
		return
	}
	res := st.Result
	desc := fmt.Sprintf("%s model trained by job %s on dataset %s version %d: validation accuracy %.4f at epoch %d of %d; labels %v",
		rec.Task, rec.ID, rec.DatasetID, rec.DatasetVersion, res.ValidationAccuracy, res.BestEpoch, res.EpochsRun, res.Labels)
	if b := res.BaseModel; b != nil {
		desc += fmt.Sprintf("; fine-tuned from %s (version %s)", b.Name, b.Version)
	}
	// A cancel racing the end waits for it, or it came first and ended
	// ctx: a cancelled job registers nothing (Manager.ending).
	m.ending.Lock()
	defer m.ending.Unlock()
	if ctx.Err() != nil {
		return
	}
	if _, _, err := m.models.Register(ctx, rec.ModelName, accel.Registration{Path: rec.OutputDir, Description: desc, Version: rec.ID}); err != nil {
		if ctx.Err() == nil {
			m.end(ctx, rec, trainjob.StateFailed, fmt.Sprintf("registering the model as %q: %v", rec.ModelName, err), nil)
		}
		return
	}
	m.end(ctx, rec, trainjob.StateSucceeded, "", res)
	m.log.Info("training job succeeded", "job", rec.ID, "model", rec.ModelName, "validation_accuracy", res.ValidationAccuracy)
}

func (m *Manager) end(ctx context.Context, rec store.TrainingJob, state, msg string, res *trainjob.JobResult) {
	now := time.Now().UTC()
	rec.State, rec.Error, rec.FinishedAt = state, msg, &now
	if rec.StartedAt == nil {
		rec.StartedAt = &now
	}
	if res != nil {
		data, err := json.Marshal(res)
		if err == nil {
			rec.Result = data
		}
	}
	if _, err := m.store.UpdateTrainingJob(context.WithoutCancel(ctx), rec); err != nil {
		m.log.Warn("storing the end of a training job", "job", rec.ID, "err", err)
	}
	m.notify()
}
