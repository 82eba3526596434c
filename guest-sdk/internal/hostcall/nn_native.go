//go:build !wasip1

package hostcall

import (
	"time"

	"github.com/millrace/millrace/abi"
)

// NNHost is the tensor ABI of a fake host. A Host that implements it
// serves wasi_ephemeral_nn and millrace_nn_v1 natively; this package
// turns its outputs into get_output, output_shape and output_type
// answers as the real host does. Without it every call answers
// runtime_error.
type NNHost interface {
	NNLoadByName(name string) (graph uint32, errno abi.NNErrno)
	NNInitExecutionContext(graph uint32) (ctx uint32, errno abi.NNErrno)
	NNSetInput(ctx, index uint32, t Tensor, ext bool) abi.NNErrno
	NNCompute(ctx uint32) abi.NNErrno
	// NNOutput returns output index of ctx's last compute.
	NNOutput(ctx, index uint32) (Tensor, abi.NNErrno)
	NNComputeStart(ctx uint32) abi.NNErrno
	NNComputeWait(ctx uint32, timeout time.Duration) abi.NNErrno
}

// nnHost returns the installed host's tensor ABI; the caller holds mu.
func nnHost() (NNHost, bool) {
	h, ok := host().(NNHost)
	return h, ok
}

// NNLoad is refused, as by the real host: weights stay host-side.
func NNLoad(builders [][]byte, encoding abi.NNGraphEncoding, target abi.NNExecutionTarget, graph *uint32) abi.NNErrno {
	mu.Lock()
	defer mu.Unlock()
	host()
	return abi.NNUnsupportedOperation
}

// NNLoadByName loads the registered model name.
func NNLoadByName(name string, graph *uint32) abi.NNErrno {
	mu.Lock()
	defer mu.Unlock()
	h, ok := nnHost()
	if !ok {
		return abi.NNRuntimeError
	}
	g, errno := h.NNLoadByName(name)
	if errno == abi.NNSuccess {
		*graph = g
	}
	return errno
}

// NNInitExecutionContext makes an execution context of graph.
func NNInitExecutionContext(graph uint32, ctx *uint32) abi.NNErrno {
	mu.Lock()
	defer mu.Unlock()
	h, ok := nnHost()
	if !ok {
		return abi.NNRuntimeError
	}
	c, errno := h.NNInitExecutionContext(graph)
	if errno == abi.NNSuccess {
		*ctx = c
	}
	return errno
}

// NNSetInput sets input index of ctx.
func NNSetInput(ctx, index uint32, t *Tensor, ext bool) abi.NNErrno {
	mu.Lock()
	defer mu.Unlock()
	h, ok := nnHost()
	if !ok {
		return abi.NNRuntimeError
	}
	if !t.Type.Valid() || (!ext && !t.Type.Standard()) {
		return abi.NNInvalidArgument
	}
	// The real host copies: so does the fake, so a test cannot depend on
	// aliasing.
	c := Tensor{Dims: append([]uint32(nil), t.Dims...), Type: t.Type, Data: append([]byte(nil), t.Data...)}
	return h.NNSetInput(ctx, index, c, ext)
}

// NNCompute runs the model of ctx.
func NNCompute(ctx uint32) abi.NNErrno {
	mu.Lock()
	defer mu.Unlock()
	h, ok := nnHost()
	if !ok {
		return abi.NNRuntimeError
	}
	return h.NNCompute(ctx)
}

func nnOutput(ctx, index uint32) (Tensor, abi.NNErrno) {
	h, ok := nnHost()
	if !ok {
		return Tensor{}, abi.NNRuntimeError
	}
	return h.NNOutput(ctx, index)
}

// NNGetOutput copies output index of ctx into buf.
func NNGetOutput(ctx, index uint32, buf []byte, written *uint32) abi.NNErrno {
	mu.Lock()
	defer mu.Unlock()
	t, errno := nnOutput(ctx, index)
	if errno != abi.NNSuccess {
		return errno
	}
	*written = uint32(len(t.Data))
	if len(buf) < len(t.Data) {
		return abi.NNTooLarge
	}
	copy(buf, t.Data)
	return abi.NNSuccess
}

// NNOutputShape writes the dimensions of output index into dims and its
// rank into rank.
func NNOutputShape(ctx, index uint32, dims []uint32, rank *uint32) abi.NNErrno {
	mu.Lock()
	defer mu.Unlock()
	t, errno := nnOutput(ctx, index)
	if errno != abi.NNSuccess {
		return errno
	}
	*rank = uint32(len(t.Dims))
	if len(dims) < len(t.Dims) {
		return abi.NNTooLarge
	}
	copy(dims, t.Dims)
	return abi.NNSuccess
}

// NNOutputType writes the tensor type of output index.
func NNOutputType(ctx, index uint32, typ *uint32) abi.NNErrno {
	mu.Lock()
	defer mu.Unlock()
	t, errno := nnOutput(ctx, index)
	if errno != abi.NNSuccess {
		return errno
	}
	*typ = uint32(t.Type)
	return abi.NNSuccess
}

// NNComputeStart starts computing ctx in the background.
func NNComputeStart(ctx uint32) abi.NNErrno {
	mu.Lock()
	defer mu.Unlock()
	h, ok := nnHost()
	if !ok {
		return abi.NNRuntimeError
	}
	return h.NNComputeStart(ctx)
}

// NNComputeWait waits up to timeoutMS for the background compute of ctx.
func NNComputeWait(ctx, timeoutMS uint32) abi.NNErrno {
	mu.Lock()
	defer mu.Unlock()
	h, ok := nnHost()
	if !ok {
		return abi.NNRuntimeError
	}
	return h.NNComputeWait(ctx, time.Duration(timeoutMS)*time.Millisecond)
}

// NNFileHost is a fake host that serves pipelines' files and graphs'
// metadata (millrace_nn_v1.model_file and graph_metadata); without it
// both answer unsupported_operation.
type NNFileHost interface {
	NNModelFile(name, path string) ([]byte, abi.NNErrno)
	NNGraphMetadata(graph uint32) ([]byte, abi.NNErrno)
}

// copyOut copies data into buf as the real host does: too_large with the
// length needed when buf is too small.
func copyOut(data []byte, errno abi.NNErrno, buf []byte, written *uint32) abi.NNErrno {
	if errno != abi.NNSuccess {
		return errno
	}
	*written = uint32(len(data))
	if len(data) > len(buf) {
		return abi.NNTooLarge
	}
	copy(buf, data)
	return abi.NNSuccess
}

// NNModelFile copies the file path of pipeline name into buf.
func NNModelFile(name, path string, buf []byte, written *uint32) abi.NNErrno {
	mu.Lock()
	defer mu.Unlock()
	h, ok := host().(NNFileHost)
	if !ok {
		return abi.NNUnsupportedOperation
	}
	data, errno := h.NNModelFile(name, path)
	return copyOut(data, errno, buf, written)
}

// NNGraphMetadata copies the JSON metadata of graph into buf.
func NNGraphMetadata(graph uint32, buf []byte, written *uint32) abi.NNErrno {
	mu.Lock()
	defer mu.Unlock()
	h, ok := host().(NNFileHost)
	if !ok {
		return abi.NNUnsupportedOperation
	}
	data, errno := h.NNGraphMetadata(graph)
	return copyOut(data, errno, buf, written)
}
