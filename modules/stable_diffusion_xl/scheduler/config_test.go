package scheduler_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/modules/stable_diffusion_xl/scheduler"
)

// sdxlBase is stabilityai/stable-diffusion-xl-base-1.0's
// scheduler/scheduler_config.json.
const sdxlBase = `{
  "_class_name": "EulerDiscreteScheduler",
  "_diffusers_version": "0.19.0.dev0",
  "beta_end": 0.012,
  "beta_schedule": "scaled_linear",
  "beta_start": 0.00085,
  "clip_sample": false,
  "interpolation_type": "linear",
  "num_train_timesteps": 1000,
  "prediction_type": "epsilon",
  "sample_max_value": 1.0,
  "set_alpha_to_one": false,
  "skip_prk_steps": true,
  "steps_offset": 1,
  "timestep_spacing": "leading",
  "trained_betas": null,
  "use_karras_sigmas": false
}`

// sdxlTurbo is stabilityai/sdxl-turbo's.
const sdxlTurbo = `{
  "_class_name": "EulerAncestralDiscreteScheduler",
  "_diffusers_version": "0.24.0.dev0",
  "beta_end": 0.012,
  "beta_schedule": "scaled_linear",
  "beta_start": 0.00085,
  "clip_sample": false,
  "interpolation_type": "linear",
  "num_train_timesteps": 1000,
  "prediction_type": "epsilon",
  "sample_max_value": 1.0,
  "set_alpha_to_one": false,
  "skip_prk_steps": true,
  "steps_offset": 1,
  "timestep_spacing": "trailing",
  "trained_betas": null,
  "use_karras_sigmas": false
}`

func TestParseConfig(t *testing.T) {
	cfg, err := scheduler.ParseConfig([]byte(sdxlBase))
	require.NoError(t, err)
	require.Equal(t, scheduler.DefaultConfig(), cfg)

	cfg, err = scheduler.ParseConfig([]byte(sdxlTurbo))
	require.NoError(t, err)
	require.Equal(t, "EulerAncestralDiscreteScheduler", cfg.ClassName)
	require.Equal(t, scheduler.SpacingTrailing, cfg.TimestepSpacing)

	require.Equal(t, scheduler.EulerAncestral, cfg.DefaultKind())
	require.Equal(t, scheduler.Euler, scheduler.DefaultConfig().DefaultKind())
	cfg.ClassName = "DPMSolverMultistepScheduler"
	require.Equal(t, scheduler.DPMPP2MKarras, cfg.DefaultKind())

	// Missing fields keep SDXL's defaults; null is missing.
	// diffusers' defaults for the refused options are accepted.
	_, err = scheduler.ParseConfig([]byte(`{"rescale_betas_zero_snr": false, "timestep_type": "discrete", "final_sigmas_type": "zero", "use_beta_sigmas": false, "trained_betas": null}`))
	require.NoError(t, err)

	cfg, err = scheduler.ParseConfig([]byte(`{"prediction_type": "v_prediction", "steps_offset": null}`))
	require.NoError(t, err)
	require.Equal(t, scheduler.PredictV, cfg.PredictionType)
	require.Equal(t, 1, cfg.StepsOffset)
	require.Equal(t, 1000, cfg.NumTrainTimesteps)
}

func TestParseConfigErrorsNameTheField(t *testing.T) {
	for doc, field := range map[string]string{
		`{"beta_schedule": "cosine"}`:          "beta_schedule",
		`{"timestep_spacing": "uniform"}`:      "timestep_spacing",
		`{"prediction_type": "sample"}`:        "prediction_type",
		`{"num_train_timesteps": 1}`:           "num_train_timesteps",
		`{"beta_start": 0}`:                    "beta_start",
		`{"beta_end": 1.5}`:                    "beta_end",
		`{"steps_offset": -1}`:                 "steps_offset",
		`{"num_train_timesteps": "1000"}`:      "num_train_timesteps",
		`[1, 2]`:                               "scheduler_config.json",
		`{"use_karras_sigmas": "yes"}`:         "use_karras_sigmas",
		`{"steps_offset": 1000}`:               "steps_offset",
		`{"beta_start": 0.1, "beta_end": 0}`:   "beta_end",
		`{"interpolation_type": "log_linear"}`: "interpolation_type",
		`{"trained_betas": [0.1, 0.2]}`:        "trained_betas",
		`{"rescale_betas_zero_snr": true}`:     "rescale_betas_zero_snr",
		`{"use_exponential_sigmas": true}`:     "use_exponential_sigmas",
		`{"use_beta_sigmas": true}`:            "use_beta_sigmas",
		`{"timestep_type": "continuous"}`:      "timestep_type",
		`{"final_sigmas_type": "sigma_min"}`:   "final_sigmas_type",
	} {
		_, err := scheduler.ParseConfig([]byte(doc))
		require.ErrorContains(t, err, field, doc)
	}
}

func TestSquaredCosAndLinear(t *testing.T) {
	for _, sched := range []string{scheduler.BetaLinear, scheduler.BetaSquaredCos} {
		cfg := scheduler.DefaultConfig()
		cfg.BetaSchedule = sched
		if sched == scheduler.BetaLinear {
			cfg.BetaStart, cfg.BetaEnd = 0.0001, 0.02
		}
		s, err := scheduler.New(scheduler.Euler, cfg, 10)
		require.NoError(t, err)
		require.Greater(t, s.Sigmas()[0], 1.0, sched)
	}
	// DDPM's linear schedule: σ(999) = sqrt((1-ᾱ)/ᾱ) with ᾱ ≈ 4.04e-5.
	cfg := scheduler.DefaultConfig()
	cfg.BetaSchedule, cfg.BetaStart, cfg.BetaEnd, cfg.TimestepSpacing = scheduler.BetaLinear, 0.0001, 0.02, scheduler.SpacingTrailing
	s, err := scheduler.New(scheduler.Euler, cfg, 1)
	require.NoError(t, err)
	prod := 1.0
	for i := range 1000 {
		prod *= 1 - (0.0001 + (0.02-0.0001)*float64(i)/999)
	}
	require.InDelta(t, math.Sqrt((1-prod)/prod), s.Sigmas()[0], 1e-9)
}

// FuzzParseConfig: any bytes either fail with an error or give a config
// every kind of scheduler accepts with finite, decreasing sigmas.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(sdxlBase))
	f.Add([]byte(sdxlTurbo))
	f.Add([]byte(`{"num_train_timesteps": 2, "timestep_spacing": "linspace"}`))
	f.Add([]byte(`{"beta_schedule": "squaredcos_cap_v2", "steps_offset": 999}`))
	f.Add([]byte(`{"beta_start": 0.9, "beta_end": 0.9}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := scheduler.ParseConfig(data)
		if err != nil {
			return
		}
		for _, kind := range scheduler.Kinds() {
			for _, steps := range []int{1, 4, 30} {
				if steps > cfg.NumTrainTimesteps {
					continue
				}
				s, err := scheduler.New(kind, cfg, steps)
				if err != nil {
					t.Fatalf("%s %d steps: a parsed config was refused: %v", kind, steps, err)
				}
				for i, sg := range s.Sigmas() {
					if math.IsNaN(sg) || math.IsInf(sg, 0) || sg < 0 {
						t.Fatalf("%s %d steps: sigma %d is %v", kind, steps, i, sg)
					}
				}
				if v := s.InitNoiseSigma(); math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("init noise sigma %v", v)
				}
			}
		}
	})
}
