// Package training trains models in the accel service, in pure Go with
// GoMLX on its simplego backend (CPU, nothing downloaded at run time), and
// exports them to ONNX for ONNX Runtime to serve (docs/training.md).
//
// A job's folder, named by the caller, holds its state:
//
//	OUT/checkpoint/   GoMLX checkpoint of the last finished epoch (weights,
//	                  optimizer moments, progress), written every epoch
//	OUT/model.onnx    the best epoch's model so far (written atomically)
//	OUT/events.jsonl  one line per finished epoch
//	OUT/result.json   written last, when the job succeeded
//
// Train called again on the same folder resumes after the last
// checkpoint, so a job survives a crash of the process that ran it.
package training

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's graph DSL reads as math this way
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/checkpoints"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/gomlx/onnx-gomlx/onnx"

	"github.com/millrace/millrace/accel/trainjob"
)

// The job's wire types live in trainjob, which the pure-Go server imports.
type (
	Spec            = trainjob.Spec
	Epoch           = trainjob.Epoch
	JobResult       = trainjob.JobResult
	ModelInfo       = trainjob.ModelInfo
	Hyperparameters = trainjob.Hyperparameters
)

// The tasks this package trains.
const (
	TaskTextClassification = trainjob.TaskTextClassification
	TaskFineTuneONNX       = trainjob.TaskFineTuneONNX
)

// Checkpoint parameters: progress saved with the weights, so both come
// back together.
const (
	paramEpoch      = "millrace_epoch"
	paramBestAcc    = "millrace_best_accuracy"
	paramBestEpoch  = "millrace_best_epoch"
	paramBadEpochs  = "millrace_bad_epochs"
	paramLastLoss   = "millrace_last_loss"
	evalBatchRows   = 256
	resultFile      = "result.json"
	eventsFile      = "events.jsonl"
	modelFile       = "model.onnx"
	checkpointDir   = "checkpoint"
	scopeEmbedding  = "embedding"
	scopeHead       = "head"
	varTable        = "table"
	varHeadWeights  = "weights"
	varHeadBias     = "bias"
	maxLabelsPerJob = 1024
)

// ErrCancelled is returned when the context ends a job; its checkpoint
// stays, so the same Spec resumes it.
var ErrCancelled = errors.New("training cancelled")

// backend is shared: simplego keeps a worker pool per backend.
var backend = sync.OnceValues(func() (backends.Backend, error) { return simplego.New("") })

// Train runs spec to the end (or to ctx's end), resuming from the
// checkpoint in spec.OutputDir if there is one. onEvent, if set, is called
// after each epoch's checkpoint is written.
func Train(ctx context.Context, spec Spec, onEvent func(Epoch)) (*JobResult, error) {
	if ferr := trainjob.ValidateSpec(spec); ferr != nil {
		return nil, ferr
	}
	if r, err := ReadResult(spec.OutputDir); err == nil {
		return r, nil // finished before a restart
	}
	train, err := ReadJSONL(spec.TrainPath)
	if err != nil {
		return nil, err
	}
	val, err := ReadJSONL(spec.ValidationPath)
	if err != nil {
		return nil, err
	}
	if len(train) == 0 || len(val) == 0 {
		return nil, errors.New("the train and validation splits must both have examples")
	}
	labels := spec.Labels
	if len(labels) == 0 {
		if labels, err = labelsOf(train, val); err != nil {
			return nil, err
		}
	}
	if len(labels) < 2 || len(labels) > maxLabelsPerJob {
		return nil, fmt.Errorf("a classifier needs between 2 and %d labels, not %d", maxLabelsPerJob, len(labels))
	}
	if err := os.MkdirAll(spec.OutputDir, 0o755); err != nil {
		return nil, err
	}
	b, err := backend()
	if err != nil {
		return nil, err
	}
	var m *model
	h := spec.Hyperparameters.Defaults()
	if spec.Task == TaskFineTuneONNX {
		// The base model fixes the featuriser and the labels' order.
		if m, err = newONNXModel(b, spec, labels); err != nil {
			return nil, err
		}
		h, labels = m.h, m.info.Labels
	} else {
		m = newModel(b, h, len(labels))
		m.info = ModelInfo{Task: spec.Task, Labels: labels, Buckets: h.Buckets, Features: h.Features()}
	}
	return m.run(ctx, spec, train, val, onEvent)
}

// run trains m on the splits, epoch after epoch, from its checkpoint.
func (m *model) run(ctx context.Context, spec Spec, train, val []Example, onEvent func(Epoch)) (*JobResult, error) {
	h, labels := m.h, m.info.Labels
	fcfg := m.info.Features
	trainEnc, err := encode(train, labels, fcfg, m.info.Buckets)
	if err != nil {
		return nil, fmt.Errorf("train split: %w", err)
	}
	valEnc, err := encode(val, labels, fcfg, m.info.Buckets)
	if err != nil {
		return nil, fmt.Errorf("validation split: %w", err)
	}

	ckpt, err := m.checkpoint(spec.OutputDir)
	if err != nil {
		return nil, err
	}
	epoch := mlctx.GetParamOr(m.ctx, paramEpoch, 0)
	bestAcc := mlctx.GetParamOr(m.ctx, paramBestAcc, -1.0)
	bestEpoch := mlctx.GetParamOr(m.ctx, paramBestEpoch, 0)
	badEpochs := mlctx.GetParamOr(m.ctx, paramBadEpochs, 0)
	lastLoss := mlctx.GetParamOr(m.ctx, paramLastLoss, math.NaN())
	stoppedEarly := false
	var examplesPerSecond float64

	for epoch < h.Epochs {
		if h.Patience > 0 && badEpochs >= h.Patience {
			stoppedEarly = true
			break
		}
		start := time.Now()
		loss, err := m.trainEpoch(ctx, trainEnc, epoch)
		if err != nil {
			return nil, err
		}
		examplesPerSecond = float64(len(trainEnc.labels)) / time.Since(start).Seconds()
		acc, err := m.accuracy(valEnc)
		if err != nil {
			return nil, err
		}
		epoch++
		best := acc > bestAcc
		if best {
			bestAcc, bestEpoch, badEpochs = acc, epoch, 0
			if err := m.export(spec.OutputDir); err != nil {
				return nil, fmt.Errorf("export: %w", err)
			}
		} else {
			badEpochs++
		}
		lastLoss = loss
		m.ctx.SetParam(paramEpoch, epoch)
		m.ctx.SetParam(paramBestAcc, bestAcc)
		m.ctx.SetParam(paramBestEpoch, bestEpoch)
		m.ctx.SetParam(paramBadEpochs, badEpochs)
		m.ctx.SetParam(paramLastLoss, lastLoss)
		if err := ckpt.Save(); err != nil {
			return nil, fmt.Errorf("checkpoint: %w", err)
		}
		ev := Epoch{
			Epoch: epoch, Epochs: h.Epochs, TrainLoss: loss, ValidationAccuracy: acc, Best: best,
			ExamplesPerSecond: examplesPerSecond, Seconds: time.Since(start).Seconds(), Time: time.Now().UTC(),
		}
		if err := appendEvent(spec.OutputDir, ev); err != nil {
			return nil, err
		}
		if onEvent != nil {
			onEvent(ev)
		}
	}
	if h.Patience > 0 && badEpochs >= h.Patience && epoch < h.Epochs {
		stoppedEarly = true
	}
	r := &JobResult{
		Task: spec.Task, ModelPath: filepath.Join(spec.OutputDir, modelFile), Labels: labels, Hyperparameters: h, BaseModel: spec.BaseModel,
		EpochsRun: epoch, BestEpoch: bestEpoch, ValidationAccuracy: bestAcc, TrainLoss: lastLoss,
		StoppedEarly: stoppedEarly, TrainExamples: len(train), ValidationExamples: len(val),
		ExamplesPerSecond: examplesPerSecond,
	}
	if err := writeJSONAtomic(filepath.Join(spec.OutputDir, resultFile), r); err != nil {
		return nil, err
	}
	return r, nil
}

// ReadResult reads a finished job's result.json.
func ReadResult(dir string) (*JobResult, error) {
	data, err := os.ReadFile(filepath.Join(dir, resultFile))
	if err != nil {
		return nil, err
	}
	var r JobResult
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// ReadEvents reads the epochs a job's folder has recorded, in order; a
// resumed epoch that was recorded twice (a crash between its event and
// its checkpoint) appears once, with its latest figures.
func ReadEvents(dir string) ([]Epoch, error) {
	f, err := os.Open(filepath.Join(dir, eventsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var events []Epoch
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev Epoch
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue // a line cut short by a crash
		}
		for len(events) > 0 && events[len(events)-1].Epoch >= ev.Epoch {
			events = events[:len(events)-1]
		}
		events = append(events, ev)
	}
	return events, sc.Err()
}

func appendEvent(dir string, ev Epoch) error {
	line, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, eventsFile), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeJSONAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data)
}

// writeFileAtomic writes beside path and renames, so a reader never sees
// half a file.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// model is the classifier's GoMLX side: its variables in ctx and the
// compiled train and predict steps. Both tasks use it: text_classification
// builds its graph here (logits), fine_tune_onnx from an imported ONNX
// model (finetune.go); they differ in how the model is exported.
type model struct {
	backend backends.Backend
	ctx     *mlctx.Context
	h       Hyperparameters
	info    ModelInfo
	classes int
	// width is the features per row of a batch; wideIDs feeds ids as
	// INT64 (an imported ONNX model's input type) rather than INT32.
	width   int
	wideIDs bool
	step    *mlctx.Exec
	predict *mlctx.Exec
	// base is the imported ONNX model (fine_tune_onnx), nil otherwise.
	base *onnx.Model
}

// checkpoint loads the job folder's checkpoint into m's context, if there
// is one, and returns the handler that saves the next.
func (m *model) checkpoint(dir string) (*checkpoints.Handler, error) {
	ckpt, err := checkpoints.Build(m.ctx).Dir(filepath.Join(dir, checkpointDir)).Keep(2).Done()
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if m.base != nil {
		if err := m.importVariables(); err != nil {
			return nil, err
		}
	}
	return ckpt, nil
}

// export writes the model as it is now to dir/model.onnx: an imported
// model with its initializers replaced by the trained values, else the
// classifier's own graph (and its weights for Predict).
func (m *model) export(dir string) error {
	if m.base != nil {
		return m.exportBase(filepath.Join(dir, modelFile))
	}
	if err := m.exportONNX(filepath.Join(dir, modelFile), m.info); err != nil {
		return err
	}
	return m.saveBest(dir, m.info)
}

func newModel(b backends.Backend, h Hyperparameters, classes int) *model {
	// Unchecked: the train and predict graphs share the variables, and
	// Predict sets them before either graph exists.
	ctx := mlctx.New().Checked(false)
	ctx.SetParam(initializers.ParamInitialSeed, h.Seed)
	ctx.SetParam(optimizers.ParamLearningRate, h.LearningRate)
	m := &model{backend: b, ctx: ctx, h: h, classes: classes, width: h.MaxFeatures}
	opt := optimizers.Adam().LearningRate(h.LearningRate).Done()
	m.step = mlctx.MustNewExec(b, ctx, func(ctx *mlctx.Context, ids, weights, labels, mask *Node) *Node {
		g := ids.Graph()
		ctx.SetTraining(g, true)
		loss := maskedCrossEntropy(m.logits(ctx, ids, weights), labels, mask)
		opt.UpdateGraph(ctx, g, loss)
		return loss
	})
	m.predict = mlctx.MustNewExec(b, ctx, func(ctx *mlctx.Context, ids, weights *Node) *Node {
		return Softmax(m.logits(ctx, ids, weights), -1)
	})
	return m
}

// logits is the model: the weighted mean of the features' embeddings (the
// weights sum to 1 per text), then a linear layer. The ONNX export
// (export.go) computes the same, operator for operator.
func (m *model) logits(ctx *mlctx.Context, ids, weights *Node) *Node {
	g := ids.Graph()
	dim := m.h.EmbeddingDim
	limit := 1 / float64(dim)
	table := ctx.In(scopeEmbedding).WithInitializer(initializers.RandomUniformFn(ctx, -limit, limit)).
		VariableWithShape(varTable, shapes.Make(dtypes.Float32, m.h.Buckets, dim)).ValueGraph(g)
	emb := Gather(table, InsertAxes(ids, -1)) // [batch, features, dim]
	bag := ReduceSum(Mul(emb, InsertAxes(weights, -1)), 1)
	head := ctx.In(scopeHead).WithInitializer(initializers.Zero)
	w := head.VariableWithShape(varHeadWeights, shapes.Make(dtypes.Float32, dim, m.classes)).ValueGraph(g)
	bias := head.VariableWithShape(varHeadBias, shapes.Make(dtypes.Float32, m.classes)).ValueGraph(g)
	return Add(MatMul(bag, w), InsertAxes(bias, 0))
}

// maskedCrossEntropy is the mean cross-entropy over the rows mask marks
// (1) as real: the last batch of an epoch is padded to the batch size so
// the step compiles once.
func maskedCrossEntropy(logits, labels, mask *Node) *Node {
	oneHot := OneHot(labels, logits.Shape().Dimensions[1], dtypes.Float32)
	ce := Neg(ReduceSum(Mul(oneHot, LogSoftmax(logits, -1)), -1))
	return Div(ReduceAllSum(Mul(ce, mask)), Max(ReduceAllSum(mask), OnesLike(ReduceAllSum(mask))))
}

// batchTensors lays rows out at the fixed width m.width.
func (m *model) batchTensors(enc encoded, rows []int, size int) (ids, weights, labels, mask *tensors.Tensor) {
	width := m.width
	idv := make([]int64, size*width)
	wv := make([]float32, size*width)
	lv := make([]int32, size)
	mv := make([]float32, size)
	for r, i := range rows {
		copy(idv[r*width:], enc.bags[i].IDs)
		copy(wv[r*width:], enc.bags[i].Weights)
		lv[r] = enc.labels[i]
		mv[r] = 1
	}
	if m.wideIDs {
		ids = tensors.FromFlatDataAndDimensions(idv, size, width)
	} else {
		narrow := make([]int32, len(idv))
		for i, id := range idv {
			narrow[i] = int32(id) // below buckets (encode reduced them)
		}
		ids = tensors.FromFlatDataAndDimensions(narrow, size, width)
	}
	return ids,
		tensors.FromFlatDataAndDimensions(wv, size, width),
		tensors.FromFlatDataAndDimensions(lv, size),
		tensors.FromFlatDataAndDimensions(mv, size)
}

// trainEpoch runs one pass over the train split in an order fixed by the
// seed and the epoch (so a resumed epoch repeats the same order) and
// returns the mean training loss.
func (m *model) trainEpoch(ctx context.Context, enc encoded, epoch int) (float64, error) {
	h := m.h
	// Adam reads its rate from this variable (created with the step's
	// graph, or here before the first step); the schedule sets it per epoch.
	optimizers.LearningRateVarWithValue(m.ctx, dtypes.Float32, h.LearningRate).SetValue(tensors.FromScalar(float32(h.LearningRateAt(epoch))))
	order := rand.New(rand.NewPCG(uint64(h.Seed), uint64(epoch))).Perm(len(enc.labels))
	var sum float64
	for start := 0; start < len(order); start += h.BatchSize {
		if ctx.Err() != nil {
			return 0, ErrCancelled
		}
		rows := order[start:min(start+h.BatchSize, len(order))]
		ids, weights, labels, mask := m.batchTensors(enc, rows, h.BatchSize)
		out, err := m.step.Exec(ids, weights, labels, mask)
		if err != nil {
			return 0, err
		}
		sum += float64(tensors.MustCopyFlatData[float32](out[0])[0]) * float64(len(rows))
		for _, t := range []*tensors.Tensor{ids, weights, labels, mask, out[0]} {
			t.FinalizeAll()
		}
	}
	return sum / float64(len(order)), nil
}

// probabilities predicts enc's examples.
func (m *model) probabilities(enc encoded) ([][]float32, error) {
	out := make([][]float32, 0, len(enc.labels))
	for start := 0; start < len(enc.labels); start += evalBatchRows {
		rows := make([]int, 0, evalBatchRows)
		for i := start; i < min(start+evalBatchRows, len(enc.labels)); i++ {
			rows = append(rows, i)
		}
		ids, weights, _, _ := m.batchTensors(enc, rows, evalBatchRows)
		res, err := m.predict.Exec(ids, weights)
		if err != nil {
			return nil, err
		}
		flat := tensors.MustCopyFlatData[float32](res[0])
		for r := range rows {
			out = append(out, flat[r*m.classes:(r+1)*m.classes])
		}
		ids.FinalizeAll()
		weights.FinalizeAll()
		res[0].FinalizeAll()
	}
	return out, nil
}

func (m *model) accuracy(enc encoded) (float64, error) {
	probs, err := m.probabilities(enc)
	if err != nil {
		return 0, err
	}
	right := 0
	for i, p := range probs {
		if argmax(p) == int(enc.labels[i]) {
			right++
		}
	}
	return float64(right) / float64(len(probs)), nil
}

func argmax(p []float32) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}
