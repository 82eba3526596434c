// Package nn runs models on the server's accelerator from a Millrace
// module: typed wrappers over the tensor ABI of ABI.md §8, WASI-NN
// preview1 (wasi_ephemeral_nn) and Millrace's extensions
// (millrace_nn_v1).
//
//	g, err := nn.LoadByName("arith")            // a model the grant lists
//	ctx, err := g.NewExecutionContext()
//	err = ctx.SetInput(0, nn.NewTensor([]uint32{1, 3}, []float32{1, 2, 3}))
//	err = ctx.SetInput(1, nn.NewTensor([]uint32{1, 3}, []float32{4, 5, 6}))
//	err = ctx.Compute()
//	out, err := ctx.Output(0)                   // shape and type included
//	sum, err := nn.Values[float32](out)
//
// Inputs and outputs are numbered in the order the model's metadata lists
// them (GET /v1/models/{name}). The module's manifest must request the
// model ("capabilities": {"accel": {"models": ["arith"]}}) and an admin
// must grant it. Errors wrap an abi.NNErrno, so errors.Is(err,
// abi.NNNotFound) works; the host also logs why each call failed.
//
// Natively (go test), the fake host of package millracetest serves
// models written in Go (millracetest.Host.Models).
package nn

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/guest-sdk/internal/hostcall"
)

// Error is a failed tensor ABI call: the function and its errno.
type Error struct {
	Func  string // e.g. "wasi_ephemeral_nn.set_input"
	Errno abi.NNErrno
}

func (e *Error) Error() string { return e.Func + ": " + e.Errno.String() }

// Unwrap returns the errno, for errors.Is.
func (e *Error) Unwrap() error { return e.Errno }

func check(module, fn string, errno abi.NNErrno) error {
	if errno == abi.NNSuccess {
		return nil
	}
	return &Error{Func: module + "." + fn, Errno: errno}
}

// Tensor is a tensor: its element type, dimensions and data (row-major,
// little-endian, Type.Size() bytes per element).
type Tensor struct {
	Type  abi.NNTensorType
	Shape []uint32
	Data  []byte
}

// Element is a Go type with a tensor type. FP16 and BF16 tensors are made
// from their bits with NewRaw.
type Element interface {
	float32 | float64 | uint8 | int8 | uint16 | int16 | int32 | uint32 | int64 | uint64 | bool
}

// TypeOf is the tensor type of the Go element type T (uint16 is u16).
func TypeOf[T Element]() abi.NNTensorType {
	var zero T
	switch any(zero).(type) {
	case float32:
		return abi.NNTypeF32
	case float64:
		return abi.NNTypeF64
	case uint8:
		return abi.NNTypeU8
	case int8:
		return abi.NNTypeI8
	case uint16:
		return abi.NNTypeU16
	case int16:
		return abi.NNTypeI16
	case int32:
		return abi.NNTypeI32
	case uint32:
		return abi.NNTypeU32
	case int64:
		return abi.NNTypeI64
	case uint64:
		return abi.NNTypeU64
	default:
		return abi.NNTypeBool
	}
}

// NewTensor makes a tensor of values, copied.
func NewTensor[T Element](shape []uint32, values []T) Tensor {
	return Tensor{Type: TypeOf[T](), Shape: append([]uint32(nil), shape...), Data: append([]byte(nil), bytesOf(values)...)}
}

// NewRaw makes a tensor of the 16-bit types (abi.NNTypeF16 or
// abi.NNTypeBF16) from the elements' bits.
func NewRaw(typ abi.NNTensorType, shape []uint32, bits []uint16) Tensor {
	return Tensor{Type: typ, Shape: append([]uint32(nil), shape...), Data: append([]byte(nil), bytesOf(bits)...)}
}

// Values returns a copy of t's elements as T, which must match its type
// (uint16 also reads f16 and bf16 tensors' bits).
func Values[T Element](t Tensor) ([]T, error) {
	view, err := View[T](t)
	if err != nil {
		return nil, err
	}
	return append(make([]T, 0, len(view)), view...), nil
}

// View returns t's elements as T without copying: the slice shares t's
// memory, so it is valid as long as t.Data is and changes with it. Use it
// to read a large output once (a sum, a threshold) where Values would
// copy megabytes first. T must match t's type as for Values.
func View[T Element](t Tensor) ([]T, error) {
	want := TypeOf[T]()
	if t.Type != want && !(want == abi.NNTypeU16 && (t.Type == abi.NNTypeF16 || t.Type == abi.NNTypeBF16)) {
		return nil, fmt.Errorf("nn: the tensor is %s, not %s", t.Type, want)
	}
	var zero T
	size := int(unsafe.Sizeof(zero))
	if len(t.Data)%size != 0 {
		return nil, fmt.Errorf("nn: %d bytes is not a whole number of %s elements", len(t.Data), t.Type)
	}
	if len(t.Data) == 0 {
		return nil, nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&t.Data[0])), len(t.Data)/size), nil
}

// bytesOf views values as bytes; WebAssembly is little-endian, as tensor
// data is.
func bytesOf[T Element | uint16](values []T) []byte {
	if len(values) == 0 {
		return nil
	}
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(&values[0])), len(values)*int(unsafe.Sizeof(zero)))
}

// Graph is a loaded model. It is valid for the rest of the invocation.
type Graph uint32

// LoadByName loads the model registered as name. It fails with
// abi.NNNotFound when the model is not granted or not registered, and
// abi.NNBusy when the accelerator is not ready.
func LoadByName(name string) (Graph, error) {
	var g uint32
	err := check(abi.NNModule, abi.FnNNLoadByName, hostcall.NNLoadByName(name, &g))
	return Graph(g), err
}

// Load is WASI-NN's load from bytes, which Millrace refuses
// (abi.NNUnsupportedOperation): weights stay on the server. It is here
// for completeness; use LoadByName.
func Load(builders [][]byte, encoding abi.NNGraphEncoding, target abi.NNExecutionTarget) (Graph, error) {
	var g uint32
	err := check(abi.NNModule, abi.FnNNLoad, hostcall.NNLoad(builders, encoding, target, &g))
	return Graph(g), err
}

// ExecutionContext holds one run's inputs and outputs. Contexts of one
// graph are independent.
type ExecutionContext uint32

// NewExecutionContext makes an execution context of the graph.
func (g Graph) NewExecutionContext() (ExecutionContext, error) {
	var c uint32
	err := check(abi.NNModule, abi.FnNNInitExecutionContext, hostcall.NNInitExecutionContext(uint32(g), &c))
	return ExecutionContext(c), err
}

// SetInput sets input number index. WASI-NN's types go through
// wasi_ephemeral_nn.set_input, the others through the extension's.
func (c ExecutionContext) SetInput(index int, t Tensor) error {
	ht := hostcall.Tensor{Dims: t.Shape, Type: t.Type, Data: t.Data}
	if t.Type.Standard() {
		return check(abi.NNModule, abi.FnNNSetInput, hostcall.NNSetInput(uint32(c), uint32(index), &ht, false))
	}
	return check(abi.NNExtModule, abi.FnNNExtSetInput, hostcall.NNSetInput(uint32(c), uint32(index), &ht, true))
}

// Compute runs the model on the inputs set, until the outputs are back.
func (c ExecutionContext) Compute() error {
	return check(abi.NNModule, abi.FnNNCompute, hostcall.NNCompute(uint32(c)))
}

// GetOutput copies output number index into buf and returns its length
// (WASI-NN's get_output). When buf is too small it fails with
// abi.NNTooLarge and returns the length needed.
func (c ExecutionContext) GetOutput(index int, buf []byte) (int, error) {
	var n uint32
	err := check(abi.NNModule, abi.FnNNGetOutput, hostcall.NNGetOutput(uint32(c), uint32(index), buf, &n))
	return int(n), err
}

// OutputShape returns the dimensions of output number index (an
// extension).
func (c ExecutionContext) OutputShape(index int) ([]uint32, error) {
	var rank uint32
	errno := hostcall.NNOutputShape(uint32(c), uint32(index), nil, &rank)
	if errno != abi.NNSuccess && errno != abi.NNTooLarge {
		return nil, check(abi.NNExtModule, abi.FnNNExtOutputShape, errno)
	}
	dims := make([]uint32, rank)
	if err := check(abi.NNExtModule, abi.FnNNExtOutputShape, hostcall.NNOutputShape(uint32(c), uint32(index), dims, &rank)); err != nil {
		return nil, err
	}
	return dims, nil
}

// OutputType returns the element type of output number index (an
// extension).
func (c ExecutionContext) OutputType(index int) (abi.NNTensorType, error) {
	var t uint32
	err := check(abi.NNExtModule, abi.FnNNExtOutputType, hostcall.NNOutputType(uint32(c), uint32(index), &t))
	return abi.NNTensorType(t), err
}

// Output returns output number index whole: type, shape and data.
func (c ExecutionContext) Output(index int) (Tensor, error) {
	typ, err := c.OutputType(index)
	if err != nil {
		return Tensor{}, err
	}
	shape, err := c.OutputShape(index)
	if err != nil {
		return Tensor{}, err
	}
	n := typ.Size()
	for _, d := range shape {
		n *= int(d)
	}
	buf := make([]byte, n)
	got, err := c.GetOutput(index, buf)
	if err != nil {
		return Tensor{}, err
	}
	return Tensor{Type: typ, Shape: shape, Data: buf[:got]}, nil
}

// StartCompute starts the computation in the background (an extension):
// the module may use other contexts, or report progress, meanwhile. Wait
// for it with Wait.
func (c ExecutionContext) StartCompute() error {
	return check(abi.NNExtModule, abi.FnNNExtComputeStart, hostcall.NNComputeStart(uint32(c)))
}

// ErrRunning is Wait's answer while the background compute still runs.
var ErrRunning = errors.New("nn: the compute is still running")

// Wait waits up to timeout for the compute StartCompute began. It returns
// ErrRunning if it still runs, else the compute's result.
func (c ExecutionContext) Wait(timeout time.Duration) error {
	ms := uint32(min(max(timeout.Milliseconds(), 0), 1<<32-1))
	errno := hostcall.NNComputeWait(uint32(c), ms)
	if errno == abi.NNBusy {
		return ErrRunning
	}
	return check(abi.NNExtModule, abi.FnNNExtComputeWait, errno)
}

// ModelFile returns a small file (a .json or .txt, at most 4 MiB) of the
// registered pipeline name, which the grant must list: path is relative
// to the pipeline's folder, such as "scheduler/scheduler_config.json" (an
// extension, ABI.md §8.4). A missing file is abi.NNNotFound.
func ModelFile(name, path string) ([]byte, error) {
	return readSized(abi.FnNNExtModelFile, 64<<10, func(buf []byte, n *uint32) abi.NNErrno {
		return hostcall.NNModelFile(name, path, buf, n)
	})
}

// TensorInfo describes one input or output of a graph.
type TensorInfo struct {
	Name string `json:"name"`
	// Type is the tensor type's name (f32, i64, f16, …); empty when the
	// ABI cannot carry the model's datatype.
	Type     string  `json:"type"`
	Datatype string  `json:"datatype"` // Open Inference Protocol: FP32, …
	Shape    []int64 `json:"shape"`    // -1 is dynamic
}

// Metadata is a graph's inputs and outputs, numbered as SetInput and
// Output number them.
type Metadata struct {
	Name    string       `json:"name"`
	Inputs  []TensorInfo `json:"inputs"`
	Outputs []TensorInfo `json:"outputs"`
}

// Metadata returns the graph's inputs and outputs (an extension).
func (g Graph) Metadata() (Metadata, error) {
	var md Metadata
	doc, err := readSized(abi.FnNNExtGraphMetadata, 4<<10, func(buf []byte, n *uint32) abi.NNErrno {
		return hostcall.NNGraphMetadata(uint32(g), buf, n)
	})
	if err != nil {
		return md, err
	}
	if err := json.Unmarshal(doc, &md); err != nil {
		return md, fmt.Errorf("nn: graph metadata: %w", err)
	}
	return md, nil
}

// readSized calls a function that copies into a buffer, growing the
// buffer once to the size it asks for.
func readSized(fn string, guess int, call func(buf []byte, n *uint32) abi.NNErrno) ([]byte, error) {
	buf := make([]byte, guess)
	var n uint32
	errno := call(buf, &n)
	if errno == abi.NNTooLarge && int(n) > len(buf) {
		buf = make([]byte, n)
		errno = call(buf, &n)
	}
	if err := check(abi.NNExtModule, fn, errno); err != nil {
		return nil, err
	}
	return buf[:n], nil
}
