package sandbox

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/accel/oip"
)

// This file holds the tensor ABI's host functions (ABI.md §8): WASI-NN
// preview1 (wasi_ephemeral_nn) and Millrace's extensions
// (millrace_nn_v1). Like host.go they are written against Memory, keep
// their state on the invocation's call, and are linked by each engine.

// Accel runs registered models for the tensor ABI. server/accel
// implements it over the accelerator service; errors wrap the Err* values
// below so the host can answer the right errno.
type Accel interface {
	// LoadModel resolves a registered model and returns its inputs and
	// outputs (loading it in the accelerator).
	LoadModel(ctx context.Context, name string) (*AccelModel, error)
	// Infer runs a model LoadModel returned on inputs, given in the
	// model's input order, and returns the outputs, in any order.
	Infer(ctx context.Context, m *AccelModel, inputs []oip.Tensor) ([]oip.Tensor, error)
}

// AccelFiles is what an Accel that serves pipeline folders adds: the
// small files of a registered pipeline (its configuration and tokenizer
// files) for millrace_nn_v1.model_file. server/accel implements it.
type AccelFiles interface {
	// ModelFile returns the file at path (slash-separated, relative)
	// inside the folder of the registered pipeline model. Errors wrap
	// ErrModelNotFound (no such pipeline or file), ErrAccelInput (a path
	// it refuses) or ErrAccelTooLarge.
	ModelFile(ctx context.Context, model, path string) ([]byte, error)
}

// modelGranted reports whether a grant of models covers name: a model it
// lists or one of its patterns matches, or a part (PIPELINE/PART) of such
// a pipeline.
func modelGranted(models []string, name string) bool {
	return abi.ModelGranted(models, name)
}

// AccelModel is a loaded model as the tensor ABI sees it.
type AccelModel struct {
	Name    string
	Inputs  []oip.TensorMetadata
	Outputs []oip.TensorMetadata
	// Handle is the Accel's own: which accelerator process loaded the
	// model, for instance. The sandbox never reads it.
	Handle any
}

// Errors an Accel wraps; anything else is a runtime_error.
var (
	ErrModelNotFound    = errors.New("model not found")                // not_found
	ErrAccelBusy        = errors.New("the accelerator is not ready")   // busy
	ErrAccelInput       = errors.New("the accelerator refused inputs") // invalid_argument
	ErrAccelUnsupported = errors.New("not supported")                  // unsupported_operation
	ErrAccelTooLarge    = errors.New("too large")                      // too_large
)

// Per-invocation bounds of ABI.md §8.5.
const (
	maxNNGraphs    = 16
	maxNNContexts  = 16
	maxNNRank      = 16
	maxNNNameBytes = 256
	maxNNPathBytes = 512
)

// nnState is the tensor ABI's part of one invocation.
type nnState struct {
	graphs   []*AccelModel
	contexts []*nnContext
	held     int64 // bytes of tensors held: inputs set and outputs kept
	// pooled are the input copies from tensorBuffers, given back by
	// release once no compute can read them.
	pooled [][]byte
}

type nnContext struct {
	graph   *AccelModel
	inputs  []*oip.Tensor // by input index; nil until set
	outputs []oip.Tensor  // by output index, after a compute; nil before

	// A background compute (compute_start): done is closed when it ends,
	// after it set result, msg and out. Only compute_wait reads them.
	done   chan struct{}
	cancel context.CancelFunc
	result abi.NNErrno
	msg    string
	out    []oip.Tensor
}

// nnFail logs why a tensor call failed, for the module's author, and
// returns errno.
func (c *call) nnFail(fn string, errno abi.NNErrno, format string, args ...any) abi.NNErrno {
	c.logs.add("warn", c.redact(fn+": "+fmt.Sprintf(format, args...)+" ("+errno.String()+")"), nil, "host", 0)
	return errno
}

func readU32(mem Memory, ptr uint32) (uint32, bool) {
	b, ok := mem.Read(ptr, 4)
	if !ok {
		return 0, false
	}
	return binary.LittleEndian.Uint32(b), true
}

// nnLoad is wasi_ephemeral_nn.load: refused, weights stay host-side.
func (c *call) nnLoad() abi.NNErrno {
	return c.nnFail(abi.FnNNLoad, abi.NNUnsupportedOperation,
		"loading a model from bytes in guest memory is not supported: register the model (PUT /v1/models/NAME), grant it, and use load_by_name")
}

func (c *call) nnLoadByName(ctx context.Context, mem Memory, namePtr, nameLen, outGraphPtr uint32) abi.NNErrno {
	const fn = abi.FnNNLoadByName
	if nameLen > maxNNNameBytes {
		return c.nnFail(fn, abi.NNInvalidArgument, "the name is %d bytes; model names have at most %d", nameLen, maxNNNameBytes)
	}
	b, ok := mem.Read(namePtr, nameLen)
	if !ok {
		return c.nnFail(fn, abi.NNInvalidArgument, "the name (%d bytes at %d) runs past the end of memory", nameLen, namePtr)
	}
	if !utf8.Valid(b) {
		return c.nnFail(fn, abi.NNInvalidArgument, "the name is not UTF-8")
	}
	name := string(b)
	granted := c.inv.Grant.Capabilities.Accel
	if granted == nil || !modelGranted(granted.Models, name) {
		var list []string
		if granted != nil {
			list = granted.Models
		}
		if c.initializing {
			return c.nnFail(fn, abi.NNNotFound, "no model can be loaded during _initialize")
		}
		return c.nnFail(fn, abi.NNNotFound, "model %q is not granted to this module (its grant lists %q: names, or patterns where '*' matches any run of characters); an admin grants models with PUT /v1/modules/{id}/versions/{version}/grants, within what the manifest requests", name, list)
	}
	if len(c.nn.graphs) >= maxNNGraphs {
		return c.nnFail(fn, abi.NNTooLarge, "an invocation may load at most %d graphs", maxNNGraphs)
	}
	if c.inv.Accel == nil {
		return c.nnFail(fn, abi.NNRuntimeError, "this server has no accelerator")
	}
	m, err := c.inv.Accel.LoadModel(ctx, name)
	if err != nil {
		errno := accelErrno(err)
		return c.nnFail(fn, errno, "model %q: %v", name, ctxCause(ctx, err))
	}
	if !mem.WriteUint32Le(outGraphPtr, uint32(len(c.nn.graphs))) {
		return c.nnFail(fn, abi.NNInvalidArgument, "out_graph_ptr %d is outside memory", outGraphPtr)
	}
	c.nn.graphs = append(c.nn.graphs, m)
	return abi.NNSuccess
}

func (c *call) nnInitExecutionContext(mem Memory, graph, outCtxPtr uint32) abi.NNErrno {
	const fn = abi.FnNNInitExecutionContext
	if int(graph) >= len(c.nn.graphs) {
		return c.nnFail(fn, abi.NNInvalidArgument, "graph %d is not a graph of this invocation", graph)
	}
	if len(c.nn.contexts) >= maxNNContexts {
		return c.nnFail(fn, abi.NNTooLarge, "an invocation may make at most %d execution contexts", maxNNContexts)
	}
	if !mem.WriteUint32Le(outCtxPtr, uint32(len(c.nn.contexts))) {
		return c.nnFail(fn, abi.NNInvalidArgument, "out_ctx_ptr %d is outside memory", outCtxPtr)
	}
	g := c.nn.graphs[graph]
	c.nn.contexts = append(c.nn.contexts, &nnContext{graph: g, inputs: make([]*oip.Tensor, len(g.Inputs))})
	return abi.NNSuccess
}

// nnContextOf finds an idle context: invalid_argument for an unknown
// handle, busy while it computes in the background.
func (c *call) nnContextOf(fn string, h uint32) (*nnContext, abi.NNErrno) {
	if int(h) >= len(c.nn.contexts) {
		return nil, c.nnFail(fn, abi.NNInvalidArgument, "execution context %d is not a context of this invocation", h)
	}
	x := c.nn.contexts[h]
	if x.done != nil {
		return nil, c.nnFail(fn, abi.NNBusy, "execution context %d is computing in the background: call compute_wait first", h)
	}
	return x, abi.NNSuccess
}

// nnTensor decodes the tensor struct at ptr (ABI.md §8.2) and copies its
// dimensions and data.
func nnTensor(mem Memory, ptr uint32) (typ abi.NNTensorType, shape []int64, data []byte, msg string) {
	raw, ok := mem.Read(ptr, abi.NNTensorSize)
	if !ok {
		return 0, nil, nil, fmt.Sprintf("the tensor struct (%d bytes at %d) runs past the end of memory", abi.NNTensorSize, ptr)
	}
	le := binary.LittleEndian
	dimsPtr, dimsLen := le.Uint32(raw[abi.NNTensorDimsPtr:]), le.Uint32(raw[abi.NNTensorDimsLen:])
	typ = abi.NNTensorType(raw[abi.NNTensorTypeOffset])
	dataPtr, dataLen := le.Uint32(raw[abi.NNTensorDataPtr:]), le.Uint32(raw[abi.NNTensorDataLen:])
	if dimsLen > maxNNRank {
		return 0, nil, nil, fmt.Sprintf("the tensor has %d dimensions; the limit is %d", dimsLen, maxNNRank)
	}
	var dims []byte
	if dimsLen > 0 { // a scalar's dims_ptr may be anything
		if dims, ok = mem.Read(dimsPtr, dimsLen*4); !ok {
			return 0, nil, nil, fmt.Sprintf("the dimensions (%d u32 at %d) run past the end of memory", dimsLen, dimsPtr)
		}
	}
	shape = make([]int64, dimsLen)
	for i := range shape {
		shape[i] = int64(le.Uint32(dims[4*i:]))
	}
	if dataLen == 0 {
		return typ, shape, []byte{}, ""
	}
	b, ok := mem.Read(dataPtr, dataLen)
	if !ok {
		return 0, nil, nil, fmt.Sprintf("the data (%d bytes at %d) runs past the end of memory", dataLen, dataPtr)
	}
	return typ, shape, b, ""
}

func (c *call) nnSetInput(mem Memory, h, index, tensorPtr uint32, ext bool) abi.NNErrno {
	fn := abi.FnNNSetInput
	if ext {
		fn = abi.NNExtModule + "." + abi.FnNNExtSetInput
	}
	x, errno := c.nnContextOf(fn, h)
	if errno != abi.NNSuccess {
		return errno
	}
	g := x.graph
	if int(index) >= len(g.Inputs) {
		return c.nnFail(fn, abi.NNInvalidArgument, "model %q has %d inputs; there is no input %d", g.Name, len(g.Inputs), index)
	}
	typ, shape, view, msg := nnTensor(mem, tensorPtr)
	if msg != "" {
		return c.nnFail(fn, abi.NNInvalidArgument, "%s", msg)
	}
	want := g.Inputs[index]
	what := fmt.Sprintf("input %d (%q) of model %q", index, want.Name, g.Name)
	if !typ.Valid() || (!ext && !typ.Standard()) {
		hint := ""
		if typ.Valid() {
			hint = ": use millrace_nn_v1.set_input for it"
		}
		return c.nnFail(fn, abi.NNInvalidArgument, "tensor type %d (%s) is not a type of this function%s", typ, typ, hint)
	}
	if typ.Datatype() != string(want.Datatype) {
		wantType, ok := abi.NNTensorTypeOf(string(want.Datatype))
		if !ok {
			return c.nnFail(fn, abi.NNUnsupportedOperation, "%s is %s, which the tensor ABI cannot carry", what, want.Datatype)
		}
		return c.nnFail(fn, abi.NNInvalidArgument, "%s is %s (type %d, %s); got type %d (%s)", what, want.Datatype, wantType, wantType, typ, typ)
	}
	if len(shape) != len(want.Shape) {
		return c.nnFail(fn, abi.NNInvalidArgument, "%s has %d dimensions %v; got %d %v", what, len(want.Shape), want.Shape, len(shape), shape)
	}
	for i, d := range want.Shape {
		if d >= 0 && shape[i] != d {
			return c.nnFail(fn, abi.NNInvalidArgument, "%s has shape %v (-1 is any size); got %v: dimension %d is %d, not %d", what, want.Shape, shape, i, shape[i], d)
		}
	}
	limit := int64(c.inv.Limits.MemoryBytes)
	n, err := oip.ElementCount(shape, limit)
	if err != nil {
		return c.nnFail(fn, abi.NNTooLarge, "%s: %v", what, err)
	}
	if size := n * int64(typ.Size()); size != int64(len(view)) {
		return c.nnFail(fn, abi.NNInvalidArgument, "%s: shape %v of %s takes %d bytes; data_len is %d", what, shape, typ, size, len(view))
	}
	var old int64
	if prev := x.inputs[index]; prev != nil {
		old = int64(len(prev.Data))
	}
	if c.nn.held-old+int64(len(view)) > limit {
		return c.nnFail(fn, abi.NNTooLarge, "%s: the tensors of this invocation would take more than limits.memory_mb (%d MiB)", what, limit>>20)
	}
	c.nn.held += int64(len(view)) - old
	// The view is valid only during this call: copy it.
	data := tensorBuffers.get(len(view))
	copy(data, view)
	c.nn.pooled = append(c.nn.pooled, data)
	x.inputs[index] = &oip.Tensor{Name: want.Name, Datatype: want.Datatype, Shape: shape, Data: data}
	return abi.NNSuccess
}

// nnReady checks that every input is set, and returns them in order.
func (c *call) nnReady(fn string, h uint32, x *nnContext) ([]oip.Tensor, abi.NNErrno) {
	in := make([]oip.Tensor, len(x.inputs))
	for i, t := range x.inputs {
		if t == nil {
			return nil, c.nnFail(fn, abi.NNInvalidArgument, "input %d (%q) of model %q in execution context %d is not set", i, x.graph.Inputs[i].Name, x.graph.Name, h)
		}
		in[i] = *t
	}
	return in, abi.NNSuccess
}

// nnInfer runs the model and orders its outputs as the metadata does. It
// touches nothing of the call, so a background compute may run it.
func nnInfer(ctx context.Context, a Accel, g *AccelModel, in []oip.Tensor) ([]oip.Tensor, abi.NNErrno, string) {
	if a == nil {
		return nil, abi.NNRuntimeError, "this server has no accelerator"
	}
	got, err := a.Infer(ctx, g, in)
	if err != nil {
		return nil, accelErrno(err), fmt.Sprintf("model %q: %v", g.Name, ctxCause(ctx, err))
	}
	out := make([]oip.Tensor, len(g.Outputs))
	for i, want := range g.Outputs {
		j := slices.IndexFunc(got, func(t oip.Tensor) bool { return t.Name == want.Name })
		if j < 0 {
			return nil, abi.NNRuntimeError, fmt.Sprintf("model %q: the accelerator returned no output %q", g.Name, want.Name)
		}
		out[i] = got[j]
	}
	return out, abi.NNSuccess, ""
}

// nnKeep replaces a context's outputs, within the invocation's budget.
func (c *call) nnKeep(fn string, x *nnContext, out []oip.Tensor) abi.NNErrno {
	var size, old int64
	for _, t := range out {
		size += int64(len(t.Data))
	}
	for _, t := range x.outputs {
		old += int64(len(t.Data))
	}
	c.nn.held -= old
	x.outputs = nil
	if limit := int64(c.inv.Limits.MemoryBytes); c.nn.held+size > limit {
		return c.nnFail(fn, abi.NNTooLarge, "the outputs of model %q (%d bytes) would take the tensors of this invocation past limits.memory_mb (%d MiB)", x.graph.Name, size, limit>>20)
	}
	c.nn.held += size
	x.outputs = out
	return abi.NNSuccess
}

func (c *call) nnCompute(ctx context.Context, h uint32) abi.NNErrno {
	const fn = abi.FnNNCompute
	x, errno := c.nnContextOf(fn, h)
	if errno != abi.NNSuccess {
		return errno
	}
	in, errno := c.nnReady(fn, h, x)
	if errno != abi.NNSuccess {
		return errno
	}
	out, errno, msg := nnInfer(ctx, c.inv.Accel, x.graph, in)
	if errno != abi.NNSuccess {
		return c.nnFail(fn, errno, "%s", msg)
	}
	return c.nnKeep(fn, x, out)
}

// nnOutput finds output index of a computed context.
func (c *call) nnOutput(fn string, h, index uint32) (*oip.Tensor, abi.NNErrno) {
	x, errno := c.nnContextOf(fn, h)
	if errno != abi.NNSuccess {
		return nil, errno
	}
	if x.outputs == nil {
		return nil, c.nnFail(fn, abi.NNInvalidArgument, "execution context %d has no outputs: compute first", h)
	}
	if int(index) >= len(x.outputs) {
		return nil, c.nnFail(fn, abi.NNInvalidArgument, "model %q has %d outputs; there is no output %d", x.graph.Name, len(x.outputs), index)
	}
	return &x.outputs[index], abi.NNSuccess
}

func (c *call) nnGetOutput(mem Memory, h, index, bufPtr, bufMax, outWrittenPtr uint32) abi.NNErrno {
	const fn = abi.FnNNGetOutput
	t, errno := c.nnOutput(fn, h, index)
	if errno != abi.NNSuccess {
		return errno
	}
	if uint64(len(t.Data)) > uint64(bufMax) {
		mem.WriteUint32Le(outWrittenPtr, uint32(min(uint64(len(t.Data)), 1<<32-1)))
		return c.nnFail(fn, abi.NNTooLarge, "output %d (%q) is %d bytes; the buffer holds %d", index, t.Name, len(t.Data), bufMax)
	}
	if !mem.Write(bufPtr, t.Data) || !mem.WriteUint32Le(outWrittenPtr, uint32(len(t.Data))) {
		return c.nnFail(fn, abi.NNInvalidArgument, "the buffer (%d bytes at %d) or out_written_ptr %d is outside memory", len(t.Data), bufPtr, outWrittenPtr)
	}
	return abi.NNSuccess
}

func (c *call) nnOutputShape(mem Memory, h, index, dimsPtr, dimsMax, outRankPtr uint32) abi.NNErrno {
	const fn = abi.NNExtModule + "." + abi.FnNNExtOutputShape
	t, errno := c.nnOutput(fn, h, index)
	if errno != abi.NNSuccess {
		return errno
	}
	if !mem.WriteUint32Le(outRankPtr, uint32(len(t.Shape))) {
		return c.nnFail(fn, abi.NNInvalidArgument, "out_rank_ptr %d is outside memory", outRankPtr)
	}
	if uint64(len(t.Shape)) > uint64(dimsMax) {
		return abi.NNTooLarge // the documented way to learn the rank: not worth a log record
	}
	dims := make([]byte, 4*len(t.Shape))
	for i, d := range t.Shape {
		if d < 0 || d > 1<<32-1 {
			return c.nnFail(fn, abi.NNTooLarge, "dimension %d of output %d is %d, which a u32 cannot hold", i, index, d)
		}
		binary.LittleEndian.PutUint32(dims[4*i:], uint32(d))
	}
	if !mem.Write(dimsPtr, dims) {
		return c.nnFail(fn, abi.NNInvalidArgument, "the dimensions (%d u32 at %d) run past the end of memory", len(t.Shape), dimsPtr)
	}
	return abi.NNSuccess
}

func (c *call) nnOutputType(mem Memory, h, index, outTypePtr uint32) abi.NNErrno {
	const fn = abi.NNExtModule + "." + abi.FnNNExtOutputType
	t, errno := c.nnOutput(fn, h, index)
	if errno != abi.NNSuccess {
		return errno
	}
	typ, ok := abi.NNTensorTypeOf(string(t.Datatype))
	if !ok {
		return c.nnFail(fn, abi.NNUnsupportedOperation, "output %d (%q) is %s, which the tensor ABI cannot carry", index, t.Name, t.Datatype)
	}
	if !mem.WriteUint32Le(outTypePtr, uint32(typ)) {
		return c.nnFail(fn, abi.NNInvalidArgument, "out_type_ptr %d is outside memory", outTypePtr)
	}
	return abi.NNSuccess
}

func (c *call) nnComputeStart(ctx context.Context, h uint32) abi.NNErrno {
	const fn = abi.NNExtModule + "." + abi.FnNNExtComputeStart
	x, errno := c.nnContextOf(fn, h)
	if errno != abi.NNSuccess {
		return errno
	}
	in, errno := c.nnReady(fn, h, x)
	if errno != abi.NNSuccess {
		return errno
	}
	// The compute outlives this host call but not the invocation: ctx
	// ends when the invocation does, and release waits for the goroutine.
	bg, cancel := context.WithCancel(ctx)
	x.done, x.cancel = make(chan struct{}), cancel
	accel, g, done := c.inv.Accel, x.graph, x.done
	go func() {
		defer close(done)
		x.out, x.result, x.msg = nnInfer(bg, accel, g, in)
	}()
	return abi.NNSuccess
}

func (c *call) nnComputeWait(ctx context.Context, h, timeoutMS uint32) abi.NNErrno {
	const fn = abi.NNExtModule + "." + abi.FnNNExtComputeWait
	if int(h) >= len(c.nn.contexts) {
		return c.nnFail(fn, abi.NNInvalidArgument, "execution context %d is not a context of this invocation", h)
	}
	x := c.nn.contexts[h]
	if x.done == nil {
		return c.nnFail(fn, abi.NNInvalidArgument, "execution context %d has no background compute: call compute_start first", h)
	}
	select {
	case <-x.done:
	default:
		if timeoutMS == 0 {
			return abi.NNBusy
		}
		t := time.NewTimer(time.Duration(timeoutMS) * time.Millisecond)
		defer t.Stop()
		select {
		case <-x.done:
		case <-t.C:
			return abi.NNBusy
		case <-ctx.Done():
			return c.nnFail(fn, abi.NNRuntimeError, "the invocation's deadline passed while waiting")
		}
	}
	x.cancel()
	out, result, msg := x.out, x.result, x.msg
	x.done, x.cancel, x.out, x.msg = nil, nil, nil, ""
	if result != abi.NNSuccess {
		return c.nnFail(fn, result, "%s", msg)
	}
	return c.nnKeep(fn, x, out)
}

// nnModelFile is millrace_nn_v1.model_file: a small file of a granted
// pipeline, copied into the guest's buffer as get_output copies outputs.
func (c *call) nnModelFile(ctx context.Context, mem Memory, namePtr, nameLen, pathPtr, pathLen, bufPtr, bufMax, outWrittenPtr uint32) abi.NNErrno {
	const fn = abi.NNExtModule + "." + abi.FnNNExtModelFile
	if nameLen > maxNNNameBytes || pathLen > maxNNPathBytes {
		return c.nnFail(fn, abi.NNInvalidArgument, "the name is %d bytes and the path %d; the limits are %d and %d", nameLen, pathLen, maxNNNameBytes, maxNNPathBytes)
	}
	nb, ok := mem.Read(namePtr, nameLen)
	if !ok {
		return c.nnFail(fn, abi.NNInvalidArgument, "the name (%d bytes at %d) runs past the end of memory", nameLen, namePtr)
	}
	pb, ok := mem.Read(pathPtr, pathLen)
	if !ok {
		return c.nnFail(fn, abi.NNInvalidArgument, "the path (%d bytes at %d) runs past the end of memory", pathLen, pathPtr)
	}
	if !utf8.Valid(nb) || !utf8.Valid(pb) {
		return c.nnFail(fn, abi.NNInvalidArgument, "the name or the path is not UTF-8")
	}
	name, path := string(nb), string(pb)
	granted := c.inv.Grant.Capabilities.Accel
	if granted == nil || !slices.ContainsFunc(granted.Models, func(g string) bool { return abi.MatchModel(g, name) }) {
		if c.initializing {
			return c.nnFail(fn, abi.NNNotFound, "no model file can be read during _initialize")
		}
		return c.nnFail(fn, abi.NNNotFound, "model %q is not granted to this module", name)
	}
	files, ok := c.inv.Accel.(AccelFiles)
	if !ok {
		return c.nnFail(fn, abi.NNUnsupportedOperation, "this server's accelerator serves no model files")
	}
	data, err := files.ModelFile(ctx, name, path)
	if err != nil {
		return c.nnFail(fn, accelErrno(err), "model %q, file %q: %v", name, path, ctxCause(ctx, err))
	}
	return c.nnCopyOut(fn, mem, data, bufPtr, bufMax, outWrittenPtr)
}

// nnCopyOut copies data to the guest's buffer and writes its length, or
// answers too_large with the length needed, as get_output does.
func (c *call) nnCopyOut(fn string, mem Memory, data []byte, bufPtr, bufMax, outWrittenPtr uint32) abi.NNErrno {
	if uint64(len(data)) > uint64(bufMax) {
		if !mem.WriteUint32Le(outWrittenPtr, uint32(min(uint64(len(data)), 1<<32-1))) {
			return c.nnFail(fn, abi.NNInvalidArgument, "out_written_ptr %d is outside memory", outWrittenPtr)
		}
		return abi.NNTooLarge // the documented way to learn the size: not worth a log record
	}
	if !mem.Write(bufPtr, data) || !mem.WriteUint32Le(outWrittenPtr, uint32(len(data))) {
		return c.nnFail(fn, abi.NNInvalidArgument, "the buffer (%d bytes at %d) or out_written_ptr %d is outside memory", len(data), bufPtr, outWrittenPtr)
	}
	return abi.NNSuccess
}

// GraphMetadata is what graph_metadata writes: a loaded model's inputs and
// outputs, in the order set_input and get_output number them.
type GraphMetadata struct {
	Name    string        `json:"name"`
	Inputs  []GraphTensor `json:"inputs"`
	Outputs []GraphTensor `json:"outputs"`
}

// GraphTensor is one input or output of a graph.
type GraphTensor struct {
	Name string `json:"name"`
	// Type is the tensor ABI's type name (f32, i64, …; ABI.md §8.1), or
	// empty when the ABI cannot carry the datatype.
	Type     string  `json:"type"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"` // -1: dynamic
}

func graphTensors(ts []oip.TensorMetadata) []GraphTensor {
	out := make([]GraphTensor, len(ts))
	for i, t := range ts {
		out[i] = GraphTensor{Name: t.Name, Datatype: string(t.Datatype), Shape: t.Shape}
		if out[i].Shape == nil {
			out[i].Shape = []int64{}
		}
		if typ, ok := abi.NNTensorTypeOf(string(t.Datatype)); ok {
			out[i].Type = typ.String()
		}
	}
	return out
}

// nnGraphMetadata is millrace_nn_v1.graph_metadata: a loaded graph's
// inputs and outputs as JSON.
func (c *call) nnGraphMetadata(mem Memory, graph, bufPtr, bufMax, outWrittenPtr uint32) abi.NNErrno {
	const fn = abi.NNExtModule + "." + abi.FnNNExtGraphMetadata
	if int(graph) >= len(c.nn.graphs) {
		return c.nnFail(fn, abi.NNInvalidArgument, "graph %d is not a graph of this invocation", graph)
	}
	g := c.nn.graphs[graph]
	data, err := json.Marshal(GraphMetadata{Name: g.Name, Inputs: graphTensors(g.Inputs), Outputs: graphTensors(g.Outputs)})
	if err != nil {
		return c.nnFail(fn, abi.NNRuntimeError, "%v", err)
	}
	return c.nnCopyOut(fn, mem, data, bufPtr, bufMax, outWrittenPtr)
}

// release ends what an invocation left running on the host: background
// computes are canceled and waited for. Engines call it once the guest
// has returned.
func (c *call) release() {
	for _, x := range c.nn.contexts {
		if x.done != nil {
			x.cancel()
			<-x.done
			x.done = nil
		}
	}
	for _, b := range c.nn.pooled {
		tensorBuffers.put(b)
	}
	c.nn.pooled = nil
}

// maxNNParams is the most parameters a tensor ABI function takes
// (model_file's seven).
const maxNNParams = 8

// nnFunc is one tensor ABI host function as every engine links it: its
// name, its parameter names (every one an i32; the result is an i32
// errno) and how it calls the code above.
type nnFunc struct {
	name   string
	params []string
	fn     func(ctx context.Context, c *call, mem Memory, p []uint32) abi.NNErrno
}

var nnFuncs = map[string][]nnFunc{
	abi.NNModule: {
		{abi.FnNNLoad, []string{"builders_ptr", "builders_len", "encoding", "target", "out_graph_ptr"},
			func(_ context.Context, c *call, _ Memory, _ []uint32) abi.NNErrno { return c.nnLoad() }},
		{abi.FnNNLoadByName, []string{"name_ptr", "name_len", "out_graph_ptr"},
			func(ctx context.Context, c *call, m Memory, p []uint32) abi.NNErrno {
				return c.nnLoadByName(ctx, m, p[0], p[1], p[2])
			}},
		{abi.FnNNInitExecutionContext, []string{"graph", "out_ctx_ptr"},
			func(_ context.Context, c *call, m Memory, p []uint32) abi.NNErrno {
				return c.nnInitExecutionContext(m, p[0], p[1])
			}},
		{abi.FnNNSetInput, []string{"ctx", "index", "tensor_ptr"},
			func(_ context.Context, c *call, m Memory, p []uint32) abi.NNErrno {
				return c.nnSetInput(m, p[0], p[1], p[2], false)
			}},
		{abi.FnNNCompute, []string{"ctx"},
			func(ctx context.Context, c *call, _ Memory, p []uint32) abi.NNErrno { return c.nnCompute(ctx, p[0]) }},
		{abi.FnNNGetOutput, []string{"ctx", "index", "out_buf_ptr", "out_buf_max", "out_written_ptr"},
			func(_ context.Context, c *call, m Memory, p []uint32) abi.NNErrno {
				return c.nnGetOutput(m, p[0], p[1], p[2], p[3], p[4])
			}},
	},
	abi.NNExtModule: {
		{abi.FnNNExtSetInput, []string{"ctx", "index", "tensor_ptr"},
			func(_ context.Context, c *call, m Memory, p []uint32) abi.NNErrno {
				return c.nnSetInput(m, p[0], p[1], p[2], true)
			}},
		{abi.FnNNExtOutputShape, []string{"ctx", "index", "dims_ptr", "dims_max", "out_rank_ptr"},
			func(_ context.Context, c *call, m Memory, p []uint32) abi.NNErrno {
				return c.nnOutputShape(m, p[0], p[1], p[2], p[3], p[4])
			}},
		{abi.FnNNExtOutputType, []string{"ctx", "index", "out_type_ptr"},
			func(_ context.Context, c *call, m Memory, p []uint32) abi.NNErrno {
				return c.nnOutputType(m, p[0], p[1], p[2])
			}},
		{abi.FnNNExtComputeStart, []string{"ctx"},
			func(ctx context.Context, c *call, _ Memory, p []uint32) abi.NNErrno {
				return c.nnComputeStart(ctx, p[0])
			}},
		{abi.FnNNExtComputeWait, []string{"ctx", "timeout_ms"},
			func(ctx context.Context, c *call, _ Memory, p []uint32) abi.NNErrno {
				return c.nnComputeWait(ctx, p[0], p[1])
			}},
		{abi.FnNNExtModelFile, []string{"name_ptr", "name_len", "path_ptr", "path_len", "buf_ptr", "buf_max", "out_written_ptr"},
			func(ctx context.Context, c *call, m Memory, p []uint32) abi.NNErrno {
				return c.nnModelFile(ctx, m, p[0], p[1], p[2], p[3], p[4], p[5], p[6])
			}},
		{abi.FnNNExtGraphMetadata, []string{"graph", "buf_ptr", "buf_max", "out_written_ptr"},
			func(_ context.Context, c *call, m Memory, p []uint32) abi.NNErrno {
				return c.nnGraphMetadata(m, p[0], p[1], p[2], p[3])
			}},
	},
}

// accelErrno maps an Accel error to the errno of ABI.md §8.1.
func accelErrno(err error) abi.NNErrno {
	switch {
	case errors.Is(err, ErrModelNotFound):
		return abi.NNNotFound
	case errors.Is(err, ErrAccelInput):
		return abi.NNInvalidArgument
	case errors.Is(err, ErrAccelUnsupported):
		return abi.NNUnsupportedOperation
	case errors.Is(err, ErrAccelTooLarge):
		return abi.NNTooLarge
	case errors.Is(err, ErrAccelBusy):
		return abi.NNBusy
	}
	return abi.NNRuntimeError
}

// ctxCause words an error that the end of the invocation caused as such.
func ctxCause(ctx context.Context, err error) string {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "the invocation's deadline passed before the accelerator answered"
	case ctx.Err() != nil:
		return "the invocation was canceled before the accelerator answered"
	}
	return err.Error()
}
