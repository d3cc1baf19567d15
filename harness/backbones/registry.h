#pragma once
// The backbone registry: one entry per kind with everything the rest of the program asks about a backbone
// (detection from a folder, loading, capturable layers, the paper's defaults, the option schema, token-id
// replay, the memory model). Nothing outside a backbone's own files compares kind names or casts a
// gb::Backbone to its class: the CLI, the runner and the memory planner ask the entry.
//
// Adding a backbone (docs/architecture.md, "How to add a backbone"):
//   1. its model file(s) (e.g. unet.*, pixart_transformer.*) and its backbone file <name>_backbone.{h,cpp}:
//      a gb::Backbone subclass and `BackboneKind <name>_backbone_kind()` filling the entry below;
//   2. its memory model in <name>_memory.cpp (MemoryModel, memory_plan.h), returned by the entry's `memory`
//      (optional: without one, `goca-bench memory` refuses the kind and runs record no planned peak);
//   3. one line in the table in registry.cpp;
//   4. configs: configs/methods/<kind>/*.yaml, and the docs (docs/backbones.md).
#include "harness/backbones/factory.h"

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace gb {
class ConfigReader;  // harness/config/config.h
}

namespace gb::bb {

class MemoryModel;  // memory_plan.h

// The paper's settings of a kind (what an option left out means).
struct BackboneDefaults {
  at::ScalarType gpu_dtype = at::kHalf;  // compute dtype on CUDA (always fp32 on the CPU)
  int64_t image_size = 512;              // square input side
  int64_t timestep = 100;                // the paper's t
  int64_t text_length = 77;              // tokens the prompts are padded to (T5: the pipeline's max_sequence_length)
  // The store dtype (captured tensors) defaults to the compute dtype for every kind.
};

// A kind's own option (beyond the common ones of BackboneOptions): read strictly from `options:` and handed to
// `load` in BackboneOptions::params as its YAML text.
struct BackboneParam {
  enum class Type { integer, number, numbers, text };
  std::string key;
  Type type = Type::number;
};

// One text encoder's input for token-id replay (`goca-bench capture --token-ids`): the ids a pipeline's
// tokenizer(padding="max_length") hands over, right-padded with `pad` to `length`.
struct TokenIdInput {
  std::string flag;     // "--token-ids", "--clip-token-ids"
  std::string encoder;  // "CLIP text encoder", "T5 text encoder" (errors)
  int64_t vocab = 0, length = 0, pad = 0;
  bool mask = false;  // the pipeline also passes an attention mask (0 exactly on the padding)
};

// The MMDiT kinds' replay (Flux, SD3.5): T5 ids from `t5_component`'s vocabulary padded with <pad> to `t5_length`
// (no mask) as --token-ids, then the CLIP ids of text_encoder padded with <|endoftext|> (the last id) to its
// positions as --clip-token-ids.
std::vector<TokenIdInput> t5_clip_token_id_inputs(const CheckpointFolder& f, const std::string& t5_component,
                                                  int64_t t5_length);

struct TokenReplay {
  // The inputs, in flag order, from the folder's configs (before any weight is loaded).
  std::function<std::vector<TokenIdInput>(const CheckpointFolder&)> inputs;
  // One pass from the padded ids ([B, length] int64 per input, same order) of a backbone `load` made.
  std::function<Capture(Backbone&, const std::vector<at::Tensor>& images, const std::vector<at::Tensor>& ids,
                        const std::vector<std::string>& image_ids, uint64_t seed, const CaptureSpec& spec)>
      capture;
  explicit operator bool() const { return static_cast<bool>(capture); }
};

struct BackboneKind {
  std::string kind;  // "sd15"
  std::string description;
  BackboneDefaults defaults;

  // Option schema: the common options it takes (keys of BackboneOptions: "image_size", "timestep", "variant",
  // "store_dtype", "text_encoder", "t5_int8"), the text-encoder residencies it supports, and its own params.
  std::vector<std::string> options = {"image_size", "timestep", "variant", "store_dtype", "text_encoder"};
  std::vector<TextEncoderResidency> text_encoder_modes = {TextEncoderResidency::keep};
  std::vector<BackboneParam> params;

  // A checkpoint kind opens a diffusers-layout folder; the others (synthetic) need none.
  bool needs_weights = true;
  // Whether the folder's weights are this kind (from tensor names/shapes only). Checkpoint kinds only.
  std::function<bool(const CheckpointFolder&)> detect_from_weights;
  // Pipeline classes (model_index.json) that agree with this kind, for the cross-check.
  std::vector<std::string> pipeline_classes;
  // `folder` is set exactly when needs_weights.
  std::function<std::unique_ptr<Backbone>(const std::optional<CheckpointFolder>& folder, const BackboneOptions&)> load;
  // Every capturable key with its shape, from the default config (or the folder's config when given).
  std::function<std::vector<LayerInfo>(const BackboneOptions&, const std::optional<std::string>& folder)> layers;
  // Its memory model for `goca-bench memory` (full-size configs, or the folder's); null: not planned.
  std::function<std::unique_ptr<MemoryModel>(const std::optional<std::string>& folder)> memory;
  // Exact replay from token ids; empty: not supported.
  TokenReplay token_ids;

  bool takes(const std::string& option) const;
};

// A kind's own option from BackboneOptions::params (checked against its schema when read), or `fallback`.
int64_t param_or(const BackboneOptions& o, const std::string& key, int64_t fallback);
double param_or(const BackboneOptions& o, const std::string& key, double fallback);
std::string param_or(const BackboneOptions& o, const std::string& key, const std::string& fallback);
std::vector<double> param_or(const BackboneOptions& o, const std::string& key, const std::vector<double>& fallback);

// The one reader of a backbone's options, shared by the experiment YAML and the CLI flags (harness/cli/
// backbone_flags.h) with the same value parsers: `options:` of an experiment's backbone entry through
// ConfigReader (errors name file:line; a key the kind does not take is an unknown key). Fills `o` (defaults
// stay where a key is absent). Keys: image_size (> 0), timestep (0..999), variant, store_dtype
// (fp32|fp16|bf16), text_encoder (the kind's modes), t5_int8 (bool), and the kind's params.
void read_backbone_options(const BackboneKind& kind, const ConfigReader& options, BackboneOptions& o);
// A text_encoder value against a kind's modes: UserError "text_encoder must be keep or free, not 'x'".
TextEncoderResidency parse_text_encoder(const BackboneKind& kind, const std::string& value);

// The table (registry.cpp), in `goca-bench list-layers`/docs order.
const std::vector<BackboneKind>& backbone_kinds();
const BackboneKind& backbone_kind(const std::string& kind);  // UserError listing the known kinds
std::string known_kinds(bool checkpoint_only = false);       // "sd15, sdxl, ..." (help texts, errors)

// UserError when `o` sets an option the kind does not take (t5_int8 outside flux, a residency it lacks, a
// checkpoint option on a kind without weights...).
void check_options(const BackboneKind& kind, const BackboneOptions& o);

// Detects the kind (weights first, model_index.json cross-check).
std::string detect_backbone_kind(const std::string& folder);
// Opens a folder; `expected_kind` (optional) must agree with the detection.
std::unique_ptr<Backbone> open_backbone(const std::string& folder, const BackboneOptions& options,
                                        const std::string& expected_kind = "");
// A backbone of `kind`: its folder (`weights`, detected and cross-checked) for checkpoint kinds, none otherwise.
std::unique_ptr<Backbone> make_backbone(const std::string& kind, const std::string& weights,
                                        const BackboneOptions& options);

}  // namespace gb::bb
