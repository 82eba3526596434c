package training

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/millrace/millrace/accel/onnxbuild"
)

// The exported classifier's interface (ONNX opset 17):
//
//	inputs   ids            INT64 [batch, features]  textfeatures ids (any non-negative int64)
//	         weights        FP32  [batch, features]  their weights; 0 pads a row
//	outputs  probabilities  FP32  [batch, classes]   softmax of the logits
//	         logits         FP32  [batch, classes]
//	         model_info     UINT8 [n]                ModelInfo as JSON
//
// The graph is ids mod buckets → Gather(table) → weights × embeddings
// (a batched MatMul, [batch, 1, features] × [batch, features, dim]) →
// MatMul + bias → Softmax: the GoMLX model's computation. It uses only
// operators that onnx-gomlx converts back into GoMLX (no Mod, no
// ReduceSum), so that task fine_tune_onnx can train an exported model
// again (finetune.go): the modulo is ids − (ids ÷ buckets) × buckets,
// exact for the non-negative ids the featuriser makes.
const (
	InputIDs           = "ids"
	InputWeights       = "weights"
	OutputProbablities = "probabilities"
	OutputLogits       = "logits"
	OutputModelInfo    = "model_info"
)

func (m *model) variable(scope, name string) ([]float32, error) {
	v := m.ctx.GetVariableByScopeAndName("/"+scope, name)
	if v == nil {
		return nil, fmt.Errorf("variable %s/%s is missing", scope, name)
	}
	t, err := v.Value()
	if err != nil {
		return nil, err
	}
	return tensors.CopyFlatData[float32](t)
}

// exportONNX writes the model as it is now to path, atomically.
func (m *model) exportONNX(path string, info ModelInfo) error {
	table, err := m.variable(scopeEmbedding, varTable)
	if err != nil {
		return err
	}
	w, err := m.variable(scopeHead, varHeadWeights)
	if err != nil {
		return err
	}
	bias, err := m.variable(scopeHead, varHeadBias)
	if err != nil {
		return err
	}
	infoJSON, err := json.Marshal(info)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, ClassifierONNX(table, w, bias, m.h.Buckets, m.h.EmbeddingDim, m.classes, infoJSON))
}

// ClassifierONNX encodes a classifier with the given weights (row-major
// table [buckets, dim], head [dim, classes], bias [classes]).
func ClassifierONNX(table, head, bias []float32, buckets, dim, classes int, info []byte) []byte {
	batch := []onnxbuild.Dim{onnxbuild.P("batch"), onnxbuild.P("features")}
	out := []onnxbuild.Dim{onnxbuild.P("batch"), onnxbuild.D(int64(classes))}
	g := onnxbuild.Graph{
		Name: "millrace_text_classifier",
		Inputs: []onnxbuild.Value{
			{Name: InputIDs, Type: onnxbuild.Int64, Shape: batch},
			{Name: InputWeights, Type: onnxbuild.Float, Shape: batch},
		},
		Outputs: []onnxbuild.Value{
			{Name: OutputProbablities, Type: onnxbuild.Float, Shape: out},
			{Name: OutputLogits, Type: onnxbuild.Float, Shape: out},
			{Name: OutputModelInfo, Type: onnxbuild.Uint8, Shape: []onnxbuild.Dim{onnxbuild.D(int64(len(info)))}},
		},
		Initializers: []onnxbuild.Tensor{
			onnxbuild.Int64s("buckets", nil, int64(buckets)),
			onnxbuild.Floats("table", []int64{int64(buckets), int64(dim)}, table),
			onnxbuild.Floats("head_weights", []int64{int64(dim), int64(classes)}, head),
			onnxbuild.Floats("head_bias", []int64{int64(classes)}, bias),
			onnxbuild.Int64s("axis_features", []int64{1}, 1),
			{Name: "info", Type: onnxbuild.Uint8, Dims: []int64{int64(len(info))}, Raw: info},
		},
		Nodes: []onnxbuild.Node{
			{Op: "Div", Inputs: []string{InputIDs, "buckets"}, Outputs: []string{"quotient"}},
			{Op: "Mul", Inputs: []string{"quotient", "buckets"}, Outputs: []string{"floor_multiple"}},
			{Op: "Sub", Inputs: []string{InputIDs, "floor_multiple"}, Outputs: []string{"bucket_ids"}},
			{Op: "Gather", Inputs: []string{"table", "bucket_ids"}, Outputs: []string{"embeddings"}, Attrs: []onnxbuild.Attr{onnxbuild.AttrInt("axis", 0)}},
			{Op: "Unsqueeze", Inputs: []string{InputWeights, "axis_features"}, Outputs: []string{"weights_row"}},
			{Op: "MatMul", Inputs: []string{"weights_row", "embeddings"}, Outputs: []string{"bag_row"}},
			{Op: "Squeeze", Inputs: []string{"bag_row", "axis_features"}, Outputs: []string{"bag"}},
			{Op: "MatMul", Inputs: []string{"bag", "head_weights"}, Outputs: []string{"projected"}},
			{Op: "Add", Inputs: []string{"projected", "head_bias"}, Outputs: []string{OutputLogits}},
			{Op: "Softmax", Inputs: []string{OutputLogits}, Outputs: []string{OutputProbablities}, Attrs: []onnxbuild.Attr{onnxbuild.AttrInt("axis", -1)}},
			{Op: "Identity", Inputs: []string{"info"}, Outputs: []string{OutputModelInfo}},
		},
	}
	return onnxbuild.Encode(g)
}

func floatBytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}
