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
// Marsaglia's polar method, using both values of each pair:
//
//	u = (x>>11)·2⁻⁵²−1, v = (y>>11)·2⁻⁵²−1 ∈ [-1, 1); s = u²+v², redrawn until 0 < s < 1
//	z0 = u·sqrt(-2 ln s / s), z1 = v·sqrt(-2 ln s / s)
//
// rounded to float32 (one logarithm per pair and no sine or cosine: about
// twice as fast as Box–Muller, which matters for euler_a's fresh noise
// every step). The sequence is fixed for a seed inside the WebAssembly
// module, where math is pure Go; it is not torch's, so diffusers' image
// for a seed cannot be reproduced. Natively, math.Log may differ in the
// last bit between architectures, which the float32 rounding almost
// always hides.
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
	for {
		u := float64(r.pcg.Uint64()>>11)*0x1p-52 - 1
		v := float64(r.pcg.Uint64()>>11)*0x1p-52 - 1
		s := u*u + v*v
		if s >= 1 || s == 0 {
			continue
		}
		k := math.Sqrt(-2 * math.Log(s) / s)
		r.spare, r.hasSpare = v*k, true
		return float32(u * k)
	}
}

// Fill fills dst with the next len(dst) samples, in order.
func (r *Rand) Fill(dst []float32) {
	for i := range dst {
		dst[i] = r.Normal()
	}
}

var _ Noise = (*Rand)(nil)
