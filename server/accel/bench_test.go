package accel_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/millrace/millrace/accel/oip"
	"github.com/millrace/millrace/accel/onnxbuild/sdxl"
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

// BenchmarkSDXLStep weighs the Stable Diffusion XL module's own work per
// denoising step (scheduler, classifier-free guidance, building the
// UNet's tensors in WebAssembly, the guest↔host copies, the preview and
// progress report) against the UNet call it wraps. The UNet is the
// generated tiny one with heavy matrix products added (sdxlBenchMatMuls),
// so a call takes tens of ms, at 512×512 with guidance (batch 2).
//
// Each iteration runs one generation of sdxlBenchSteps steps with a
// stopwatch around the registry's Accel, which the module's UNet calls go
// through: "step-ms" is the median time between the end of one UNet call
// and the start of the next (all the module does per step), "infer-ms"
// the median UNet call, and "overhead-%" their ratio. Then it calls the
// bare UNet as often, from the server with the same tensors: "unet-ms" is
// its median, and "vs-unet-%" step-ms over it. Medians, because on a
// shared machine a preempted call is an outlier, not a trend.
func BenchmarkSDXLStep(b *testing.B) {
	ctx := context.Background()
	s := setup(b, nil)
	dir := sdxlFolder(b, sdxl.Options{Turbo: true, HeavyMatMuls: sdxlBenchMatMuls})
	if _, _, err := s.models.Register(ctx, "sdxl", accel.Registration{Path: dir}); err != nil {
		b.Fatal(err)
	}
	if _, _, err := s.reg.Upload(ctx, testguests.Reactor(b, "stable_diffusion_xl"), testguests.Manifest(b, "stable_diffusion_xl")); err != nil {
		b.Fatal(err)
	}
	m, err := s.reg.Get(ctx, "stable_diffusion_xl", "1.0.0")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.reg.SetGrant(ctx, "stable_diffusion_xl", "1.0.0", sandbox.Grant{Capabilities: m.Manifest.Capabilities}); err != nil {
		b.Fatal(err)
	}
	timed := &timedAccel{Models: s.models, model: "sdxl/unet"}
	s.reg.SetAccel(timed)
	unet, err := s.models.LoadModel(ctx, "sdxl/unet")
	if err != nil {
		b.Fatal(err)
	}
	const batch, side = 2, 512 / 8
	f32 := func(name string, shape ...int64) oip.Tensor {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(i%17)/17 - 0.5
		}
		return oip.NewTensor(name, shape, v)
	}
	in := []oip.Tensor{
		f32("sample", batch, 4, side, side), f32("timestep"),
		f32("encoder_hidden_states", batch, 77, sdxl.CrossAttention), f32("text_embeds", batch, sdxl.Projection), f32("time_ids", batch, 6),
	}
	doc, _ := json.Marshal(map[string]any{"prompt": "a lighthouse at dusk", "model": "sdxl", "steps": sdxlBenchSteps, "guidance_scale": 5, "seed": 1, "scheduler": "euler"})
	generate := func() {
		res, _, err := s.reg.Invoke(ctx, registry.InvokeRequest{ModuleID: "stable_diffusion_xl", Version: "1.0.0", Input: doc,
			OnProgress: func(p sandbox.Progress) { json.Marshal(p) }}) // as the engine publishes it
		if err != nil {
			b.Fatal(err)
		}
		if res.Failure != nil {
			b.Fatal(res.Failure, res.Logs)
		}
	}
	generate() // loads every part once
	var steps, infers, bare []time.Duration
	for b.Loop() {
		timed.calls = nil
		generate()
		if len(timed.calls) != sdxlBenchSteps {
			b.Fatalf("%d UNet calls for %d steps", len(timed.calls), sdxlBenchSteps)
		}
		for i, c := range timed.calls {
			infers = append(infers, c.end.Sub(c.start))
			if i > 0 {
				steps = append(steps, c.start.Sub(timed.calls[i-1].end))
			}
		}
		for range sdxlBenchSteps {
			start := time.Now()
			if _, err := s.models.Infer(ctx, unet, in); err != nil {
				b.Fatal(err)
			}
			bare = append(bare, time.Since(start))
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
	step, infer, u := median(steps), median(infers), median(bare)
	b.ReportMetric(ms(u), "unet-ms")
	b.ReportMetric(ms(infer), "infer-ms")
	b.ReportMetric(ms(step), "step-ms")
	b.ReportMetric(float64(step)/float64(infer)*100, "overhead-%")
	b.ReportMetric(float64(step)/float64(u)*100, "vs-unet-%")
}

// The BenchmarkSDXLStep setup: heavy matrix products per UNet call, and
// the steps of a generation.
const (
	sdxlBenchMatMuls = sdxl.DefaultHeavyMatMuls
	sdxlBenchSteps   = 8
)

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// timedAccel is the registry's model registry, timing the calls of one
// model: the benchmark's stopwatch around the real accelerator calls. A
// generation calls it from one goroutine at a time.
type timedAccel struct {
	*accel.Models
	model string
	calls []timedCall
}

type timedCall struct{ start, end time.Time }

func (t *timedAccel) Infer(ctx context.Context, m *sandbox.AccelModel, in []oip.Tensor) ([]oip.Tensor, error) {
	start := time.Now()
	out, err := t.Models.Infer(ctx, m, in)
	if m.Name == t.model {
		t.calls = append(t.calls, timedCall{start, time.Now()})
	}
	return out, err
}
