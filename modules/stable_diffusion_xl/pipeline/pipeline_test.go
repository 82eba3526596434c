package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/accel/acceltest"
	"github.com/millrace/millrace/accel/onnxbuild/sdxl"
	"github.com/millrace/millrace/modules/stable_diffusion_xl/internal/sdxltest"
	"github.com/millrace/millrace/modules/stable_diffusion_xl/pipeline"
	"github.com/millrace/millrace/modules/stable_diffusion_xl/scheduler"
)

func TestMain(m *testing.M) { os.Exit(acceltest.Main(m)) }

// setup serves a tiny folder of each exporter variant on one accelerator.
func setup(t *testing.T) map[sdxl.Variant]*sdxltest.Runner {
	t.Helper()
	a := sdxltest.StartAccel(t)
	runners := map[sdxl.Variant]*sdxltest.Runner{}
	for _, v := range []sdxl.Variant{sdxl.FP32, sdxl.FP16} {
		runners[v] = a.Serve(t, "sdxl-"+string(v), sdxltest.Folder(t, sdxl.Options{Variant: v, Turbo: true}))
	}
	return runners
}

func encode(t *testing.T, res *pipeline.Result) []byte {
	t.Helper()
	b, err := pipeline.EncodePNG(res.Image, "parameters", "test")
	require.NoError(t, err)
	return b
}

// Text to image with every scheduler, guidance on and off, on both
// exporter variants: each run is repeatable byte for byte, and the seed,
// the scheduler and the guidance each change the image.
func TestTextToImage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for variant, r := range setup(t) {
		seen := map[string]string{}
		for _, kind := range scheduler.Kinds() {
			for _, guidance := range []float64{0, 5} {
				name := fmt.Sprintf("%s/%s/guidance=%v", variant, kind, guidance)
				p := pipeline.Params{Prompt: "a photo of a cat", NegativePrompt: "blurry", Width: 64, Height: 64, Steps: 3,
					GuidanceScale: guidance, Seed: 7, Scheduler: kind}
				var reports []int
				res, err := pipeline.Generate(ctx, r, p, func(done, total int, preview []byte) {
					require.Equal(t, 3, total)
					cfg, err := png.DecodeConfig(bytes.NewReader(preview))
					require.NoError(t, err, "the preview is a PNG")
					require.Equal(t, 8, cfg.Width, "one preview pixel per latent")
					reports = append(reports, done)
				})
				require.NoError(t, err, name)
				require.Equal(t, []int{1, 2, 3}, reports, "one report per step")
				require.Equal(t, 3, res.StepsRun)
				require.Equal(t, image.Rect(0, 0, 64, 64), res.Image.Rect)
				first := encode(t, res)
				again, err := pipeline.Generate(ctx, r, p, nil)
				require.NoError(t, err)
				require.Equal(t, first, encode(t, again), "%s: same seed, same bytes", name)
				require.NotContains(t, seen, string(first), "%s makes the image of %s", name, seen[string(first)])
				seen[string(first)] = name
				require.False(t, uniform(res.Image), "%s: the image is not flat", name)

				p.Seed = 8
				other, err := pipeline.Generate(ctx, r, p, nil)
				require.NoError(t, err)
				require.NotEqual(t, first, encode(t, other), "%s: another seed, another image", name)
			}
		}
	}
}

// uniform reports whether every pixel of img is the same.
func uniform(img *image.NRGBA) bool {
	first := img.NRGBAAt(0, 0)
	for y := range img.Rect.Dy() {
		for x := range img.Rect.Dx() {
			if img.NRGBAAt(x, y) != first {
				return false
			}
		}
	}
	return true
}

// Guidance batches [negative, positive]: each UNet call sees both rows,
// and without guidance one; the number of UNet calls is the number of
// steps either way.
func TestGuidanceAndNegativePrompt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := setup(t)[sdxl.FP32]
	base := pipeline.Params{Prompt: "a photo of a cat", Width: 64, Height: 64, Steps: 2, GuidanceScale: 6, Seed: 3, Scheduler: scheduler.Euler}
	zeros, err := pipeline.Generate(ctx, r, base, nil)
	require.NoError(t, err)
	withNeg := base
	withNeg.NegativePrompt = "a dog"
	neg, err := pipeline.Generate(ctx, r, withNeg, nil)
	require.NoError(t, err)
	require.NotEqual(t, encode(t, zeros), encode(t, neg), "a negative prompt is encoded, not zeros")
	// guidance_scale 1 is no guidance: the negative prompt is ignored.
	off := withNeg
	off.GuidanceScale = 1
	a, err := pipeline.Generate(ctx, r, off, nil)
	require.NoError(t, err)
	off.NegativePrompt = ""
	b, err := pipeline.Generate(ctx, r, off, nil)
	require.NoError(t, err)
	require.Equal(t, encode(t, a), encode(t, b))
}

// Image to image on both variants (latent_sample and latent_parameters):
// strength picks how many steps run, and the init image shows through.
func TestImageToImage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	init := gradient(64, 64)
	for variant, r := range setup(t) {
		for _, kind := range scheduler.Kinds() {
			p := pipeline.Params{Prompt: "a photo of a cat", Width: 64, Height: 64, Steps: 4, Seed: 11, Scheduler: kind, InitImage: init, Strength: 0.5}
			steps := 0
			res, err := pipeline.Generate(ctx, r, p, func(done, total int, _ []byte) {
				require.Equal(t, 2, total)
				steps++
			})
			require.NoError(t, err, "%s/%s", variant, kind)
			require.Equal(t, 2, steps)
			require.Equal(t, 2, res.StepsRun)
			again, err := pipeline.Generate(ctx, r, p, nil)
			require.NoError(t, err)
			require.Equal(t, encode(t, res), encode(t, again), "%s/%s: same seed, same bytes", variant, kind)

			other := p
			other.InitImage = gradient(32, 48) // resized to 64×64
			o, err := pipeline.Generate(ctx, r, other, nil)
			require.NoError(t, err)
			require.NotEqual(t, encode(t, res), encode(t, o), "%s/%s: the init image matters", variant, kind)
		}
		// A strength too small for one step decodes the init image.
		p := pipeline.Params{Prompt: "x", Width: 64, Height: 64, Steps: 2, Seed: 1, Scheduler: scheduler.Euler, InitImage: init, Strength: 0.1}
		before := r.CallsOf("unet")
		res, err := pipeline.Generate(ctx, r, p, nil)
		require.NoError(t, err)
		require.Zero(t, res.StepsRun)
		require.Equal(t, before, r.CallsOf("unet"), "no UNet call")
	}
}

func gradient(w, h int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255})
		}
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	return buf.Bytes()
}

// A canceled context stops generation at the next step.
func TestCancelStopsWithinAStep(t *testing.T) {
	t.Parallel()
	r := setup(t)[sdxl.FP32]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := r.CallsOf("unet")
	_, err := pipeline.Generate(ctx, r, pipeline.Params{Prompt: "a cat", Width: 64, Height: 64, Steps: 10, Seed: 1, Scheduler: scheduler.Euler},
		func(done, total int, _ []byte) {
			if done == 2 {
				cancel()
			}
		})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 2, r.CallsOf("unet")-before, "no UNet call after the cancel")
	require.Zero(t, r.CallsOf("vae_decoder"))
}

func TestParamsValidate(t *testing.T) {
	t.Parallel()
	ok := pipeline.Params{Prompt: "x", Width: 512, Height: 512, Steps: 4, Scheduler: scheduler.EulerAncestral}
	require.NoError(t, ok.Validate())
	for field, p := range map[string]func(*pipeline.Params){
		"width":          func(p *pipeline.Params) { p.Width = 500 },
		"height":         func(p *pipeline.Params) { p.Height = 0 },
		"steps":          func(p *pipeline.Params) { p.Steps = 0 },
		"guidance_scale": func(p *pipeline.Params) { p.GuidanceScale = math.NaN() },
		"strength":       func(p *pipeline.Params) { p.InitImage, p.Strength = []byte{1}, 0 },
		"scheduler":      func(p *pipeline.Params) { p.Scheduler = "ddim" },
	} {
		bad := ok
		p(&bad)
		require.ErrorContains(t, bad.Validate(), field+":", field)
	}
}
