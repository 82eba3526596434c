package scheduler_test

import (
	"testing"

	"github.com/millrace/millrace/modules/stable_diffusion_xl/scheduler"
)

// BenchmarkStep is one denoising step's scheduler work (ScaleModelInput
// and Step) on SDXL-Turbo's 512×512 latents (4×64×64): the pipeline's
// share of a step, next to the UNet's (BenchmarkHeavyUNet in
// accel/onnxbuild/sdxl).
func BenchmarkStep(b *testing.B) {
	for _, kind := range scheduler.Kinds() {
		b.Run(string(kind), func(b *testing.B) {
			s, err := scheduler.New(kind, scheduler.DefaultConfig(), 30)
			if err != nil {
				b.Fatal(err)
			}
			x := make([]float32, 4*64*64)
			eps := make([]float32, len(x))
			r := scheduler.NewRand(1)
			r.Fill(x)
			r.Fill(eps)
			step := 0
			for b.Loop() {
				_ = s.ScaleModelInput(x, step%29)
				if _, err := s.Step(eps, x, step%29, r); err != nil {
					b.Fatal(err)
				}
				step++
			}
		})
	}
}

// BenchmarkNoise is drawing the initial latents for 512×512.
func BenchmarkNoise(b *testing.B) {
	x := make([]float32, 4*64*64)
	r := scheduler.NewRand(1)
	for b.Loop() {
		r.Fill(x)
	}
}
