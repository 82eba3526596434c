//go:build !wasip1

package main

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/accel/textfeatures"
	"github.com/millrace/millrace/accel/trainjob"
	"github.com/millrace/millrace/guest-sdk/millracetest"
	"github.com/millrace/millrace/guest-sdk/nn"
	"github.com/millrace/millrace/modules/internal/moduletest"
)

func TestManifest(t *testing.T) {
	t.Parallel()
	m := moduletest.Manifest(t)
	require.Equal(t, abi.Capabilities{Accel: &abi.Accel{Models: []string{"*classifier*"}}}, m.Capabilities)
}

// keywordModel stands in for the accelerator on the SDK's fake host: a
// two-label model that calls a text spam when it holds the word "free".
// The real exported model runs in the server's end-to-end test; this one
// checks the module's side of the tensor ABI (two calls, shapes, types,
// label mapping).
func keywordModel(t *testing.T) *millracetest.Model {
	info, err := json.Marshal(trainjob.ModelInfo{Task: trainjob.TaskTextClassification, Labels: []string{"ham", "spam"}, Buckets: 1 << 10, Features: textfeatures.DefaultConfig()})
	require.NoError(t, err)
	free := textfeatures.Config{WordNgrams: 1, MaxFeatures: 1}.Featurise("free").IDs[0]
	return &millracetest.Model{
		Inputs: []millracetest.TensorSpec{
			{Name: "ids", Type: abi.NNTypeI64, Shape: []int64{-1, -1}},
			{Name: "weights", Type: abi.NNTypeF32, Shape: []int64{-1, -1}},
		},
		Outputs: []millracetest.TensorSpec{
			{Name: "probabilities", Type: abi.NNTypeF32, Shape: []int64{-1, 2}},
			{Name: "logits", Type: abi.NNTypeF32, Shape: []int64{-1, 2}},
			{Name: "model_info", Type: abi.NNTypeU8, Shape: []int64{int64(len(info))}},
		},
		Run: func(in []nn.Tensor) ([]nn.Tensor, error) {
			ids, err := nn.Values[int64](in[0])
			if err != nil {
				return nil, err
			}
			rows, width := in[0].Shape[0], in[0].Shape[1]
			var probs []float32
			for r := range rows {
				spam := float32(0.1)
				for _, id := range ids[r*width : (r+1)*width] {
					if id == free {
						spam = 0.9
					}
				}
				probs = append(probs, 1-spam, spam)
			}
			logits := make([]float32, len(probs))
			for i, p := range probs {
				logits[i] = float32(math.Log(float64(p)))
			}
			return []nn.Tensor{
				nn.NewTensor([]uint32{rows, 2}, probs),
				nn.NewTensor([]uint32{rows, 2}, logits),
				nn.NewTensor([]uint32{uint32(len(info))}, info),
			}, nil
		},
	}
}

func host(t *testing.T) *millracetest.Host {
	h := millracetest.NewHost()
	h.Models = map[string]*millracetest.Model{"text_classifier": keywordModel(t)}
	return h
}

func TestClassifyOneText(t *testing.T) {
	t.Parallel()
	out, err := millracetest.Call(host(t), run, input{Text: "Get FREE money now"})
	require.NoError(t, err)
	require.Equal(t, "spam", out.Label)
	require.InDelta(t, 0.9, out.Confidence, 1e-6)
	require.InDelta(t, 0.1, out.Probabilities["ham"], 1e-6)
	require.Equal(t, "text_classifier", out.Model)
	require.Nil(t, out.Predictions)
}

func TestClassifyTexts(t *testing.T) {
	t.Parallel()
	h := host(t)
	h.SetConfig(config{Model: "text_classifier"})
	out, err := millracetest.Call(h, run, input{Texts: []string{"lunch tomorrow?", "free prize", ""}})
	require.NoError(t, err)
	require.Nil(t, out.Prediction)
	require.Len(t, out.Predictions, 3)
	require.Equal(t, []string{"ham", "spam", "ham"}, []string{out.Predictions[0].Label, out.Predictions[1].Label, out.Predictions[2].Label})
}

func TestClassifyErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   input
		want string
	}{
		{input{}, "give text"},
		{input{Text: "a", Texts: []string{"b"}}, "not both"},
		{input{Texts: []string{}}, "1 to 256"},
	} {
		_, err := millracetest.Call(host(t), run, c.in)
		require.ErrorContains(t, err, c.want)
	}
	h := host(t)
	h.SetConfig(config{Model: "spam_classifier"})
	_, err := millracetest.Call(h, run, input{Text: "x"})
	require.ErrorContains(t, err, "is it registered")
}

// notClassifier is a runner whose model_info is something else.
type notClassifier struct{}

func (notClassifier) Info(string) ([]byte, error) { return []byte(`{"task":"ocr"}`), nil }
func (notClassifier) Probabilities(string, textfeatures.Batch) ([]float32, error) {
	return nil, errors.New("unreachable")
}

func TestRefusesOtherModels(t *testing.T) {
	t.Parallel()
	_, err := classify(notClassifier{}, config{}, input{Text: "x"})
	require.ErrorContains(t, err, "not a text classifier")
}
