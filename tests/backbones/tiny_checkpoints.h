#pragma once
// Structure-complete tiny checkpoints of the paper's four backbones, in the diffusers layout, with random weights:
// the published block structure (every level, block, transformer layer and attention module of SD1.5, SDXL,
// PixArt-Sigma XL-2 and FLUX.1-dev, so every layer name of configs/methods/<backbone>/*.yaml exists) at tiny
// widths and head counts, the real tokenizer files (CLIP vocab.json + merges.txt with 49408 ids and 77
// positions, the T5 SentencePiece test model), and a real 8x VAE (4 encoder levels, 3 downsamplings, 2 resnets
// each, mid attention). Written by the tests (tens of MB at most, never committed). Shared by tests/backbones
// and tests/e2e (include "../backbones/tiny_checkpoints.h").
//
//   kind          denoiser (published structure)                            tiny widths
//   sd15          4 levels x 2 resnets (+3 up), 16 cross-attention blocks    channels 8/16/32/32, 2 heads
//   sdxl          3 levels, transformer depth 1/2/10, 70 cross blocks        channels 8/16/32, 2/2/4 heads
//   pixart-sigma  28 transformer blocks, patch 2                             2 heads x 8
//   flux          19 double-stream + 38 single-stream blocks                 2 heads x 16, rope axes 4/6/6
//   sd35-medium   24 MMDiT blocks (0-12 with image-only attention)           2 heads x 8
//   sd35-large    38 MMDiT blocks                                           2 heads x 8
//
// The smallest image keeping every captured layer of SD1.5 is 64 (latent 8: the UNet's 3 downsamplings reach 1x1);
// the tests use kTinyImageSize = 64 for all four (the paper's 512/1024 are too slow for CI on 2 CPU cores).
#include "tiny_dit.h"
#include "tiny_tokenizer_files.h"

#include <optional>

namespace gb::bb::tiny {

inline constexpr int64_t kTinyImageSize = 64;
inline constexpr int64_t kTinyT5Vocab = 512;  // >= the 300 pieces of tests/text/golden/tiny_spiece.model
inline constexpr int64_t kClipVocab = 49408;  // the real CLIP BPE vocabulary
inline constexpr int64_t kClipPositions = 77;

// The published 8x AutoencoderKL encoder (4 DownEncoderBlock2D, layers_per_block 2, mid attention) at widths
// 8/16/32/32, norm groups 4.
inline nlohmann::json structural_vae_json(int64_t latent_channels, double scaling, std::optional<double> shift,
                                          bool quant_conv) {
  nlohmann::json j = {
      {"_class_name", "AutoencoderKL"},
      {"in_channels", 3},
      {"out_channels", 3},
      {"latent_channels", latent_channels},
      {"block_out_channels", {8, 16, 32, 32}},
      {"down_block_types", {"DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"}},
      {"up_block_types", {"UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"}},
      {"layers_per_block", 2},
      {"norm_num_groups", 4},
      {"act_fn", "silu"},
      {"scaling_factor", scaling},
      {"force_upcast", true},
      {"use_quant_conv", quant_conv},
      {"use_post_quant_conv", quant_conv}};
  if (shift) j["shift_factor"] = *shift;
  return j;
}

// vae/config.json + weights: the encoder (segmentation) and the decoder (generation), as real files carry both.
inline void write_structural_vae(const std::filesystem::path& dir, const nlohmann::json& config, uint64_t seed) {
  write_json(dir / "config.json", config);
  auto ws = WeightStore::random_init(seed, 0.1, at::kFloat, at::Device(at::kCPU));
  const VaeConfig cfg = VaeConfig::from_json((dir / "config.json").string());
  VaeEncoder encoder(cfg, ws);  // first: its weights do not depend on the decoder's
  VaeDecoder decoder(cfg, ws);
  save_safetensors((dir / "diffusion_pytorch_model.safetensors").string(), ws.tensors());
}

// A CLIP text encoder taking the real tokenizer's ids (49408, 77 positions), hidden 16; `bigg`: SDXL's
// text_encoder_2 (CLIPTextModelWithProjection, gelu, projection 16).
inline void write_structural_clip(const std::filesystem::path& dir, bool bigg, uint64_t seed) {
  auto j = tiny_clip_json(bigg);
  j["vocab_size"] = kClipVocab;
  j["max_position_embeddings"] = kClipPositions;
  write_json(dir / "config.json", j);
  auto ws = WeightStore::random_init(seed, 0.1, at::kFloat, at::Device(at::kCPU));
  ClipTextModel m(ClipTextConfig::from_json((dir / "config.json").string()), ws);
  auto t = ws.tensors();
  t["text_model.embeddings.position_ids"] = at::arange(kClipPositions, at::kLong).unsqueeze(0);
  save_safetensors((dir / "model.safetensors").string(), t);
}

inline void write_unet(const std::filesystem::path& dir, const nlohmann::json& config, uint64_t seed) {
  write_json(dir / "config.json", config);
  auto ws = WeightStore::random_init(seed, 0.1, at::kFloat, at::Device(at::kCPU));
  UNet2DConditionModel m(UNetConfig::from_json((dir / "config.json").string()), ws);
  save_safetensors((dir / "diffusion_pytorch_model.safetensors").string(), ws.tensors());
}

// SD v1.5 (runwayml/stable-diffusion-v1-5 unet/config.json with tiny widths).
inline std::string write_structural_sd15(const std::filesystem::path& root, uint64_t seed = 101) {
  std::filesystem::create_directories(root);
  write_json(root / "model_index.json", {{"_class_name", "StableDiffusionPipeline"}});
  write_json(root / "scheduler" / "scheduler_config.json", tiny_scheduler_json(false));
  nlohmann::json u = tiny_unet_json(false);
  u["sample_size"] = 64;
  u["layers_per_block"] = 2;
  u["norm_num_groups"] = 4;
  u["block_out_channels"] = {8, 16, 32, 32};
  u["down_block_types"] = {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"};
  u["up_block_types"] = {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"};
  u["attention_head_dim"] = 2;  // diffusers' SD1.5 name for the head count (8 in the published config)
  u["cross_attention_dim"] = 16;
  write_unet(root / "unet", u, seed);
  write_structural_vae(root / "vae", structural_vae_json(4, 0.18215, std::nullopt, true), seed + 1);
  write_structural_clip(root / "text_encoder", false, seed + 2);
  install_clip_vocab_merges(root, "tokenizer");
  return root.string();
}

// SDXL base 1.0 (stabilityai/stable-diffusion-xl-base-1.0: 3 levels, transformer depth 1/2/10, two CLIP encoders).
inline std::string write_structural_sdxl(const std::filesystem::path& root, uint64_t seed = 111) {
  std::filesystem::create_directories(root);
  write_json(root / "model_index.json", {{"_class_name", "StableDiffusionXLPipeline"}});
  write_json(root / "scheduler" / "scheduler_config.json", tiny_scheduler_json(true));
  nlohmann::json u = tiny_unet_json(true);
  u["sample_size"] = 128;
  u["layers_per_block"] = 2;
  u["norm_num_groups"] = 4;
  u["block_out_channels"] = {8, 16, 32};
  u["down_block_types"] = {"DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"};
  u["up_block_types"] = {"CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"};
  u["attention_head_dim"] = {2, 2, 4};
  u["transformer_layers_per_block"] = {1, 2, 10};
  u["cross_attention_dim"] = 32;  // CLIP-L hidden 16 + bigG hidden 16
  u["addition_time_embed_dim"] = 8;
  u["projection_class_embeddings_input_dim"] = 16 + 6 * 8;  // pooled bigG projection + 6 time ids
  write_unet(root / "unet", u, seed);
  write_structural_vae(root / "vae", structural_vae_json(4, 0.13025, std::nullopt, true), seed + 1);
  write_structural_clip(root / "text_encoder", false, seed + 2);
  write_structural_clip(root / "text_encoder_2", true, seed + 3);
  install_clip_vocab_merges(root, "tokenizer");
  install_clip_vocab_merges(root, "tokenizer_2");
  return root.string();
}

// PixArt-Sigma XL-2 1024-MS (28 blocks, patch 2, sample 128, interpolation 2; T5 + SentencePiece tokenizer).
inline std::string write_structural_pixart(const std::filesystem::path& root, uint64_t seed = 121) {
  write_pixart_denoiser(root, 28, 128, seed);
  write_structural_vae(root / "vae", structural_vae_json(4, 0.13025, std::nullopt, true), seed + 1);
  write_t5(root / "text_encoder", 16, seed + 2, kTinyT5Vocab);
  install_t5_spiece(root, "tokenizer");
  return root.string();
}

// FLUX.1-dev (19 double + 38 single blocks, in_channels 64 = 16 latent channels packed 2x2, guidance embeds;
// CLIP for the pooled vector, T5 as tokenizer_2/text_encoder_2; 16-channel VAE with shift).
inline std::string write_structural_flux(const std::filesystem::path& root, uint64_t seed = 131) {
  write_flux_denoiser(root, 19, 38, seed);
  write_structural_vae(root / "vae", structural_vae_json(16, 0.3611, 0.1159, false), seed + 1);
  write_structural_clip(root / "text_encoder", false, seed + 2);
  write_t5(root / "text_encoder_2", 24, seed + 3, kTinyT5Vocab);
  install_clip_vocab_merges(root, "tokenizer");
  install_t5_spiece(root, "tokenizer_2");
  return root.string();
}

// Stable Diffusion 3.5 Medium (24 blocks, image-only attention in blocks 0-12) or Large (38 blocks), QK RMSNorm,
// 2 heads x 8; CLIP-L and CLIP-G with projections (real CLIP tokenizer files in tokenizer/ and tokenizer_2/), T5 as
// text_encoder_3 with tokenizer_3/spiece.model; 16-channel VAE with shift, no quant convs (the published layout).
inline std::string write_structural_sd35(const std::filesystem::path& root, bool large, uint64_t seed = 141) {
  nlohmann::json dual = nlohmann::json::array();
  if (!large)
    for (int i = 0; i <= 12; ++i) dual.push_back(i);
  write_sd3_denoiser(root, 128, large ? 38 : 24, dual, 32, seed);
  write_structural_vae(root / "vae", structural_vae_json(16, 1.5305, 0.0609, false), seed + 1);
  write_sd3_clips(root, 16, seed + 2, {{"vocab_size", kClipVocab}, {"max_position_embeddings", kClipPositions}});
  write_t5(root / "text_encoder_3", 32, seed + 4, kTinyT5Vocab);
  install_clip_vocab_merges(root, "tokenizer");
  install_clip_vocab_merges(root, "tokenizer_2");
  install_t5_spiece(root, "tokenizer_3");
  return root.string();
}

// The checkpoint of `kind` (sd15, sdxl, pixart-sigma, flux, sd35-medium, sd35-large) under `root`.
inline std::string write_structural_checkpoint(const std::string& kind, const std::filesystem::path& root) {
  if (kind == "sd15") return write_structural_sd15(root);
  if (kind == "sdxl") return write_structural_sdxl(root);
  if (kind == "pixart-sigma") return write_structural_pixart(root);
  if (kind == "flux") return write_structural_flux(root);
  if (kind == "sd35-medium") return write_structural_sd35(root, false);
  if (kind == "sd35-large") return write_structural_sd35(root, true);
  throw std::invalid_argument("no structural tiny checkpoint for backbone kind '" + kind + "'");
}

}  // namespace gb::bb::tiny
