// Package training runs training jobs (/v1/training-jobs): a model
// trained by the accelerator service (millrace-accel, accel/training) on
// a dataset version, then registered in the model registry.
//
// The store is the truth; the accelerator child only computes. Each
// unfinished job has a driver goroutine in this server that asks the
// child to run the job (or to resume it: the child keeps a checkpoint per
// epoch in the job's folder, <data dir>/training/<id>/), long-polls its
// epochs into the store, and on success registers the model. If the
// child dies, the driver starts the job again on the next child, which
// resumes from the last checkpoint; if the server restarts, Start resumes
// the drivers of unfinished jobs.
package training

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/accel/client"
	"github.com/millrace/millrace/accel/trainjob"
	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/datasets"
	"github.com/millrace/millrace/server/store"
)

// Accel is the accelerator the jobs run on (accel.Supervisor).
type Accel interface {
	// Client returns a client of the accelerator when it can take
	// requests, else why not.
	Client() (*client.Client, error)
	Remote() bool
}

// Models registers trained models and finds base models (accel.Models).
type Models interface {
	Register(ctx context.Context, name string, r accel.Registration) (*accel.Model, bool, error)
	Get(ctx context.Context, name string) (*accel.Model, error)
}

// DatasetVersions finds dataset versions (datasets.Datasets).
type DatasetVersions interface {
	Version(ctx context.Context, id string, version int) (datasets.Version, error)
}

// Config configures a Manager.
type Config struct {
	// Dir holds the jobs' folders: <data dir>/training.
	Dir string
	// Retry is how long a driver waits before asking an accelerator that
	// was not ready again; 1s when 0.
	Retry time.Duration
	Log   *slog.Logger
}

// TrainingJob is a training job as the API shows it.
type TrainingJob struct {
	ID              string                   `json:"id" doc:"tj_ and 12 hex digits."`
	Task            string                   `json:"task" enum:"text_classification,fine_tune_onnx"`
	BaseModel       *trainjob.BaseModel      `json:"base_model,omitempty" doc:"fine_tune_onnx: the registered model the job started from, and its version then."`
	DatasetID       string                   `json:"dataset_id"`
	DatasetVersion  int                      `json:"dataset_version"`
	ModelName       string                   `json:"model_name" doc:"The model registry name the trained model gets on success."`
	Hyperparameters trainjob.Hyperparameters `json:"hyperparameters" doc:"As run: defaults filled in."`
	State           string                   `json:"state" enum:"queued,running,succeeded,failed,cancelled"`
	Error           string                   `json:"error,omitempty"`
	Epochs          []trainjob.Epoch         `json:"epochs" doc:"One entry per finished epoch: training loss, validation accuracy, throughput."`
	Result          *trainjob.JobResult      `json:"result,omitempty" doc:"On success: the best epoch's metrics."`
	CreatedAt       time.Time                `json:"created_at"`
	StartedAt       *time.Time               `json:"started_at,omitempty"`
	FinishedAt      *time.Time               `json:"finished_at,omitempty"`
}

// TrainingJobRequest is what a client gives to start a job.
type TrainingJobRequest struct {
	Task            string                   `json:"task,omitempty" enum:"text_classification,fine_tune_onnx" default:"text_classification" doc:"text_classification (the default): a fastText-style classifier (hashed word and character n-gram embeddings, linear head) trained from scratch. fine_tune_onnx: train the weights of a registered ONNX text classifier (base_model) further on the dataset; the graph, featuriser and labels stay the base model's."`
	BaseModel       string                   `json:"base_model,omitempty" maxLength:"128" doc:"fine_tune_onnx only: the registered model to start from — an ONNX text classifier (inputs ids and weights, outputs logits or probabilities and model_info), such as one a text_classification job trained, whose labels are the dataset's. It is copied into the job when the job is created."`
	DatasetID       string                   `json:"dataset_id" minLength:"1"`
	DatasetVersion  int                      `json:"dataset_version" minimum:"1"`
	ModelName       string                   `json:"model_name" minLength:"1" maxLength:"128" doc:"The name to register the trained model under (lower-case letters, digits, '.', '_', '-'). An existing registration of that name is replaced on success."`
	Hyperparameters trainjob.Hyperparameters `json:"hyperparameters,omitempty" doc:"Zero or missing fields take defaults: epochs 10, learning_rate 0.02, batch_size 64, seed 1, embedding_dim 32, buckets 65536, ngrams 1 (single words; 2 or 3 add word pairs and triples), char_ngram_min and char_ngram_max 0 (no character n-grams; 3 and 5 take fastText's subwords), max_features 512, weighting l2 (mean: weights that sum to 1), patience 3 (-1: never stop early), schedule cosine (constant: no decay). fine_tune_onnx takes only epochs, learning_rate, batch_size, seed, patience and schedule: the rest are the base model's."`
}

// Error is a request the manager refuses: Status is the HTTP status and
// Field the request field at fault.
type Error struct {
	Status int
	Field  string
	Msg    string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Manager creates, drives and cancels training jobs.
type Manager struct {
	store    store.Store
	accel    Accel
	models   Models
	datasets DatasetVersions
	cfg      Config
	log      *slog.Logger

	// ending is held by Cancel while it marks a job cancelled and stops
	// its driver, and by a driver while it registers a finished job's
	// model and marks it succeeded: so a cancel either lands before the
	// registration, which then does not happen, or after the job says
	// succeeded, and is refused. Without it a cancel landing in between
	// left a job that says cancelled with its model registered.
	ending sync.Mutex

	mu      sync.Mutex
	drivers map[string]context.CancelFunc
	// changed is closed and replaced on every stored change, waking the
	// event streams (Watch).
	changed chan struct{}
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// New returns a Manager; Start resumes unfinished jobs.
func New(s store.Store, a Accel, models Models, ds DatasetVersions, cfg Config) *Manager {
	if cfg.Retry <= 0 {
		cfg.Retry = time.Second
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Manager{store: s, accel: a, models: models, datasets: ds, cfg: cfg, log: log,
		drivers: map[string]context.CancelFunc{}, changed: make(chan struct{}), ctx: ctx, stop: stop}
}

// Start resumes the drivers of the jobs that have not finished.
func (m *Manager) Start(ctx context.Context) error {
	jobs, err := m.store.ListTrainingJobs(ctx, store.TrainingJobFilter{Unfinished: true})
	if err != nil {
		return err
	}
	for _, j := range jobs {
		m.drive(j)
	}
	return nil
}

// Stop ends the drivers (the jobs stay unfinished in the store, and the
// accelerator's child is stopped with the server). Safe twice and before
// Start.
func (m *Manager) Stop() {
	m.stop()
	m.wg.Wait()
}

// InUse reports whether a job uses a dataset version (any version when
// version is 0): such versions cannot be deleted (datasets.Datasets.InUse).
func (m *Manager) InUse(ctx context.Context, id string, version int) (bool, error) {
	jobs, err := m.store.ListTrainingJobs(ctx, store.TrainingJobFilter{DatasetID: id, DatasetVersion: version})
	return len(jobs) > 0, err
}

func newID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "tj_" + hex.EncodeToString(b)
}

// Create validates a request, stores the job and starts it.
func (m *Manager) Create(ctx context.Context, req TrainingJobRequest) (*TrainingJob, error) {
	if req.Task == "" {
		req.Task = trainjob.TaskTextClassification
	}
	h := req.Hyperparameters.Defaults()
	if ferr := trainjob.ValidateSpec(trainjob.Spec{Task: req.Task, Hyperparameters: req.Hyperparameters}); ferr != nil {
		return nil, &Error{Status: 422, Field: "body." + ferr.Field, Msg: ferr.Message}
	}
	fineTune := req.Task == trainjob.TaskFineTuneONNX
	switch {
	case fineTune && req.BaseModel == "":
		return nil, &Error{Status: 422, Field: "body.base_model", Msg: "is required for task fine_tune_onnx: the registered model to fine-tune"}
	case !fineTune && req.BaseModel != "":
		return nil, &Error{Status: 422, Field: "body.base_model", Msg: "is only for task fine_tune_onnx (task text_classification trains from scratch)"}
	}
	if fineTune {
		if ferr := req.Hyperparameters.CheckFineTune(); ferr != nil {
			return nil, &Error{Status: 422, Field: "body.hyperparameters." + ferr.Field, Msg: ferr.Message}
		}
	}
	if !abi.ValidModelName(req.ModelName) {
		return nil, &Error{Status: 422, Field: "body.model_name", Msg: fmt.Sprintf("%q is not a valid model name: use 1-128 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit, not ending in .onnx", req.ModelName)}
	}
	if m.accel.Remote() {
		return nil, &Error{Status: 409, Msg: "training runs on the local accelerator child, which reads the dataset from this server's disk; this server uses a remote accelerator (MILLRACE_ACCEL_URL)"}
	}
	ds, err := m.datasets.Version(ctx, req.DatasetID, req.DatasetVersion)
	if err != nil {
		var de *datasets.Error
		if errors.As(err, &de) && de.Kind == datasets.KindNotFound {
			return nil, &Error{Status: 422, Field: "body.dataset_id", Msg: de.Msg}
		}
		return nil, err
	}
	id := newID()
	outDir := filepath.Join(m.cfg.Dir, id)
	set := settings{Hyperparameters: h}
	if fineTune {
		base, info, err := m.checkBase(ctx, req.BaseModel, ds.Labels)
		if err != nil {
			return nil, err
		}
		if err := copyBase(base.Path, outDir); err != nil {
			os.RemoveAll(outDir)
			return nil, err
		}
		set = settings{Hyperparameters: req.Hyperparameters.ForBase(info), BaseModel: &trainjob.BaseModel{Name: base.Name, Version: base.Version}}
	}
	hyper, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	rec := store.TrainingJob{
		ID: id, Task: req.Task, DatasetID: req.DatasetID, DatasetVersion: req.DatasetVersion, ModelName: req.ModelName,
		Hyperparameters: hyper, State: trainjob.StateQueued, OutputDir: outDir, CreatedAt: time.Now().UTC(),
	}
	if err := m.store.CreateTrainingJob(ctx, rec); err != nil {
		os.RemoveAll(outDir)
		if errors.Is(err, store.ErrNotFound) { // the version was deleted since the check above
			return nil, &Error{Status: 422, Field: "body.dataset_id", Msg: fmt.Sprintf("dataset %s has no version %d", req.DatasetID, req.DatasetVersion)}
		}
		return nil, err
	}
	m.notify()
	m.drive(rec)
	return toJob(rec)
}

// Get returns one job.
func (m *Manager) Get(ctx context.Context, id string) (*TrainingJob, error) {
	rec, err := m.store.TrainingJob(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &Error{Status: 404, Field: "path.id", Msg: fmt.Sprintf("no training job %s", id)}
	}
	if err != nil {
		return nil, err
	}
	return toJob(rec)
}

// List returns the jobs, newest first.
func (m *Manager) List(ctx context.Context) ([]*TrainingJob, error) {
	recs, err := m.store.ListTrainingJobs(ctx, store.TrainingJobFilter{})
	if err != nil {
		return nil, err
	}
	out := make([]*TrainingJob, 0, len(recs))
	for _, r := range recs {
		j, err := toJob(r)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

// Cancel cancels a queued or running job; its folder stays until the job
// is deleted. Cancelling a finished job is a 409.
func (m *Manager) Cancel(ctx context.Context, id string) (*TrainingJob, error) {
	m.ending.Lock()
	ok, err := m.store.CancelTrainingJob(ctx, id, time.Now().UTC())
	if ok {
		m.mu.Lock()
		if cancel, ok := m.drivers[id]; ok {
			cancel()
		}
		m.mu.Unlock()
	}
	m.ending.Unlock()
	if errors.Is(err, store.ErrNotFound) {
		return nil, &Error{Status: 404, Field: "path.id", Msg: fmt.Sprintf("no training job %s", id)}
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		j, err := m.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		return nil, &Error{Status: 409, Msg: fmt.Sprintf("training job %s has already %s", id, j.State)}
	}
	if cl, err := m.accel.Client(); err == nil {
		// Best effort: a child that does not know the job runs nothing.
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := cl.CancelTraining(cctx, id); err != nil && client.StatusOf(err) != 404 {
			m.log.Warn("cancelling a training job on the accelerator", "job", id, "err", err)
		}
		cancel()
	}
	m.notify()
	return m.Get(ctx, id)
}

// Delete removes a finished job's row and folder (a running job must be
// cancelled first). The model it registered stays registered, but its
// files go with the folder, so delete the model first or keep the job.
func (m *Manager) Delete(ctx context.Context, id string) error {
	j, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	if !trainjob.Terminal(j.State) {
		return &Error{Status: 409, Msg: fmt.Sprintf("training job %s is %s: cancel it first", id, j.State)}
	}
	if j.State == trainjob.StateSucceeded {
		models, err := m.store.ListModels(ctx)
		if err != nil {
			return err
		}
		for _, md := range models {
			if md.Path == filepath.Join(m.cfg.Dir, id) {
				return &Error{Status: 409, Msg: fmt.Sprintf("training job %s holds the files of model %q: delete the model first", id, md.Name)}
			}
		}
	}
	if err := m.store.DeleteTrainingJob(ctx, id); err != nil {
		return err
	}
	m.notify()
	return os.RemoveAll(filepath.Join(m.cfg.Dir, id))
}

// Watch returns a channel closed at the next change of any job.
func (m *Manager) Watch() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

func (m *Manager) notify() {
	m.mu.Lock()
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

func toJob(r store.TrainingJob) (*TrainingJob, error) {
	j := &TrainingJob{
		ID: r.ID, Task: r.Task, DatasetID: r.DatasetID, DatasetVersion: r.DatasetVersion, ModelName: r.ModelName,
		State: r.State, Error: r.Error, CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Epochs: []trainjob.Epoch{},
	}
	var set settings
	if err := json.Unmarshal(r.Hyperparameters, &set); err != nil {
		return nil, fmt.Errorf("training job %s: stored hyperparameters: %w", r.ID, err)
	}
	j.Hyperparameters, j.BaseModel = set.Hyperparameters, set.BaseModel
	if len(r.Events) == 0 {
		r.Events = []byte("[]") // a job not yet stored
	}
	if err := json.Unmarshal(r.Events, &j.Epochs); err != nil {
		return nil, fmt.Errorf("training job %s: stored events: %w", r.ID, err)
	}
	if r.Result != nil {
		j.Result = new(trainjob.JobResult)
		if err := json.Unmarshal(r.Result, j.Result); err != nil {
			return nil, fmt.Errorf("training job %s: stored result: %w", r.ID, err)
		}
	}
	return j, nil
}
