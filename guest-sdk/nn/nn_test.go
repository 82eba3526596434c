//go:build !wasip1

package nn_test

import (
	"context"
	"errors"
	"testing"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/guest-sdk/millracetest"
	"github.com/millrace/millrace/guest-sdk/nn"
	"github.com/stretchr/testify/require"
)

// arith adds and multiplies two [n, 3] float32 tensors, as the server
// tests' ONNX model does.
var arith = &millracetest.Model{
	Inputs:  []millracetest.TensorSpec{{Name: "a", Type: abi.NNTypeF32, Shape: []int64{-1, 3}}, {Name: "b", Type: abi.NNTypeF32, Shape: []int64{-1, 3}}},
	Outputs: []millracetest.TensorSpec{{Name: "sum", Type: abi.NNTypeF32, Shape: []int64{-1, 3}}, {Name: "product", Type: abi.NNTypeF32, Shape: []int64{-1, 3}}},
	Run: func(in []nn.Tensor) ([]nn.Tensor, error) {
		a, _ := nn.Values[float32](in[0])
		b, _ := nn.Values[float32](in[1])
		sum, prod := make([]float32, len(a)), make([]float32, len(a))
		for i := range a {
			sum[i], prod[i] = a[i]+b[i], a[i]*b[i]
		}
		return []nn.Tensor{nn.NewTensor(in[0].Shape, sum), nn.NewTensor(in[0].Shape, prod)}, nil
	},
}

type request struct {
	Model string    `json:"model"`
	A     []float32 `json:"a"`
	B     []float32 `json:"b"`
	Async bool      `json:"async"`
}

type result struct {
	Sum     []float32 `json:"sum"`
	Product []float32 `json:"product"`
	Shape   []uint32  `json:"shape"`
}

func run(_ context.Context, in request) (result, error) {
	g, err := nn.LoadByName(in.Model)
	if err != nil {
		return result{}, err
	}
	c, err := g.NewExecutionContext()
	if err != nil {
		return result{}, err
	}
	shape := []uint32{uint32(len(in.A) / 3), 3}
	if err := c.SetInput(0, nn.NewTensor(shape, in.A)); err != nil {
		return result{}, err
	}
	if err := c.SetInput(1, nn.NewTensor(shape, in.B)); err != nil {
		return result{}, err
	}
	if in.Async {
		if err := c.StartCompute(); err != nil {
			return result{}, err
		}
		for {
			err := c.Wait(0)
			if errors.Is(err, nn.ErrRunning) {
				continue
			}
			if err != nil {
				return result{}, err
			}
			break
		}
	} else if err := c.Compute(); err != nil {
		return result{}, err
	}
	sum, err := c.Output(0)
	if err != nil {
		return result{}, err
	}
	var r result
	r.Shape = sum.Shape
	if r.Sum, err = nn.Values[float32](sum); err != nil {
		return result{}, err
	}
	buf := make([]byte, 4*len(in.A))
	n, err := c.GetOutput(1, buf)
	if err != nil {
		return result{}, err
	}
	r.Product, err = nn.Values[float32](nn.Tensor{Type: abi.NNTypeF32, Data: buf[:n]})
	return r, err
}

func TestModelRunsOnTheFakeHost(t *testing.T) {
	h := millracetest.NewHost()
	h.Models = map[string]*millracetest.Model{"arith": arith}
	for _, async := range []bool{false, true} {
		out, err := millracetest.Call(h, run, request{Model: "arith", A: []float32{1, 2, 3, 4, 5, 6}, B: []float32{10, 20, 30, 40, 50, 60}, Async: async})
		require.NoError(t, err)
		require.Equal(t, []float32{11, 22, 33, 44, 55, 66}, out.Sum)
		require.Equal(t, []float32{10, 40, 90, 160, 250, 360}, out.Product)
		require.Equal(t, []uint32{2, 3}, out.Shape)
	}
}

func TestErrorsCarryTheErrno(t *testing.T) {
	h := millracetest.NewHost()
	h.Models = map[string]*millracetest.Model{"arith": arith}
	_, err := millracetest.Call(h, run, request{Model: "nope", A: []float32{1, 2, 3}, B: []float32{1, 2, 3}})
	require.ErrorContains(t, err, "wasi_ephemeral_nn.load_by_name: not_found")

	h.Grants = &abi.Capabilities{Accel: &abi.Accel{Models: []string{"other"}}}
	_, err = millracetest.Call(h, run, request{Model: "arith", A: []float32{1, 2, 3}, B: []float32{1, 2, 3}})
	require.ErrorContains(t, err, "load_by_name: not_found", "not granted")

	h.Grants = nil
	_, err = millracetest.Call(h, run, request{Model: "arith", A: []float32{1, 2, 3, 4}, B: []float32{1, 2, 3, 4}})
	require.ErrorContains(t, err, "wasi_ephemeral_nn.set_input: invalid_argument", "a [1, 3] shape with 4 values")

	h.Run(func() {
		_, err := nn.Load([][]byte{{1, 2}}, abi.NNEncodingONNX, abi.NNTargetCPU)
		require.ErrorIs(t, err, abi.NNUnsupportedOperation)
		var e *nn.Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, "wasi_ephemeral_nn.load", e.Func)
	})
}

func TestTensorValues(t *testing.T) {
	tn := nn.NewTensor([]uint32{2}, []int64{-1, 1 << 40})
	require.Equal(t, abi.NNTypeI64, tn.Type)
	v, err := nn.Values[int64](tn)
	require.NoError(t, err)
	require.Equal(t, []int64{-1, 1 << 40}, v)
	_, err = nn.Values[float32](tn)
	require.ErrorContains(t, err, "is i64, not f32")

	half := nn.NewRaw(abi.NNTypeBF16, []uint32{2}, []uint16{0x3f80, 0xc000}) // 1.0, -2.0
	bits, err := nn.Values[uint16](half)
	require.NoError(t, err)
	require.Equal(t, []uint16{0x3f80, 0xc000}, bits)
	require.Equal(t, []byte{0x80, 0x3f, 0x00, 0xc0}, half.Data, "little-endian")

	b := nn.NewTensor([]uint32{3}, []bool{true, false, true})
	require.Equal(t, abi.NNTypeBool, b.Type)
	require.Equal(t, []byte{1, 0, 1}, b.Data)
}

func TestTensorView(t *testing.T) {
	tn := nn.NewTensor([]uint32{3}, []float32{1.5, -2, 4})
	view, err := nn.View[float32](tn)
	require.NoError(t, err)
	require.Equal(t, []float32{1.5, -2, 4}, view)
	// A view shares the tensor's memory; Values copies it.
	copied, err := nn.Values[float32](tn)
	require.NoError(t, err)
	tn.Data[0], tn.Data[1], tn.Data[2], tn.Data[3] = 0, 0, 0, 0
	require.Equal(t, float32(0), view[0])
	require.Equal(t, float32(1.5), copied[0])
	_, err = nn.View[int64](tn)
	require.ErrorContains(t, err, "is f32, not i64")
	_, err = nn.View[float32](nn.Tensor{Type: abi.NNTypeF32, Data: []byte{1, 2, 3}})
	require.ErrorContains(t, err, "not a whole number")
}
