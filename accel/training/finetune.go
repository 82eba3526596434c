package training

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's graph DSL reads as math this way
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/gomlx/onnx-gomlx/onnx"

	"github.com/millrace/millrace/accel/trainjob"
)

// Task fine_tune_onnx: the base model is an ONNX file with the text
// classifier's interface (export.go) — inputs ids (INT64) and weights
// (FP32), outputs logits or probabilities (FP32 [batch, classes]) and
// model_info (UINT8, the ModelInfo JSON that says how to featurise and
// which labels the classes are). onnx-gomlx turns its graph into GoMLX;
// its float initializers become the trained variables (the integer ones,
// constants such as the bucket count, stay fixed); every better epoch,
// the trained values are written back into the model's initializers and
// the model saved as model.onnx. The graph itself never changes, so the
// fine-tuned model runs wherever the base model ran.

// The outputs the loss can be computed from, in order of preference.
const (
	lossFromLogits = OutputLogits
	lossFromProbs  = OutputProbablities
)

// BaseModelError is a base model the trainer cannot fine-tune: not ONNX,
// not a text classifier's interface, an operator onnx-gomlx does not
// convert, labels that do not fit the dataset.
type BaseModelError struct{ Msg string }

func (e *BaseModelError) Error() string { return "base model: " + e.Msg }

func badBase(format string, args ...any) error {
	return &BaseModelError{Msg: fmt.Sprintf(format, args...)}
}

// loadBase parses an ONNX model and checks it has the classifier's
// interface. onnx-gomlx reports some malformed models by panicking: they
// become errors here.
func loadBase(data []byte) (base *onnx.Model, err error) {
	defer func() {
		if p := recover(); p != nil {
			base, err = nil, badBase("not a model this trainer can read: %v", p)
		}
	}()
	base, err = onnx.Parse(data)
	if err != nil {
		return nil, badBase("not an ONNX model: %v", err)
	}
	if base.Proto.Graph == nil {
		return nil, badBase("not an ONNX model: it has no graph")
	}
	names, _ := base.Inputs()
	if !slices.Equal(sortedCopy(names), []string{InputIDs, InputWeights}) {
		return nil, badBase("its inputs are %q; a text classifier's are %q (INT64) and %q (FP32), as task text_classification exports", names, InputIDs, InputWeights)
	}
	outs, _ := base.Outputs()
	if !slices.Contains(outs, OutputModelInfo) || !(slices.Contains(outs, lossFromLogits) || slices.Contains(outs, lossFromProbs)) {
		return nil, badBase("its outputs are %q; a text classifier has %q (or %q) and %q", outs, OutputLogits, OutputProbablities, OutputModelInfo)
	}
	for _, t := range base.Proto.Graph.Initializer {
		if t.GetDataLocation() != 0 { // EXTERNAL
			return nil, badBase("initializer %q is stored in an external data file; fine-tuning takes models whose weights are inside the .onnx file", t.GetName())
		}
	}
	return base, nil
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// inspectBase runs the base model once in GoMLX on an empty text: this
// converts its whole graph (an operator onnx-gomlx lacks fails here, with
// its name) and yields its model_info and class count.
func inspectBase(b backends.Backend, base *onnx.Model) (info ModelInfo, classes int, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = badBase("onnx-gomlx cannot convert it: %v", p)
		}
	}()
	ctx := mlctx.New().Checked(false)
	if err := base.VariablesToContext(ctx); err != nil {
		return ModelInfo{}, 0, badBase("reading its initializers: %v", err)
	}
	outName := scoreOutputOf(base)
	exec, err := mlctx.NewExec(b, ctx, func(ctx *mlctx.Context, ids, weights *Node) []*Node {
		return base.CallGraph(ctx, ids.Graph(), map[string]*Node{InputIDs: ids, InputWeights: weights}, outName, OutputModelInfo)
	})
	if err != nil {
		return ModelInfo{}, 0, badBase("onnx-gomlx cannot convert it: %v", err)
	}
	out, err := exec.Exec(tensors.FromFlatDataAndDimensions([]int64{0}, 1, 1), tensors.FromFlatDataAndDimensions([]float32{0}, 1, 1))
	if err != nil {
		return ModelInfo{}, 0, badBase("onnx-gomlx cannot convert it: %v", err)
	}
	if s := out[0].Shape(); s.Rank() != 2 || s.Dimensions[0] != 1 || !s.DType.IsFloat() {
		return ModelInfo{}, 0, badBase("its %s output is %s for one text; want a float [batch, classes]", outName, s)
	}
	classes = out[0].Shape().Dimensions[1]
	raw, err := tensors.CopyFlatData[uint8](out[1])
	if err != nil {
		return ModelInfo{}, 0, badBase("its %s output is %s, not UINT8 JSON", OutputModelInfo, out[1].Shape())
	}
	if err := json.Unmarshal(raw, &info); err != nil {
		return ModelInfo{}, 0, badBase("its %s is not the JSON a trained classifier carries: %v", OutputModelInfo, err)
	}
	if info.Task != TaskTextClassification {
		return ModelInfo{}, 0, badBase("its model_info says task %q; fine-tuning takes text classifiers (%q)", info.Task, TaskTextClassification)
	}
	if len(info.Labels) != classes {
		return ModelInfo{}, 0, badBase("its model_info names %d labels but it outputs %d classes", len(info.Labels), classes)
	}
	if err := info.Features.Validate(); err != nil {
		return ModelInfo{}, 0, badBase("its model_info's featuriser settings are invalid: %v", err)
	}
	if info.Buckets < 1 {
		return ModelInfo{}, 0, badBase("its model_info's buckets must be positive, not %d", info.Buckets)
	}
	return info, classes, nil
}

// scoreOutputOf is the output the loss is computed from: the logits when
// the model has them, else the probabilities.
func scoreOutputOf(base *onnx.Model) string {
	if outs, _ := base.Outputs(); slices.Contains(outs, lossFromLogits) {
		return lossFromLogits
	}
	return lossFromProbs
}

// newONNXModel imports spec's base model for fine-tuning on a dataset
// with the given labels (nil: no dataset, only predictions). Its variables are created by checkpoint, after
// the job's checkpoint (if any) is attached, so a resumed job takes the
// checkpoint's values.
func newONNXModel(b backends.Backend, spec Spec, labels []string) (*model, error) {
	if spec.BaseModelPath == "" {
		return nil, errors.New("base_model_path is required for task " + TaskFineTuneONNX)
	}
	st, err := os.Stat(spec.BaseModelPath)
	if err != nil {
		return nil, badBase("%v", err)
	}
	if st.Size() > trainjob.MaxBaseModelBytes {
		return nil, badBase("it is %d bytes; fine-tuning takes models of at most %d", st.Size(), trainjob.MaxBaseModelBytes)
	}
	data, err := os.ReadFile(spec.BaseModelPath)
	if err != nil {
		return nil, badBase("%v", err)
	}
	base, err := loadBase(data)
	if err != nil {
		return nil, err
	}
	info, classes, err := inspectBase(b, base)
	if err != nil {
		return nil, err
	}
	if labels != nil {
		if err := trainjob.CheckLabels(info.Labels, labels); err != nil {
			return nil, &BaseModelError{Msg: err.Error()}
		}
	}
	h := spec.Hyperparameters.ForBase(info)
	ctx := mlctx.New().Checked(false)
	ctx.SetParam(initializers.ParamInitialSeed, h.Seed)
	ctx.SetParam(optimizers.ParamLearningRate, h.LearningRate)
	m := &model{backend: b, ctx: ctx, h: h, info: info, classes: classes, width: info.Features.MaxFeatures, wideIDs: true, base: base}
	score := scoreOutputOf(base)
	opt := optimizers.Adam().LearningRate(h.LearningRate).Done()
	logits := func(ctx *mlctx.Context, ids, weights *Node) *Node {
		out := base.CallGraph(ctx, ids.Graph(), map[string]*Node{InputIDs: ids, InputWeights: weights}, score)[0]
		if score == lossFromProbs {
			// log p is a logit vector whose softmax is p.
			out = Log(Max(out, Scalar(ids.Graph(), out.DType(), 1e-12)))
		}
		return out
	}
	m.step, err = mlctx.NewExec(b, ctx, func(ctx *mlctx.Context, ids, weights, labels, mask *Node) *Node {
		g := ids.Graph()
		ctx.SetTraining(g, true)
		loss := maskedCrossEntropy(logits(ctx, ids, weights), labels, mask)
		opt.UpdateGraph(ctx, g, loss)
		return loss
	})
	if err != nil {
		return nil, err
	}
	m.predict, err = mlctx.NewExec(b, ctx, func(ctx *mlctx.Context, ids, weights *Node) *Node {
		if score == lossFromLogits {
			if outs, _ := base.Outputs(); slices.Contains(outs, OutputProbablities) {
				// What ONNX Runtime will answer, operator for operator.
				return base.CallGraph(ctx, ids.Graph(), map[string]*Node{InputIDs: ids, InputWeights: weights}, OutputProbablities)[0]
			}
		}
		return Softmax(logits(ctx, ids, weights), -1)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// importVariables creates the base model's initializers as variables:
// those a checkpoint holds keep the checkpoint's values. Only float
// initializers train.
func (m *model) importVariables() error {
	if err := m.base.VariablesToContext(m.ctx); err != nil {
		return badBase("reading its initializers: %v", err)
	}
	scoped := m.ctx.In(onnx.ModelScope)
	for _, t := range m.base.Proto.Graph.Initializer {
		v := scoped.GetVariable(onnx.SafeVarName(t.GetName()))
		if v == nil {
			return badBase("initializer %q did not become a variable", t.GetName())
		}
		v.Trainable = v.Shape().DType.IsFloat()
	}
	return nil
}

// exportBase writes the base model with its initializers set to the
// trained values to path, atomically.
func (m *model) exportBase(path string) error {
	if err := m.base.ContextToONNX(m.ctx); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := m.base.Write(&buf); err != nil {
		return err
	}
	return writeFileAtomic(path, buf.Bytes())
}

// PredictONNX returns the class probabilities of texts from an ONNX
// classifier (a fine-tuned job's model.onnx) computed by GoMLX through
// onnx-gomlx: the reference ONNX Runtime's answers are checked against.
func PredictONNX(path string, texts []string) ([][]float32, error) {
	b, err := backend()
	if err != nil {
		return nil, err
	}
	m, err := newONNXModel(b, Spec{Task: TaskFineTuneONNX, BaseModelPath: path}, nil)
	if err != nil {
		return nil, err
	}
	if err := m.importVariables(); err != nil {
		return nil, err
	}
	return m.probabilities(featurise(texts, m.info))
}
