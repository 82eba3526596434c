package sessions_test

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/accel/internal/testenv"
	"github.com/millrace/millrace/accel/modeldir"
	"github.com/millrace/millrace/accel/oip"
	"github.com/millrace/millrace/accel/onnxbuild"
	"github.com/millrace/millrace/accel/sessions"
)

func setup(t *testing.T, cfg sessions.Config) *sessions.Manager {
	t.Helper()
	if cfg.LibraryPath == "" {
		cfg.LibraryPath = testenv.LibraryPath(t)
	}
	dir := testenv.ModelDir(t, map[string][]byte{
		"arith": onnxbuild.Arith(),
		"types": onnxbuild.Types(),
		"bad":   []byte("not an onnx model"),
		"half":  onnxbuild.HalfDynamic(),
	}, false)
	m := sessions.New(modeldir.New(dir), cfg)
	t.Cleanup(m.Close)
	return m
}

func TestArith(t *testing.T) {
	t.Parallel()
	m := setup(t, sessions.Config{})
	ctx := context.Background()
	s, err := m.Acquire(ctx, "arith")
	require.NoError(t, err)
	defer s.Release()
	md := s.Metadata().OIP()
	require.Equal(t, oip.ModelMetadata{
		Name: "arith", Versions: []string{"1"}, Platform: "onnxruntime_onnx",
		Inputs:  []oip.TensorMetadata{{Name: "a", Datatype: oip.FP32, Shape: []int64{-1, 3}}, {Name: "b", Datatype: oip.FP32, Shape: []int64{-1, 3}}},
		Outputs: []oip.TensorMetadata{{Name: "sum", Datatype: oip.FP32, Shape: []int64{-1, 3}}, {Name: "product", Datatype: oip.FP32, Shape: []int64{-1, 3}}},
	}, md)
	ins, err := s.Metadata().CheckInputs([]oip.Tensor{
		oip.NewTensor("b", []int64{2, 3}, []float32{10, 20, 30, 0.5, 0.25, -1}),
		oip.NewTensor("a", []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6}),
	})
	require.NoError(t, err)
	outs, err := s.Run(ins)
	require.NoError(t, err)
	sum, err := oip.Values[float32](outs[0])
	require.NoError(t, err)
	require.Equal(t, []float32{11, 22, 33, 4.5, 5.25, 5}, sum)
	prod, err := oip.Values[float32](outs[1])
	require.NoError(t, err)
	require.Equal(t, []float32{10, 40, 90, 2, 1.25, -6}, prod)
	require.Equal(t, []int64{2, 3}, outs[1].Shape)
}

func TestTypes(t *testing.T) {
	t.Parallel()
	m := setup(t, sessions.Config{})
	s, err := m.Acquire(context.Background(), "types")
	require.NoError(t, err)
	defer s.Release()
	half := []byte{0x00, 0x3c, 0x00, 0xc0} // 1.0, -2.0
	ins, err := s.Metadata().CheckInputs([]oip.Tensor{
		oip.NewTensor("i64", []int64{2}, []int64{math.MaxInt64 / 2, -7}),
		oip.NewTensor("u8", []int64{2, 2}, []uint8{1, 2, 3, 127}),
		oip.NewTensor("flag", []int64{3}, []bool{true, false, true}),
		oip.NewTensor("f64", []int64{}, []float64{1.25}),
		{Name: "half", Datatype: oip.FP16, Shape: []int64{2}, Data: half},
	})
	require.NoError(t, err)
	outs, err := s.Run(ins)
	require.NoError(t, err)
	i64, _ := oip.Values[int64](outs[0])
	require.Equal(t, []int64{math.MaxInt64 - 1, -14}, i64)
	u8, _ := oip.Values[uint8](outs[1])
	require.Equal(t, []uint8{2, 4, 6, 254}, u8)
	flag, _ := oip.Values[bool](outs[2])
	require.Equal(t, []bool{false, true, false}, flag)
	f64, _ := oip.Values[float64](outs[3])
	require.Equal(t, []float64{2.5}, f64)
	require.Equal(t, []int64{}, outs[3].Shape)
	require.Equal(t, half, outs[4].Data)
}

func TestCheckInputs(t *testing.T) {
	t.Parallel()
	m := setup(t, sessions.Config{})
	s, err := m.Acquire(context.Background(), "arith")
	require.NoError(t, err)
	defer s.Release()
	md := s.Metadata()
	a := oip.NewTensor("a", []int64{1, 3}, []float32{1, 2, 3})
	b := oip.NewTensor("b", []int64{1, 3}, []float32{1, 2, 3})
	for _, c := range []struct {
		ins  []oip.Tensor
		want string
	}{
		{[]oip.Tensor{a}, `input "b" is missing`},
		{[]oip.Tensor{a, b, oip.NewTensor("c", []int64{1}, []float32{1})}, `model "arith" has no input "c" (it takes a FP32 [-1 3], b FP32 [-1 3])`},
		{[]oip.Tensor{a, oip.NewTensor("b", []int64{1, 3}, []float64{1, 2, 3})}, `input "b" is FP64, but model "arith" takes FP32`},
		{[]oip.Tensor{a, oip.NewTensor("b", []int64{3}, []float32{1, 2, 3})}, "rank 1, but the model wants rank 2"},
		{[]oip.Tensor{a, oip.NewTensor("b", []int64{1, 4}, []float32{1, 2, 3, 4})}, "dimension 1 is 4, but the model wants 3"},
		{[]oip.Tensor{a, {Name: "b", Datatype: oip.FP32, Shape: []int64{0, 3}, Data: nil}}, "empty tensors are not supported"},
	} {
		_, err := md.CheckInputs(c.ins)
		require.ErrorIs(t, err, sessions.ErrInvalidInput)
		require.ErrorContains(t, err, c.want)
	}
	require.ErrorContains(t, md.CheckOutputs([]string{"sum", "nope"}), `no output "nope"`)
}

func TestLoadOnceUnderConcurrentFirstUse(t *testing.T) {
	t.Parallel()
	m := setup(t, sessions.Config{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			s, err := m.Acquire(context.Background(), "arith")
			if err == nil {
				s.Release()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, 1, m.Loads())
}

func TestUnloadAndIdle(t *testing.T) {
	t.Parallel()
	m := setup(t, sessions.Config{IdleTimeout: time.Hour})
	ctx := context.Background()
	require.False(t, m.Loaded("arith"))
	require.NoError(t, m.Load(ctx, "arith"))
	require.True(t, m.Loaded("arith"))
	require.Empty(t, m.UnloadIdle(time.Now()), "used just now")

	// A session held by a request survives unloading until released.
	s, err := m.Acquire(ctx, "arith")
	require.NoError(t, err)
	require.Empty(t, m.UnloadIdle(time.Now().Add(2*time.Hour)), "in use")
	require.True(t, m.Unload("arith"))
	require.False(t, m.Loaded("arith"))
	ins, err := s.Metadata().CheckInputs([]oip.Tensor{
		oip.NewTensor("a", []int64{1, 3}, []float32{1, 2, 3}),
		oip.NewTensor("b", []int64{1, 3}, []float32{1, 2, 3}),
	})
	require.NoError(t, err)
	_, err = s.Run(ins)
	require.NoError(t, err)
	s.Release()
	s.Release()

	require.NoError(t, m.Load(ctx, "arith"))
	require.EqualValues(t, 2, m.Loads())
	require.Equal(t, []string{"arith"}, m.UnloadIdle(time.Now().Add(2*time.Hour)))
	require.False(t, m.Loaded("arith"))
	require.False(t, m.Unload("arith"))
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	m := setup(t, sessions.Config{})
	ctx := context.Background()
	_, err := m.Acquire(ctx, "nope")
	require.ErrorIs(t, err, sessions.ErrNotFound)
	_, err = m.Acquire(ctx, "../etc")
	require.ErrorIs(t, err, sessions.ErrNotFound)
	_, err = m.Acquire(ctx, "bad")
	require.ErrorContains(t, err, `ONNX Runtime cannot load`)
	require.False(t, m.Loaded("bad"))
}

func TestMissingLibrary(t *testing.T) {
	t.Parallel()
	m := setup(t, sessions.Config{LibraryPath: "/nonexistent/libonnxruntime.so.1"})
	err := m.Ready()
	require.ErrorIs(t, err, sessions.ErrLibrary)
	require.ErrorContains(t, err, "make accel-deps")
	require.ErrorContains(t, err, "MILLRACE_ORT_LIB")
	_, err = m.Acquire(context.Background(), "arith")
	require.ErrorIs(t, err, sessions.ErrLibrary)
}

// TestCUDAUnavailable: the CPU-only library cannot give CUDA (or
// TensorRT); asking for it is a clear error, not a crash.
func TestCUDAUnavailable(t *testing.T) {
	t.Parallel()
	for _, p := range []sessions.Provider{sessions.CUDA, sessions.TensorRT} {
		m := setup(t, sessions.Config{Provider: p})
		err := m.Ready()
		t.Logf("%s: %v", p, err)
		require.ErrorIs(t, err, sessions.ErrProvider, "provider %s", p)
		require.ErrorContains(t, err, string(p))
		require.ErrorContains(t, err, "-provider cpu")
		_, err = m.Acquire(context.Background(), "arith")
		require.ErrorIs(t, err, sessions.ErrProvider)
	}
	m := setup(t, sessions.Config{Provider: "tpu"})
	require.ErrorContains(t, m.Ready(), `unknown execution provider "tpu"`)
}

// An FP16 output of dynamic shape, which onnxruntime_go cannot return
// itself, comes back whole: its shape is learnt from a probe run, once per
// input shape.
func TestDynamicHalfOutput(t *testing.T) {
	t.Parallel()
	m := setup(t, sessions.Config{})
	s, err := m.Acquire(context.Background(), "half")
	require.NoError(t, err)
	defer s.Release()
	for _, in := range [][]byte{{0, 0x3c}, {0, 0x3c, 0, 0xc0, 0x00, 0x7c}, {0, 0x40}} {
		out, err := s.Run([]oip.Tensor{{Name: "x", Datatype: oip.FP16, Shape: []int64{int64(len(in) / 2)}, Data: in}})
		require.NoError(t, err)
		require.Equal(t, []oip.Tensor{{Name: "y", Datatype: oip.FP16, Shape: []int64{int64(len(in) / 2)}, Data: in}}, out)
	}
}
