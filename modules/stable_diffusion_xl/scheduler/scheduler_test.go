package scheduler_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/modules/stable_diffusion_xl/scheduler"
)

// The reference values (scaled_linear betas 0.00085 → 0.012, 1000
// training steps) are diffusers', printed to 5 or 6 decimals.
const tol = 2e-5

func newSched(t *testing.T, kind scheduler.Kind, spacing string, steps int) *scheduler.Scheduler {
	t.Helper()
	cfg := scheduler.DefaultConfig()
	if spacing != "" {
		cfg.TimestepSpacing = spacing
	}
	s, err := scheduler.New(kind, cfg, steps)
	require.NoError(t, err)
	return s
}

func TestLeading30(t *testing.T) {
	s := newSched(t, scheduler.Euler, scheduler.SpacingLeading, 30)
	ts := s.Timesteps()
	require.Len(t, ts, 30)
	require.Equal(t, 958.0, ts[0])
	require.Equal(t, 925.0, ts[1])
	require.Equal(t, 1.0, ts[29])
	sig := s.Sigmas()
	require.Len(t, sig, 31)
	require.InDelta(t, 11.47685, sig[0], tol)
	require.Equal(t, 0.0, sig[30])
	require.InDelta(t, 11.52033, s.InitNoiseSigma(), tol)
	require.InDelta(t, math.Sqrt(sig[0]*sig[0]+1), s.InitNoiseSigma(), 1e-12)
}

func TestTrailing4(t *testing.T) {
	for _, kind := range []scheduler.Kind{scheduler.Euler, scheduler.EulerAncestral} {
		s := newSched(t, kind, scheduler.SpacingTrailing, 4)
		require.Equal(t, []float64{999, 749, 499, 249}, s.Timesteps())
		want := []float64{14.61464, 4.08173, 1.61289, 0.69320, 0}
		got := s.Sigmas()
		for i := range want {
			require.InDelta(t, want[i], got[i], tol, "sigma %d", i)
		}
		require.InDelta(t, 14.61464, s.InitNoiseSigma(), tol)
	}
	one := newSched(t, scheduler.EulerAncestral, scheduler.SpacingTrailing, 1)
	require.Equal(t, []float64{999}, one.Timesteps())
	require.InDelta(t, 14.614641, one.Sigmas()[0], 1e-6, "σ(999)")
}

func TestLinspace(t *testing.T) {
	s := newSched(t, scheduler.Euler, scheduler.SpacingLinspace, 4)
	require.Equal(t, []float64{999, 666, 333, 0}, s.Timesteps())
	require.InDelta(t, 14.614641, s.Sigmas()[0], 1e-6)
	require.InDelta(t, 0.029167, s.Sigmas()[3], 1e-6, "σ(0)")
	require.InDelta(t, s.Sigmas()[0], s.InitNoiseSigma(), 1e-12)
}

func TestKarras30(t *testing.T) {
	s := newSched(t, scheduler.DPMPP2MKarras, scheduler.SpacingLeading, 30)
	sig := s.Sigmas()
	require.Len(t, sig, 31)
	require.InDelta(t, 14.61464, sig[0], tol)
	require.InDelta(t, 12.66060, sig[1], tol)
	require.InDelta(t, 0.02917, sig[29], tol)
	require.Equal(t, 0.0, sig[30])
	for i := 1; i < 30; i++ {
		require.Less(t, sig[i], sig[i-1])
	}
	ts := s.Timesteps()
	require.Equal(t, 999.0, ts[0])
	require.Equal(t, 0.0, ts[29])
	for _, x := range ts {
		require.Equal(t, math.Round(x), x, "DPM++ timesteps are whole")
	}
	require.Equal(t, 1.0, s.InitNoiseSigma())
	require.Equal(t, 1.0, s.ModelInputScale(3))
}

func TestEulerKarrasFromConfig(t *testing.T) {
	cfg := scheduler.DefaultConfig()
	cfg.UseKarrasSigmas = true
	s, err := scheduler.New(scheduler.Euler, cfg, 10)
	require.NoError(t, err)
	sig := s.Sigmas()
	// Euler's Karras sigmas span the spaced ones (leading: 11.47… for 10
	// steps down to σ(1)), and its timesteps stay fractional.
	plain := newSched(t, scheduler.Euler, scheduler.SpacingLeading, 10).Sigmas()
	require.InDelta(t, plain[0], sig[0], 1e-9)
	require.InDelta(t, plain[9], sig[9], 1e-9)
	require.InDelta(t, 901.0, s.Timesteps()[0], 1e-6)
}

func TestScaleModelInput(t *testing.T) {
	s := newSched(t, scheduler.Euler, scheduler.SpacingTrailing, 4)
	sigma := s.Sigmas()[1]
	got := s.ScaleModelInput([]float32{2, -4}, 1)
	k := 1 / math.Sqrt(sigma*sigma+1)
	require.InDelta(t, 2*k, got[0], 1e-6)
	require.InDelta(t, -4*k, got[1], 1e-6)
}

// TestEulerStep checks x + (x - x0)/σ·(σ' - σ) with x0 = x - σ·ε.
func TestEulerStep(t *testing.T) {
	s := newSched(t, scheduler.Euler, scheduler.SpacingTrailing, 4)
	sig := s.Sigmas()
	x, eps := []float32{1.5, -0.25}, []float32{0.5, 2}
	out, err := s.Step(eps, x, 1, nil)
	require.NoError(t, err)
	for i := range x {
		want := float64(x[i]) + float64(eps[i])*(sig[2]-sig[1])
		require.InDelta(t, want, out[i], 1e-5)
	}
	// The last step lands on x0 (σ' = 0).
	last, err := s.Step(eps, x, 3, nil)
	require.NoError(t, err)
	for i := range x {
		require.InDelta(t, float64(x[i])-sig[3]*float64(eps[i]), last[i], 1e-5)
	}
}

func TestEulerVPrediction(t *testing.T) {
	cfg := scheduler.DefaultConfig()
	cfg.PredictionType = scheduler.PredictV
	s, err := scheduler.New(scheduler.Euler, cfg, 5)
	require.NoError(t, err)
	sig := s.Sigmas()
	x, v := []float32{0.8}, []float32{-0.3}
	out, err := s.Step(v, x, 2, nil)
	require.NoError(t, err)
	σ := sig[2]
	x0 := float64(v[0])*(-σ/math.Sqrt(σ*σ+1)) + float64(x[0])/(σ*σ+1)
	d := (float64(x[0]) - x0) / σ
	require.InDelta(t, float64(x[0])+d*(sig[3]-σ), out[0], 1e-5)
}

type zeroNoise struct{ calls int }

func (z *zeroNoise) Fill(dst []float32) {
	z.calls++
	clear(dst)
}

func TestEulerAncestralStep(t *testing.T) {
	s := newSched(t, scheduler.EulerAncestral, scheduler.SpacingTrailing, 4)
	sig := s.Sigmas()
	x, eps := []float32{1.5, -0.25}, []float32{0.5, 2}
	_, err := s.Step(eps, x, 0, nil)
	require.ErrorContains(t, err, "noise")

	from, to := sig[0], sig[1]
	up := math.Sqrt(to * to * (from*from - to*to) / (from * from))
	down := math.Sqrt(to*to - up*up)
	z := &zeroNoise{}
	out, err := s.Step(eps, x, 0, z)
	require.NoError(t, err)
	require.Equal(t, 1, z.calls)
	for i := range x {
		require.InDelta(t, float64(x[i])+float64(eps[i])*(down-from), out[i], 1e-5)
	}

	// With noise, the seeded draw enters scaled by σ_up.
	r := scheduler.NewRand(7)
	noisy, err := s.Step(eps, x, 0, r)
	require.NoError(t, err)
	n := scheduler.NewRand(7)
	for i := range x {
		require.InDelta(t, float64(out[i])+float64(n.Normal())*up, noisy[i], 1e-5)
	}
	// The last step has σ_up = 0: no noise is drawn.
	z.calls = 0
	_, err = s.Step(eps, x, 3, z)
	require.NoError(t, err)
	require.Equal(t, 0, z.calls)
}

// dpmParts is what DPM-Solver++ works with at a sigma: α_t, σ_t, λ.
func dpmParts(sigma float64) (alpha, sigmaT, lambda float64) {
	alpha = 1 / math.Sqrt(sigma*sigma+1)
	sigmaT = sigma * alpha
	return alpha, sigmaT, math.Log(alpha) - math.Log(sigmaT)
}

func TestDPMPP2MSteps(t *testing.T) {
	s := newSched(t, scheduler.DPMPP2MKarras, "", 5)
	sig := s.Sigmas()
	x := []float32{0.9, -1.1}
	eps0 := []float32{0.4, -0.2}
	eps1 := []float32{0.1, 0.3}

	// Step 0: first order.
	a0, s0, l0 := dpmParts(sig[0])
	a1, s1, l1 := dpmParts(sig[1])
	x1, err := s.Step(eps0, x, 0, nil)
	require.NoError(t, err)
	m0 := make([]float64, len(x))
	for i := range x {
		m0[i] = (float64(x[i]) - s0*float64(eps0[i])) / a0
		h := l1 - l0
		want := s1/s0*float64(x[i]) - a1*(math.Exp(-h)-1)*m0[i]
		require.InDelta(t, want, x1[i], 1e-5)
	}

	// Step 1: second order, midpoint, from the two predictions.
	a2, s2, l2 := dpmParts(sig[2])
	x2, err := s.Step(eps1, x1, 1, nil)
	require.NoError(t, err)
	for i := range x {
		m1 := (float64(x1[i]) - s1*float64(eps1[i])) / a1
		h, h0 := l2-l1, l1-l0
		r0 := h0 / h
		d0, d1 := m1, (m1-m0[i])/r0
		c := a2 * (math.Exp(-h) - 1)
		want := s2/s1*float64(x1[i]) - c*d0 - 0.5*c*d1
		require.InDelta(t, want, x2[i], 1e-5)
	}

	// The last step (to σ = 0) returns the prediction x0.
	x4, err := s.Step(eps1, x2, 4, nil)
	require.NoError(t, err)
	a4, s4, _ := dpmParts(sig[4])
	for i := range x {
		require.InDelta(t, (float64(x2[i])-s4*float64(eps1[i]))/a4, x4[i], 1e-5)
	}
}

func TestDPMPP2MRestartIsFirstOrder(t *testing.T) {
	// Running step 2 without step 1 before it (image-to-image starting
	// there) must not use a stale prediction: it equals a fresh scheduler's.
	x, eps := []float32{0.5}, []float32{0.25}
	a := newSched(t, scheduler.DPMPP2MKarras, "", 6)
	_, err := a.Step(eps, x, 0, nil)
	require.NoError(t, err)
	got, err := a.Step(eps, x, 2, nil)
	require.NoError(t, err)
	want, err := newSched(t, scheduler.DPMPP2MKarras, "", 6).Step(eps, x, 2, nil)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func TestDPMVPrediction(t *testing.T) {
	cfg := scheduler.DefaultConfig()
	cfg.PredictionType = scheduler.PredictV
	s, err := scheduler.New(scheduler.DPMPP2MKarras, cfg, 3)
	require.NoError(t, err)
	sig := s.Sigmas()
	x, v := []float32{0.7}, []float32{0.2}
	out, err := s.Step(v, x, 0, nil)
	require.NoError(t, err)
	a0, s0, l0 := dpmParts(sig[0])
	a1, s1, l1 := dpmParts(sig[1])
	x0 := a0*float64(x[0]) - s0*float64(v[0])
	require.InDelta(t, s1/s0*float64(x[0])-a1*(math.Exp(-(l1-l0))-1)*x0, out[0], 1e-5)
}

func TestAddNoiseAndStartStep(t *testing.T) {
	require.Equal(t, 0, scheduler.StartStep(30, 1))
	require.Equal(t, 15, scheduler.StartStep(30, 0.5))
	require.Equal(t, 21, scheduler.StartStep(30, 0.3)) // int(9.0) = 9 steps run
	require.Equal(t, 30, scheduler.StartStep(30, 0))
	require.Equal(t, 0, scheduler.StartStep(4, 7), "strength is clamped to 1")

	e := newSched(t, scheduler.Euler, scheduler.SpacingLeading, 10)
	got, err := e.AddNoise([]float32{1, 2}, []float32{0.5, -1}, 3)
	require.NoError(t, err)
	sg := e.Sigmas()[3]
	require.InDelta(t, 1+0.5*sg, got[0], 1e-5)
	require.InDelta(t, 2-sg, got[1], 1e-5)

	d := newSched(t, scheduler.DPMPP2MKarras, "", 10)
	got, err = d.AddNoise([]float32{1}, []float32{0.5}, 3)
	require.NoError(t, err)
	a, st, _ := dpmParts(d.Sigmas()[3])
	require.InDelta(t, a+0.5*st, got[0], 1e-6)

	_, err = d.AddNoise([]float32{1}, []float32{0.5, 1}, 3)
	require.Error(t, err)
	_, err = d.AddNoise([]float32{1}, []float32{0.5}, 10)
	require.Error(t, err)
}

func TestStepErrors(t *testing.T) {
	s := newSched(t, scheduler.Euler, scheduler.SpacingLeading, 3)
	_, err := s.Step([]float32{1}, []float32{1}, 3, nil)
	require.ErrorContains(t, err, "step 3")
	_, err = s.Step([]float32{1, 2}, []float32{1}, 0, nil)
	require.ErrorContains(t, err, "model output")

	_, err = scheduler.New("heun", scheduler.DefaultConfig(), 3)
	require.ErrorContains(t, err, "euler, euler_a, dpmpp_2m_karras")
	_, err = scheduler.New(scheduler.Euler, scheduler.DefaultConfig(), 0)
	require.ErrorContains(t, err, "steps 0")
	_, err = scheduler.New(scheduler.Euler, scheduler.DefaultConfig(), 1001)
	require.ErrorContains(t, err, "steps 1001")
}

func TestEveryKindEveryStepCount(t *testing.T) {
	// Every schedule is finite and decreasing, for any step count a user
	// may ask for, so that a full denoising loop never produces NaN.
	for _, kind := range scheduler.Kinds() {
		for _, spacing := range []string{scheduler.SpacingLeading, scheduler.SpacingTrailing, scheduler.SpacingLinspace} {
			for _, steps := range []int{1, 2, 3, 7, 30, 50, 150} {
				s := newSched(t, kind, spacing, steps)
				sig := s.Sigmas()
				require.Len(t, sig, steps+1)
				require.Len(t, s.Timesteps(), steps)
				for i := 1; i < len(sig); i++ {
					require.Less(t, sig[i], sig[i-1], "%s %s %d: sigma %d", kind, spacing, steps, i)
				}
				x := make([]float32, 8)
				scheduler.NewRand(1).Fill(x)
				for i := range x {
					x[i] *= float32(s.InitNoiseSigma())
				}
				for step := range steps {
					in := s.ScaleModelInput(x, step)
					var err error
					x, err = s.Step(in, x, step, scheduler.NewRand(uint64(step)))
					require.NoError(t, err)
				}
				for _, v := range x {
					require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0), "%s %s %d", kind, spacing, steps)
				}
			}
		}
	}
}

func TestParseKind(t *testing.T) {
	for _, k := range scheduler.Kinds() {
		got, err := scheduler.ParseKind(string(k))
		require.NoError(t, err)
		require.Equal(t, k, got)
	}
	_, err := scheduler.ParseKind("Euler")
	require.Error(t, err)
}

func TestDenoised(t *testing.T) {
	x, eps := []float32{0.9, -1.1}, []float32{0.4, -0.2}
	e := newSched(t, scheduler.Euler, scheduler.SpacingTrailing, 4)
	got, err := e.Denoised(eps, x, 1)
	require.NoError(t, err)
	sg := e.Sigmas()[1]
	require.InDelta(t, 0.9-sg*0.4, got[0], 1e-5)

	d := newSched(t, scheduler.DPMPP2MKarras, "", 4)
	got, err = d.Denoised(eps, x, 1)
	require.NoError(t, err)
	a, st, _ := dpmParts(d.Sigmas()[1])
	require.InDelta(t, (-1.1+st*0.2)/a, got[1], 1e-5)
	// The last DPM++ step lands exactly on this prediction.
	last, err := d.Step(eps, x, 3, nil)
	require.NoError(t, err)
	want, err := d.Denoised(eps, x, 3)
	require.NoError(t, err)
	require.Equal(t, want, last)

	_, err = d.Denoised(eps, x, 4)
	require.Error(t, err)
	_, err = d.Denoised(eps[:1], x, 0)
	require.Error(t, err)
}
