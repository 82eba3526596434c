// Package sdxl writes a tiny Stable Diffusion XL model folder in the
// layout Hugging Face Optimum exports (ORTStableDiffusionXLPipeline):
// model_index.json, scheduler/, text_encoder/, text_encoder_2/, unet/
// (with external model.onnx_data weights), vae_decoder/, vae_encoder/,
// tokenizer/ and tokenizer_2/. Every model has the input and output
// names, element types and dynamic axes of the real part, in two exporter
// variants, and computes something small but real, so that a pipeline
// wired wrongly (swapped inputs, the wrong hidden state, the wrong
// padding) produces a different image. The weights are fixed pseudo-random
// numbers: the same options always write the same bytes.
//
// The pipeline's tests write a folder with Write(t.TempDir(), ...);
// `go run ./accel/cmd/sdxl-tiny -o DIR` writes one for people.
package sdxl

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Variant is an exporter generation; real folders come in both.
type Variant string

const (
	// FP32 is the old diffusers/Olive-style export: fp32 everywhere,
	// int32 input_ids, a rank-0 float timestep, and a vae_encoder that
	// outputs latent_sample [B,4,h,w].
	FP32 Variant = "fp32"
	// FP16 is Optimum's fp16 export: fp16 UNet and text encoders, int64
	// input_ids, a 1-D int64 timestep [steps], and a vae_encoder that
	// outputs latent_parameters [B,8,h,w] (mean ‖ logvar). The VAE stays
	// fp32 (SDXL's VAE overflows in fp16).
	FP16 Variant = "fp16"
)

// The tiny models' sizes. The real ones are 768, 1280, 1280 and 2048.
const (
	// TextHidden is text_encoder's hidden size (hidden_states.*,
	// last_hidden_state, pooler_output).
	TextHidden = 32
	// Text2Hidden is text_encoder_2's hidden size.
	Text2Hidden = 64
	// Projection is text_encoder_2's text_embeds size: the UNet's
	// text_embeds input.
	Projection = 64
	// CrossAttention is the UNet's encoder_hidden_states size:
	// hidden_states.11 (TextHidden) ‖ hidden_states.31 (Text2Hidden).
	CrossAttention = TextHidden + Text2Hidden
	// TextLayers and Text2Layers are the encoders' layer counts, as in
	// SDXL: they output hidden_states.0 … hidden_states.12 and .32.
	TextLayers  = 12
	Text2Layers = 32
	// LatentChannels is the UNet's and VAE's latent channel count.
	LatentChannels = 4
	// VAEScale is the VAE's down/upsampling factor.
	VAEScale = 8
	// ScalingFactor is the VAE scaling factor written to
	// vae_decoder/config.json (SDXL's).
	ScalingFactor = 0.13025
	// SequenceLength is the tokenizers' model_max_length.
	SequenceLength = 77
	// DefaultHeavyMatMuls is the -heavy UNet's count of 1024×1024
	// matrix products (13 GFLOP): about 65 ms a call on a quiet 2-core
	// machine (ONNX Runtime reaches ~200 GFLOP/s there).
	DefaultHeavyMatMuls = 6
)

// Options choose what Write produces.
type Options struct {
	// Variant is FP32 when empty.
	Variant Variant
	// HeavyMatMuls adds that many 1024×1024 matrix products to each
	// UNet call (their result feeds the output, so the runtime cannot
	// skip them): a UNet slow enough that a benchmark can weigh the
	// pipeline's own per-step overhead against it. 0 keeps it tiny.
	HeavyMatMuls int
	// Turbo writes SDXL-Turbo's scheduler configuration
	// (EulerAncestralDiscreteScheduler, "trailing" spacing) instead of
	// SDXL base's (EulerDiscreteScheduler, "leading", steps_offset 1).
	Turbo bool
}

// Files returns the folder's files, by slash-separated path.
func Files(opts Options) (map[string][]byte, error) {
	switch opts.Variant {
	case "":
		opts.Variant = FP32
	case FP32, FP16:
	default:
		return nil, fmt.Errorf("variant %q is not fp32 or fp16", opts.Variant)
	}
	if opts.HeavyMatMuls < 0 || opts.HeavyMatMuls > 1000 {
		return nil, fmt.Errorf("heavy matmuls %d is outside [0, 1000]", opts.HeavyMatMuls)
	}
	files := map[string][]byte{}
	if err := addConfigs(files, opts); err != nil {
		return nil, err
	}
	vocab, merges := Vocabulary()
	for _, dir := range []string{"tokenizer", "tokenizer_2"} {
		files[dir+"/vocab.json"] = vocab
		files[dir+"/merges.txt"] = merges
	}
	files["tokenizer/special_tokens_map.json"] = specialTokens("<|endoftext|>")
	files["tokenizer_2/special_tokens_map.json"] = specialTokens("!")
	files["tokenizer/tokenizer_config.json"] = tokenizerConfig("<|endoftext|>")
	files["tokenizer_2/tokenizer_config.json"] = tokenizerConfig("!")

	files["text_encoder/model.onnx"] = textEncoder(opts.Variant)
	model, data := textEncoderExternal(opts.Variant)
	files["text_encoder_2/model.onnx"] = model
	files["text_encoder_2/model.onnx_data"] = data
	model, data = unet(opts)
	files["unet/model.onnx"] = model
	files["unet/model.onnx_data"] = data
	files["vae_decoder/model.onnx"] = vaeDecoder()
	files["vae_encoder/model.onnx"] = vaeEncoder(opts.Variant)
	return files, nil
}

// Write writes the folder into dir (created if missing).
func Write(dir string, opts Options) error {
	files, err := Files(opts)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			return err
		}
	}
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err) // only maps of plain values are marshalled
	}
	return append(b, '\n')
}
