//go:build wasip1

package hostcall

import (
	"runtime"
	"unsafe"

	"github.com/millrace/millrace/abi"
)

// The tensor ABI of ABI.md §8: WASI-NN preview1 as its witx declares it,
// and Millrace's extensions. Every parameter and result is an i32.

//go:wasmimport wasi_ephemeral_nn load
func nnLoad(buildersPtr, buildersLen, encoding, target, outGraphPtr uint32) uint32

//go:wasmimport wasi_ephemeral_nn load_by_name
func nnLoadByName(namePtr, nameLen, outGraphPtr uint32) uint32

//go:wasmimport wasi_ephemeral_nn init_execution_context
func nnInitExecutionContext(graph, outCtxPtr uint32) uint32

//go:wasmimport wasi_ephemeral_nn set_input
func nnSetInput(ctx, index, tensorPtr uint32) uint32

//go:wasmimport wasi_ephemeral_nn compute
func nnCompute(ctx uint32) uint32

//go:wasmimport wasi_ephemeral_nn get_output
func nnGetOutput(ctx, index, outBufPtr, outBufMax, outWrittenPtr uint32) uint32

//go:wasmimport millrace_nn_v1 set_input
func nnxSetInput(ctx, index, tensorPtr uint32) uint32

//go:wasmimport millrace_nn_v1 output_shape
func nnxOutputShape(ctx, index, dimsPtr, dimsMax, outRankPtr uint32) uint32

//go:wasmimport millrace_nn_v1 output_type
func nnxOutputType(ctx, index, outTypePtr uint32) uint32

//go:wasmimport millrace_nn_v1 compute_start
func nnxComputeStart(ctx uint32) uint32

//go:wasmimport millrace_nn_v1 compute_wait
func nnxComputeWait(ctx, timeoutMS uint32) uint32

//go:wasmimport millrace_nn_v1 model_file
func nnxModelFile(namePtr, nameLen, pathPtr, pathLen, bufPtr, bufMax, outWrittenPtr uint32) uint32

//go:wasmimport millrace_nn_v1 graph_metadata
func nnxGraphMetadata(graph, bufPtr, bufMax, outWrittenPtr uint32) uint32

// NNModelFile copies the file path of pipeline name into buf.
func NNModelFile(name, path string, buf []byte, written *uint32) abi.NNErrno {
	e := nnxModelFile(stringPtr(name), uint32(len(name)), stringPtr(path), uint32(len(path)), bytesPtr(buf), uint32(len(buf)), u32Ptr(written))
	runtime.KeepAlive(name)
	runtime.KeepAlive(path)
	runtime.KeepAlive(buf)
	runtime.KeepAlive(written)
	return abi.NNErrno(e)
}

// NNGraphMetadata copies the JSON metadata of graph into buf.
func NNGraphMetadata(graph uint32, buf []byte, written *uint32) abi.NNErrno {
	e := nnxGraphMetadata(graph, bytesPtr(buf), uint32(len(buf)), u32Ptr(written))
	runtime.KeepAlive(buf)
	runtime.KeepAlive(written)
	return abi.NNErrno(e)
}

// NNLoad calls load with the builders (which the host refuses).
func NNLoad(builders [][]byte, encoding abi.NNGraphEncoding, target abi.NNExecutionTarget, graph *uint32) abi.NNErrno {
	// builders is an array of {ptr u32, len u32}.
	pairs := make([]uint32, 2*len(builders))
	for i, b := range builders {
		pairs[2*i], pairs[2*i+1] = bytesPtr(b), uint32(len(b))
	}
	var p uint32
	if len(pairs) > 0 {
		p = uint32(uintptr(unsafe.Pointer(&pairs[0])))
	}
	e := nnLoad(p, uint32(len(builders)), uint32(encoding), uint32(target), u32Ptr(graph))
	runtime.KeepAlive(builders)
	runtime.KeepAlive(pairs)
	runtime.KeepAlive(graph)
	return abi.NNErrno(e)
}

// NNLoadByName loads the registered model name.
func NNLoadByName(name string, graph *uint32) abi.NNErrno {
	e := nnLoadByName(stringPtr(name), uint32(len(name)), u32Ptr(graph))
	runtime.KeepAlive(name)
	runtime.KeepAlive(graph)
	return abi.NNErrno(e)
}

// NNInitExecutionContext makes an execution context of graph.
func NNInitExecutionContext(graph uint32, ctx *uint32) abi.NNErrno {
	e := nnInitExecutionContext(graph, u32Ptr(ctx))
	runtime.KeepAlive(ctx)
	return abi.NNErrno(e)
}

// NNSetInput sets input index of ctx; ext uses millrace_nn_v1.set_input,
// which takes the extension types too.
func NNSetInput(ctx, index uint32, t *Tensor, ext bool) abi.NNErrno {
	// The 20-byte tensor struct of ABI.md §8.2; the type byte is the low
	// byte of the third word (little-endian), the padding its others.
	var s [5]uint32
	if len(t.Dims) > 0 {
		s[0] = uint32(uintptr(unsafe.Pointer(&t.Dims[0])))
	}
	s[1], s[2], s[3], s[4] = uint32(len(t.Dims)), uint32(t.Type), bytesPtr(t.Data), uint32(len(t.Data))
	p := uint32(uintptr(unsafe.Pointer(&s)))
	var e uint32
	if ext {
		e = nnxSetInput(ctx, index, p)
	} else {
		e = nnSetInput(ctx, index, p)
	}
	runtime.KeepAlive(t)
	runtime.KeepAlive(&s)
	return abi.NNErrno(e)
}

// NNCompute runs the model of ctx.
func NNCompute(ctx uint32) abi.NNErrno { return abi.NNErrno(nnCompute(ctx)) }

// NNGetOutput copies output index of ctx into buf.
func NNGetOutput(ctx, index uint32, buf []byte, written *uint32) abi.NNErrno {
	e := nnGetOutput(ctx, index, bytesPtr(buf), uint32(len(buf)), u32Ptr(written))
	runtime.KeepAlive(buf)
	runtime.KeepAlive(written)
	return abi.NNErrno(e)
}

// NNOutputShape writes the dimensions of output index into dims and its
// rank into rank.
func NNOutputShape(ctx, index uint32, dims []uint32, rank *uint32) abi.NNErrno {
	var p uint32
	if len(dims) > 0 {
		p = uint32(uintptr(unsafe.Pointer(&dims[0])))
	}
	e := nnxOutputShape(ctx, index, p, uint32(len(dims)), u32Ptr(rank))
	runtime.KeepAlive(dims)
	runtime.KeepAlive(rank)
	return abi.NNErrno(e)
}

// NNOutputType writes the tensor type of output index.
func NNOutputType(ctx, index uint32, typ *uint32) abi.NNErrno {
	e := nnxOutputType(ctx, index, u32Ptr(typ))
	runtime.KeepAlive(typ)
	return abi.NNErrno(e)
}

// NNComputeStart starts computing ctx in the background.
func NNComputeStart(ctx uint32) abi.NNErrno { return abi.NNErrno(nnxComputeStart(ctx)) }

// NNComputeWait waits up to timeoutMS for the background compute of ctx.
func NNComputeWait(ctx, timeoutMS uint32) abi.NNErrno {
	return abi.NNErrno(nnxComputeWait(ctx, timeoutMS))
}
