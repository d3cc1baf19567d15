#pragma once
// CLIP text transformer (transformers models/clip/modeling_clip.py semantics; spec §1.7): CLIPTextModel
// (CLIP-L: SD1.5, SDXL text_encoder, Flux) and CLIPTextModelWithProjection (OpenCLIP-bigG: SDXL
// text_encoder_2). Pre-LN layers, causal mask always, final LayerNorm, pooled output at the EOS position,
// optional text_projection (no bias).
#include "harness/backbones/nn.h"

#include <string>
#include <vector>

namespace gb::bb {

struct ClipTextConfig {  // text_encoder/config.json
  int64_t vocab_size = 49408;
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t max_position_embeddings = 77;
  std::string hidden_act = "quick_gelu";  // or "gelu" (bigG)
  double layer_norm_eps = 1e-5;
  int64_t projection_dim = 0;  // >0 with text_projection (CLIPTextModelWithProjection)
  int64_t eos_token_id = 2;    // 2 = the legacy "argmax of ids" pooling rule
  bool with_projection = false;

  static ClipTextConfig clip_l();  // H15 text_encoder
  static ClipTextConfig bigg();    // HXL-te text_encoder_2
  // OpenCLIP ViT-H/14's text tower as SD 2.x ships it (CLIPTextModel, 23 of its 24 layers: the last was dropped at
  // conversion, so last_hidden_state — after the final LayerNorm — is the "penultimate layer" conditioning).
  static ClipTextConfig openclip_h();
  static ClipTextConfig from_json(const std::string& path);
  // The text tower of a transformers CLIPModel folder's config.json: "text_config" over CLIPTextConfig's
  // defaults (hidden 512, 8 heads, eos_token_id 49407), with the top-level "projection_dim" projection.
  static ClipTextConfig from_clip_model_json(const std::string& path);
};

// One pre-LN CLIP encoder layer (transformers CLIPEncoderLayer), shared by the text and vision towers:
// x + out(attn(ln1(x))), then + fc2(act(fc1(ln2(.)))). `ws` is the layer root (layer_norm1, self_attn.*, mlp.*).
struct ClipEncoderLayer {
  LayerNorm ln1, ln2;
  Linear q, k, v, out, fc1, fc2;
  int64_t heads = 1;
  Activation act = Activation::QuickGELU;
  ClipEncoderLayer() = default;
  ClipEncoderLayer(const WeightStore& ws, int64_t hidden, int64_t intermediate, int64_t heads, double eps,
                   Activation act);
  at::Tensor operator()(const at::Tensor& x, const at::Tensor& mask) const;  // mask additive or undefined
};

struct ClipTextOutput {
  at::Tensor last_hidden_state;  // [B, T, D] after the final LayerNorm (undefined when not computed)
  at::Tensor penultimate;        // [B, T, D] hidden_states[-2]: output of layer L-1, no final LN
  at::Tensor pooled;             // [B, D] last_hidden_state at the EOS position
  at::Tensor text_embeds;        // [B, projection_dim] text_projection(pooled) (WithProjection only)
};

class ClipTextModel {
 public:
  // `ws` is the component root (keys text_model.*, text_projection.weight).
  ClipTextModel(const ClipTextConfig& config, const WeightStore& ws);
  const ClipTextConfig& config() const { return config_; }
  // ids int64 [B, T]. `need_last` = false stops after layer L-1 (only the penultimate state is returned).
  ClipTextOutput forward(const at::Tensor& ids, bool need_last = true) const;

 private:
  ClipTextConfig config_;
  Activation act_;
  at::Tensor token_embedding_, position_embedding_;
  std::vector<ClipEncoderLayer> layers_;
  LayerNorm final_ln_;
  Linear projection_;
};

}  // namespace gb::bb
