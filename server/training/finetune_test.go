package training_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/accel/onnxbuild"
	"github.com/millrace/millrace/accel/training/trainingtest"
	"github.com/millrace/millrace/accel/trainjob"
	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/millrace/millrace/server/training"
)

// trainBaseModel trains and registers a weak spam classifier as name:
// one epoch on 60 examples.
func trainBaseModel(t *testing.T, s *stack, m *training.Manager, name string) *training.TrainingJob {
	t.Helper()
	v := s.importJSONL(t, "small", synthetic(t, 60))
	job, err := m.Create(context.Background(), training.TrainingJobRequest{DatasetID: v.ID, DatasetVersion: v.Version, ModelName: name,
		Hyperparameters: trainjob.Hyperparameters{Epochs: 1, BatchSize: 8, Buckets: 1 << 12, MaxFeatures: 64, LearningRate: 0.05}})
	require.NoError(t, err)
	j := waitJob(t, m, job.ID, finished)
	require.Equal(t, trainjob.StateSucceeded, j.State, j.Error)
	return j
}

// TestFineTuneJob fine-tunes a registered classifier on a larger dataset
// through the manager and the accel child: the job reports its epochs,
// keeps the base model's featuriser, does at least as well as the base on
// the same validation split, and registers a model whose lineage names the
// base model and its version.
func TestFineTuneJob(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := context.Background()
	m := s.manager()
	defer m.Stop()
	baseJob := trainBaseModel(t, s, m, "text_classifier")

	v := s.importJSONL(t, "mail", synthetic(t, 400))
	job, err := m.Create(ctx, training.TrainingJobRequest{Task: trainjob.TaskFineTuneONNX, BaseModel: "text_classifier",
		DatasetID: v.ID, DatasetVersion: v.Version, ModelName: "my-classifier", Hyperparameters: trainjob.Hyperparameters{Epochs: 3, Patience: -1}})
	require.NoError(t, err)
	require.Equal(t, &trainjob.BaseModel{Name: "text_classifier", Version: baseJob.ID}, job.BaseModel)
	require.Equal(t, 64, job.Hyperparameters.MaxFeatures, "the base model's featuriser")
	j := waitJob(t, m, job.ID, finished)
	require.Equal(t, trainjob.StateSucceeded, j.State, j.Error)
	require.Len(t, j.Epochs, 3)
	require.GreaterOrEqual(t, j.Result.ValidationAccuracy, 0.95)

	model, err := s.models.Get(ctx, "my-classifier")
	require.NoError(t, err)
	require.Empty(t, model.MetadataError)
	require.NotNil(t, model.Training)
	require.Equal(t, trainjob.TaskFineTuneONNX, model.Training.Task)
	require.Equal(t, &trainjob.BaseModel{Name: "text_classifier", Version: baseJob.ID}, model.Training.BaseModel)
	require.Equal(t, v.ID, model.Training.DatasetID)
	require.Equal(t, 3, model.Training.Hyperparameters.Epochs)
	require.Contains(t, model.Description, "fine-tuned from text_classifier")

	_, err = os.Stat(filepath.Join(s.dir, "training", job.ID, "base.onnx"))
	require.NoError(t, err, "the job trains from its own copy of the base model")

	// text_classify's manifest requests *classifier*: granted as
	// requested, it labels with my-classifier; with a grant narrowed to
	// text_classifier, the host refuses my-classifier and says why.
	mv, _, err := s.reg.Upload(ctx, testguests.Reactor(t, "text_classify"), testguests.Manifest(t, "text_classify"))
	require.NoError(t, err)
	_, err = s.reg.GrantAsRequested(ctx, mv.ModuleID, mv.Version)
	require.NoError(t, err)
	invoke := func(model string) *sandbox.Result {
		cfg, _ := json.Marshal(map[string]string{"model": model})
		res, _, err := s.reg.Invoke(ctx, registry.InvokeRequest{ModuleID: mv.ModuleID, Version: mv.Version, Config: cfg,
			Input: json.RawMessage(`{"text":"Subject: FREE cash prize, claim now"}`)})
		require.NoError(t, err)
		return res
	}
	res := invoke("my-classifier")
	require.Nil(t, res.Failure)
	require.Contains(t, string(res.Output), `"label":"spam"`)
	_, err = s.reg.SetGrant(ctx, mv.ModuleID, mv.Version, sandbox.Grant{Capabilities: abi.Capabilities{Accel: &abi.Accel{Models: []string{"text_classifier"}}}})
	require.NoError(t, err)
	res = invoke("my-classifier")
	require.NotNil(t, res.Failure)
	require.Contains(t, res.Failure.Message, "my-classifier (is it registered, and in this module's grant?)")
	var logs []string
	for _, l := range res.Logs {
		logs = append(logs, l.Message)
	}
	require.Contains(t, strings.Join(logs, "\n"), `model "my-classifier" is not granted to this module (its grant lists ["text_classifier"]`)
	require.Nil(t, invoke("text_classifier").Failure)
}

// TestFineTuneValidates: a request with an unusable base model is a 422
// naming body.base_model (or the hyperparameter) and saying why, and
// leaves no copy of the base model behind. (A base model onnx-gomlx cannot
// convert fails its job with the operator's name: accel/training's
// TestFineTuneBadBaseModel.)
func TestFineTuneValidates(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := context.Background()
	m := s.manager()
	defer m.Stop()
	trainBaseModel(t, s, m, "text_classifier")
	v := s.importJSONL(t, "mail", synthetic(t, 100))
	var three bytes.Buffer
	r := rand.New(rand.NewPCG(1, 2))
	for i, label := range []string{"ham", "spam", "phishing", "ham", "spam", "phishing"} {
		line, _ := json.Marshal(map[string]string{"text": trainingtest.Email(r, "ham") + string(rune('a'+i)), "label": label})
		three.Write(append(line, '\n'))
	}
	v3 := s.importJSONL(t, "three", three.Bytes())

	dir := t.TempDir()
	register := func(name string, data []byte) {
		p := filepath.Join(dir, name+".onnx")
		require.NoError(t, os.WriteFile(p, data, 0o644))
		_, _, err := s.models.Register(ctx, name, accel.Registration{Path: p})
		require.NoError(t, err)
	}
	register("garbage", []byte("not a model"))
	register("arith", onnxbuild.Arith())

	req := func(base string, ds string, h trainjob.Hyperparameters) training.TrainingJobRequest {
		return training.TrainingJobRequest{Task: trainjob.TaskFineTuneONNX, BaseModel: base, DatasetID: ds, DatasetVersion: 1, ModelName: "tuned", Hyperparameters: h}
	}
	for _, c := range []struct {
		req   training.TrainingJobRequest
		field string
		msg   string
	}{
		{req("", v.ID, trainjob.Hyperparameters{}), "body.base_model", "is required"},
		{req("nothing-here", v.ID, trainjob.Hyperparameters{}), "body.base_model", `no model is registered as "nothing-here"`},
		{req("garbage", v.ID, trainjob.Hyperparameters{}), "body.base_model", "does not load in ONNX Runtime"},
		{req("arith", v.ID, trainjob.Hyperparameters{}), "body.base_model", "is not a text classifier"},
		{req("text_classifier", v3.ID, trainjob.Hyperparameters{}), "body.base_model", "the number of classes must match"},
		{req("text_classifier", v.ID, trainjob.Hyperparameters{Buckets: 1024}), "body.hyperparameters.buckets", "keeps the base model's"},
		{training.TrainingJobRequest{BaseModel: "text_classifier", DatasetID: v.ID, DatasetVersion: 1, ModelName: "m"}, "body.base_model", "only for task fine_tune_onnx"},
	} {
		_, err := m.Create(ctx, c.req)
		var te *training.Error
		require.True(t, errors.As(err, &te), "%+v: %v", c.req, err)
		require.Equal(t, 422, te.Status, te.Msg)
		require.Equal(t, c.field, te.Field, te.Msg)
		require.Contains(t, te.Msg, c.msg)
	}
	_, err := os.Stat(filepath.Join(s.dir, "training"))
	if err == nil {
		entries, _ := os.ReadDir(filepath.Join(s.dir, "training"))
		for _, e := range entries {
			_, err := os.Stat(filepath.Join(s.dir, "training", e.Name(), "base.onnx"))
			require.Error(t, err, "a refused request left a copy of its base model in %s", e.Name())
		}
	}
}
