// Command stable_diffusion_xl is the Millrace module that makes images
// with Stable Diffusion XL: text to image, and image to image from an
// init image. The networks (two text encoders, the UNet, the VAE) run on
// the local accelerator through the tensor ABI; everything between them
// (tokenizers, scheduler, guidance, the PNG) runs here, in the sandbox
// (package pipeline). See README.md for how to export and register a
// model folder.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	millrace "github.com/millrace/millrace/guest-sdk"
	"github.com/millrace/millrace/modules/stable_diffusion_xl/pipeline"
	"github.com/millrace/millrace/modules/stable_diffusion_xl/scheduler"
)

func main() {}

// The SDXL-Turbo preset, the CPU default: 512×512, one step, no
// guidance, Euler ancestral (with the "trailing" spacing of Turbo's own
// scheduler_config.json).
const (
	defaultModel     = "sdxl-turbo"
	defaultSize      = 512
	defaultSteps     = 1
	defaultScheduler = scheduler.EulerAncestral
	defaultStrength  = 0.5
	// maxSeed keeps seeds exact in JSON (JavaScript numbers).
	maxSeed = 1<<53 - 1
)

type input struct {
	Prompt         string   `json:"prompt"`
	Prompt2        string   `json:"prompt_2"`
	NegativePrompt string   `json:"negative_prompt"`
	Width          *int     `json:"width"`
	Height         *int     `json:"height"`
	Steps          *int     `json:"steps"`
	GuidanceScale  *float64 `json:"guidance_scale"`
	Seed           *int64   `json:"seed"`
	Scheduler      string   `json:"scheduler"`
	// TimestepSpacing overrides the folder's scheduler_config.json
	// ("leading", "trailing" or "linspace").
	TimestepSpacing string   `json:"timestep_spacing"`
	Model           string   `json:"model"`
	InitImage       string   `json:"init_image"`
	Strength        *float64 `json:"strength"`
}

// Parameters are the generation's settings as used, defaults filled in:
// the output carries them, and so does the PNG (its "parameters" text).
type Parameters struct {
	Prompt          string  `json:"prompt"`
	Prompt2         string  `json:"prompt_2,omitempty"`
	NegativePrompt  string  `json:"negative_prompt,omitempty"`
	Width           int     `json:"width"`
	Height          int     `json:"height"`
	Steps           int     `json:"steps"`
	GuidanceScale   float64 `json:"guidance_scale"`
	Seed            int64   `json:"seed"`
	Scheduler       string  `json:"scheduler"`
	TimestepSpacing string  `json:"timestep_spacing,omitempty"`
	Model           string  `json:"model"`
	Strength        float64 `json:"strength,omitempty"`
	ImageToImage    bool    `json:"image_to_image,omitempty"`
}

type output struct {
	// Image is the PNG, base64-encoded.
	Image      string     `json:"image"`
	MimeType   string     `json:"mime_type"`
	Width      int        `json:"width"`
	Height     int        `json:"height"`
	Seed       int64      `json:"seed"`
	StepsRun   int        `json:"steps_run"`
	Parameters Parameters `json:"parameters"`
}

func run(ctx context.Context, in input) (output, error) {
	params, err := resolve(in)
	if err != nil {
		return output{}, err
	}
	return generate(ctx, wasiNN{pipeline: params.Model}, in, params, func(done, total int, preview []byte) {
		millrace.ProgressPreview(done, total, fmt.Sprintf("step %d of %d", done, total), preview)
	})
}

// resolve checks the input and fills in the defaults, naming the field
// at fault.
func resolve(in input) (Parameters, error) {
	p := Parameters{
		Prompt: in.Prompt, Prompt2: in.Prompt2, NegativePrompt: in.NegativePrompt,
		Width: defaultSize, Height: defaultSize, Steps: defaultSteps,
		Scheduler: string(defaultScheduler), TimestepSpacing: in.TimestepSpacing, Model: in.Model,
	}
	if strings.TrimSpace(in.Prompt) == "" {
		return p, errors.New("input: prompt is required")
	}
	if p.Model == "" {
		p.Model = defaultModel
	}
	if in.Width != nil {
		p.Width = *in.Width
	}
	if in.Height != nil {
		p.Height = *in.Height
	}
	if in.Steps != nil {
		p.Steps = *in.Steps
	}
	if in.GuidanceScale != nil {
		p.GuidanceScale = *in.GuidanceScale
	}
	if in.Scheduler != "" {
		p.Scheduler = in.Scheduler
	}
	switch in.TimestepSpacing {
	case "", scheduler.SpacingLeading, scheduler.SpacingTrailing, scheduler.SpacingLinspace:
	default:
		return p, fmt.Errorf("input: timestep_spacing %q is not one of leading, trailing, linspace", in.TimestepSpacing)
	}
	if in.Seed != nil {
		if *in.Seed < 0 || *in.Seed > maxSeed {
			return p, fmt.Errorf("input: seed %d is outside [0, 2^53-1]", *in.Seed)
		}
		p.Seed = *in.Seed
	} else {
		// A fresh seed, reported in the output, so the image can be made
		// again.
		var b [8]byte
		rand.Read(b[:])
		p.Seed = int64(binary.LittleEndian.Uint64(b[:]) & maxSeed)
	}
	if in.InitImage != "" {
		p.ImageToImage, p.Strength = true, defaultStrength
		if in.Strength != nil {
			p.Strength = *in.Strength
		}
	} else if in.Strength != nil {
		return p, errors.New("input: strength is for image to image: give init_image too")
	}
	var initImage []byte
	if p.ImageToImage {
		initImage = []byte{} // decoded later; Validate checks strength
	}
	if err := toPipeline(p, initImage).Validate(); err != nil {
		return p, fmt.Errorf("input: %w", err)
	}
	return p, nil
}

func toPipeline(p Parameters, initImage []byte) pipeline.Params {
	return pipeline.Params{
		Prompt: p.Prompt, Prompt2: p.Prompt2, NegativePrompt: p.NegativePrompt,
		Width: p.Width, Height: p.Height, Steps: p.Steps, GuidanceScale: p.GuidanceScale,
		Seed: uint64(p.Seed), Scheduler: scheduler.Kind(p.Scheduler), TimestepSpacing: p.TimestepSpacing,
		InitImage: initImage, Strength: p.Strength,
	}
}

// generate is the handler with its networks behind r: WASI-NN in the
// module, the accel service in native tests.
func generate(ctx context.Context, r pipeline.Runner, in input, p Parameters, progress pipeline.Progress) (output, error) {
	var initImage []byte
	if p.ImageToImage {
		var err error
		if initImage, err = imageBytes(in.InitImage); err != nil {
			return output{}, err
		}
	}
	res, err := pipeline.Generate(ctx, r, toPipeline(p, initImage), progress)
	if err != nil {
		return output{}, err
	}
	png, err := pipeline.EncodePNG(res.Image, "parameters", infotext(p))
	if err != nil {
		return output{}, err
	}
	millrace.Logger().Info("generated an image", "model", p.Model, "steps_run", res.StepsRun, "width", p.Width, "height", p.Height, "png_bytes", len(png))
	return output{
		Image: base64.StdEncoding.EncodeToString(png), MimeType: "image/png",
		Width: p.Width, Height: p.Height, Seed: p.Seed, StepsRun: res.StepsRun, Parameters: p,
	}, nil
}

// samplerNames are the schedulers as the Stable Diffusion web UIs name
// them in their "parameters" text.
var samplerNames = map[string]string{
	string(scheduler.Euler):          "Euler",
	string(scheduler.EulerAncestral): "Euler a",
	string(scheduler.DPMPP2MKarras):  "DPM++ 2M Karras",
}

// infotext writes the parameters in the "parameters" text convention of
// the Stable Diffusion web UIs, which image viewers and model sites read:
// the prompt, "Negative prompt: …", then "Key: value" pairs.
func infotext(p Parameters) string {
	var b strings.Builder
	b.WriteString(p.Prompt)
	if p.NegativePrompt != "" {
		b.WriteString("\nNegative prompt: " + p.NegativePrompt)
	}
	pairs := []string{
		"Steps: " + strconv.Itoa(p.Steps),
		"Sampler: " + samplerNames[p.Scheduler],
		"CFG scale: " + strconv.FormatFloat(p.GuidanceScale, 'f', -1, 64),
		"Seed: " + strconv.FormatInt(p.Seed, 10),
		fmt.Sprintf("Size: %dx%d", p.Width, p.Height),
		"Model: " + p.Model,
	}
	if p.Prompt2 != "" {
		pairs = append(pairs, "Prompt 2: "+strconv.Quote(p.Prompt2))
	}
	if p.TimestepSpacing != "" {
		pairs = append(pairs, "Timestep spacing: "+p.TimestepSpacing)
	}
	if p.ImageToImage {
		pairs = append(pairs, "Denoising strength: "+strconv.FormatFloat(p.Strength, 'f', -1, 64))
	}
	pairs = append(pairs, "Version: Millrace stable_diffusion_xl")
	b.WriteString("\n" + strings.Join(pairs, ", "))
	return b.String()
}

// imageBytes decodes init_image: base64 in the standard or URL-safe
// alphabet, with or without padding and line breaks, or a data: URL.
func imageBytes(s string) ([]byte, error) {
	if rest, ok := strings.CutPrefix(s, "data:"); ok {
		meta, payload, found := strings.Cut(rest, ",")
		if !found || !strings.HasSuffix(meta, ";base64") {
			return nil, errors.New("input: init_image: a data: URL must be base64 (data:image/png;base64,…)")
		}
		s = payload
	}
	s = strings.TrimRight(strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, s), "=")
	data, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		if data, err = base64.RawURLEncoding.DecodeString(s); err != nil {
			return nil, fmt.Errorf("input: init_image is not base64: %w", err)
		}
	}
	return data, nil
}
