package service_test

import (
	"context"
	"path/filepath"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/millrace/millrace/accel/client"
	"github.com/millrace/millrace/accel/oip"
	"github.com/millrace/millrace/accel/service"
	"github.com/millrace/millrace/accel/sessions"
)

// benchModel compares one model run directly through onnxruntime_go with
// the same run through the HTTP service (binary tensor data and JSON), on
// the same machine and ONNX Runtime settings.
func benchModel(b *testing.B, model, file, input string, shape []int64, output string) {
	f := setup(b, sessions.Config{}, service.Config{})
	path := filepath.Join(f.dir, file)
	require := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	require(f.mgr.Ready()) // loads the library for the direct runs too
	n, err := oip.ElementCount(shape, 1<<40)
	require(err)
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(i%255)/127.5 - 1
	}
	bytesPerCall := func(outputElems int64) int64 { return 4 * (n + outputElems) }

	b.Run("direct", func(b *testing.B) {
		sess, err := ort.NewDynamicAdvancedSession(path, []string{input}, []string{output}, nil)
		require(err)
		defer sess.Destroy()
		var outElems int64
		for b.Loop() {
			in, err := ort.NewTensor(ort.Shape(shape), x)
			require(err)
			outs := []ort.Value{nil}
			require(sess.Run([]ort.Value{in}, outs))
			outElems = outs[0].GetShape().FlattenedSize()
			in.Destroy()
			outs[0].Destroy()
		}
		b.SetBytes(bytesPerCall(outElems))
	})
	for _, mode := range []struct {
		name string
		opts []client.InferOption
	}{{"binary", nil}, {"json", []client.InferOption{client.JSON()}}} {
		b.Run(mode.name, func(b *testing.B) {
			ctx := context.Background()
			inputs := []oip.Tensor{oip.NewTensor(input, shape, x)}
			_, err := f.c.Infer(ctx, model, inputs, mode.opts...) // load outside the timing
			require(err)
			var outElems int64
			for b.Loop() {
				resp, err := f.c.Infer(ctx, model, inputs, mode.opts...)
				require(err)
				outElems = int64(len(resp.Outputs[0].Data) / 4)
			}
			b.SetBytes(bytesPerCall(outElems))
		})
	}
}

// BenchmarkOverheadDet: PP-OCRv4 detection on a 960×960 image (hundreds
// of milliseconds of compute on two cores), for the service's per-call
// overhead relative to the run itself.
func BenchmarkOverheadDet(b *testing.B) {
	benchModel(b, "ocr_det", "ocr_det/model.onnx", "x", []int64{1, 3, 960, 960}, "sigmoid_0.tmp_0")
}

// BenchmarkOverheadTiny: four floats through Identity, for the fixed cost
// of one call.
func BenchmarkOverheadTiny(b *testing.B) {
	benchModel(b, "echo", "echo.onnx", "x", []int64{4}, "y")
}

// BenchmarkTransfer: 16 MiB in and out through Identity, for tensor
// transfer throughput (MB/s counts input plus output bytes).
func BenchmarkTransfer(b *testing.B) {
	benchModel(b, "echo", "echo.onnx", "x", []int64{4 << 20}, "y")
}
