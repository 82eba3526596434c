package scheduler

import (
	"errors"
	"fmt"
	"math"
)

// Kind names a sampler, as the module's `scheduler` input spells it.
type Kind string

// The samplers New builds.
const (
	// Euler is diffusers' EulerDiscreteScheduler (s_churn 0): the
	// deterministic first-order sampler SDXL base ships with.
	Euler Kind = "euler"
	// EulerAncestral is EulerAncestralDiscreteScheduler: Euler that adds
	// fresh noise each step (SDXL-Turbo's sampler).
	EulerAncestral Kind = "euler_a"
	// DPMPP2MKarras is DPMSolverMultistepScheduler with
	// use_karras_sigmas: DPM-Solver++ second order, midpoint, lower order
	// final, final sigma zero.
	DPMPP2MKarras Kind = "dpmpp_2m_karras"
)

// Kinds lists every Kind, in the order the module documents them.
func Kinds() []Kind { return []Kind{Euler, EulerAncestral, DPMPP2MKarras} }

// ParseKind returns the Kind spelled s, or an error listing the valid ones.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds() {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("scheduler %q is not one of euler, euler_a, dpmpp_2m_karras", s)
}

// Noise fills dst with independent standard normal samples. *Rand is
// the one the pipeline uses; tests pass their own (all zeros, say).
type Noise interface {
	Fill(dst []float32)
}

// Scheduler is one sampler set up for a number of inference steps. Steps
// are indexed 0..Len()-1; Step must be called in increasing step order
// (DPM++ 2M remembers the previous step's prediction). A Scheduler is not
// safe for concurrent use; make one per generation.
type Scheduler struct {
	kind      Kind
	cfg       Config
	timesteps []float64
	sigmas    []float64 // len(timesteps)+1, the last is 0
	initSigma float64

	// DPM++ 2M state: the previous step's denoised prediction, and the
	// step it was made at (-1: none, so the next step is first order).
	prevX0   []float32
	prevStep int
}

// New returns the sampler kind for cfg's noise schedule and steps
// inference steps.
func New(kind Kind, cfg Config, steps int) (*Scheduler, error) {
	if _, err := ParseKind(string(kind)); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if steps < 1 || steps > cfg.NumTrainTimesteps {
		return nil, fmt.Errorf("steps %d is outside [1, num_train_timesteps = %d]", steps, cfg.NumTrainTimesteps)
	}
	table := trainSigmas(cfg)
	s := &Scheduler{kind: kind, cfg: cfg, prevStep: -1}
	switch {
	case kind == DPMPP2MKarras:
		// diffusers' DPM solver spans the whole training table with
		// Karras sigmas whatever the spacing, and rounds its timesteps.
		s.sigmas = karras(table[len(table)-1], table[0], steps)
		s.timesteps = make([]float64, steps)
		for i, sg := range s.sigmas {
			s.timesteps[i] = math.RoundToEven(sigmaToT(sg, table))
		}
		s.initSigma = 1
	default:
		s.timesteps = spacedTimesteps(cfg, steps)
		s.sigmas = make([]float64, steps)
		for i, t := range s.timesteps {
			s.sigmas[i] = interp(t, table)
		}
		if kind == Euler && cfg.UseKarrasSigmas {
			// Euler's Karras sigmas span the spaced sigmas, and its
			// timesteps stay fractional.
			s.sigmas = karras(s.sigmas[0], s.sigmas[steps-1], steps)
			for i, sg := range s.sigmas {
				s.timesteps[i] = sigmaToT(sg, table)
			}
		}
		maxSigma := 0.0
		for _, sg := range s.sigmas {
			maxSigma = math.Max(maxSigma, sg)
		}
		if cfg.TimestepSpacing == SpacingLinspace || cfg.TimestepSpacing == SpacingTrailing {
			s.initSigma = maxSigma
		} else {
			s.initSigma = math.Sqrt(maxSigma*maxSigma + 1)
		}
	}
	s.sigmas = append(s.sigmas, 0)
	return s, nil
}

// Kind returns the sampler's kind.
func (s *Scheduler) Kind() Kind { return s.kind }

// Config returns the configuration the scheduler was built from.
func (s *Scheduler) Config() Config { return s.cfg }

// Len returns the number of inference steps.
func (s *Scheduler) Len() int { return len(s.timesteps) }

// Timesteps returns the timestep fed to the UNet at each step, from the
// noisiest down (a copy).
func (s *Scheduler) Timesteps() []float64 { return append([]float64(nil), s.timesteps...) }

// Sigmas returns the noise level at each step plus a final 0 (Len()+1
// values, a copy).
func (s *Scheduler) Sigmas() []float64 { return append([]float64(nil), s.sigmas...) }

// InitNoiseSigma is the factor the initial standard normal latents are
// multiplied by.
func (s *Scheduler) InitNoiseSigma() float64 { return s.initSigma }

// ModelInputScale is the factor ScaleModelInput multiplies the sample by
// at step: 1/sqrt(σ²+1) for the Euler samplers, 1 for DPM++ (whose
// samples are already variance-preserving). The pipeline can fold it into
// its own copy of the latents (CFG batch, fp16 conversion).
func (s *Scheduler) ModelInputScale(step int) float64 {
	if s.kind == DPMPP2MKarras {
		return 1
	}
	sg := s.sigmas[s.clamp(step)]
	return 1 / math.Sqrt(sg*sg+1)
}

// ScaleModelInput returns sample scaled for the UNet at step (a new slice).
func (s *Scheduler) ScaleModelInput(sample []float32, step int) []float32 {
	k := s.ModelInputScale(step)
	out := make([]float32, len(sample))
	for i, v := range sample {
		out[i] = float32(float64(v) * k)
	}
	return out
}

func (s *Scheduler) clamp(step int) int {
	return min(max(step, 0), len(s.timesteps)-1)
}

// Step returns the latents for step+1 from the UNet's output for the
// latents sample at step (guidance already applied). noise is drawn from
// only by EulerAncestral, which needs it.
func (s *Scheduler) Step(modelOutput, sample []float32, step int, noise Noise) ([]float32, error) {
	if step < 0 || step >= len(s.timesteps) {
		return nil, fmt.Errorf("step %d is outside [0, %d)", step, len(s.timesteps))
	}
	if len(modelOutput) != len(sample) {
		return nil, fmt.Errorf("model output has %d values, sample %d", len(modelOutput), len(sample))
	}
	switch s.kind {
	case Euler:
		return s.stepEuler(modelOutput, sample, step), nil
	case EulerAncestral:
		if noise == nil {
			return nil, errors.New("euler_a needs a noise source")
		}
		return s.stepAncestral(modelOutput, sample, step, noise), nil
	default:
		return s.stepDPM(modelOutput, sample, step), nil
	}
}

// Denoised returns the clean latents x0 that the model output at step
// implies for sample (what a progress preview should show: the samples
// themselves look like noise until the last steps), for the config's
// prediction type: x − σ·ε (or the v form) for the Euler samplers, and
// DPM++'s variance-preserving equivalent.
func (s *Scheduler) Denoised(modelOutput, sample []float32, step int) ([]float32, error) {
	if step < 0 || step >= len(s.timesteps) {
		return nil, fmt.Errorf("step %d is outside [0, %d)", step, len(s.timesteps))
	}
	if len(modelOutput) != len(sample) {
		return nil, fmt.Errorf("model output has %d values, sample %d", len(modelOutput), len(sample))
	}
	sigma := s.sigmas[step]
	out := make([]float32, len(sample))
	if s.kind == DPMPP2MKarras {
		alpha, sigmaT := alphaSigma(sigma)
		for i := range sample {
			out[i] = s.dpmDenoised(float64(modelOutput[i]), float64(sample[i]), alpha, sigmaT)
		}
		return out, nil
	}
	for i := range sample {
		out[i] = float32(s.denoised(float64(modelOutput[i]), float64(sample[i]), sigma))
	}
	return out, nil
}

// dpmDenoised is DPM-Solver++'s x0 from model output m at sample x.
func (s *Scheduler) dpmDenoised(m, x, alpha, sigmaT float64) float32 {
	if s.cfg.PredictionType == PredictV {
		return float32(alpha*x - sigmaT*m)
	}
	return float32((x - sigmaT*m) / alpha)
}

// denoised is the Euler samplers' prediction of the clean sample x0 from
// the model output m at noise level sigma.
func (s *Scheduler) denoised(m, x, sigma float64) float64 {
	if s.cfg.PredictionType == PredictV {
		return m*(-sigma/math.Sqrt(sigma*sigma+1)) + x/(sigma*sigma+1)
	}
	return x - sigma*m
}

func (s *Scheduler) stepEuler(modelOutput, sample []float32, step int) []float32 {
	sigma, next := s.sigmas[step], s.sigmas[step+1]
	out := make([]float32, len(sample))
	for i := range sample {
		x := float64(sample[i])
		d := (x - s.denoised(float64(modelOutput[i]), x, sigma)) / sigma
		out[i] = float32(x + d*(next-sigma))
	}
	return out
}

func (s *Scheduler) stepAncestral(modelOutput, sample []float32, step int, noise Noise) []float32 {
	from, to := s.sigmas[step], s.sigmas[step+1]
	up := math.Sqrt(to * to * (from*from - to*to) / (from * from))
	down := math.Sqrt(to*to - up*up)
	out := make([]float32, len(sample))
	if up > 0 {
		noise.Fill(out)
	}
	for i := range sample {
		x := float64(sample[i])
		d := (x - s.denoised(float64(modelOutput[i]), x, from)) / from
		out[i] = float32(x + d*(down-from) + float64(out[i])*up)
	}
	return out
}

// alphaSigma turns an Euler-style sigma into the variance-preserving
// pair (α_t, σ_t) the DPM solver works with.
func alphaSigma(sigma float64) (alpha, sigmaT float64) {
	alpha = 1 / math.Sqrt(sigma*sigma+1)
	return alpha, sigma * alpha
}

func (s *Scheduler) stepDPM(modelOutput, sample []float32, step int) []float32 {
	alphaS, sigmaS := alphaSigma(s.sigmas[step])
	x0 := make([]float32, len(sample))
	for i := range sample {
		x0[i] = s.dpmDenoised(float64(modelOutput[i]), float64(sample[i]), alphaS, sigmaS)
	}
	prev := s.prevX0
	secondOrder := prev != nil && s.prevStep == step-1 && len(prev) == len(sample)
	s.prevX0, s.prevStep = x0, step

	next := s.sigmas[step+1]
	if next == 0 {
		// The final step to sigma 0 is first order and lands on the
		// prediction itself (λ_t = ∞, so e^{-h} = 0 and σ_t = 0).
		return append([]float32(nil), x0...)
	}
	alphaT, sigmaT := alphaSigma(next)
	lambdaT := math.Log(alphaT) - math.Log(sigmaT)
	lambdaS := math.Log(alphaS) - math.Log(sigmaS)
	h := lambdaT - lambdaS
	ratio := sigmaT / sigmaS
	c := alphaT * (math.Exp(-h) - 1)
	out := make([]float32, len(sample))
	if !secondOrder {
		for i := range sample {
			out[i] = float32(ratio*float64(sample[i]) - c*float64(x0[i]))
		}
		return out
	}
	alphaP, sigmaP := alphaSigma(s.sigmas[step-1])
	lambdaP := math.Log(alphaP) - math.Log(sigmaP)
	r0 := (lambdaS - lambdaP) / h
	for i := range sample {
		d0 := float64(x0[i])
		d1 := (d0 - float64(prev[i])) / r0
		out[i] = float32(ratio*float64(sample[i]) - c*d0 - 0.5*c*d1)
	}
	return out
}

// AddNoise returns original noised to the level of step (image-to-image:
// the VAE-encoded image's latents enter the schedule at StartStep):
// original + σ·noise for the Euler samplers, α·original + σ_t·noise for
// DPM++.
func (s *Scheduler) AddNoise(original, noise []float32, step int) ([]float32, error) {
	if step < 0 || step >= len(s.timesteps) {
		return nil, fmt.Errorf("step %d is outside [0, %d)", step, len(s.timesteps))
	}
	if len(original) != len(noise) {
		return nil, fmt.Errorf("original has %d values, noise %d", len(original), len(noise))
	}
	a, b := 1.0, s.sigmas[step]
	if s.kind == DPMPP2MKarras {
		a, b = alphaSigma(b)
	}
	out := make([]float32, len(original))
	for i := range original {
		out[i] = float32(a*float64(original[i]) + b*float64(noise[i]))
	}
	return out, nil
}

// StartStep is the first step image-to-image runs for strength in [0, 1]
// (diffusers' get_timesteps): the last int(steps·strength) steps run, so
// strength 1 starts at 0 and repaints everything. It returns steps when
// no step would run.
func StartStep(steps int, strength float64) int {
	strength = min(max(strength, 0), 1)
	run := min(int(float64(steps)*strength), steps)
	return max(steps-run, 0)
}

// trainSigmas is σ_t = sqrt((1-ᾱ_t)/ᾱ_t) for every training timestep t.
func trainSigmas(cfg Config) []float64 {
	n := cfg.NumTrainTimesteps
	betas := make([]float64, n)
	switch cfg.BetaSchedule {
	case BetaLinear:
		for i := range betas {
			betas[i] = linspace(cfg.BetaStart, cfg.BetaEnd, n, i)
		}
	case BetaScaledLinear:
		for i := range betas {
			b := linspace(math.Sqrt(cfg.BetaStart), math.Sqrt(cfg.BetaEnd), n, i)
			betas[i] = b * b
		}
	default: // squaredcos_cap_v2 (Nichol & Dhariwal's cosine schedule)
		alphaBar := func(t float64) float64 {
			c := math.Cos((t + 0.008) / 1.008 * math.Pi / 2)
			return c * c
		}
		for i := range betas {
			t1, t2 := float64(i)/float64(n), float64(i+1)/float64(n)
			betas[i] = math.Min(1-alphaBar(t2)/alphaBar(t1), 0.999)
		}
	}
	sigmas := make([]float64, n)
	cum := 1.0
	for i, b := range betas {
		cum *= 1 - b
		sigmas[i] = math.Sqrt((1 - cum) / cum)
	}
	return sigmas
}

// linspace is numpy's linspace(a, b, n)[i].
func linspace(a, b float64, n, i int) float64 {
	if n == 1 {
		return a
	}
	return a + (b-a)*float64(i)/float64(n-1)
}

// spacedTimesteps places steps timesteps over the training schedule as
// cfg.TimestepSpacing says, noisiest first.
func spacedTimesteps(cfg Config, steps int) []float64 {
	n := cfg.NumTrainTimesteps
	ts := make([]float64, steps)
	for i := range ts {
		j := steps - 1 - i // ts is the reversed ascending schedule
		switch cfg.TimestepSpacing {
		case SpacingLinspace:
			ts[i] = linspace(0, float64(n-1), steps, j)
		case SpacingLeading:
			ts[i] = float64(j*(n/steps) + cfg.StepsOffset)
		default: // trailing: round(arange(n, 0, -n/steps)) - 1
			ts[i] = math.RoundToEven(float64(n)-float64(i)*float64(n)/float64(steps)) - 1
		}
	}
	return ts
}

// interp is numpy's interp(t, arange(len(table)), table).
func interp(t float64, table []float64) float64 {
	if t <= 0 {
		return table[0]
	}
	if t >= float64(len(table)-1) {
		return table[len(table)-1]
	}
	lo := int(math.Floor(t))
	w := t - float64(lo)
	return table[lo]*(1-w) + table[lo+1]*w
}

// karras is Karras et al. (2022)'s noise levels with ρ = 7, from max down
// to min in n steps.
func karras(maxSigma, minSigma float64, n int) []float64 {
	const rho = 7.0
	hi, lo := math.Pow(maxSigma, 1/rho), math.Pow(minSigma, 1/rho)
	out := make([]float64, n)
	for i := range out {
		ramp := 0.0
		if n > 1 {
			ramp = float64(i) / float64(n-1)
		}
		out[i] = math.Pow(hi+ramp*(lo-hi), rho)
	}
	return out
}

// sigmaToT is diffusers' _sigma_to_t: the fractional training timestep
// whose sigma is sigma, interpolating log σ between table entries.
func sigmaToT(sigma float64, table []float64) float64 {
	logSigma := math.Log(math.Max(sigma, 1e-10))
	// low is the last index whose log σ is at most logSigma, kept
	// below the final entry so that low+1 exists.
	low := 0
	for i, sg := range table {
		if logSigma-math.Log(sg) >= 0 {
			low = i
		}
	}
	low = min(low, len(table)-2)
	l, h := math.Log(table[low]), math.Log(table[low+1])
	w := (l - logSigma) / (l - h)
	w = min(max(w, 0), 1)
	return (1-w)*float64(low) + w*float64(low+1)
}

// String describes the scheduler for logs and PNG metadata.
func (s *Scheduler) String() string {
	return fmt.Sprintf("%s, %d steps, %s spacing, %s", s.kind, len(s.timesteps), s.cfg.TimestepSpacing, s.cfg.PredictionType)
}
