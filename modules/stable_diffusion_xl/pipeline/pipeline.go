// Package pipeline is Stable Diffusion XL's text-to-image and
// image-to-image pipeline as diffusers' StableDiffusionXLPipeline and
// StableDiffusionXLImg2ImgPipeline define it, over the networks of a
// folder Hugging Face Optimum exported (text_encoder, text_encoder_2,
// unet, vae_decoder, vae_encoder), which a Runner runs: the accelerator,
// through the tensor ABI, inside the module; the accel service directly
// in native tests. Everything between the network calls (tokenizers,
// scheduler, classifier-free guidance, time ids, VAE scaling, the image)
// happens here.
//
// Nothing about the networks' inputs is assumed that their metadata
// tells: the element types (f32 or f16 tensors, i32 or i64 input_ids),
// the timestep's rank (a rank-0 float, or a 1-D int64) and the VAE
// encoder's output (latent_parameters or latent_sample) are read from
// each model, so both generations of exporter work.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io/fs"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/millrace/millrace/modules/stable_diffusion_xl/clip"
	"github.com/millrace/millrace/modules/stable_diffusion_xl/scheduler"
)

// Runner runs the networks of one pipeline folder and reads its files.
type Runner interface {
	// Load loads a part of the pipeline: "text_encoder",
	// "text_encoder_2", "unet", "vae_decoder" or "vae_encoder".
	Load(ctx context.Context, part string) (Model, error)
	// ReadFile reads a small file of the folder by slash-separated
	// path; an error wrapping fs.ErrNotExist when it is missing.
	ReadFile(ctx context.Context, path string) ([]byte, error)
}

// Model is one loaded network.
type Model interface {
	Inputs() []TensorInfo
	Outputs() []TensorInfo
	// Run computes the outputs named (every one when nil) from inputs
	// given by name.
	Run(ctx context.Context, inputs map[string]Tensor, outputs []string) (map[string]Tensor, error)
}

// Params are one generation's settings.
type Params struct {
	Prompt          string
	Prompt2         string // for text_encoder_2; Prompt when empty
	NegativePrompt  string
	NegativePrompt2 string // NegativePrompt when empty
	Width, Height   int
	Steps           int
	// GuidanceScale ≤ 1 turns classifier-free guidance off (one UNet
	// batch per step, no negative prompt), as diffusers does.
	GuidanceScale float64
	Seed          uint64
	Scheduler     scheduler.Kind
	// TimestepSpacing overrides the folder's scheduler_config.json when
	// set ("leading", "trailing" or "linspace").
	TimestepSpacing string
	// InitImage (PNG or JPEG) makes it image-to-image; Strength in
	// (0, 1] says how much of the schedule repaints it.
	InitImage []byte
	Strength  float64
}

// Progress is told after each denoising step: done of total steps, and a
// small PNG of the image predicted so far.
type Progress func(done, total int, preview []byte)

// Result is a generated image and what the pipeline chose on the way.
type Result struct {
	Image *image.NRGBA
	// StepsRun is how many denoising steps ran (fewer than Params.Steps
	// for image-to-image).
	StepsRun int
	// Timesteps are the UNet timesteps of the steps run.
	Timesteps []float64
	// ScalingFactor is the VAE's.
	ScalingFactor float64
}

// DefaultScalingFactor is SDXL's VAE scaling factor, used when
// vae_decoder/config.json does not give one.
const DefaultScalingFactor = 0.13025

// vaeScale is how much smaller the latents are than the image.
const vaeScale = 8

// Validate checks params before any network loads, naming the input.
func (p Params) Validate() error {
	switch {
	case p.Width < 64 || p.Width > 4096 || p.Width%vaeScale != 0:
		return fmt.Errorf("width: %d is not a multiple of 8 between 64 and 4096", p.Width)
	case p.Height < 64 || p.Height > 4096 || p.Height%vaeScale != 0:
		return fmt.Errorf("height: %d is not a multiple of 8 between 64 and 4096", p.Height)
	case p.Steps < 1 || p.Steps > 1000:
		return fmt.Errorf("steps: %d is outside [1, 1000]", p.Steps)
	case math.IsNaN(p.GuidanceScale) || p.GuidanceScale < 0 || p.GuidanceScale > 100:
		return fmt.Errorf("guidance_scale: %v is outside [0, 100]", p.GuidanceScale)
	case p.InitImage != nil && (math.IsNaN(p.Strength) || p.Strength <= 0 || p.Strength > 1):
		return fmt.Errorf("strength: %v is outside (0, 1]", p.Strength)
	}
	if _, err := scheduler.ParseKind(string(p.Scheduler)); err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	return nil
}

// CFG reports whether classifier-free guidance is on.
func (p Params) CFG() bool { return p.GuidanceScale > 1 }

// Generate runs the pipeline.
func Generate(ctx context.Context, r Runner, p Params, progress Progress) (*Result, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if p.Prompt2 == "" {
		p.Prompt2 = p.Prompt
	}
	if p.NegativePrompt2 == "" {
		p.NegativePrompt2 = p.NegativePrompt
	}
	cfg, err := readConfig(ctx, r)
	if err != nil {
		return nil, err
	}
	if p.TimestepSpacing != "" {
		cfg.scheduler.TimestepSpacing = p.TimestepSpacing
	}
	sched, err := scheduler.New(p.Scheduler, cfg.scheduler, p.Steps)
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}

	// Prompt embeddings: penultimate hidden states of both encoders,
	// concatenated on the feature axis, and text_encoder_2's pooled
	// text_embeds.
	enc, err := loadEncoders(ctx, r)
	if err != nil {
		return nil, err
	}
	pos, err := enc.encode(ctx, p.Prompt, p.Prompt2)
	if err != nil {
		return nil, err
	}
	var neg *embedding
	if p.CFG() {
		if p.NegativePrompt == "" && p.NegativePrompt2 == "" && cfg.forceZeros {
			neg = pos.zeros()
		} else if neg, err = enc.encode(ctx, p.NegativePrompt, p.NegativePrompt2); err != nil {
			return nil, err
		}
	}

	unet, err := newUNet(ctx, r)
	if err != nil {
		return nil, err
	}
	lw, lh := p.Width/vaeScale, p.Height/vaeScale
	latentLen := 4 * lw * lh
	rng := scheduler.NewRand(p.Seed)

	start := 0
	var latents []float32
	if p.InitImage != nil {
		start = scheduler.StartStep(p.Steps, p.Strength)
		init, err := encodeImage(ctx, r, p, cfg.scaling, rng)
		if err != nil {
			return nil, err
		}
		if start < p.Steps {
			noise := make([]float32, latentLen)
			rng.Fill(noise)
			if latents, err = sched.AddNoise(init, noise, start); err != nil {
				return nil, err
			}
		} else {
			latents = init
		}
	} else {
		latents = make([]float32, latentLen)
		rng.Fill(latents)
		k := float32(sched.InitNoiseSigma())
		for i := range latents {
			latents[i] *= k
		}
	}

	batch := 1
	if p.CFG() {
		batch = 2
	}
	cond, err := unet.conditioning(pos, neg, p, batch)
	if err != nil {
		return nil, err
	}
	timesteps, sigmas := sched.Timesteps(), sched.Sigmas()
	total := p.Steps - start
	for i := start; i < p.Steps; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		scale := float32(sched.ModelInputScale(i))
		sample := make([]float32, batch*latentLen)
		for b := range batch {
			for j, v := range latents {
				sample[b*latentLen+j] = v * scale
			}
		}
		out, err := unet.run(ctx, cond, sample, []int64{int64(batch), 4, int64(lh), int64(lw)}, timesteps[i])
		if err != nil {
			return nil, fmt.Errorf("step %d of %d: %w", i-start+1, total, err)
		}
		eps := out
		if batch == 2 {
			// Batch order [negative, positive]: ε = ε_u + g·(ε_c − ε_u).
			eps = make([]float32, latentLen)
			g := float32(p.GuidanceScale)
			for j := range eps {
				u, c := out[j], out[latentLen+j]
				eps[j] = u + g*(c-u)
			}
		}
		var preview []byte
		if progress != nil {
			if preview, err = Preview(predictX0(sched.Kind(), latents, eps, sigmas[i]), lw, lh); err != nil {
				return nil, err
			}
		}
		if latents, err = sched.Step(eps, latents, i, rng); err != nil {
			return nil, err
		}
		if progress != nil {
			progress(i-start+1, total, preview)
		}
	}

	img, err := decode(ctx, r, latents, lw, lh, cfg.scaling)
	if err != nil {
		return nil, err
	}
	return &Result{Image: img, StepsRun: total, Timesteps: timesteps[start:], ScalingFactor: cfg.scaling}, nil
}

// predictX0 is the clean latents the step's noise prediction implies,
// which is what a preview should show (the noisy latents look like
// noise until the last steps): x − σ·ε for the Euler samplers, whose
// samples carry noise of scale σ, and (x − σα·ε)/α with α = 1/√(σ²+1)
// for DPM++, whose samples are variance-preserving.
func predictX0(kind scheduler.Kind, x, eps []float32, sigma float64) []float32 {
	out := make([]float32, len(x))
	a, s := 1.0, sigma
	if kind == scheduler.DPMPP2MKarras {
		a = 1 / math.Sqrt(sigma*sigma+1)
		s = sigma * a
	}
	for i := range out {
		out[i] = float32((float64(x[i]) - s*float64(eps[i])) / a)
	}
	return out
}

// config is what the pipeline reads from the folder's JSON files.
type config struct {
	scheduler  scheduler.Config
	forceZeros bool
	scaling    float64
}

func readConfig(ctx context.Context, r Runner) (config, error) {
	c := config{forceZeros: true, scaling: DefaultScalingFactor}
	idx, err := r.ReadFile(ctx, "model_index.json")
	if err != nil {
		return c, fmt.Errorf("model_index.json: %w", err)
	}
	var index struct {
		ForceZeros *bool `json:"force_zeros_for_empty_prompt"`
	}
	if err := json.Unmarshal(idx, &index); err != nil {
		return c, fmt.Errorf("model_index.json: %w", err)
	}
	if index.ForceZeros != nil {
		c.forceZeros = *index.ForceZeros
	}
	sc, err := r.ReadFile(ctx, "scheduler/scheduler_config.json")
	if err != nil {
		return c, fmt.Errorf("scheduler/scheduler_config.json: %w", err)
	}
	if c.scheduler, err = scheduler.ParseConfig(sc); err != nil {
		return c, err
	}
	// The scaling factor is in the VAE's config.json, which Optimum
	// writes beside each VAE part; SDXL's when absent.
	vc, err := r.ReadFile(ctx, "vae_decoder/config.json")
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return c, fmt.Errorf("vae_decoder/config.json: %w", err)
	default:
		var vae struct {
			ScalingFactor *float64 `json:"scaling_factor"`
		}
		if err := json.Unmarshal(vc, &vae); err != nil {
			return c, fmt.Errorf("vae_decoder/config.json: %w", err)
		}
		if f := vae.ScalingFactor; f != nil {
			if !(*f > 0 && *f < 100) {
				return c, fmt.Errorf("vae_decoder/config.json: scaling_factor %v is not a positive number", *f)
			}
			c.scaling = *f
		}
	}
	return c, nil
}

// runnerFS lets the tokenizer package read a folder's tokenizer files
// through the runner.
type runnerFS struct {
	ctx context.Context
	r   Runner
}

func (f runnerFS) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: errors.ErrUnsupported}
}

func (f runnerFS) ReadFile(name string) ([]byte, error) { return f.r.ReadFile(f.ctx, name) }

// encoder is one text encoder with its tokenizer.
type encoder struct {
	model  Model
	tok    *clip.Tokenizer
	ids    TensorInfo
	hidden string // the penultimate hidden state's output
	pooled string // text_embeds, on text_encoder_2 only
}

type encoders [2]encoder

func loadEncoders(ctx context.Context, r Runner) (*encoders, error) {
	var e encoders
	for i, part := range []string{"text_encoder", "text_encoder_2"} {
		tok, err := clip.LoadFS(runnerFS{ctx, r}, []string{"tokenizer", "tokenizer_2"}[i])
		if err != nil {
			return nil, err
		}
		m, err := r.Load(ctx, part)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", part, err)
		}
		ids, ok := input(m, "input_ids")
		if !ok || len(ids.Shape) != 2 || (ids.Type != "i32" && ids.Type != "i64") {
			return nil, fmt.Errorf("%s: wants an input input_ids of rank 2, i32 or i64; its inputs are %s", part, describe(m.Inputs()))
		}
		hidden, err := penultimate(m.Outputs())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", part, err)
		}
		e[i] = encoder{model: m, tok: tok, ids: ids, hidden: hidden}
		if i == 1 {
			if _, ok := output(m, "text_embeds"); !ok {
				return nil, fmt.Errorf("%s: has no output text_embeds (the pooled, projected embedding); its outputs are %s", part, describe(m.Outputs()))
			}
			e[i].pooled = "text_embeds"
		}
	}
	return &e, nil
}

// penultimate finds the output hidden_states[-2]: of hidden_states.0
// (the embeddings) … hidden_states.N (the last layer), hidden_states.N-1
// (hidden_states.11 of CLIP ViT-L, .31 of OpenCLIP bigG).
func penultimate(outs []TensorInfo) (string, error) {
	var layers []int
	for _, o := range outs {
		if n, ok := strings.CutPrefix(o.Name, "hidden_states."); ok {
			if k, err := strconv.Atoi(n); err == nil && k >= 0 {
				layers = append(layers, k)
			}
		}
	}
	if len(layers) < 2 {
		return "", fmt.Errorf("has no hidden_states.N outputs to take the penultimate layer from (export it with its hidden states, as Optimum does); its outputs are %s", describe(outs))
	}
	sort.Ints(layers)
	k := layers[len(layers)-1] - 1
	if !slices.Contains(layers, k) {
		return "", fmt.Errorf("has hidden_states.%d but not hidden_states.%d", k+1, k)
	}
	return "hidden_states." + strconv.Itoa(k), nil
}

// embedding is one prompt's conditioning.
type embedding struct {
	hidden     []float32 // [77, D1+D2]
	seq, width int
	pooled     []float32 // [P]
}

func (e *embedding) zeros() *embedding {
	return &embedding{hidden: make([]float32, len(e.hidden)), seq: e.seq, width: e.width, pooled: make([]float32, len(e.pooled))}
}

func (e *encoders) encode(ctx context.Context, prompt, prompt2 string) (*embedding, error) {
	var parts [2][]float32
	var widths [2]int
	seq := 0
	var pooled []float32
	for i, text := range []string{prompt, prompt2} {
		enc := &e[i]
		ids := enc.tok.Encode(text)
		shape := []int64{1, int64(len(ids))}
		t, err := intTensor(enc.ids.Type, shape, ids)
		if err != nil {
			return nil, err
		}
		want := []string{enc.hidden}
		if enc.pooled != "" {
			want = append(want, enc.pooled)
		}
		part := []string{"text_encoder", "text_encoder_2"}[i]
		outs, err := enc.model.Run(ctx, map[string]Tensor{"input_ids": t}, want)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", part, err)
		}
		h := outs[enc.hidden]
		if len(h.Shape) != 3 || h.Shape[0] != 1 {
			return nil, fmt.Errorf("%s: %s has shape %v, not [1, sequence, width]", part, enc.hidden, h.Shape)
		}
		if parts[i], err = Floats(h); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", part, enc.hidden, err)
		}
		if i == 1 && int(h.Shape[1]) != seq {
			return nil, fmt.Errorf("the text encoders' sequences differ: %d and %d tokens", seq, h.Shape[1])
		}
		seq, widths[i] = int(h.Shape[1]), int(h.Shape[2])
		if enc.pooled != "" {
			if pooled, err = Floats(outs[enc.pooled]); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", part, enc.pooled, err)
			}
		}
	}
	width := widths[0] + widths[1]
	hidden := make([]float32, seq*width)
	for s := range seq {
		copy(hidden[s*width:], parts[0][s*widths[0]:(s+1)*widths[0]])
		copy(hidden[s*width+widths[0]:], parts[1][s*widths[1]:(s+1)*widths[1]])
	}
	return &embedding{hidden: hidden, seq: seq, width: width, pooled: pooled}, nil
}

// unetModel is the UNet with its inputs' types.
type unetModel struct {
	model    Model
	sample   TensorInfo
	timestep TensorInfo
	hidden   TensorInfo
	pooled   TensorInfo
	timeIDs  TensorInfo
}

// unetInputs are the inputs the pipeline feeds; a UNet that wants
// another (an LCM's timestep_cond, say) is refused by name.
var unetInputs = []string{"sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"}

func newUNet(ctx context.Context, r Runner) (*unetModel, error) {
	m, err := r.Load(ctx, "unet")
	if err != nil {
		return nil, fmt.Errorf("unet: %w", err)
	}
	u := &unetModel{model: m}
	for _, in := range m.Inputs() {
		if !slices.Contains(unetInputs, in.Name) {
			return nil, fmt.Errorf("unet: input %s is not one this pipeline feeds (%s)", in.Name, strings.Join(unetInputs, ", "))
		}
	}
	for _, f := range []struct {
		name  string
		dst   *TensorInfo
		ranks []int
	}{
		{"sample", &u.sample, []int{4}},
		{"timestep", &u.timestep, []int{0, 1}},
		{"encoder_hidden_states", &u.hidden, []int{3}},
		{"text_embeds", &u.pooled, []int{2}},
		{"time_ids", &u.timeIDs, []int{2}},
	} {
		info, ok := input(m, f.name)
		if !ok || !slices.Contains(f.ranks, len(info.Shape)) {
			return nil, fmt.Errorf("unet: wants an input %s of rank %v; its inputs are %s", f.name, f.ranks, describe(m.Inputs()))
		}
		*f.dst = info
	}
	if u.timestep.Type != "i64" && u.timestep.Type != "f32" && u.timestep.Type != "f16" {
		return nil, fmt.Errorf("unet: timestep is %s; the pipeline feeds f32, f16 or i64", u.timestep.Type)
	}
	return u, nil
}

// cond is the UNet's conditioning, the same at every step.
type cond struct {
	hidden, pooled, timeIDs Tensor
}

// conditioning batches the embeddings ([negative, positive] with CFG)
// and time_ids = [orig_h, orig_w, crop_top, crop_left, target_h,
// target_w] = [H, W, 0, 0, H, W] for each batch row.
func (u *unetModel) conditioning(pos, neg *embedding, p Params, batch int) (*cond, error) {
	rows := []*embedding{pos}
	if batch == 2 {
		rows = []*embedding{neg, pos}
	}
	var hidden, pooled, ids []float32
	for _, e := range rows {
		hidden = append(hidden, e.hidden...)
		pooled = append(pooled, e.pooled...)
		h, w := float32(p.Height), float32(p.Width)
		ids = append(ids, h, w, 0, 0, h, w)
	}
	b := int64(batch)
	var c cond
	var err error
	if c.hidden, err = floatTensor(u.hidden.Type, []int64{b, int64(pos.seq), int64(pos.width)}, hidden); err != nil {
		return nil, fmt.Errorf("unet: encoder_hidden_states: %w", err)
	}
	if c.pooled, err = floatTensor(u.pooled.Type, []int64{b, int64(len(pos.pooled))}, pooled); err != nil {
		return nil, fmt.Errorf("unet: text_embeds: %w", err)
	}
	if c.timeIDs, err = floatTensor(u.timeIDs.Type, []int64{b, 6}, ids); err != nil {
		return nil, fmt.Errorf("unet: time_ids: %w", err)
	}
	return &c, nil
}

// run runs one UNet evaluation and returns out_sample as float32.
func (u *unetModel) run(ctx context.Context, c *cond, sample []float32, shape []int64, t float64) ([]float32, error) {
	x, err := floatTensor(u.sample.Type, shape, sample)
	if err != nil {
		return nil, fmt.Errorf("unet: sample: %w", err)
	}
	var ts Tensor
	// A rank-0 float (Optimum ≥ 1.24) or a 1-D int64 [1] (older
	// exports): diffusers passes float timesteps, which the old int64
	// exports truncate; rounding matches them for the integer timesteps
	// every scheduler here produces but Euler with Karras sigmas.
	tshape := []int64{}
	if len(u.timestep.Shape) == 1 {
		tshape = []int64{1}
	}
	if u.timestep.Type == "i64" {
		ts, err = intTensor("i64", tshape, []int64{int64(math.Round(t))})
	} else {
		ts, err = floatTensor(u.timestep.Type, tshape, []float32{float32(t)})
	}
	if err != nil {
		return nil, fmt.Errorf("unet: timestep: %w", err)
	}
	outs, err := u.model.Run(ctx, map[string]Tensor{
		"sample": x, "timestep": ts, "encoder_hidden_states": c.hidden, "text_embeds": c.pooled, "time_ids": c.timeIDs,
	}, []string{"out_sample"})
	if err != nil {
		return nil, fmt.Errorf("unet: %w", err)
	}
	out, ok := outs["out_sample"]
	if !ok {
		return nil, errors.New("unet: no output out_sample")
	}
	if !slices.Equal(out.Shape, shape) {
		return nil, fmt.Errorf("unet: out_sample has shape %v, not the sample's %v", out.Shape, shape)
	}
	return Floats(out)
}

// encodeImage encodes the init image into scaled latents [1,4,h,w]:
// latent_sample as it is, or latent_parameters (mean ‖ log-variance)
// sampled as mean + std·noise, as diffusers' retrieve_latents does with a
// generator.
func encodeImage(ctx context.Context, r Runner, p Params, scaling float64, rng *scheduler.Rand) ([]float32, error) {
	pix, err := DecodeInit(p.InitImage, p.Width, p.Height)
	if err != nil {
		return nil, err
	}
	m, err := r.Load(ctx, "vae_encoder")
	if err != nil {
		return nil, fmt.Errorf("vae_encoder: %w", err)
	}
	in, ok := input(m, "sample")
	if !ok {
		return nil, fmt.Errorf("vae_encoder: wants an input sample; its inputs are %s", describe(m.Inputs()))
	}
	out := "latent_parameters"
	if _, ok := output(m, out); !ok {
		out = "latent_sample"
		if _, ok := output(m, out); !ok {
			return nil, fmt.Errorf("vae_encoder: has neither latent_parameters nor latent_sample; its outputs are %s", describe(m.Outputs()))
		}
	}
	x, err := floatTensor(in.Type, []int64{1, 3, int64(p.Height), int64(p.Width)}, pix)
	if err != nil {
		return nil, fmt.Errorf("vae_encoder: sample: %w", err)
	}
	outs, err := m.Run(ctx, map[string]Tensor{"sample": x}, []string{out})
	if err != nil {
		return nil, fmt.Errorf("vae_encoder: %w", err)
	}
	lat, err := Floats(outs[out])
	if err != nil {
		return nil, fmt.Errorf("vae_encoder: %s: %w", out, err)
	}
	n := 4 * (p.Width / vaeScale) * (p.Height / vaeScale)
	latents := make([]float32, n)
	switch {
	case out == "latent_parameters" && len(lat) == 2*n:
		noise := make([]float32, n)
		rng.Fill(noise)
		for i := range latents {
			logvar := min(max(float64(lat[n+i]), -30), 20)
			latents[i] = float32((float64(lat[i]) + math.Exp(0.5*logvar)*float64(noise[i])) * scaling)
		}
	case out == "latent_sample" && len(lat) == n:
		for i := range latents {
			latents[i] = float32(float64(lat[i]) * scaling)
		}
	default:
		return nil, fmt.Errorf("vae_encoder: %s has shape %v, which does not fit a %d×%d image", out, outs[out].Shape, p.Width, p.Height)
	}
	return latents, nil
}

// decode runs the VAE decoder on latents / scaling factor. The VAE runs in
// the type its model was exported in: SDXL's VAE must be fp32 (in fp16 it
// overflows to NaN), which Optimum exports and the registry's
// documentation asks for.
func decode(ctx context.Context, r Runner, latents []float32, lw, lh int, scaling float64) (*image.NRGBA, error) {
	m, err := r.Load(ctx, "vae_decoder")
	if err != nil {
		return nil, fmt.Errorf("vae_decoder: %w", err)
	}
	in, ok := input(m, "latent_sample")
	if !ok {
		return nil, fmt.Errorf("vae_decoder: wants an input latent_sample; its inputs are %s", describe(m.Inputs()))
	}
	z := make([]float32, len(latents))
	for i, v := range latents {
		z[i] = float32(float64(v) / scaling)
	}
	x, err := floatTensor(in.Type, []int64{1, 4, int64(lh), int64(lw)}, z)
	if err != nil {
		return nil, fmt.Errorf("vae_decoder: latent_sample: %w", err)
	}
	outs, err := m.Run(ctx, map[string]Tensor{"latent_sample": x}, []string{"sample"})
	if err != nil {
		return nil, fmt.Errorf("vae_decoder: %w", err)
	}
	img := outs["sample"]
	w, h := lw*vaeScale, lh*vaeScale
	if !slices.Equal(img.Shape, []int64{1, 3, int64(h), int64(w)}) {
		return nil, fmt.Errorf("vae_decoder: sample has shape %v, not [1 3 %d %d]", img.Shape, h, w)
	}
	values, err := Floats(img)
	if err != nil {
		return nil, fmt.Errorf("vae_decoder: sample: %w", err)
	}
	return pixels(values, w, h), nil
}

func input(m Model, name string) (TensorInfo, bool) { return find(m.Inputs(), name) }

func output(m Model, name string) (TensorInfo, bool) { return find(m.Outputs(), name) }

func find(ts []TensorInfo, name string) (TensorInfo, bool) {
	i := slices.IndexFunc(ts, func(t TensorInfo) bool { return t.Name == name })
	if i < 0 {
		return TensorInfo{}, false
	}
	return ts[i], true
}

func describe(ts []TensorInfo) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = fmt.Sprintf("%s (%s %v)", t.Name, t.Type, t.Shape)
	}
	return strings.Join(parts, ", ")
}
