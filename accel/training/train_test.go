package training_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/accel/internal/testenv"
	"github.com/millrace/millrace/accel/modeldir"
	"github.com/millrace/millrace/accel/oip"
	"github.com/millrace/millrace/accel/sessions"
	"github.com/millrace/millrace/accel/textfeatures"
	"github.com/millrace/millrace/accel/training"
	"github.com/millrace/millrace/accel/training/trainingtest"
	"github.com/millrace/millrace/accel/trainjob"
)

// smallHyper keeps the tests quick on two cores.
func smallHyper() trainjob.Hyperparameters {
	return trainjob.Hyperparameters{Epochs: 4, BatchSize: 32, EmbeddingDim: 16, Buckets: 1 << 12, LearningRate: 0.05, MaxFeatures: 128, Seed: 7}
}

func syntheticSpec(t *testing.T, n int) training.Spec {
	t.Helper()
	dir := t.TempDir()
	all := trainingtest.Synthetic(n, 3)
	cut := n * 4 / 5
	_, err := trainingtest.WriteVersion(filepath.Join(dir, "data"), "synthetic", 1, all[:cut], all[cut:])
	require.NoError(t, err)
	return training.Spec{
		Task:            training.TaskTextClassification,
		TrainPath:       filepath.Join(dir, "data", "train.jsonl"),
		ValidationPath:  filepath.Join(dir, "data", "validation.jsonl"),
		OutputDir:       filepath.Join(dir, "out"),
		Hyperparameters: smallHyper(),
	}
}

// TestTrainAndExportAgreeWithONNXRuntime trains on synthetic mail, then
// runs the exported model in the real ONNX Runtime on the featuriser's
// tensors and checks it predicts what GoMLX predicted.
func TestTrainAndExportAgreeWithONNXRuntime(t *testing.T) {
	t.Parallel()
	spec := syntheticSpec(t, 600)
	var events []training.Epoch
	res, err := training.Train(context.Background(), spec, func(ev training.Epoch) { events = append(events, ev) })
	require.NoError(t, err)
	for _, ev := range events {
		t.Logf("epoch %d: loss %.4f, validation accuracy %.3f, %.0f examples/s", ev.Epoch, ev.TrainLoss, ev.ValidationAccuracy, ev.ExamplesPerSecond)
	}
	require.NotEmpty(t, events)
	require.Equal(t, 1, events[0].Epoch)
	require.GreaterOrEqual(t, res.ValidationAccuracy, 0.95, "events: %+v", events)
	require.Less(t, events[len(events)-1].TrainLoss, events[0].TrainLoss+1e-9)
	recorded, err := training.ReadEvents(spec.OutputDir)
	require.NoError(t, err)
	require.Equal(t, len(events), len(recorded))

	// GoMLX's own predictions on the validation texts, through the same
	// path the exported model takes.
	val, err := training.ReadJSONL(spec.ValidationPath)
	require.NoError(t, err)
	texts := make([]string, 0, 40)
	for _, ex := range val[:40] {
		texts = append(texts, ex.Text)
	}
	texts = append(texts, "", "FREE CASH winner, claim now!!!", "Agenda for tomorrow's meeting attached")
	native, err := training.Predict(spec.OutputDir, texts)
	require.NoError(t, err)

	probs, outs := runONNXRuntime(t, spec.OutputDir, res.Hyperparameters, texts)
	require.Len(t, probs, len(texts)*len(res.Labels))
	for i := range texts {
		for k := range res.Labels {
			require.InDelta(t, native[i][k], probs[i*len(res.Labels)+k], 1e-5, "text %d class %d", i, k)
		}
	}
	spamIndex := 1 // labels sorted: ham, spam
	require.Equal(t, []string{"ham", "spam"}, res.Labels)
	require.Greater(t, probs[(len(texts)-2)*2+spamIndex], float32(0.5))
	require.Less(t, probs[(len(texts)-1)*2+spamIndex], float32(0.5))

	info, err := oip.Values[uint8](outs[2])
	require.NoError(t, err)
	var mi training.ModelInfo
	require.NoError(t, json.Unmarshal(info, &mi))
	require.Equal(t, training.ModelInfo{Task: training.TaskTextClassification, Labels: res.Labels, Buckets: 1 << 12, Features: textfeatures.Config{WordNgrams: 1, MaxFeatures: 128, Weighting: textfeatures.WeightL2}}, mi)
}

// TestResumeAfterCancel stops a job after its first epoch and runs it
// again on the same folder: it continues from the checkpoint (epoch 2),
// and ends with the same weights as a job never stopped (same seed, same
// batch order per epoch).
func TestResumeAfterCancel(t *testing.T) {
	t.Parallel()
	spec := syntheticSpec(t, 300)
	spec.Hyperparameters.Epochs = 3
	spec.Hyperparameters.Patience = -1
	res := cancelAndResume(t, spec)
	require.Equal(t, 3, res.EpochsRun)

	straight := syntheticSpec(t, 300)
	straight.Hyperparameters = spec.Hyperparameters
	want, err := training.Train(context.Background(), straight, nil)
	require.NoError(t, err)
	require.InDelta(t, want.TrainLoss, res.TrainLoss, 1e-6)
	require.Equal(t, want.ValidationAccuracy, res.ValidationAccuracy)

	// A finished job run again returns its result without training.
	again, err := training.Train(context.Background(), spec, func(training.Epoch) { t.Fatal("trained again") })
	require.NoError(t, err)
	require.Equal(t, res, again)
	_, err = os.Stat(filepath.Join(spec.OutputDir, "model.onnx"))
	require.NoError(t, err)
}

// runONNXRuntime runs the model.onnx of the job folder jobDir in the real
// ONNX Runtime on texts, featurised as h says, and returns its
// probabilities (row-major) and all its outputs.
func runONNXRuntime(t *testing.T, jobDir string, h trainjob.Hyperparameters, texts []string) ([]float32, []oip.Tensor) {
	t.Helper()
	// modeldir wants DIR/NAME.onnx or DIR/NAME/model.onnx: the job folder
	// holds model.onnx, so its parent serves it under the folder's name.
	m := sessions.New(modeldir.New(filepath.Dir(jobDir)), sessions.Config{LibraryPath: testenv.LibraryPath(t)})
	t.Cleanup(m.Close)
	s, err := m.Acquire(context.Background(), filepath.Base(jobDir))
	require.NoError(t, err)
	defer s.Release()
	batch, err := h.Features().NewBatch(texts)
	require.NoError(t, err)
	shape := []int64{int64(batch.Rows), int64(batch.Width)}
	ins, err := s.Metadata().CheckInputs([]oip.Tensor{
		oip.NewTensor(training.InputIDs, shape, batch.IDs),
		oip.NewTensor(training.InputWeights, shape, batch.Weights),
	})
	require.NoError(t, err)
	outs, err := s.Run(ins)
	require.NoError(t, err)
	probs, err := oip.Values[float32](outs[0])
	require.NoError(t, err)
	return probs, outs
}

// cancelAndResume runs a 3-epoch job, cancels it after its first epoch,
// runs it again on the same folder and checks that it resumed at epoch 2.
func cancelAndResume(t *testing.T, spec training.Spec) *training.JobResult {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	_, err := training.Train(ctx, spec, func(ev training.Epoch) {
		if ev.Epoch == 1 {
			cancel()
		}
	})
	require.ErrorIs(t, err, training.ErrCancelled)
	var resumed []int
	res, err := training.Train(context.Background(), spec, func(ev training.Epoch) { resumed = append(resumed, ev.Epoch) })
	require.NoError(t, err)
	require.Equal(t, []int{2, 3}, resumed)
	return res
}
