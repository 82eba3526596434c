package sdxl

// addConfigs adds the JSON files of an Optimum SDXL folder, with the
// fields diffusers and the module read and the values of SDXL base (or
// SDXL-Turbo) where they are not about the tiny sizes.
func addConfigs(files map[string][]byte, opts Options) error {
	schedulerClass := "EulerDiscreteScheduler"
	spacing := "leading"
	if opts.Turbo {
		schedulerClass, spacing = "EulerAncestralDiscreteScheduler", "trailing"
	}
	files["model_index.json"] = mustJSON(map[string]any{
		"_class_name":                  "ORTStableDiffusionXLPipeline",
		"_diffusers_version":           "0.30.0",
		"force_zeros_for_empty_prompt": true,
		"requires_aesthetics_score":    false,
		"scheduler":                    []string{"diffusers", schedulerClass},
		"text_encoder":                 []string{"transformers", "CLIPTextModel"},
		"text_encoder_2":               []string{"transformers", "CLIPTextModelWithProjection"},
		"tokenizer":                    []string{"transformers", "CLIPTokenizer"},
		"tokenizer_2":                  []string{"transformers", "CLIPTokenizer"},
		"unet":                         []string{"diffusers", "UNet2DConditionModel"},
		"vae":                          []string{"diffusers", "AutoencoderKL"},
	})
	files["scheduler/scheduler_config.json"] = mustJSON(map[string]any{
		"_class_name":         schedulerClass,
		"_diffusers_version":  "0.30.0",
		"beta_end":            0.012,
		"beta_schedule":       "scaled_linear",
		"beta_start":          0.00085,
		"clip_sample":         false,
		"interpolation_type":  "linear",
		"num_train_timesteps": 1000,
		"prediction_type":     "epsilon",
		"sample_max_value":    1.0,
		"set_alpha_to_one":    false,
		"skip_prk_steps":      true,
		"steps_offset":        1,
		"timestep_spacing":    spacing,
		"trained_betas":       nil,
		"use_karras_sigmas":   false,
	})
	files["text_encoder/config.json"] = mustJSON(map[string]any{
		"architectures":           []string{"CLIPTextModel"},
		"model_type":              "clip_text_model",
		"hidden_size":             TextHidden,
		"num_hidden_layers":       TextLayers,
		"max_position_embeddings": SequenceLength,
		"vocab_size":              49408,
		"bos_token_id":            0,
		"eos_token_id":            2,
		"pad_token_id":            1,
		"torch_dtype":             dtypeName(opts.Variant),
	})
	files["text_encoder_2/config.json"] = mustJSON(map[string]any{
		"architectures":           []string{"CLIPTextModelWithProjection"},
		"model_type":              "clip_text_model",
		"hidden_size":             Text2Hidden,
		"num_hidden_layers":       Text2Layers,
		"projection_dim":          Projection,
		"max_position_embeddings": SequenceLength,
		"vocab_size":              49408,
		"bos_token_id":            0,
		"eos_token_id":            2,
		"pad_token_id":            1,
		"torch_dtype":             dtypeName(opts.Variant),
	})
	files["unet/config.json"] = mustJSON(map[string]any{
		"_class_name":                           "UNet2DConditionModel",
		"_diffusers_version":                    "0.30.0",
		"in_channels":                           LatentChannels,
		"out_channels":                          LatentChannels,
		"sample_size":                           64,
		"cross_attention_dim":                   CrossAttention,
		"addition_embed_type":                   "text_time",
		"addition_time_embed_dim":               8,
		"projection_class_embeddings_input_dim": 6*8 + Projection,
		"time_cond_proj_dim":                    nil,
	})
	vae := map[string]any{
		"_class_name":        "AutoencoderKL",
		"_diffusers_version": "0.30.0",
		"in_channels":        3,
		"out_channels":       3,
		"latent_channels":    LatentChannels,
		"sample_size":        512,
		"scaling_factor":     ScalingFactor,
		"force_upcast":       true,
	}
	files["vae_decoder/config.json"] = mustJSON(vae)
	files["vae_encoder/config.json"] = mustJSON(vae)
	return nil
}

func dtypeName(v Variant) string {
	if v == FP16 {
		return "float16"
	}
	return "float32"
}

// addedToken is how transformers writes a special token with its flags.
func addedToken(content string) map[string]any {
	return map[string]any{"content": content, "lstrip": false, "normalized": true, "rstrip": false, "single_word": false}
}

// specialTokens is a CLIP special_tokens_map.json padding with pad.
func specialTokens(pad string) []byte {
	return mustJSON(map[string]any{
		"bos_token": addedToken("<|startoftext|>"),
		"eos_token": addedToken("<|endoftext|>"),
		"pad_token": pad,
		"unk_token": addedToken("<|endoftext|>"),
	})
}

// tokenizerConfig is a CLIP tokenizer_config.json padding with pad.
func tokenizerConfig(pad string) []byte {
	return mustJSON(map[string]any{
		"add_prefix_space":             false,
		"bos_token":                    addedToken("<|startoftext|>"),
		"clean_up_tokenization_spaces": true,
		"do_lower_case":                true,
		"eos_token":                    addedToken("<|endoftext|>"),
		"errors":                       "replace",
		"model_max_length":             SequenceLength,
		"pad_token":                    pad,
		"tokenizer_class":              "CLIPTokenizer",
		"unk_token":                    addedToken("<|endoftext|>"),
	})
}
