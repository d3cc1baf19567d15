#include "reports/merge.h"

#include "harness/core/errors.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace gb::reports {

Results merge_results(const std::vector<Results>& shards, const std::vector<std::string>& sources) {
  if (shards.empty()) fail("merge: no results files given");
  const Results& first = shards.front();
  const int64_t n = first.shard_count;
  std::set<int64_t> indices;
  for (size_t i = 0; i < shards.size(); ++i) {
    const Results& s = shards[i];
    const std::string& src = sources.at(i);
    if (s.config_hash != first.config_hash)
      fail_file(src, "config hash {} differs from {} ({}): shards of different runs", s.config_hash, first.config_hash,
                sources[0]);
    if (s.shard_count != n) fail_file(src, "shard count {} differs from {} ({})", s.shard_count, n, sources[0]);
    if (!indices.insert(s.shard_index).second) fail_file(src, "shard {}/{} given twice", s.shard_index, n);
    if (s.datasets.size() != first.datasets.size()) fail_file(src, "dataset list differs from {}", sources[0]);
    for (size_t d = 0; d < s.datasets.size(); ++d)
      if (s.datasets[d].name != first.datasets[d].name || s.datasets[d].list_hash != first.datasets[d].list_hash)
        fail_file(src, "dataset '{}' differs from {}", s.datasets[d].name, sources[0]);
    if (s.cells.size() != first.cells.size()) fail_file(src, "cell list differs from {}", sources[0]);
    if (s.generation_info.has_value() != first.generation_info.has_value() ||
        (s.generation_info && s.generation_info->list_hash != first.generation_info->list_hash) ||
        s.generation.size() != first.generation.size())
      fail_file(src, "generation settings or prompt list differ from {}", sources[0]);
  }
  if (static_cast<int64_t>(indices.size()) != n) {
    std::string missing;
    for (int64_t i = 0; i < n; ++i)
      if (!indices.count(i)) missing += (missing.empty() ? "" : ", ") + std::to_string(i);
    fail("merge: shards {} of {} are missing", missing, n);
  }
  Results out = first;
  out.shard_index = 0;
  out.shard_count = 1;
  out.created_utc = utc_now_iso();
  out.examples.clear();
  out.timings.clear();
  out.peak_host_bytes = 0;
  out.peak_device_bytes = 0;
  out.planned_peak_device_bytes = 0;
  for (auto& c : out.cells) {
    c.images = 0;
    for (auto& t : c.thresholds) t.confusion = ConfusionMatrix(t.confusion.num_classes());
    c.layer_weight_sum.clear();
    c.head_weight_sum.clear();
  }
  for (auto& g : out.generation) {
    g.images = 0;
    g.clip_sum = 0;
    g.fid = NAN;  // needs the merged feature sums: gb::runner::merge_generation_sums
    g.samples.clear();
  }
  for (size_t i = 0; i < shards.size(); ++i) {
    const Results& s = shards[i];
    for (size_t k = 0; k < s.generation.size(); ++k) {
      const GenerationCell& sg = s.generation[k];
      GenerationCell& og = out.generation[k];
      if (sg.key() != og.key())
        fail_file(sources[i], "generation cell {} does not match {} in {}", sg.key(), og.key(), sources[0]);
      og.images += sg.images;
      og.clip_sum += sg.clip_sum;
      og.samples.insert(og.samples.end(), sg.samples.begin(), sg.samples.end());
    }
    for (size_t k = 0; k < s.cells.size(); ++k) {
      const Cell& sc = s.cells[k];
      Cell& oc = out.cells[k];
      if (sc.key() != oc.key() || sc.thresholds.size() != oc.thresholds.size())
        fail_file(sources[i], "cell {} does not match {} in {}", sc.key(), oc.key(), sources[0]);
      oc.images += sc.images;
      for (size_t t = 0; t < sc.thresholds.size(); ++t) oc.thresholds[t].confusion += sc.thresholds[t].confusion;
      for (const auto& [l, w] : sc.layer_weight_sum) oc.layer_weight_sum[l] += w;
      for (const auto& [l, w] : sc.head_weight_sum) {
        auto& dst = oc.head_weight_sum[l];
        if (dst.size() < w.size()) dst.resize(w.size(), 0.0);
        for (size_t h = 0; h < w.size(); ++h) dst[h] += w[h];
      }
    }
    for (const auto& [k, t] : s.timings) {
      StageTimes& o = out.timings[k];
      for (const auto& [stage, sec] : t.seconds) o.seconds[stage] += sec;
      o.wall_seconds = std::max(o.wall_seconds, t.wall_seconds);
      o.images += t.images;
    }
    out.peak_host_bytes = std::max(out.peak_host_bytes, s.peak_host_bytes);
    out.peak_device_bytes = std::max(out.peak_device_bytes, s.peak_device_bytes);
    out.planned_peak_device_bytes = std::max(out.planned_peak_device_bytes, s.planned_peak_device_bytes);
    for (const auto& e : s.examples) out.examples.push_back(e);
  }
  std::stable_sort(out.examples.begin(), out.examples.end(), [](const Example& a, const Example& b) {
    if (a.dataset != b.dataset) return a.dataset < b.dataset;
    if (a.backbone != b.backbone) return a.backbone < b.backbone;
    if (a.index != b.index) return a.index < b.index;
    return a.variant < b.variant;
  });
  for (auto& g : out.generation)
    std::stable_sort(g.samples.begin(), g.samples.end(),
                     [](const GenerationSample& a, const GenerationSample& b) { return a.index < b.index; });
  out.recompute_metrics();
  return out;
}

}  // namespace gb::reports
