//go:build !wasip1

package main

import (
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/modules/internal/moduletest"
)

func TestManifest(t *testing.T) {
	t.Parallel()
	m := moduletest.Manifest(t)
	require.Equal(t, abi.Capabilities{Accel: &abi.Accel{Models: []string{"sdxl-turbo", "sdxl-base", "sdxl"}}}, m.Capabilities)
}

func ptr[T any](v T) *T { return &v }

func TestResolve(t *testing.T) {
	t.Parallel()
	p, err := resolve(input{Prompt: "a cat", Seed: ptr(int64(5))})
	require.NoError(t, err)
	require.Equal(t, Parameters{Prompt: "a cat", Width: 512, Height: 512, Steps: 1, Seed: 5, Scheduler: "euler_a", Model: "sdxl-turbo"}, p, "the SDXL-Turbo preset")
	a, err := resolve(input{Prompt: "a cat"})
	require.NoError(t, err)
	require.GreaterOrEqual(t, a.Seed, int64(0))
	require.LessOrEqual(t, a.Seed, int64(maxSeed))

	p, err = resolve(input{Prompt: "a cat", InitImage: "AAAA"})
	require.NoError(t, err)
	require.True(t, p.ImageToImage)
	require.Equal(t, 0.5, p.Strength)

	for want, in := range map[string]input{
		"prompt is required":    {Prompt: " "},
		"width":                 {Prompt: "x", Width: ptr(100)},
		"steps":                 {Prompt: "x", Steps: ptr(0)},
		"scheduler":             {Prompt: "x", Scheduler: "ddim"},
		"seed":                  {Prompt: "x", Seed: ptr(int64(-1))},
		"strength is for image": {Prompt: "x", Strength: ptr(0.3)},
		"strength:":             {Prompt: "x", InitImage: "AAAA", Strength: ptr(1.5)},
		"timestep_spacing":      {Prompt: "x", TimestepSpacing: "karras"},
		"guidance_scale":        {Prompt: "x", GuidanceScale: ptr(-1.0)},
	} {
		_, err := resolve(in)
		require.ErrorContains(t, err, want)
	}
}

func TestInfotext(t *testing.T) {
	t.Parallel()
	p := Parameters{Prompt: "a cat", NegativePrompt: "blur", Width: 512, Height: 768, Steps: 30, GuidanceScale: 5.5, Seed: 9,
		Scheduler: "dpmpp_2m_karras", Model: "sdxl-base", ImageToImage: true, Strength: 0.25}
	require.Equal(t, "a cat\nNegative prompt: blur\nSteps: 30, Sampler: DPM++ 2M Karras, CFG scale: 5.5, Seed: 9, Size: 512x768, Model: sdxl-base, Denoising strength: 0.25, Version: Millrace stable_diffusion_xl", infotext(p))
}

func TestImageBytes(t *testing.T) {
	t.Parallel()
	want := []byte{0x89, 'P', 'N', 'G', 0xfb, 0xff}
	std := base64.StdEncoding.EncodeToString(want)
	for _, s := range []string{std, base64.RawURLEncoding.EncodeToString(want), "data:image/png;base64," + std, std[:4] + "\n" + std[4:]} {
		got, err := imageBytes(s)
		require.NoError(t, err, s)
		require.Equal(t, want, got)
	}
	_, err := imageBytes("data:image/png,xyz")
	require.ErrorContains(t, err, "init_image")
	_, err = imageBytes("!!")
	require.ErrorContains(t, err, "init_image")
}
