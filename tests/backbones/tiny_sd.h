#pragma once
// Tiny random-weight SD1.5-like and SDXL-like checkpoints written to a temporary diffusers-layout folder.
#include "harness/backbones/clip_text.h"
#include "harness/backbones/unet.h"
#include "harness/backbones/vae.h"
#include "harness/backbones/weights.h"
#include "harness/io/safetensors.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>

namespace gb::bb::tiny {

inline nlohmann::json tiny_unet_json(bool sdxl) {
  nlohmann::json j = {{"_class_name", "UNet2DConditionModel"},
                      {"in_channels", 4},
                      {"out_channels", 4},
                      {"sample_size", 8},
                      {"flip_sin_to_cos", true},
                      {"freq_shift", 0},
                      {"layers_per_block", 1},
                      {"norm_num_groups", 8},
                      {"norm_eps", 1e-5},
                      {"act_fn", "silu"},
                      {"downsample_padding", 1},
                      {"mid_block_type", "UNetMidBlock2DCrossAttn"}};
  if (!sdxl) {
    j["block_out_channels"] = {16, 32};
    j["down_block_types"] = {"CrossAttnDownBlock2D", "DownBlock2D"};
    j["up_block_types"] = {"UpBlock2D", "CrossAttnUpBlock2D"};
    j["attention_head_dim"] = 2;
    j["cross_attention_dim"] = 16;
    j["use_linear_projection"] = false;
  } else {
    j["block_out_channels"] = {16, 32};
    j["down_block_types"] = {"DownBlock2D", "CrossAttnDownBlock2D"};
    j["up_block_types"] = {"CrossAttnUpBlock2D", "UpBlock2D"};
    j["attention_head_dim"] = {2, 4};
    j["transformer_layers_per_block"] = {1, 2};
    j["cross_attention_dim"] = 32;
    j["use_linear_projection"] = true;
    j["addition_embed_type"] = "text_time";
    j["addition_time_embed_dim"] = 8;
    j["projection_class_embeddings_input_dim"] = 16 + 6 * 8;
  }
  return j;
}

inline nlohmann::json tiny_vae_json(bool sdxl) {
  return {{"_class_name", "AutoencoderKL"},
          {"in_channels", 3},
          {"out_channels", 3},
          {"latent_channels", 4},
          {"block_out_channels", {8, 16}},
          {"down_block_types", {"DownEncoderBlock2D", "DownEncoderBlock2D"}},
          {"up_block_types", {"UpDecoderBlock2D", "UpDecoderBlock2D"}},
          {"layers_per_block", 1},
          {"norm_num_groups", 4},
          {"act_fn", "silu"},
          {"scaling_factor", sdxl ? 0.13025 : 0.18215},
          {"force_upcast", true}};
}

inline nlohmann::json tiny_clip_json(bool bigg) {
  nlohmann::json j = {{"vocab_size", 1000},
                      {"hidden_size", 16},
                      {"intermediate_size", 32},
                      {"num_hidden_layers", 3},
                      {"num_attention_heads", 2},
                      {"max_position_embeddings", 12},
                      {"hidden_act", bigg ? "gelu" : "quick_gelu"},
                      {"layer_norm_eps", 1e-5},
                      {"eos_token_id", 2}};
  if (bigg) {
    j["architectures"] = {"CLIPTextModelWithProjection"};
    j["projection_dim"] = 16;
  } else {
    j["architectures"] = {"CLIPTextModel"};
  }
  return j;
}

inline nlohmann::json tiny_scheduler_json(bool sdxl) {
  nlohmann::json j = {{"_class_name", sdxl ? "EulerDiscreteScheduler" : "PNDMScheduler"},
                      {"num_train_timesteps", 1000},
                      {"beta_start", 0.00085},
                      {"beta_end", 0.012},
                      {"beta_schedule", "scaled_linear"},
                      {"steps_offset", 1},
                      {"skip_prk_steps", true},
                      {"set_alpha_to_one", false},
                      {"prediction_type", "epsilon"}};
  if (sdxl) {
    j["timestep_spacing"] = "leading";
    j["interpolation_type"] = "linear";
  }
  return j;
}

inline void write_json(const std::filesystem::path& p, const nlohmann::json& j) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << j.dump(2);
}

// Writes model_index.json, configs and random weights; returns the folder.
inline std::string write_tiny_sd(const std::filesystem::path& root, bool sdxl, uint64_t seed = 7) {
  namespace fs = std::filesystem;
  fs::create_directories(root);
  nlohmann::json index = {{"_class_name", sdxl ? "StableDiffusionXLPipeline" : "StableDiffusionPipeline"}};
  write_json(root / "model_index.json", index);
  write_json(root / "unet" / "config.json", tiny_unet_json(sdxl));
  write_json(root / "vae" / "config.json", tiny_vae_json(sdxl));
  write_json(root / "text_encoder" / "config.json", tiny_clip_json(false));
  write_json(root / "scheduler" / "scheduler_config.json", tiny_scheduler_json(sdxl));
  auto dev = at::Device(at::kCPU);
  {
    auto ws = WeightStore::random_init(seed, 0.1, at::kFloat, dev);
    UNet2DConditionModel m(UNetConfig::from_json((root / "unet" / "config.json").string()), ws);
    save_safetensors((root / "unet" / "diffusion_pytorch_model.safetensors").string(), ws.tensors());
  }
  {
    auto ws = WeightStore::random_init(seed + 1, 0.1, at::kFloat, dev);
    VaeEncoder m(VaeConfig::from_json((root / "vae" / "config.json").string()), ws);
    auto t = ws.tensors();
    t["decoder.conv_in.weight"] = at::zeros({16, 4, 3, 3});  // present in real files, ignored by the encoder
    t["post_quant_conv.weight"] = at::zeros({4, 4, 1, 1});
    save_safetensors((root / "vae" / "diffusion_pytorch_model.safetensors").string(), t);
  }
  {
    auto ws = WeightStore::random_init(seed + 2, 0.1, at::kFloat, dev);
    ClipTextModel m(ClipTextConfig::from_json((root / "text_encoder" / "config.json").string()), ws);
    auto t = ws.tensors();
    t["text_model.embeddings.position_ids"] = at::arange(12, at::kLong).unsqueeze(0);
    save_safetensors((root / "text_encoder" / "model.safetensors").string(), t);
  }
  if (sdxl) {
    write_json(root / "text_encoder_2" / "config.json", tiny_clip_json(true));
    auto ws = WeightStore::random_init(seed + 3, 0.1, at::kFloat, dev);
    ClipTextModel m(ClipTextConfig::from_json((root / "text_encoder_2" / "config.json").string()), ws);
    save_safetensors((root / "text_encoder_2" / "model.safetensors").string(), ws.tensors());
  }
  return root.string();
}

// Token ids [B, 12]: BOS 998, some words, EOS 999, then padding with EOS.
inline at::Tensor tiny_ids(const std::vector<std::vector<int64_t>>& words) {
  std::vector<at::Tensor> rows;
  for (const auto& w : words) {
    std::vector<int64_t> ids{998};
    ids.insert(ids.end(), w.begin(), w.end());
    while (ids.size() < 12) ids.push_back(999);
    rows.push_back(at::tensor(ids, at::kLong));
  }
  return at::stack(rows);
}

}  // namespace gb::bb::tiny
