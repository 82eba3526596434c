package abi_test

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/millrace/millrace/abi"
	"github.com/stretchr/testify/require"
)

// The WASI-NN preview1 numbering is a wire contract with guests built
// against the standard bindings: pin every value literally, so a change
// is a deliberate edit of this test.
func TestNNNumberingIsPinned(t *testing.T) {
	t.Parallel()
	errnos := map[abi.NNErrno]uint32{
		abi.NNSuccess: 0, abi.NNInvalidArgument: 1, abi.NNInvalidEncoding: 2, abi.NNMissingMemory: 3,
		abi.NNBusy: 4, abi.NNRuntimeError: 5, abi.NNUnsupportedOperation: 6, abi.NNTooLarge: 7, abi.NNNotFound: 8,
	}
	for e, v := range errnos {
		require.EqualValues(t, v, e, e.String())
	}
	encodings := map[abi.NNGraphEncoding]uint32{
		abi.NNEncodingOpenVINO: 0, abi.NNEncodingONNX: 1, abi.NNEncodingTensorflow: 2,
		abi.NNEncodingPytorch: 3, abi.NNEncodingTensorflowLite: 4, abi.NNEncodingAutodetect: 5,
	}
	for e, v := range encodings {
		require.EqualValues(t, v, e)
	}
	require.EqualValues(t, 0, abi.NNTargetCPU)
	require.EqualValues(t, 1, abi.NNTargetGPU)
	require.EqualValues(t, 2, abi.NNTargetTPU)
	types := map[abi.NNTensorType]uint8{
		abi.NNTypeF16: 0, abi.NNTypeF32: 1, abi.NNTypeF64: 2, abi.NNTypeU8: 3, abi.NNTypeI32: 4, abi.NNTypeI64: 5,
		abi.NNTypeBF16: 16, abi.NNTypeI8: 17, abi.NNTypeU16: 18, abi.NNTypeI16: 19, abi.NNTypeU32: 20, abi.NNTypeU64: 21, abi.NNTypeBool: 22,
	}
	for typ, v := range types {
		require.EqualValues(t, v, typ, typ.String())
		require.True(t, typ.Valid())
		require.Equal(t, v <= 5, typ.Standard(), typ.String())
		back, ok := abi.NNTensorTypeOf(typ.Datatype())
		require.True(t, ok)
		require.Equal(t, typ, back)
	}
	require.False(t, abi.NNTensorType(6).Valid())
	require.Equal(t, "unknown", abi.NNTensorType(6).String())
	_, ok := abi.NNTensorTypeOf("BYTES")
	require.False(t, ok)

	require.Equal(t, 20, abi.NNTensorSize)
	require.Equal(t, []int{0, 4, 8, 12, 16}, []int{abi.NNTensorDimsPtr, abi.NNTensorDimsLen, abi.NNTensorTypeOffset, abi.NNTensorDataPtr, abi.NNTensorDataLen})
	require.Equal(t, "wasi-nn: not_found", abi.NNNotFound.Error())
}

// ABI.md §8.1 and the Go constants say the same thing.
func TestNNNumberingMatchesSpec(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("ABI.md")
	require.NoError(t, err)
	start := strings.Index(string(doc), "### 8.1 Numbering")
	end := strings.Index(string(doc), "### 8.2")
	require.True(t, start > 0 && end > start, "ABI.md has no §8.1")
	section := string(doc[start:end])

	cells := func(line string) []string {
		out := strings.Split(strings.Trim(line, "|"), "|")
		for i := range out {
			out[i] = strings.Trim(strings.TrimSpace(out[i]), "`")
		}
		return out
	}
	errnos := map[string]int{}
	table, checked := "", 0
	for _, line := range strings.Split(section, "\n") {
		switch {
		case strings.HasPrefix(line, "| errno"):
			table = "errno"
			continue
		case strings.HasPrefix(line, "| `graph_encoding`"):
			table = "enums"
			continue
		case strings.HasPrefix(line, "| `tensor_type` | name"):
			table = "ext"
			continue
		case !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "|---"):
			continue
		}
		c := cells(line)
		switch table {
		case "errno":
			n, err := strconv.Atoi(c[0])
			require.NoError(t, err, line)
			errnos[c[1]] = n
		case "enums": // encoding, target and tensor type side by side
			for col := 0; col < 3; col++ {
				if c[2*col] == "" {
					continue
				}
				n, err := strconv.Atoi(c[2*col])
				require.NoError(t, err, line)
				checkEnum(t, col, c[2*col+1], n)
				checked++
			}
			n, _ := strconv.Atoi(c[4])
			size, err := strconv.Atoi(c[6])
			require.NoError(t, err, line)
			require.Equal(t, size, abi.NNTensorType(n).Size(), line)
		case "ext":
			n, err := strconv.Atoi(c[0])
			require.NoError(t, err, line)
			typ := abi.NNTensorType(n)
			require.Equal(t, c[1], typ.String(), line)
			require.True(t, strings.HasPrefix(c[2], strconv.Itoa(typ.Size())), line)
			require.Equal(t, c[3], typ.Datatype(), line)
			checked++
		}
	}
	require.Equal(t, 6+3+6+7, checked, "every enum value is in the spec")
	require.Len(t, errnos, 9)
	for name, v := range errnos {
		require.Equal(t, name, abi.NNErrno(v).String(), "errno %d", v)
	}
}

func checkEnum(t *testing.T, column int, name string, v int) {
	t.Helper()
	switch column {
	case 0:
		enc := map[string]abi.NNGraphEncoding{"openvino": abi.NNEncodingOpenVINO, "onnx": abi.NNEncodingONNX, "tensorflow": abi.NNEncodingTensorflow,
			"pytorch": abi.NNEncodingPytorch, "tensorflowlite": abi.NNEncodingTensorflowLite, "autodetect": abi.NNEncodingAutodetect}
		require.Contains(t, enc, name)
		require.EqualValues(t, v, enc[name], name)
	case 1:
		tgt := map[string]abi.NNExecutionTarget{"cpu": abi.NNTargetCPU, "gpu": abi.NNTargetGPU, "tpu": abi.NNTargetTPU}
		require.Contains(t, tgt, name)
		require.EqualValues(t, v, tgt[name], name)
	case 2:
		require.Equal(t, name, abi.NNTensorType(v).String())
	}
}

func TestImportCapability(t *testing.T) {
	t.Parallel()
	c, ok := abi.ImportCapability(abi.NNModule, abi.FnNNLoadByName)
	require.True(t, ok)
	require.Equal(t, abi.CapAccel, c)
	c, ok = abi.ImportCapability(abi.NNExtModule, abi.FnNNExtOutputShape)
	require.True(t, ok)
	require.Equal(t, abi.CapAccel, c)
	c, ok = abi.ImportCapability(abi.ImportModule, abi.FnKVGet)
	require.True(t, ok)
	require.Equal(t, abi.CapKV, c)
	_, ok = abi.ImportCapability(abi.NNModule, "load_by_name_with_config")
	require.False(t, ok, "WASI-NN functions of later versions are not defined")
	_, ok = abi.ImportCapability(abi.WASIModule, "fd_write")
	require.False(t, ok)
}

func TestAccelCapability(t *testing.T) {
	t.Parallel()
	m, err := abi.ParseManifest([]byte(validManifest))
	require.NoError(t, err)
	require.True(t, m.Capabilities.Requests(abi.CapAccel))
	require.False(t, (&abi.Capabilities{Accel: &abi.Accel{}}).Requests(abi.CapAccel), "no model, no accel")
	require.False(t, (&abi.Capabilities{}).Requests(abi.CapAccel))

	for _, c := range []struct{ patch, field, msg string }{
		{`"capabilities": {"accel": {"models": ["Arith"]}}`, "capabilities.accel.models[0]", "not a valid model name"},
		{`"capabilities": {"accel": {"models": ["arith.onnx"]}}`, "capabilities.accel.models[0]", "not a valid model name"},
		{`"capabilities": {"accel": {"models": ["a", "a"]}}`, "capabilities.accel.models[1]", "twice"},
		{`"capabilities": {"accel": {"modles": ["a"]}}`, "capabilities.accel.modles", "unknown field"},
		{`"capabilities": {"accel": {"models": "a"}}`, "capabilities.accel.models", "must be an array"},
	} {
		_, err := abi.ParseManifest([]byte(`{"abi": 1, "id": "x", "name": "X", "version": "1.0.0", ` + c.patch + `}`))
		var fe *abi.FieldError
		require.ErrorAs(t, err, &fe, c.patch)
		require.Equal(t, c.field, fe.Field, c.patch)
		require.Contains(t, fe.Msg, c.msg, c.patch)
	}
	require.True(t, abi.ValidModelName("pp-ocr.v4_det"))
	require.False(t, abi.ValidModelName(""))
	require.False(t, abi.ValidModelName("-x"))
}
