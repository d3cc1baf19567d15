#pragma once
// Tiny random-weight PixArt-like (Sigma, Sigma-512, alpha), Flux-like, SD3.5-like and SD 2.1-like checkpoints in a
// temporary diffusers-layout folder, and stand-in tokenizers (T5-like: words -> ids, EOS 1, pad 0; CLIP-like: BOS 998
// ... EOS 999, padded with 999).
#include "tiny_sd.h"

#include "harness/backbones/flux_transformer.h"
#include "harness/backbones/pixart_transformer.h"
#include "harness/backbones/sd3_transformer.h"
#include "harness/io/json_io.h"
#include "harness/backbones/t5_encoder.h"
#include "harness/core/tokenizer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <functional>
#include <sstream>

namespace gb::bb::tiny {

class WordTokenizer : public TextTokenizer {
 public:
  WordTokenizer(std::string name, int64_t max_len, bool clip, int64_t vocab)
      : name_(std::move(name)), max_len_(max_len), clip_(clip), vocab_(vocab) {}
  std::string name() const override { return name_; }
  int64_t max_length() const override { return max_len_; }
  std::vector<TextToken> encode(const std::string& text) const override {
    std::vector<TextToken> out;
    if (clip_) out.push_back({998, "<sos>", true});
    std::istringstream in(text);
    std::string w;
    while (in >> w && static_cast<int64_t>(out.size()) < max_len_ - 1)
      out.push_back(
          {2 + static_cast<int64_t>(std::hash<std::string>{}(w) % static_cast<size_t>(vocab_ - 2)), w, false});
    out.push_back({clip_ ? 999 : 1, "<eos>", true});
    while (static_cast<int64_t>(out.size()) < max_len_) out.push_back({clip_ ? 999 : 0, "<pad>", true});
    return out;
  }

 private:
  std::string name_;
  int64_t max_len_;
  bool clip_;
  int64_t vocab_;
};

inline nlohmann::json tiny_t5_json(int64_t d_model, int64_t vocab = 40) {
  return {{"architectures", {"T5EncoderModel"}},
          {"d_model", d_model},
          {"d_kv", 4},
          {"num_heads", 2},
          {"d_ff", 24},
          {"num_layers", 2},
          {"vocab_size", vocab},
          {"relative_attention_num_buckets", 8},
          {"relative_attention_max_distance", 16},
          {"layer_norm_epsilon", 1e-6},
          {"feed_forward_proj", "gated-gelu"},
          {"dense_act_fn", "gelu_new"},
          {"pad_token_id", 0},
          {"eos_token_id", 1}};
}

inline void write_t5(const std::filesystem::path& dir, int64_t d_model, uint64_t seed, int64_t vocab = 40) {
  write_json(dir / "config.json", tiny_t5_json(d_model, vocab));
  auto ws = WeightStore::random_init(seed, 0.15, at::kFloat, at::Device(at::kCPU));
  T5Encoder m(ws, T5Config::from_json((dir / "config.json").string()));
  save_safetensors((dir / "model.safetensors").string(), ws.tensors());
}

// Flux's CLIP text encoder (hidden 16, pooled); real tokenizer ids need vocab 49408 and 77 positions.
inline void write_clip_text(const std::filesystem::path& dir, uint64_t seed, int64_t vocab = 1000,
                            int64_t positions = 12) {
  auto j = tiny_clip_json(false);
  j["vocab_size"] = vocab;
  j["max_position_embeddings"] = positions;
  write_json(dir / "config.json", j);
  auto ws = WeightStore::random_init(seed, 0.1, at::kFloat, at::Device(at::kCPU));
  ClipTextModel m(ClipTextConfig::from_json((dir / "config.json").string()), ws);
  save_safetensors((dir / "model.safetensors").string(), ws.tensors());
}

inline void write_vae(const std::filesystem::path& dir, bool flux, uint64_t seed) {
  auto j = tiny_vae_json(true);
  if (flux) {
    j["latent_channels"] = 16;
    j["use_quant_conv"] = false;
    j["use_post_quant_conv"] = false;
    j["scaling_factor"] = 0.3611;
    j["shift_factor"] = 0.1159;
  }
  write_json(dir / "config.json", j);
  auto ws = WeightStore::random_init(seed, 0.1, at::kFloat, at::Device(at::kCPU));
  VaeEncoder m(VaeConfig::from_json((dir / "config.json").string()), ws);
  auto t = ws.tensors();
  t["decoder.conv_in.weight"] = at::zeros({16, flux ? 16 : 4, 3, 3});  // present in real files, ignored
  save_safetensors((dir / "diffusion_pytorch_model.safetensors").string(), t);
}

// model_index.json, scheduler/ and transformer/ (config and random weights) of a PixArt-Sigma folder: 2 heads x 8,
// caption 16, patch 2, `num_layers` blocks, latent `sample_size`. The tiny and the structure-complete folders
// (tiny_checkpoints.h) differ only in these two.
inline void write_pixart_denoiser(const std::filesystem::path& root, int64_t num_layers, int64_t sample_size,
                                  uint64_t seed) {
  std::filesystem::create_directories(root);
  write_json(root / "model_index.json", {{"_class_name", "PixArtSigmaPipeline"}});
  write_json(root / "transformer" / "config.json", {{"_class_name", "PixArtTransformer2DModel"},
                                                    {"num_attention_heads", 2},
                                                    {"attention_head_dim", 8},
                                                    {"in_channels", 4},
                                                    {"out_channels", 8},
                                                    {"num_layers", num_layers},
                                                    {"cross_attention_dim", 16},
                                                    {"attention_bias", true},
                                                    {"sample_size", sample_size},
                                                    {"patch_size", 2},
                                                    {"activation_fn", "gelu-approximate"},
                                                    {"num_embeds_ada_norm", 1000},
                                                    {"norm_type", "ada_norm_single"},
                                                    {"norm_elementwise_affine", false},
                                                    {"norm_eps", 1e-6},
                                                    {"interpolation_scale", 2},
                                                    {"use_additional_conditions", false},
                                                    {"caption_channels", 16}});
  write_json(root / "scheduler" / "scheduler_config.json", {{"_class_name", "DPMSolverMultistepScheduler"},
                                                            {"beta_start", 0.0001},
                                                            {"beta_end", 0.02},
                                                            {"beta_schedule", "linear"},
                                                            {"num_train_timesteps", 1000},
                                                            {"timestep_spacing", "linspace"},
                                                            {"steps_offset", 0},
                                                            {"algorithm_type", "dpmsolver++"},
                                                            {"solver_order", 2}});
  auto ws = WeightStore::random_init(seed, 0.15, at::kFloat, at::Device(at::kCPU));
  PixArtTransformer m(ws, PixArtConfig::from_json((root / "transformer" / "config.json").string()));
  save_safetensors((root / "transformer" / "diffusion_pytorch_model.safetensors").string(), ws.tensors());
}

// The same for FLUX.1-dev: 2 heads x 16, rope axes (4, 6, 6), T5 width 24, pooled CLIP 16, guidance embeds,
// `double_blocks` double-stream and `single_blocks` single-stream blocks.
inline void write_flux_denoiser(const std::filesystem::path& root, int64_t double_blocks, int64_t single_blocks,
                                uint64_t seed) {
  std::filesystem::create_directories(root);
  write_json(root / "model_index.json", {{"_class_name", "FluxPipeline"}});
  write_json(root / "transformer" / "config.json", {{"_class_name", "FluxTransformer2DModel"},
                                                    {"patch_size", 1},
                                                    {"in_channels", 64},
                                                    {"num_layers", double_blocks},
                                                    {"num_single_layers", single_blocks},
                                                    {"attention_head_dim", 16},
                                                    {"num_attention_heads", 2},
                                                    {"joint_attention_dim", 24},
                                                    {"pooled_projection_dim", 16},
                                                    {"guidance_embeds", true},
                                                    {"axes_dims_rope", {4, 6, 6}}});
  write_json(root / "scheduler" / "scheduler_config.json", {{"_class_name", "FlowMatchEulerDiscreteScheduler"},
                                                            {"num_train_timesteps", 1000},
                                                            {"shift", 3.0},
                                                            {"use_dynamic_shifting", true},
                                                            {"base_shift", 0.5},
                                                            {"max_shift", 1.15},
                                                            {"base_image_seq_len", 256},
                                                            {"max_image_seq_len", 4096}});
  auto ws = WeightStore::random_init(seed, 0.15, at::kFloat, at::Device(at::kCPU));
  FluxTransformer m(ws, FluxConfig::from_json((root / "transformer" / "config.json").string()));
  save_safetensors((root / "transformer" / "diffusion_pytorch_model.safetensors").string(), ws.tensors());
}

// PixArt-Sigma-like: 2 layers, 2 heads x 8, caption 16 (T5 d_model 16), VAE /2, patch 2: a 16^2 image gives
// 4 x 4 tokens.
inline std::string write_tiny_pixart(const std::filesystem::path& root, uint64_t seed = 11) {
  write_pixart_denoiser(root, 2, 8, seed);
  write_vae(root / "vae", false, seed + 1);
  write_t5(root / "text_encoder", 16, seed + 2);
  return root.string();
}

// Flux-like: 2 double + 2 single blocks, 2 heads x 16, axes (4, 6, 6), T5 d_model 24, CLIP hidden 16 (pooled),
// 16-channel VAE /2: a 16^2 image gives an 8^2 latent and 4 x 4 packed tokens of 64.
inline std::string write_tiny_flux(const std::filesystem::path& root, uint64_t seed = 21) {
  write_flux_denoiser(root, 2, 2, seed);
  write_vae(root / "vae", true, seed + 1);
  write_clip_text(root / "text_encoder", seed + 2);
  write_t5(root / "text_encoder_2", 24, seed + 3);
  return root.string();
}

// The tiny PixArt folder as another PixArt kind: "pixart-sigma-512" (sample_size 64, interpolation 1) or
// "pixart-alpha" (micro-conditions: inner_dim 24 so that it divides by 3, PixArtAlphaPipeline).
inline std::string write_tiny_pixart_kind(const std::filesystem::path& root, const std::string& kind,
                                          uint64_t seed = 11) {
  write_tiny_pixart(root, seed);
  auto cfg = gb::read_json_file((root / "transformer" / "config.json").string());
  if (kind == "pixart-sigma-512") {
    cfg.merge_patch({{"sample_size", 64}, {"interpolation_scale", 1}});
  } else if (kind == "pixart-alpha") {
    cfg.merge_patch({{"attention_head_dim", 12}, {"cross_attention_dim", 24}, {"use_additional_conditions", true}});
    write_json(root / "model_index.json", {{"_class_name", "PixArtAlphaPipeline"}});
  } else {
    throw std::invalid_argument("write_tiny_pixart_kind: " + kind);
  }
  write_json(root / "transformer" / "config.json", cfg);
  auto ws = WeightStore::random_init(seed + 20, 0.15, at::kFloat, at::Device(at::kCPU));
  PixArtTransformer m(ws, PixArtConfig::from_json((root / "transformer" / "config.json").string()));
  save_safetensors((root / "transformer" / "diffusion_pytorch_model.safetensors").string(), ws.tensors());
  return root.string();
}

// The SD3.5 denoiser part of a folder: model_index.json, transformer/ (SD3Transformer2DModel: 2 heads x 8, QK
// RMSNorm, joint dim 32, caption projection 16, 16 channels, patch 2; dual attention in `dual` layers) with random
// weights from `seed`, and scheduler/ (FlowMatchEulerDiscreteScheduler, shift 3).
inline void write_sd3_denoiser(const std::filesystem::path& root, int64_t sample_size, int64_t num_layers,
                               const nlohmann::json& dual, int64_t pooled_projection_dim, uint64_t seed) {
  std::filesystem::create_directories(root);
  write_json(root / "model_index.json", {{"_class_name", "StableDiffusion3Pipeline"}});
  write_json(root / "transformer" / "config.json", {{"_class_name", "SD3Transformer2DModel"},
                                                    {"sample_size", sample_size},
                                                    {"patch_size", 2},
                                                    {"in_channels", 16},
                                                    {"num_layers", num_layers},
                                                    {"attention_head_dim", 8},
                                                    {"num_attention_heads", 2},
                                                    {"joint_attention_dim", 32},
                                                    {"caption_projection_dim", 16},
                                                    {"pooled_projection_dim", pooled_projection_dim},
                                                    {"out_channels", 16},
                                                    {"pos_embed_max_size", 8},
                                                    {"dual_attention_layers", dual},
                                                    {"qk_norm", "rms_norm"}});
  write_json(root / "scheduler" / "scheduler_config.json",
             {{"_class_name", "FlowMatchEulerDiscreteScheduler"}, {"num_train_timesteps", 1000}, {"shift", 3.0}});
  auto ws = WeightStore::random_init(seed, 0.15, at::kFloat, at::Device(at::kCPU));
  Sd3Transformer m(ws, Sd3Config::from_json((root / "transformer" / "config.json").string()));
  save_safetensors((root / "transformer" / "diffusion_pytorch_model.safetensors").string(), ws.tensors());
}

// SD3.5's CLIP pair: text_encoder (CLIP-L-like) and text_encoder_2 (bigG-like), CLIPTextModelWithProjection with
// `projection_dim`, random weights from seed and seed + 1; `patch` edits both configs (vocabulary, positions).
inline void write_sd3_clips(const std::filesystem::path& root, int64_t projection_dim, uint64_t seed,
                            const nlohmann::json& patch = nlohmann::json::object()) {
  for (const auto& [comp, bigg, s] :
       {std::tuple{"text_encoder", false, seed}, std::tuple{"text_encoder_2", true, seed + 1}}) {
    auto j = tiny_clip_json(bigg);
    j["architectures"] = {"CLIPTextModelWithProjection"};
    j["projection_dim"] = projection_dim;
    j.merge_patch(patch);
    write_json(root / comp / "config.json", j);
    auto ws = WeightStore::random_init(s, 0.1, at::kFloat, at::Device(at::kCPU));
    ClipTextModel m(ClipTextConfig::from_json((root / comp / "config.json").string()), ws);
    save_safetensors((root / comp / "model.safetensors").string(), ws.tensors());
  }
}

// SD3.5-like: 2 layers (Medium: dual attention in layer 0; Large: none), 2 heads x 8 with QK RMSNorm, CLIP-L/G
// hidden 16 with projections 8, T5 d_model 32, 16-channel VAE /2 with shift: a 16² image gives 4 x 4 patches.
inline std::string write_tiny_sd3(const std::filesystem::path& root, bool large = false, uint64_t seed = 51) {
  nlohmann::json dual = nlohmann::json::array();
  if (!large) dual.push_back(0);
  write_sd3_denoiser(root, 8, 2, dual, 16, seed);
  write_vae(root / "vae", true, seed + 1);
  auto vae = gb::read_json_file((root / "vae" / "config.json").string());
  vae.merge_patch({{"scaling_factor", 1.5305}, {"shift_factor", 0.0609}});
  write_json(root / "vae" / "config.json", vae);
  write_sd3_clips(root, 8, seed + 2);
  write_t5(root / "text_encoder_3", 32, seed + 4);
  return root.string();
}

// SD 2.1-like: the tiny SD1.5 folder with linear projections, OpenCLIP-style gelu text encoder and the 2.1
// schedulers (768-v: DDIM with v_prediction and upcast attention; base: PNDM, epsilon).
inline std::string write_tiny_sd21(const std::filesystem::path& root, bool v_model, uint64_t seed = 61) {
  write_tiny_sd(root, false, seed);
  auto u = gb::read_json_file((root / "unet" / "config.json").string());
  u.merge_patch({{"use_linear_projection", true}, {"upcast_attention", v_model}});
  write_json(root / "unet" / "config.json", u);
  auto ws = WeightStore::random_init(seed + 10, 0.1, at::kFloat, at::Device(at::kCPU));
  UNet2DConditionModel m(UNetConfig::from_json((root / "unet" / "config.json").string()), ws);
  save_safetensors((root / "unet" / "diffusion_pytorch_model.safetensors").string(), ws.tensors());
  auto sc = tiny_scheduler_json(false);
  if (v_model) sc.merge_patch({{"_class_name", "DDIMScheduler"}, {"prediction_type", "v_prediction"}});
  write_json(root / "scheduler" / "scheduler_config.json", sc);
  return root.string();
}

inline at::Tensor random_image(int64_t h, int64_t w, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randint(0, 256, {h, w, 3}, gen, at::TensorOptions().dtype(at::kLong)).to(at::kByte);
}

}  // namespace gb::bb::tiny
