#pragma once
// The synthetic attention backbone (kind "synthetic"): a documented generative model of the tensors a real
// diffusion backbone captures, for the embedded quickstart and the runner's tests. docs/runner.md
// ("The synthetic attention backbone") states the model; in short, per image (everything seeded by the
// image id, so batch size, order and sharding never change a tensor):
//   * it re-derives the scene of synthetic_scene.h from the id and perceives every concept (object class or
//     stuff) as an area mask at each layer's resolution;
//   * layer l has a reliability q_l and head h of it a reliability r_h: the perceived mask of a head is
//     r_h (q_l M + (1-q_l) D_l) + (1-r_h) D_{l,h}, with D smooth random distractor fields;
//   * cross attention is a softmax over the prompt's tokens of: a start-token logit with a per-pixel smooth
//     variation (it absorbs most of the mass, unevenly across pixels), per-token biases for the entity
//     tokens plus a gain times the head's perceived mask of the token's concept, and a flat logit for
//     fillers, end and padding tokens;
//   * values are concept embeddings plus head noise that grows as r_h falls; the out-projection scales head
//     h by a gain that grows with r_h, so a head's output contribution (post-value × out weight) tracks its
//     reliability and the dot-product head weighting can find it;
//   * self attention is a softmax of beta × (agreement of the head's perceived masks) minus a locality
//     term, so its coherence tracks the layer's reliability; the reference feature's channel 0 is a
//     foreground indicator and its other channels concept embeddings, so the pseudo self-attention of the
//     reference (ref_mode paper or full) is coherent.
#include "harness/backbones/registry.h"
#include "harness/backbones/synthetic_scene.h"

#include <memory>
#include <set>
#include <string>
#include <vector>

namespace gb::bb {

struct SyntheticLayer {
  std::string block;  // cross block id, e.g. "up-level2-repeat1-vit-block0-cross"
  int64_t side = 0;   // latent grid side
  double reliability = 0.5;
};

struct SyntheticBackboneConfig {
  uint64_t seed = 0;  // world seed (must match the dataset's)
  SyntheticWorldOptions world;
  int64_t heads = 4;
  int64_t head_dim = 8;
  std::vector<SyntheticLayer> layers;  // default: an SD1.5-shaped UNet at half resolution (32/16/8/4)
  std::string ref_block = "up-level2-repeat1-vit-block0-cross";
  int64_t ref_channels = 16;
  std::vector<double> head_reliability = {0.95, 0.7, 0.4, 0.1};  // permuted per layer
  double sos_logit = 4.0;                                        // start-token logit
  double sos_pixel_amplitude = 3.0;                              // per-pixel variation of it (smooth field)
  double content_gain = 5.0;                                     // logit gain of a token's perceived mask
  double token_bias_low = -1.0, token_bias_high = 0.5;           // per-token imbalance
  double filler_logit = 0.5;                                     // fillers, end and padding tokens
  double value_noise = 1.0;                                      // value noise of an unreliable head
  double distractor_sharpness = 8.0;                             // edge sharpness of the distractor blobs
  double self_floor = 0.5;   // self-attention coherence of a layer: self_floor + (1 - self_floor) q_l
  double self_beta = 6.0;    // self-attention coherence strength
  double self_sigma = 0.15;  // self-attention locality (fraction of the side)

  static SyntheticBackboneConfig sd15_like();
};

class SyntheticBackbone : public gb::Backbone {
 public:
  SyntheticBackbone(SyntheticBackboneConfig config, std::shared_ptr<const gb::TextTokenizer> tokenizer,
                    std::string device = "cpu");
  std::string kind() const override { return "synthetic"; }
  std::vector<gb::LayerInfo> list_layers() const override;
  const gb::TextTokenizer& tokenizer() const override { return *tokenizer_; }
  gb::Capture capture(const gb::BackboneBatch& batch, const gb::CaptureSpec& spec) override;
  // With `text_encoder: free` the synthetic backbone behaves as the T5 backbones do in that mode: it remembers the
  // prepared prompts and refuses to capture any other (so the runner's pre-encoding pass is exercised for real).
  void prepare_prompts(const std::vector<std::string>& prompts, int64_t batch_size) override;
  void require_prepared_prompts(bool on) { require_prepared_ = on; }
  int64_t prepared_prompts() const { return static_cast<int64_t>(prepared_.size()); }

  // One sample, no batch dimension (what capture() stacks).
  gb::TensorMap capture_one(const std::string& id, const std::string& prompt, const gb::CaptureSpec& spec) const;
  const SyntheticBackboneConfig& config() const { return config_; }

 private:
  SyntheticBackboneConfig config_;
  std::shared_ptr<const gb::TextTokenizer> tokenizer_;
  std::string device_;
  bool require_prepared_ = false;
  std::set<std::string> prepared_;
};

// Every capturable key with its shape for prompts padded to `text_length` tokens.
std::vector<gb::LayerInfo> synthetic_layers(const SyntheticBackboneConfig& config, int64_t text_length);

// Registry entry (registry.cpp): no weights, no memory model; its generator parameters are its options.
BackboneKind synthetic_backbone_kind();

// Maps a (lower-case) word to a synthetic concept: VOC class synonyms -> class id, stuff words -> stuff
// concept, "clothes" -> person; -1 for anything else.
int64_t synthetic_concept_of_word(const std::string& word);

}  // namespace gb::bb
