#include "harness/runner/dataset_prompts.h"

#include "harness/core/errors.h"
#include "harness/core/log.h"
#include "harness/runner/run_support.h"

#include <tbb/parallel_for.h>

namespace gb::runner {

const gb::datasets::CaptionFile& dataset_captions(const OpenDataset& od) {
  const auto* caps = od.dataset->captions();
  if (!caps) fail("dataset '{}': no caption file configured (`captions:`)", od.entry.name);
  return *caps;
}

PreparedPrompt dataset_prompt(const OpenDataset& od, const gb::text::PromptBuilder& builder,
                              const gb::datasets::Sample& sample) {
  return build_prompt(builder, sample, dataset_captions(od).caption(sample.id), od.config);
}

void preencode_prompts(gb::Backbone& backbone, const std::string& backbone_name,
                       const std::vector<OpenDataset>& datasets, int64_t shard_index, int64_t shard_count,
                       int64_t batch_size, std::map<std::string, gb::reports::StageTimes>& timings) {
  const auto t0 = Clock::now();
  std::vector<std::string> all;
  std::vector<std::pair<std::string, size_t>> per_dataset;
  for (const auto& od : datasets) {
    const auto builder = make_prompt_builder(od.config, od.dataset->classes(), backbone.tokenizer());
    dataset_captions(od);
    const std::vector<int64_t> idx = shard_indices(static_cast<int64_t>(od.dataset->size()), shard_index, shard_count);
    std::vector<std::string> texts(idx.size());
    tbb::parallel_for(size_t(0), idx.size(), [&](size_t k) {
      const auto sample = od.dataset->load(static_cast<size_t>(idx[k]));
      if (sample) texts[k] = dataset_prompt(od, *builder, *sample).text;
    });
    size_t n = 0;
    for (auto& t : texts)
      if (!t.empty()) all.push_back(std::move(t)), ++n;
    per_dataset.emplace_back(od.entry.name + "|" + backbone_name, n);
  }
  log::info("{}: encoding {} prompts before capturing (text_encoder: free)", backbone_name, all.size());
  backbone.prepare_prompts(all, batch_size);
  const double secs = seconds_since(t0);
  for (const auto& [key, n] : per_dataset)
    if (!all.empty()) timings[key].seconds["text"] += secs * static_cast<double>(n) / static_cast<double>(all.size());
}

}  // namespace gb::runner
