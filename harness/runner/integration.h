#pragma once
// The runner's seams to the other components, in one place: prompt building (harness/text), backbone
// construction (harness/backbones, or the synthetic backbone). Method files are read by baselines/method_yaml.h.
#include "datasets/classes.h"
#include "datasets/dataset_config.h"
#include "datasets/sample.h"
#include "goca/method_config.h"
#include "harness/backbones/memory_plan.h"
#include "harness/core/backbone.h"
#include "harness/core/token_groups.h"
#include "harness/text/prompt_builder.h"
#include "harness/runner/experiment.h"

#include <yaml-cpp/yaml.h>

#include <memory>
#include <optional>
#include <vector>
#include <string>

namespace gb::runner {

struct PreparedPrompt {
  std::string text;        // the prompt fed to the text encoder
  gb::TokenGroups groups;  // which tokens belong to which object
};

// The paper's captioner (harness/text, spec §G) for one dataset and tokenizer.
std::unique_ptr<gb::text::PromptBuilder> make_prompt_builder(const gb::datasets::DatasetConfig& dataset,
                                                             const gb::datasets::ClassTable& classes,
                                                             const gb::TextTokenizer& tokenizer);
// Caption -> prompt + token groups; GT classes in the order the paper's datasets list them (quirk Q12).
PreparedPrompt build_prompt(const gb::text::PromptBuilder& builder, const gb::datasets::Sample& sample,
                            const std::string& caption, const gb::datasets::DatasetConfig& dataset);

// The entry's backbone (gb::bb::make_backbone with its options, read when the experiment was loaded) on
// `device`; `seed` is the run's noise seed.
std::unique_ptr<gb::Backbone> make_backbone(const BackboneEntry& entry, const std::string& device, uint64_t seed);
// The plan options of one capture pass of the entry (its options, dtype and folder configs) on `device` for
// `spec`, one forward per sample when `per_sample_forward` (the experiment's batch_invariant); nullopt for a kind
// without a memory model (synthetic).
std::optional<gb::bb::MemoryPlanOptions> memory_plan_options(const BackboneEntry& entry, const std::string& device,
                                                             const gb::CaptureSpec& spec, bool per_sample_forward);
// `goca-bench memory`'s planned peak device bytes of that pass at `batch`; 0 without a memory model.
int64_t planned_peak_bytes(const BackboneEntry& entry, const std::string& device, const gb::CaptureSpec& spec,
                           int64_t batch, bool per_sample_forward);
// What the variants of a backbone capture together (the union of their methods' needs).
gb::CaptureSpec required_capture(const std::vector<Variant>& variants);
// Whether the run should hand every prompt to Backbone::prepare_prompts before capturing (text_encoder: free).
bool wants_prompt_preencoding(const BackboneEntry& entry);
// Options that change where tensors live, never a result: left out of the config hash.
bool option_affects_results(const std::string& key);
// What the config hash records of a backbone entry: name, kind, dtype and the options that affect results.
nlohmann::json backbone_hash_entry(const BackboneEntry& entry);

// The dataset config of an experiment entry: `config` (a dataset YAML) with `set` overrides, or only `set`
// keys (then `dataset:` and `protocol:` choose the protocol's defaults). Keys as in datasets/dataset_config.h:
// dataset, protocol, root, images, split, reverse_split, limit, num_classes, ignore_index, void, gt_classes,
// on_error, missing_caption, captions, prompt.{add_background_token, add_missing_class},
// background.{method, thresholds}.
gb::datasets::DatasetConfig load_dataset_entry(const DatasetEntry& entry);

// "cuda" when available and asked for (auto), else "cpu".
std::string resolve_device(const std::string& requested);

}  // namespace gb::runner
