// Package scheduler holds the denoising schedulers of the Stable Diffusion
// XL pipeline, written from the formulas of diffusers'
// EulerDiscreteScheduler, EulerAncestralDiscreteScheduler and
// DPMSolverMultistepScheduler (DPM-Solver++ 2M with Karras sigmas), and
// the seeded normal generator that makes a seed give the same image
// byte for byte.
//
// It uses only the standard library, so it builds for GOOS=wasip1 and runs
// inside the sandboxed module. The noise schedule is computed in float64
// (diffusers computes it in float32 tensors); samples stay float32.
package scheduler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Config is the part of a diffusers/Optimum scheduler/scheduler_config.json
// the schedulers read. Fields the file leaves out keep DefaultConfig's
// values; unknown fields are ignored (diffusers writes many).
type Config struct {
	// ClassName is the scheduler the model was shipped with
	// ("EulerDiscreteScheduler", ...); informative, New's kind decides.
	ClassName string `json:"_class_name"`
	// NumTrainTimesteps is the length of the training noise schedule.
	NumTrainTimesteps int `json:"num_train_timesteps"`
	// BetaStart and BetaEnd bound the beta schedule.
	BetaStart float64 `json:"beta_start"`
	BetaEnd   float64 `json:"beta_end"`
	// BetaSchedule is "linear", "scaled_linear" or "squaredcos_cap_v2".
	BetaSchedule string `json:"beta_schedule"`
	// TimestepSpacing is "leading", "trailing" or "linspace" (ignored
	// with Karras sigmas, which place their own timesteps).
	TimestepSpacing string `json:"timestep_spacing"`
	// StepsOffset is added to "leading" timesteps.
	StepsOffset int `json:"steps_offset"`
	// PredictionType is what the UNet predicts: "epsilon" or "v_prediction".
	PredictionType string `json:"prediction_type"`
	// UseKarrasSigmas switches Euler to Karras sigmas; DPM++ 2M Karras
	// always uses them.
	UseKarrasSigmas bool `json:"use_karras_sigmas"`
}

// The beta schedules, timestep spacings and prediction types Config accepts.
const (
	BetaLinear       = "linear"
	BetaScaledLinear = "scaled_linear"
	BetaSquaredCos   = "squaredcos_cap_v2"

	SpacingLeading  = "leading"
	SpacingTrailing = "trailing"
	SpacingLinspace = "linspace"

	PredictEpsilon = "epsilon"
	PredictV       = "v_prediction"
)

// DefaultConfig is Stable Diffusion XL base's scheduler configuration:
// EulerDiscreteScheduler, 1000 training steps, scaled_linear betas
// 0.00085 → 0.012, "leading" spacing with steps_offset 1, epsilon
// prediction.
func DefaultConfig() Config {
	return Config{
		ClassName:         "EulerDiscreteScheduler",
		NumTrainTimesteps: 1000,
		BetaStart:         0.00085,
		BetaEnd:           0.012,
		BetaSchedule:      BetaScaledLinear,
		TimestepSpacing:   SpacingLeading,
		StepsOffset:       1,
		PredictionType:    PredictEpsilon,
	}
}

// ParseConfig reads a scheduler_config.json over DefaultConfig and
// validates it. Errors name the offending field.
func ParseConfig(data []byte) (Config, error) {
	cfg := DefaultConfig()
	// JSON null leaves a field at its default, as diffusers treats it.
	if err := json.Unmarshal(bytes.TrimSpace(data), &cfg); err != nil {
		return Config{}, fmt.Errorf("scheduler_config.json: %w", err)
	}
	// Options that change the noise schedule and that these schedulers
	// do not implement are refused rather than ignored: ignoring one
	// would quietly make wrong images.
	var unsupported struct {
		Interpolation *string          `json:"interpolation_type"`
		TrainedBetas  *json.RawMessage `json:"trained_betas"`
		ZeroSNR       *bool            `json:"rescale_betas_zero_snr"`
		Exponential   *bool            `json:"use_exponential_sigmas"`
		Beta          *bool            `json:"use_beta_sigmas"`
		TimestepType  *string          `json:"timestep_type"`
		FinalSigmas   *string          `json:"final_sigmas_type"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(data), &unsupported); err != nil {
		return Config{}, fmt.Errorf("scheduler_config.json: %w", err)
	}
	u := unsupported
	switch {
	case u.Interpolation != nil && *u.Interpolation != "linear":
		return Config{}, fmt.Errorf("scheduler_config.json: interpolation_type %q is not supported (only linear)", *u.Interpolation)
	case u.TrainedBetas != nil && string(*u.TrainedBetas) != "null":
		return Config{}, errors.New("scheduler_config.json: trained_betas is not supported (only beta_schedule)")
	case u.ZeroSNR != nil && *u.ZeroSNR:
		return Config{}, errors.New("scheduler_config.json: rescale_betas_zero_snr is not supported")
	case u.Exponential != nil && *u.Exponential:
		return Config{}, errors.New("scheduler_config.json: use_exponential_sigmas is not supported")
	case u.Beta != nil && *u.Beta:
		return Config{}, errors.New("scheduler_config.json: use_beta_sigmas is not supported")
	case u.TimestepType != nil && *u.TimestepType != "discrete":
		return Config{}, fmt.Errorf("scheduler_config.json: timestep_type %q is not supported (only discrete)", *u.TimestepType)
	case u.FinalSigmas != nil && *u.FinalSigmas != "zero":
		return Config{}, fmt.Errorf("scheduler_config.json: final_sigmas_type %q is not supported (only zero)", *u.FinalSigmas)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// DefaultKind is the sampler the folder was shipped with (ClassName), for
// when the user names none: euler_a for EulerAncestralDiscreteScheduler
// (SDXL-Turbo), dpmpp_2m_karras for DPMSolverMultistepScheduler, euler
// otherwise.
func (c Config) DefaultKind() Kind {
	switch c.ClassName {
	case "EulerAncestralDiscreteScheduler":
		return EulerAncestral
	case "DPMSolverMultistepScheduler":
		return DPMPP2MKarras
	}
	return Euler
}

// Validate reports the first field whose value the schedulers cannot use.
func (c Config) Validate() error {
	switch {
	case c.NumTrainTimesteps < 2 || c.NumTrainTimesteps > 100000:
		return fmt.Errorf("scheduler_config.json: num_train_timesteps %d is outside [2, 100000]", c.NumTrainTimesteps)
	case !(c.BetaStart > 0 && c.BetaStart < 1):
		return fmt.Errorf("scheduler_config.json: beta_start %v is outside (0, 1)", c.BetaStart)
	case !(c.BetaEnd > 0 && c.BetaEnd < 1):
		return fmt.Errorf("scheduler_config.json: beta_end %v is outside (0, 1)", c.BetaEnd)
	case c.StepsOffset < 0 || c.StepsOffset >= c.NumTrainTimesteps:
		return fmt.Errorf("scheduler_config.json: steps_offset %d is outside [0, num_train_timesteps)", c.StepsOffset)
	}
	switch c.BetaSchedule {
	case BetaLinear, BetaScaledLinear, BetaSquaredCos:
	default:
		return fmt.Errorf("scheduler_config.json: beta_schedule %q is not one of linear, scaled_linear, squaredcos_cap_v2", c.BetaSchedule)
	}
	switch c.TimestepSpacing {
	case SpacingLeading, SpacingTrailing, SpacingLinspace:
	default:
		return fmt.Errorf("scheduler_config.json: timestep_spacing %q is not one of leading, trailing, linspace", c.TimestepSpacing)
	}
	switch c.PredictionType {
	case PredictEpsilon, PredictV:
	default:
		return fmt.Errorf("scheduler_config.json: prediction_type %q is not one of epsilon, v_prediction", c.PredictionType)
	}
	// Betas near 1 make ᾱ underflow to 0 within the schedule, and σ
	// infinite: such a schedule cannot sample.
	table := trainSigmas(c)
	for i, s := range table {
		if !(s > 0) || math.IsInf(s, 0) || (i > 0 && !(s > table[i-1])) {
			return fmt.Errorf("scheduler_config.json: beta_start %v and beta_end %v give no usable noise schedule (sigma at timestep %d is %v)", c.BetaStart, c.BetaEnd, i, s)
		}
	}
	return nil
}
