package abi

// The tensor ABI (ABI.md §8): WASI-NN preview1, implemented verbatim in
// the import module NNModule, plus Millrace's extensions in NNExtModule.
// Both belong to the accel capability. The numbering below is WASI-NN's
// witx numbering (wasi-nn.witx, as the wasi-nn Rust crate ≤ 0.6 and
// Wasmtime's witx backend use it), which later WIT versions changed:
// nothing here may be renumbered.

// NNModule is the import module of WASI-NN preview1.
const NNModule = "wasi_ephemeral_nn"

// NNExtModule is the import module of Millrace's tensor extensions: what
// WASI-NN preview1 lacks (output shape and type, more element types,
// computing in the background).
const NNExtModule = "millrace_nn_v1"

// Functions of NNModule. Every parameter and result is an i32; the result
// is an NNErrno.
const (
	FnNNLoad                 = "load"
	FnNNLoadByName           = "load_by_name"
	FnNNInitExecutionContext = "init_execution_context"
	FnNNSetInput             = "set_input"
	FnNNCompute              = "compute"
	FnNNGetOutput            = "get_output"
)

// Functions of NNExtModule. Every parameter and result is an i32; the
// result is an NNErrno.
const (
	FnNNExtSetInput     = "set_input"
	FnNNExtOutputShape  = "output_shape"
	FnNNExtOutputType   = "output_type"
	FnNNExtComputeStart = "compute_start"
	FnNNExtComputeWait  = "compute_wait"
	// FnNNExtModelFile and FnNNExtGraphMetadata let a module read what a
	// pipeline needs besides its networks (ABI.md §8.4).
	FnNNExtModelFile     = "model_file"
	FnNNExtGraphMetadata = "graph_metadata"
)

// NNFunctions lists the functions of NNModule; NNExtFunctions those of
// NNExtModule. All of them need CapAccel.
var (
	NNFunctions = map[string]bool{
		FnNNLoad: true, FnNNLoadByName: true, FnNNInitExecutionContext: true,
		FnNNSetInput: true, FnNNCompute: true, FnNNGetOutput: true,
	}
	NNExtFunctions = map[string]bool{
		FnNNExtSetInput: true, FnNNExtOutputShape: true, FnNNExtOutputType: true,
		FnNNExtComputeStart: true, FnNNExtComputeWait: true,
		FnNNExtModelFile: true, FnNNExtGraphMetadata: true,
	}
)

// NNErrno is the result of every WASI-NN function: zero on success. Its
// numbering is WASI-NN's, not Errno's.
type NNErrno uint32

// WASI-NN preview1 error numbers.
const (
	NNSuccess              NNErrno = 0 // the call succeeded
	NNInvalidArgument      NNErrno = 1 // a pointer, handle, index, shape or type is wrong
	NNInvalidEncoding      NNErrno = 2 // the graph encoding is unknown
	NNMissingMemory        NNErrno = 3 // the module exports no memory
	NNBusy                 NNErrno = 4 // the accelerator is starting or restarting: retry later
	NNRuntimeError         NNErrno = 5 // the accelerator failed, or the invocation's deadline passed
	NNUnsupportedOperation NNErrno = 6 // not supported here (load from bytes, this type for this model)
	NNTooLarge             NNErrno = 7 // a buffer is too small, or a limit was exceeded
	NNNotFound             NNErrno = 8 // no such model, or it is not granted to the module
)

var nnErrnoNames = [...]string{
	NNSuccess:              "success",
	NNInvalidArgument:      "invalid_argument",
	NNInvalidEncoding:      "invalid_encoding",
	NNMissingMemory:        "missing_memory",
	NNBusy:                 "busy",
	NNRuntimeError:         "runtime_error",
	NNUnsupportedOperation: "unsupported_operation",
	NNTooLarge:             "too_large",
	NNNotFound:             "not_found",
}

// String returns the errno's name as written in ABI.md §8.
func (e NNErrno) String() string {
	if int(e) < len(nnErrnoNames) {
		return nnErrnoNames[e]
	}
	return "unknown"
}

// Error makes a non-zero NNErrno usable as a Go error in guests.
func (e NNErrno) Error() string { return "wasi-nn: " + e.String() }

// NNGraphEncoding is load's encoding parameter.
type NNGraphEncoding uint32

// WASI-NN preview1 graph encodings.
const (
	NNEncodingOpenVINO       NNGraphEncoding = 0
	NNEncodingONNX           NNGraphEncoding = 1
	NNEncodingTensorflow     NNGraphEncoding = 2
	NNEncodingPytorch        NNGraphEncoding = 3
	NNEncodingTensorflowLite NNGraphEncoding = 4
	NNEncodingAutodetect     NNGraphEncoding = 5
)

// NNExecutionTarget is load's target parameter.
type NNExecutionTarget uint32

// WASI-NN preview1 execution targets.
const (
	NNTargetCPU NNExecutionTarget = 0
	NNTargetGPU NNExecutionTarget = 1
	NNTargetTPU NNExecutionTarget = 2
)

// NNTensorType is the element type of a tensor: the u8 at offset 8 of the
// tensor struct.
type NNTensorType uint8

// WASI-NN preview1 tensor types. Values 0–5 are WASI-NN's; the rest are
// Millrace extensions that only NNExtModule's set_input accepts (and that
// output_type may report).
const (
	NNTypeF16 NNTensorType = 0
	NNTypeF32 NNTensorType = 1
	NNTypeF64 NNTensorType = 2
	NNTypeU8  NNTensorType = 3
	NNTypeI32 NNTensorType = 4
	NNTypeI64 NNTensorType = 5

	NNTypeBF16 NNTensorType = 16
	NNTypeI8   NNTensorType = 17
	NNTypeU16  NNTensorType = 18
	NNTypeI16  NNTensorType = 19
	NNTypeU32  NNTensorType = 20
	NNTypeU64  NNTensorType = 21
	NNTypeBool NNTensorType = 22 // one byte per element, 0 or 1
)

// nnTypes maps each tensor type to its name and the Open Inference
// Protocol datatype the accelerator speaks.
var nnTypes = map[NNTensorType]struct{ name, oip string }{
	NNTypeF16: {"f16", "FP16"}, NNTypeF32: {"f32", "FP32"}, NNTypeF64: {"f64", "FP64"},
	NNTypeU8: {"u8", "UINT8"}, NNTypeI32: {"i32", "INT32"}, NNTypeI64: {"i64", "INT64"},
	NNTypeBF16: {"bf16", "BF16"}, NNTypeI8: {"i8", "INT8"}, NNTypeU16: {"u16", "UINT16"},
	NNTypeI16: {"i16", "INT16"}, NNTypeU32: {"u32", "UINT32"}, NNTypeU64: {"u64", "UINT64"},
	NNTypeBool: {"bool", "BOOL"},
}

// Standard reports whether t is one of WASI-NN preview1's own types,
// which its set_input accepts.
func (t NNTensorType) Standard() bool { return t <= NNTypeI64 }

// Valid reports whether t is a type this ABI defines.
func (t NNTensorType) Valid() bool { _, ok := nnTypes[t]; return ok }

// String returns the type's name ("f32"), or "unknown".
func (t NNTensorType) String() string {
	if v, ok := nnTypes[t]; ok {
		return v.name
	}
	return "unknown"
}

// Datatype returns the Open Inference Protocol datatype of t ("FP32"),
// or "" for an undefined type.
func (t NNTensorType) Datatype() string { return nnTypes[t].oip }

// Size is the number of bytes one element takes, or 0 for an undefined
// type.
func (t NNTensorType) Size() int {
	switch t {
	case NNTypeU8, NNTypeI8, NNTypeBool:
		return 1
	case NNTypeF16, NNTypeBF16, NNTypeU16, NNTypeI16:
		return 2
	case NNTypeF32, NNTypeI32, NNTypeU32:
		return 4
	case NNTypeF64, NNTypeI64, NNTypeU64:
		return 8
	}
	return 0
}

// NNTensorTypeOf returns the tensor type of an Open Inference Protocol
// datatype, and false when the ABI has none (BYTES).
func NNTensorTypeOf(datatype string) (NNTensorType, bool) {
	for t, v := range nnTypes {
		if v.oip == datatype {
			return t, true
		}
	}
	return 0, false
}

// The tensor struct that set_input reads (ABI.md §8.2): 20 bytes, aligned
// to 4, little-endian.
const (
	NNTensorSize       = 20
	NNTensorDimsPtr    = 0  // u32: address of the dimensions, an array of u32
	NNTensorDimsLen    = 4  // u32: number of dimensions
	NNTensorTypeOffset = 8  // u8: NNTensorType; bytes 9–11 are padding
	NNTensorDataPtr    = 12 // u32: address of the data
	NNTensorDataLen    = 16 // u32: length of the data in bytes
)
