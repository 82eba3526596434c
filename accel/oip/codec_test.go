package oip

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func join(header []byte, blobs [][]byte) []byte {
	return append(append([]byte(nil), header...), bytes.Join(blobs, nil)...)
}

func TestRequestRoundTrip(t *testing.T) {
	t.Parallel()
	yes, no := true, false
	req := &InferRequest{
		ID: "r1",
		Inputs: []Tensor{
			NewTensor("a", []int64{2, 2}, []float32{1.5, -2, float32(math.Pi), 1e-30}),
			NewTensor("b", []int64{3}, []int64{math.MinInt64, 0, math.MaxInt64}),
			NewTensor("c", []int64{2}, []bool{true, false}),
			NewTensor("d", []int64{}, []uint8{255}),
			NewTensor("e", []int64{2}, []float64{math.SmallestNonzeroFloat64, -math.MaxFloat64}),
			NewTensor("f", []int64{4}, []int8{-128, -1, 0, 127}),
			NewTensor("g", []int64{2}, []uint64{math.MaxUint64, 7}),
		},
		Outputs:      []RequestedOutput{{Name: "x", Binary: &yes}, {Name: "y", Binary: &no}, {Name: "z"}},
		BinaryOutput: true,
	}
	for _, binary := range []bool{false, true} {
		header, blobs, err := EncodeInferRequest(req, binary)
		require.NoError(t, err)
		hl := ""
		if binary {
			hl = strconv.Itoa(len(header))
			require.NotEmpty(t, blobs)
		} else {
			require.Empty(t, blobs)
		}
		got, err := ParseInferRequest(hl, join(header, blobs))
		require.NoError(t, err)
		require.Equal(t, req.ID, got.ID)
		require.Equal(t, req.Outputs, got.Outputs)
		require.True(t, got.BinaryOutput)
		require.True(t, got.WantsBinary("x"))
		require.False(t, got.WantsBinary("y"))
		require.True(t, got.WantsBinary("z"))
		require.Len(t, got.Inputs, len(req.Inputs))
		for i := range req.Inputs {
			require.Equal(t, req.Inputs[i].Name, got.Inputs[i].Name)
			require.Equal(t, req.Inputs[i].Datatype, got.Inputs[i].Datatype)
			require.Equal(t, req.Inputs[i].Shape, got.Inputs[i].Shape)
			require.Equal(t, req.Inputs[i].Data, got.Inputs[i].Data, "input %s (binary %v)", req.Inputs[i].Name, binary)
		}
	}
}

func TestResponseRoundTrip(t *testing.T) {
	t.Parallel()
	resp := &InferResponse{
		ModelName: "m", ModelVersion: "1", ID: "r1",
		Outputs: []Tensor{
			NewTensor("x", []int64{3}, []float32{0.1, 0.2, 0.3}),
			NewTensor("y", []int64{1, 2}, []int32{-5, 5}),
		},
	}
	header, blobs, err := EncodeInferResponse(resp, func(name string) bool { return name == "x" })
	require.NoError(t, err)
	require.Len(t, blobs, 1)
	require.Contains(t, string(header), `"data":[-5,5]`)
	got, err := ParseInferResponse(strconv.Itoa(len(header)), join(header, blobs))
	require.NoError(t, err)
	require.Equal(t, "m", got.ModelName)
	x, ok := got.Output("x")
	require.True(t, ok)
	xs, err := Values[float32](x)
	require.NoError(t, err)
	require.Equal(t, []float32{0.1, 0.2, 0.3}, xs)
	y, _ := got.Output("y")
	ys, err := Values[int32](y)
	require.NoError(t, err)
	require.Equal(t, []int32{-5, 5}, ys)
	_, err = Values[float32](y)
	require.ErrorContains(t, err, "is INT32, not FP32")
}

func TestJSONDataNestedAndExact(t *testing.T) {
	t.Parallel()
	body := `{"inputs":[{"name":"a","shape":[2,3],"datatype":"FP32","data":[[1,2,3],[4,5.5,-6e2]]}]}`
	req, err := ParseInferRequest("", []byte(body))
	require.NoError(t, err)
	v, err := Values[float32](req.Inputs[0])
	require.NoError(t, err)
	require.Equal(t, []float32{1, 2, 3, 4, 5.5, -600}, v)
}

func TestParseInferRequestErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, header, body, want string
	}{
		{"not json", "", `{`, "malformed inference request JSON"},
		{"no inputs", "", `{"inputs":[]}`, `no "inputs"`},
		{"unnamed", "", `{"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]}`, "has no name"},
		{"twice", "", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]},{"name":"a","shape":[1],"datatype":"FP32","data":[1]}]}`, `input "a" appears twice`},
		{"bad dtype", "", `{"inputs":[{"name":"a","shape":[1],"datatype":"FLOAT","data":[1]}]}`, `unknown datatype "FLOAT"`},
		{"bytes", "", `{"inputs":[{"name":"a","shape":[1],"datatype":"BYTES","data":["x"]}]}`, "BYTES is not supported"},
		{"no shape", "", `{"inputs":[{"name":"a","datatype":"FP32","data":[1]}]}`, "has no shape"},
		{"negative dim", "", `{"inputs":[{"name":"a","shape":[-1],"datatype":"FP32","data":[1]}]}`, "negative dimension"},
		{"fractional dim", "", `{"inputs":[{"name":"a","shape":[1.5],"datatype":"FP32","data":[1]}]}`, "malformed inference request JSON"},
		{"huge shape", "", `{"inputs":[{"name":"a","shape":[4294967296,4294967296],"datatype":"FP32","data":[1]}]}`, "more than"},
		{"too few", "", `{"inputs":[{"name":"a","shape":[3],"datatype":"FP32","data":[1,2]}]}`, "data has 2 elements, but its shape holds 3"},
		{"too many", "", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1,2]}]}`, "more than the 1 elements"},
		{"no data", "", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32"}]}`, "has no data"},
		{"string data", "", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":["1"]}]}`, "must hold FP32 values"},
		{"fp32 range", "", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1e39]}]}`, "out of range for FP32"},
		{"int fraction", "", `{"inputs":[{"name":"a","shape":[1],"datatype":"INT64","data":[1.5]}]}`, "1.5 is not a valid INT64"},
		{"int8 range", "", `{"inputs":[{"name":"a","shape":[1],"datatype":"INT8","data":[128]}]}`, "128 is not a valid INT8"},
		{"uint negative", "", `{"inputs":[{"name":"a","shape":[1],"datatype":"UINT8","data":[-1]}]}`, "-1 is not a valid UINT8"},
		{"bool number", "", `{"inputs":[{"name":"a","shape":[1],"datatype":"BOOL","data":[1]}]}`, "not true or false"},
		{"fp16 json", "", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP16","data":[1]}]}`, "FP16 data cannot be sent as JSON"},
		{"header not a number", "x", `{}`, "malformed Inference-Header-Content-Length"},
		{"header zero", "0", `{}`, "malformed Inference-Header-Content-Length"},
		{"header negative", "-3", `{}`, "malformed Inference-Header-Content-Length"},
		{"header too long", "100", `{}`, "exceeds the body's 2 bytes"},
		{"binary short", "auto", `{"inputs":[{"name":"a","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}` + "1234", "binary data ends 4 bytes short"},
		{"binary extra", "auto", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}` + "12345", "5 bytes of binary data follow"},
		{"binary wrong size", "auto", `{"inputs":[{"name":"a","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":4}}]}` + "1234", "binary_data_size is 4 bytes, but shape [2] of FP32 needs 8"},
		{"binary size not int", "auto", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":"4"}}]}` + "1234", "must be a non-negative integer"},
		{"binary and data", "", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1],"parameters":{"binary_data_size":4}}]}`, "both data and binary_data_size"},
		{"output twice", "", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y"},{"name":"y"}]}`, `output "y" is requested twice`},
		{"output binary not bool", "", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y","parameters":{"binary_data":1}}]}`, "must be true or false"},
		{"binary_data_output not bool", "", `{"parameters":{"binary_data_output":"yes"},"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]}]}`, "must be true or false"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			header := c.header
			if header == "auto" {
				header = strconv.Itoa(strings.Index(c.body, "}]}") + 3)
			}
			_, err := ParseInferRequest(header, []byte(c.body))
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestEncodeJSONRefusesNaN(t *testing.T) {
	t.Parallel()
	resp := &InferResponse{Outputs: []Tensor{NewTensor("x", []int64{1}, []float32{float32(math.NaN())})}}
	_, _, err := EncodeInferResponse(resp, func(string) bool { return false })
	require.ErrorContains(t, err, "JSON cannot hold")
	_, _, err = EncodeInferResponse(resp, func(string) bool { return true })
	require.NoError(t, err)
}

func TestElementCount(t *testing.T) {
	t.Parallel()
	n, err := ElementCount([]int64{}, 10)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	n, err = ElementCount([]int64{0, 1 << 62}, 10)
	require.NoError(t, err)
	require.EqualValues(t, 0, n)
	_, err = ElementCount([]int64{1 << 40, 1 << 40}, math.MaxInt64)
	require.Error(t, err)
}

// FuzzParseInferRequest feeds arbitrary header values and bodies to the
// request parser: it must never panic, and what it accepts must be
// self-consistent and survive re-encoding.
func FuzzParseInferRequest(f *testing.F) {
	f.Add("", []byte(`{"inputs":[{"name":"a","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4]]}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]}`))
	f.Add("91", []byte(`{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}`+"\x00\x00\x80\x3f"))
	f.Add("", []byte(`{"id":"x","parameters":{"binary_data_output":true},"inputs":[{"name":"b","shape":[],"datatype":"BOOL","data":true}]}`))
	f.Add("5", []byte(`{"a":1}`))
	f.Add("", []byte(`{"inputs":[{"name":"a","shape":[3],"datatype":"INT8","data":[1,-2,127]}]}`))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		req, err := ParseInferRequest(header, body)
		if err != nil {
			return
		}
		for _, in := range req.Inputs {
			n, err := ElementCount(in.Shape, math.MaxInt64)
			if err != nil {
				t.Fatalf("accepted input %q with shape %v: %v", in.Name, in.Shape, err)
			}
			if int64(len(in.Data)) != n*int64(in.Datatype.Size()) {
				t.Fatalf("input %q: %d bytes for %d %s elements", in.Name, len(in.Data), n, in.Datatype)
			}
		}
		if _, _, err := EncodeInferRequest(req, true); err != nil {
			t.Fatalf("re-encoding an accepted request: %v", err)
		}
	})
}
