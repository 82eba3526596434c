package scheduler

import (
	"math"
	"math/rand/v2"
)

// randStream is the PCG stream (increment) every Rand uses, so that a
// seed alone names the sequence. Its value is arbitrary but fixed
// forever: changing it changes every image.
const randStream = 0x6d696c6c72616365 // "millrace"

// Rand is the pipeline's seeded source of standard normal samples, for
// the initial latents, image-to-image noise and ancestral sampling. It is
// PCG (math/rand/v2's NewPCG(seed, randStream)) turned into normals with
// the Box–Muller transform, using both values of each pair:
//
//	u1 = (x>>11 + 1)·2⁻⁵³ ∈ (0, 1], u2 = (y>>11)·2⁻⁵³ ∈ [0, 1)
//	z0 = sqrt(-2 ln u1)·cos(2π u2), z1 = sqrt(-2 ln u1)·sin(2π u2)
//
// rounded to float32. The sequence is fixed for a seed on a given
// platform; it is not torch's (diffusers images for a seed cannot be
// reproduced), and math's Log/Cos/Sin may differ in the last bit between
// architectures, which the float32 rounding almost always hides.
type Rand struct {
	pcg      *rand.PCG
	spare    float64
	hasSpare bool
}

// NewRand returns the generator for seed.
func NewRand(seed uint64) *Rand {
	return &Rand{pcg: rand.NewPCG(seed, randStream)}
}

// Normal returns the next standard normal sample.
func (r *Rand) Normal() float32 {
	if r.hasSpare {
		r.hasSpare = false
		return float32(r.spare)
	}
	u1 := float64(r.pcg.Uint64()>>11+1) * 0x1p-53
	u2 := float64(r.pcg.Uint64()>>11) * 0x1p-53
	rad := math.Sqrt(-2 * math.Log(u1))
	sin, cos := math.Sincos(2 * math.Pi * u2)
	r.spare, r.hasSpare = rad*sin, true
	return float32(rad * cos)
}

// Fill fills dst with the next len(dst) samples, in order.
func (r *Rand) Fill(dst []float32) {
	for i := range dst {
		dst[i] = r.Normal()
	}
}

var _ Noise = (*Rand)(nil)
