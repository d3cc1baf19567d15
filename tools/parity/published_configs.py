"""The published config.json of the full-size models, written out (no network here), for the full-size checks:
sd_goldens.py (keys/shapes/parameter totals on the meta device) and parity_full.py (random-weight parity runs).

Sources: the Hugging Face model repos' config files as the spec (../shared/spec/backbones.md §2, §3, §4, §5) records
them: H15 = runwayml/stable-diffusion-v1-5 (unet, vae, text_encoder, scheduler), HXL = stabilityai/
stable-diffusion-xl-base-1.0 (unet), HPS = PixArt-alpha/PixArt-Sigma-XL-2-1024-MS (transformer, vae, text_encoder,
scheduler), HFX = black-forest-labs/FLUX.1-dev (transformer). Keys a config file leaves out take the library's
defaults, as from_pretrained would; "_class_name"/"_diffusers_version" are added when the folder is written.
"""

# H15 unet/config.json
SD15_UNET = {
    "act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False, "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
    "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}

# H15 vae/config.json
SD15_VAE = {
    "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4, "in_channels": 3, "latent_channels": 4, "layers_per_block": 2,
    "norm_num_groups": 32, "out_channels": 3, "sample_size": 512, "up_block_types": ["UpDecoderBlock2D"] * 4,
    "scaling_factor": 0.18215,
}

# H15 text_encoder/config.json (openai/clip-vit-large-patch14's text tower)
SD15_TEXT_ENCODER = {
    "architectures": ["CLIPTextModel"], "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0,
    "eos_token_id": 2, "hidden_act": "quick_gelu", "hidden_size": 768, "initializer_factor": 1.0,
    "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-05, "max_position_embeddings": 77,
    "model_type": "clip_text_model", "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 1,
    "projection_dim": 768, "torch_dtype": "float32", "vocab_size": 49408,
}

# H15 scheduler/scheduler_config.json
SD15_SCHEDULER = {
    "_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
    "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
    "trained_betas": None, "clip_sample": False,
}

# HXL unet/config.json (what the key check needs; the rest are diffusers defaults equal to the file's values)
SDXL_UNET = {
    "block_out_channels": [320, 640, 1280],
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "attention_head_dim": [5, 10, 20], "transformer_layers_per_block": [1, 2, 10], "cross_attention_dim": 2048,
    "use_linear_projection": True, "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816, "sample_size": 128,
}

# HPS transformer/config.json
PIXART_TRANSFORMER = {
    "activation_fn": "gelu-approximate", "attention_bias": True, "attention_head_dim": 72, "attention_type": "default",
    "caption_channels": 4096, "cross_attention_dim": 1152, "dropout": 0.0,
    "in_channels": 4, "interpolation_scale": 2, "norm_elementwise_affine": False, "norm_eps": 1e-06,
    "norm_num_groups": 32, "norm_type": "ada_norm_single", "num_attention_heads": 16, "num_embeds_ada_norm": 1000,
    "num_layers": 28, "out_channels": 8, "patch_size": 2, "sample_size": 128, "upcast_attention": False,
    "use_additional_conditions": False,
}

# HPS vae/config.json (SDXL-type KL-f8)
PIXART_VAE = {
    "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4, "force_upcast": False, "in_channels": 3, "latent_channels": 4,
    "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3, "sample_size": 512, "scaling_factor": 0.13025,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}

# HPS text_encoder/config.json (google/t5-v1_1-xxl encoder)
T5_XXL = {
    "architectures": ["T5EncoderModel"], "d_ff": 10240, "d_kv": 64, "d_model": 4096, "dense_act_fn": "gelu_new",
    "dropout_rate": 0.1, "eos_token_id": 1, "feed_forward_proj": "gated-gelu", "initializer_factor": 1.0,
    "is_encoder_decoder": True, "is_gated_act": True, "layer_norm_epsilon": 1e-06, "model_type": "t5",
    "num_decoder_layers": 24, "num_heads": 64, "num_layers": 24, "output_past": True, "pad_token_id": 0,
    "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32, "tie_word_embeddings": False,
    "torch_dtype": "float32", "use_cache": True, "vocab_size": 32128,
}

# HPS scheduler/scheduler_config.json
PIXART_SCHEDULER = {
    "_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "dpmsolver++", "beta_end": 0.02,
    "beta_schedule": "linear", "beta_start": 0.0001, "lower_order_final": True, "num_train_timesteps": 1000,
    "prediction_type": "epsilon", "solver_order": 2, "steps_offset": 0, "thresholding": False,
    "timestep_spacing": "linspace", "use_karras_sigmas": False,
}

# HFX transformer/config.json
FLUX_TRANSFORMER = {
    "attention_head_dim": 128, "axes_dims_rope": [16, 56, 56], "guidance_embeds": True, "in_channels": 64,
    "joint_attention_dim": 4096, "num_attention_heads": 24, "num_layers": 19, "num_single_layers": 38,
    "patch_size": 1, "pooled_projection_dim": 768,
}


def kwargs(config):
    """A config as constructor keyword arguments (without the "_" bookkeeping keys)."""
    return {k: v for k, v in config.items() if not k.startswith("_") and k != "architectures"}
