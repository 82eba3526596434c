package training_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/onnx-gomlx/onnx"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/millrace/millrace/accel/onnxbuild"
	"github.com/millrace/millrace/accel/textfeatures"
	"github.com/millrace/millrace/accel/training"
	"github.com/millrace/millrace/accel/training/trainingtest"
	"github.com/millrace/millrace/accel/trainjob"
)

// trainBase trains a weak classifier from scratch: a handful of
// examples (half of them; the rest validate), one epoch. Fine-tuning has something to improve.
func trainBase(t *testing.T, examples []trainingtest.Example) string {
	t.Helper()
	dir := t.TempDir()
	_, err := trainingtest.WriteVersion(filepath.Join(dir, "data"), "small", 1, examples[:len(examples)/2], examples[len(examples)/2:])
	require.NoError(t, err)
	res, err := training.Train(context.Background(), training.Spec{
		Task: training.TaskTextClassification, TrainPath: filepath.Join(dir, "data", "train.jsonl"),
		ValidationPath: filepath.Join(dir, "data", "validation.jsonl"), OutputDir: filepath.Join(dir, "out"),
		// Pinned, not defaults: the test needs a weak base.
		Hyperparameters: trainjob.Hyperparameters{Epochs: 1, BatchSize: 8, Buckets: 1 << 12, EmbeddingDim: 16, MaxFeatures: 64, LearningRate: 0.05, Seed: 5,
			Weighting: textfeatures.WeightMean, Schedule: trainjob.ScheduleConstant},
	}, nil)
	require.NoError(t, err)
	return res.ModelPath
}

// fineTuneSpec fine-tunes base on n synthetic examples (seed 3, another
// draw than the base's).
func fineTuneSpec(t *testing.T, base string, n int) training.Spec {
	t.Helper()
	dir := t.TempDir()
	all := trainingtest.Synthetic(n, 3)
	cut := n * 4 / 5
	_, err := trainingtest.WriteVersion(filepath.Join(dir, "data"), "full", 1, all[:cut], all[cut:])
	require.NoError(t, err)
	return training.Spec{
		Task: training.TaskFineTuneONNX, TrainPath: filepath.Join(dir, "data", "train.jsonl"),
		ValidationPath: filepath.Join(dir, "data", "validation.jsonl"), OutputDir: filepath.Join(dir, "out"),
		BaseModelPath: base, BaseModel: &trainjob.BaseModel{Name: "text_classifier", Version: "tj_base"},
		Labels:          []string{"ham", "spam"},
		Hyperparameters: trainjob.Hyperparameters{Epochs: 3, BatchSize: 32, LearningRate: 0.05, Seed: 7, Patience: -1},
	}
}

func accuracy(t *testing.T, model string, examples []training.Example) float64 {
	t.Helper()
	texts := make([]string, len(examples))
	for i, ex := range examples {
		texts[i] = ex.Text
	}
	probs, err := training.PredictONNX(model, texts)
	require.NoError(t, err)
	right := 0
	for i, p := range probs {
		if (p[1] > p[0]) == (examples[i].Label == "spam") {
			right++
		}
	}
	return float64(right) / float64(len(examples))
}

// TestFineTuneImprovesAndMatchesONNXRuntime fine-tunes a weak model
// (one epoch on 30 texts) on 400: its held-out accuracy rises; the export
// keeps the base model's graph with new weights, and ONNX Runtime running
// it gives GoMLX's probabilities.
func TestFineTuneImprovesAndMatchesONNXRuntime(t *testing.T) {
	t.Parallel()
	base := trainBase(t, trainingtest.Synthetic(60, 99))
	spec := fineTuneSpec(t, base, 500)
	val, err := training.ReadJSONL(spec.ValidationPath)
	require.NoError(t, err)
	before := accuracy(t, base, val)

	var events []training.Epoch
	res, err := training.Train(context.Background(), spec, func(ev training.Epoch) { events = append(events, ev) })
	require.NoError(t, err)
	for _, ev := range events {
		t.Logf("epoch %d: loss %.4f, validation accuracy %.3f", ev.Epoch, ev.TrainLoss, ev.ValidationAccuracy)
	}
	after := accuracy(t, res.ModelPath, val)
	t.Logf("held-out accuracy: base %.3f, fine-tuned %.3f", before, after)
	require.Len(t, events, 3)
	require.InDelta(t, res.ValidationAccuracy, after, 1e-9, "the exported model is the best epoch's")
	require.GreaterOrEqual(t, after, before+0.1)
	require.GreaterOrEqual(t, after, 0.95)
	require.Equal(t, &trainjob.BaseModel{Name: "text_classifier", Version: "tj_base"}, res.BaseModel)
	// The base model's featuriser, not the defaults.
	require.Equal(t, 64, res.Hyperparameters.MaxFeatures)
	require.Equal(t, 1<<12, res.Hyperparameters.Buckets)

	// Same graph, other weights.
	b, err := onnx.ReadFile(base)
	require.NoError(t, err)
	f, err := onnx.ReadFile(res.ModelPath)
	require.NoError(t, err)
	require.Equal(t, len(b.Proto.Graph.Node), len(f.Proto.Graph.Node))
	for i := range b.Proto.Graph.Node {
		require.True(t, proto.Equal(b.Proto.Graph.Node[i], f.Proto.Graph.Node[i]), "node %d", i)
	}
	require.False(t, proto.Equal(&b.Proto, &f.Proto))

	texts := []string{"", "FREE CASH winner, claim now!!!", "Agenda for tomorrow's meeting attached"}
	for _, ex := range val[:20] {
		texts = append(texts, ex.Text)
	}
	native, err := training.PredictONNX(res.ModelPath, texts)
	require.NoError(t, err)
	probs, _ := runONNXRuntime(t, spec.OutputDir, res.Hyperparameters, texts)
	for i := range texts {
		for k := range 2 {
			require.InDelta(t, native[i][k], probs[i*2+k], 1e-5, "text %d class %d", i, k)
		}
	}
}

// TestFineTuneResumeGivesSameWeights cancels a fine-tuning job after its
// first epoch and runs it again: it resumes from the checkpoint and ends
// with exactly the weights of a job never stopped.
func TestFineTuneResumeGivesSameWeights(t *testing.T) {
	t.Parallel()
	base := trainBase(t, trainingtest.Synthetic(60, 99))
	spec := fineTuneSpec(t, base, 200)
	res := cancelAndResume(t, spec)

	straight := fineTuneSpec(t, base, 200)
	want, err := training.Train(context.Background(), straight, nil)
	require.NoError(t, err)
	require.Equal(t, want.BestEpoch, res.BestEpoch)
	require.Equal(t, want.TrainLoss, res.TrainLoss)
	a, err := onnx.ReadFile(res.ModelPath)
	require.NoError(t, err)
	b, err := onnx.ReadFile(want.ModelPath)
	require.NoError(t, err)
	require.True(t, proto.Equal(&a.Proto, &b.Proto), "the resumed job's weights differ from an uninterrupted job's")
}

// TestFineTuneBadBaseModel: each unusable base model fails the job with
// an error that says what is wrong, and nothing panics.
func TestFineTuneBadBaseModel(t *testing.T) {
	t.Parallel()
	base := trainBase(t, trainingtest.Synthetic(60, 99))
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o644))
		return p
	}
	// The featuriser's ids through an operator onnx-gomlx does not
	// convert (Mod, which exports before fine-tuning existed used).
	mod := onnxbuild.Graph{
		Name: "old_classifier",
		Inputs: []onnxbuild.Value{
			{Name: "ids", Type: onnxbuild.Int64, Shape: []onnxbuild.Dim{onnxbuild.P("b"), onnxbuild.P("f")}},
			{Name: "weights", Type: onnxbuild.Float, Shape: []onnxbuild.Dim{onnxbuild.P("b"), onnxbuild.P("f")}},
		},
		Outputs: []onnxbuild.Value{
			{Name: "logits", Type: onnxbuild.Float, Shape: []onnxbuild.Dim{onnxbuild.P("b"), onnxbuild.D(2)}},
			{Name: "model_info", Type: onnxbuild.Uint8, Shape: []onnxbuild.Dim{onnxbuild.D(2)}},
		},
		Initializers: []onnxbuild.Tensor{
			onnxbuild.Int64s("buckets", nil, 16),
			{Name: "info", Type: onnxbuild.Uint8, Dims: []int64{2}, Raw: []byte("{}")},
		},
		Nodes: []onnxbuild.Node{
			{Op: "Mod", Inputs: []string{"ids", "buckets"}, Outputs: []string{"m"}},
			{Op: "Cast", Inputs: []string{"m"}, Outputs: []string{"mf"}, Attrs: []onnxbuild.Attr{onnxbuild.AttrInt("to", 1)}},
			{Op: "Mul", Inputs: []string{"mf", "weights"}, Outputs: []string{"logits"}},
			{Op: "Identity", Inputs: []string{"info"}, Outputs: []string{"model_info"}},
		},
	}
	for _, c := range []struct {
		name, path string
		labels     []string
		want       string
	}{
		{"missing", filepath.Join(dir, "nope.onnx"), nil, "no such file"},
		{"not ONNX", write("text.onnx", []byte("this is not a model\n")), nil, "not an ONNX model"},
		{"other interface", write("arith.onnx", onnxbuild.Arith()), nil, "a text classifier's are"},
		{"unsupported op", write("mod.onnx", onnxbuild.Encode(mod)), nil, `unimplemented ONNX op "Mod"`},
		{"three labels", base, []string{"ham", "spam", "phishing"}, "the number of classes must match"},
		{"other labels", base, []string{"bad", "good"}, "they must be the same labels"},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := fineTuneSpec(t, c.path, 50)
			if c.labels != nil {
				spec.Labels = c.labels
			}
			_, err := training.Train(context.Background(), spec, nil)
			require.Error(t, err)
			var be *training.BaseModelError
			require.ErrorAs(t, err, &be)
			require.Contains(t, err.Error(), c.want)
		})
	}
}

// FuzzLoadBaseModel feeds arbitrary bytes to the base model loader as a
// user's registered model: an error, never a panic.
func FuzzLoadBaseModel(f *testing.F) {
	f.Add(onnxbuild.Arith())
	f.Add(onnxbuild.Echo())
	f.Add([]byte{})
	f.Add([]byte("\x3a\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "m.onnx")
		require.NoError(t, os.WriteFile(p, data, 0o644))
		_, _ = training.PredictONNX(p, []string{"hello"})
	})
}
