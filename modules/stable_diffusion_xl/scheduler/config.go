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
	"fmt"
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
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
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
	return nil
}
