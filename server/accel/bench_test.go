package accel_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"path/filepath"
	"testing"

	"github.com/millrace/millrace/accel/oip"
	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/sandbox"
)

// BenchmarkModuleInference runs the PP-OCRv4 detection model on one
// 1×3×960×960 image of zeros (~0.17 s of ONNX Runtime on our machines) two ways, in
// one run: "server" is the server's own call to the accelerator (what a
// compute costs: one binary Open Inference Protocol request over the Unix
// socket), and "module" is a whole invocation of a reactor module that
// builds the tensor in its memory, runs the model through the tensor ABI
// and reads the 960×960 output back — instantiation, the guest↔host
// copies and the ABI included. Their ratio is the overhead of going
// through a module; accel/service's BenchmarkOverheadDet measures the
// accelerator's HTTP layer against onnxruntime_go called directly
// (make bench-accel runs both).
func BenchmarkModuleInference(b *testing.B) {
	ctx := context.Background()
	s := setup(b, nil)
	path, err := filepath.Abs(filepath.Join(testguests.ModulesDir(), "..", "build", "cache", "ocr-models", "1.4.2", "ch_PP-OCRv4_det_infer.onnx"))
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := s.models.Register(ctx, "ppocr_det", accel.Registration{Path: path}); err != nil {
		b.Fatal(err)
	}
	manifest := `{"abi": 1, "id": "nnbench", "name": "NN bench", "version": "1.0.0",
	  "capabilities": {"accel": {"models": ["ppocr_det"]}, "allowed_outbound_hosts": ["http://127.0.0.1:*"]}, "limits": {"memory_mb": 256, "timeout_ms": 300000}}`
	if _, _, err := s.reg.Upload(ctx, testguests.Reactor(b, "nnuser"), []byte(manifest)); err != nil {
		b.Fatal(err)
	}
	if _, err := s.reg.SetGrant(ctx, "nnbench", "1.0.0", sandbox.Grant{Capabilities: sandboxCaps(`{"accel": {"models": ["ppocr_det"]}, "allowed_outbound_hosts": ["http://127.0.0.1:*"]}`)}); err != nil {
		b.Fatal(err)
	}
	shape := []int64{1, 3, 960, 960}
	data := make([]byte, 4*3*960*960)
	for i := 0; i < len(data); i += 4 {
		binary.LittleEndian.PutUint32(data[i:], math.Float32bits(0))
	}
	am, err := s.models.LoadModel(ctx, "ppocr_det")
	if err != nil {
		b.Fatal(err)
	}
	in := []oip.Tensor{{Name: am.Inputs[0].Name, Datatype: oip.FP32, Shape: shape, Data: data}}
	want := 0.0 // the output's sum, the same both ways
	b.Run("server", func(b *testing.B) {
		for b.Loop() {
			out, err := s.models.Infer(ctx, am, in)
			if err != nil {
				b.Fatal(err)
			}
			want = sumF32(out[0].Data)
		}
		b.SetBytes(int64(len(data)))
	})
	b.Run("module", func(b *testing.B) {
		doc := []byte(`{"model": "ppocr_det", "fill": {"shape": [1, 3, 960, 960], "value": 0}, "summary": true, "outputs": 1}`)
		for b.Loop() {
			res, _, err := s.reg.Invoke(ctx, registry.InvokeRequest{ModuleID: "nnbench", Version: "1.0.0", Input: doc})
			if err != nil {
				b.Fatal(err)
			}
			if res.Failure != nil {
				b.Fatal(res.Failure)
			}
			var out struct {
				Outputs []struct {
					Sum float64 `json:"sum"`
				} `json:"outputs"`
			}
			if err := json.Unmarshal(res.Output, &out); err != nil || len(out.Outputs) != 1 {
				b.Fatalf("output %s: %v", res.Output, err)
			}
			if want != 0 && math.Abs(out.Outputs[0].Sum-want) > 1e-3*math.Abs(want) {
				b.Fatalf("the module's output sums to %v, the server's to %v", out.Outputs[0].Sum, want)
			}
		}
		b.SetBytes(int64(len(data)))
	})
}

func sumF32(b []byte) float64 {
	var sum float64
	for i := 0; i+4 <= len(b); i += 4 {
		sum += float64(math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
	}
	return sum
}
