package accel_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/accel/onnxbuild/sdxl"
	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/sandbox"
)

// sdxlFolder writes a tiny Stable Diffusion XL folder, as Optimum
// exports one.
func sdxlFolder(t testing.TB, opts sdxl.Options) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sdxl-tiny")
	require.NoError(t, sdxl.Write(dir, opts))
	return dir
}

// A pipeline folder registers as one model: registration checks every
// part and names what is missing; its networks load as NAME/PART, with
// their external data; its small files are readable, nothing else.
func TestPipelineRegistration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setup(t, nil)
	dir := sdxlFolder(t, sdxl.Options{Variant: sdxl.FP16, Turbo: true})

	m, created, err := s.models.Register(ctx, "sdxl-turbo", accel.Registration{Path: dir})
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, "pipeline", m.Kind)
	got, err := s.models.Get(ctx, "sdxl-turbo")
	require.NoError(t, err)
	require.Len(t, got.Parts, 5)
	for _, p := range got.Parts {
		require.Empty(t, p.MetadataError, p.Name)
		require.NotEmpty(t, p.Inputs, p.Name)
	}
	require.Equal(t, "sdxl-turbo/unet", got.Parts[2].Name)
	var names []string
	for _, in := range got.Parts[2].Inputs {
		names = append(names, in.Name+":"+in.TensorType)
	}
	require.Equal(t, []string{"sample:f16", "timestep:i64", "encoder_hidden_states:f16", "text_embeds:f16", "time_ids:f16"}, names)

	// The UNet's weights are external (model.onnx_data): ONNX Runtime
	// finds them through the registry's link.
	um, err := s.models.LoadModel(ctx, "sdxl-turbo/unet")
	require.NoError(t, err)
	require.Equal(t, "sdxl-turbo/unet", um.Name)
	for _, name := range []string{"sdxl-turbo", "sdxl-turbo/tokenizer", "sdxl-turbo/../arith", "arith/unet", "nope/unet"} {
		_, err := s.models.LoadModel(ctx, name)
		require.ErrorIs(t, err, sandbox.ErrModelNotFound, name)
	}

	cfg, err := s.models.ModelFile(ctx, "sdxl-turbo", "scheduler/scheduler_config.json")
	require.NoError(t, err)
	require.Contains(t, string(cfg), "EulerAncestralDiscreteScheduler")
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(dir, "scheduler", "escape.json")))
	for path, want := range map[string]error{
		"../sdxl-tiny/model_index.json": sandbox.ErrAccelInput,
		"/etc/passwd":                   sandbox.ErrAccelInput,
		"unet/model.onnx":               sandbox.ErrAccelInput,
		"unet/model.onnx_data":          sandbox.ErrAccelInput,
		"scheduler/./x.json":            sandbox.ErrAccelInput,
		"scheduler/escape.json":         sandbox.ErrAccelInput,
		"scheduler/missing.json":        sandbox.ErrModelNotFound,
	} {
		_, err := s.models.ModelFile(ctx, "sdxl-turbo", path)
		require.ErrorIs(t, err, want, path)
	}
	_, err = s.models.ModelFile(ctx, "arith", "config.json")
	require.ErrorIs(t, err, sandbox.ErrModelNotFound, "only pipelines serve files")

	// Each missing piece is named.
	for _, remove := range []string{"unet/model.onnx_data", "tokenizer_2/merges.txt", "vae_encoder", "scheduler/scheduler_config.json", "text_encoder/model.onnx"} {
		broken := sdxlFolder(t, sdxl.Options{})
		require.NoError(t, os.RemoveAll(filepath.Join(broken, remove)))
		_, _, err := s.models.Register(ctx, "broken", accel.Registration{Path: broken})
		var ae *accel.Error
		require.ErrorAs(t, err, &ae, remove)
		require.Equal(t, "path", ae.Field)
		require.Contains(t, ae.Msg, remove, remove)
	}

	require.NoError(t, s.models.Remove(ctx, "sdxl-turbo"))
	_, err = s.models.LoadModel(ctx, "sdxl-turbo/unet")
	require.ErrorIs(t, err, sandbox.ErrModelNotFound)
}

// sdxlOutput is the module's output.
type sdxlOutput struct {
	Image      string         `json:"image"`
	Seed       int64          `json:"seed"`
	StepsRun   int            `json:"steps_run"`
	Parameters map[string]any `json:"parameters"`
}

// installSDXL uploads the stable_diffusion_xl module and grants it what
// it requests.
func installSDXL(t *testing.T, s *stack) {
	t.Helper()
	ctx := context.Background()
	_, _, err := s.reg.Upload(ctx, testguests.Reactor(t, "stable_diffusion_xl"), testguests.Manifest(t, "stable_diffusion_xl"))
	require.NoError(t, err)
	m, err := s.reg.Get(ctx, "stable_diffusion_xl", "1.0.0")
	require.NoError(t, err)
	_, err = s.reg.SetGrant(ctx, "stable_diffusion_xl", "1.0.0", sandbox.Grant{Capabilities: m.Manifest.Capabilities})
	require.NoError(t, err)
}

func (s *stack) generate(t *testing.T, in map[string]any, progress func(sandbox.Progress)) (*sandbox.Result, sdxlOutput) {
	t.Helper()
	doc, err := json.Marshal(in)
	require.NoError(t, err)
	res, _, err := s.reg.Invoke(context.Background(), registry.InvokeRequest{ModuleID: "stable_diffusion_xl", Version: "1.0.0", Input: doc, OnProgress: progress})
	require.NoError(t, err)
	var out sdxlOutput
	if res.Failure == nil {
		require.NoError(t, json.Unmarshal(res.Output, &out))
	}
	return res, out
}

// The built-in stable_diffusion_xl module, end to end on a tiny folder of
// each exporter variant: the module's WebAssembly reads the folder's
// files, runs the five networks on the accelerator through the tensor
// ABI, reports each step with a preview, and returns a PNG carrying its
// parameters; the same seed gives the same bytes.
func TestSDXLModule(t *testing.T) {
	t.Parallel()
	s := setup(t, nil)
	ctx := context.Background()
	for name, v := range map[string]sdxl.Variant{"sdxl-turbo": sdxl.FP32, "sdxl": sdxl.FP16} {
		_, _, err := s.models.Register(ctx, name, accel.Registration{Path: sdxlFolder(t, sdxl.Options{Variant: v, Turbo: true})})
		require.NoError(t, err)
	}
	installSDXL(t, s)

	for _, model := range []string{"sdxl-turbo", "sdxl"} {
		var mu sync.Mutex
		var reports []sandbox.Progress
		in := map[string]any{"prompt": "a photo of a cat", "width": 64, "height": 64, "steps": 3, "seed": 42, "model": model}
		res, out := s.generate(t, in, func(p sandbox.Progress) {
			mu.Lock()
			reports = append(reports, p)
			mu.Unlock()
		})
		require.Nil(t, res.Failure, "logs: %+v", res.Logs)
		require.Len(t, reports, 3, "one report per step")
		for i, p := range reports {
			require.Equal(t, uint32(i+1), p.Done)
			require.Equal(t, uint32(3), p.Total)
			data, ok := strings.CutPrefix(p.Preview, "data:image/png;base64,")
			require.True(t, ok, p.Preview)
			b, err := base64.StdEncoding.DecodeString(data)
			require.NoError(t, err)
			_, err = png.DecodeConfig(bytes.NewReader(b))
			require.NoError(t, err)
		}
		img, err := base64.StdEncoding.DecodeString(out.Image)
		require.NoError(t, err)
		cfg, err := png.DecodeConfig(bytes.NewReader(img))
		require.NoError(t, err)
		require.Equal(t, 64, cfg.Width)
		require.Contains(t, string(img), "tEXtparameters\x00a photo of a cat\nSteps: 3, Sampler: Euler a, CFG scale: 0, Seed: 42, Size: 64x64, Model: "+model)
		require.Equal(t, float64(42), out.Parameters["seed"])
		require.Equal(t, 3, out.StepsRun)

		_, again := s.generate(t, in, nil)
		require.Equal(t, out.Image, again.Image, "same seed, same bytes")
		in["seed"] = 43
		_, other := s.generate(t, in, nil)
		require.NotEqual(t, out.Image, other.Image)

		// Image to image with guidance and another scheduler.
		in = map[string]any{"prompt": "a photo of a dog", "negative_prompt": "blurry", "width": 64, "height": 64, "steps": 4, "seed": 1,
			"guidance_scale": 5, "scheduler": "dpmpp_2m_karras", "model": model, "init_image": out.Image, "strength": 0.5}
		res, o := s.generate(t, in, nil)
		require.Nil(t, res.Failure, "logs: %+v", res.Logs)
		require.Equal(t, 2, o.StepsRun)
	}

	// What the module refuses, named.
	for _, tc := range []struct {
		in   map[string]any
		want string
	}{
		{map[string]any{"prompt": "x", "model": "arith"}, `model "arith" is not granted`},
		{map[string]any{"prompt": "x", "model": "sdxl-base"}, `no model is registered as "sdxl-base"`},
		{map[string]any{"prompt": "x", "width": 65}, "width"},
		{map[string]any{"prompt": "x", "scheduler": "ddim"}, "scheduler"},
		{map[string]any{"prompt": "x", "strength": 0.5}, "strength"},
		{map[string]any{"prompt": "x", "init_image": "!!"}, "init_image"},
	} {
		doc, err := json.Marshal(tc.in)
		require.NoError(t, err)
		// The inputs schema refuses some before the module runs.
		res, _, err := s.reg.Invoke(ctx, registry.InvokeRequest{ModuleID: "stable_diffusion_xl", Version: "1.0.0", Input: doc})
		all := ""
		if err != nil {
			all = err.Error()
		} else {
			require.NotNil(t, res.Failure, tc.in)
			all = res.Failure.Error()
			for _, l := range res.Logs {
				all += "\n" + l.Message
			}
		}
		require.Contains(t, all, tc.want, tc.in)
	}
}
