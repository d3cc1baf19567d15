#include "harness/runner/record_codec.h"

#include "harness/core/errors.h"
#include "harness/runner/run_support.h"

#include <ATen/ATen.h>

namespace gb::runner {

using nlohmann::json;

std::vector<std::array<int64_t, 3>> sparse_counts(const gb::eval::ConfusionMatrix& matrix) {
  std::vector<std::array<int64_t, 3>> sp;
  const int64_t C = matrix.num_classes();
  for (int64_t r = 0; r <= C && C > 0; ++r)
    for (int64_t c = 0; c < C; ++c)
      if (const int64_t n = matrix.at(r, c); n != 0) sp.push_back({r, c, n});
  return sp;
}

json delta_to_json(const VariantDelta& d) {
  json t = json::array();
  for (const auto& th : d.sparse) {
    json a = json::array();
    for (const auto& e : th) a.push_back({e[0], e[1], e[2]});
    t.push_back(a);
  }
  return {{"t", t}, {"lw", d.layer_weights}, {"hw", d.head_weights}};
}

json skip_record(int64_t index) { return {{"i", index}, {"skip", true}}; }

void accumulate(const json& rec, const std::vector<gb::reports::Cell*>& cells) {
  const json& vs = rec.at("v");
  if (vs.size() != cells.size())
    fail("journal record of image {} has {} variants, expected {}", rec.value("id", ""), vs.size(), cells.size());
  for (size_t v = 0; v < cells.size(); ++v) {
    gb::reports::Cell& c = *cells[v];
    const json& vj = vs[v];
    const json& t = vj.at("t");
    if (t.size() != c.thresholds.size())
      fail("journal record has {} thresholds, expected {}", t.size(), c.thresholds.size());
    for (size_t k = 0; k < t.size(); ++k)
      for (const auto& e : t[k])
        c.thresholds[k].confusion.at(e[0].get<int64_t>(), e[1].get<int64_t>()) += e[2].get<int64_t>();
    for (const auto& [l, w] : vj.at("lw").items()) c.layer_weight_sum[l] += w.get<double>();
    for (const auto& [l, w] : vj.at("hw").items()) {
      auto& dst = c.head_weight_sum[l];
      const auto src = w.get<std::vector<double>>();
      if (dst.size() < src.size()) dst.resize(src.size(), 0.0);
      for (size_t h = 0; h < src.size(); ++h) dst[h] += src[h];
    }
    c.images += 1;
  }
}

void collect_examples(const json& rec, const std::string& dataset, const std::string& backbone,
                      std::vector<gb::reports::Example>& examples) {
  for (const auto& e : rec.value("ex", json::array()))
    examples.push_back({dataset, backbone, e.at("variant"), rec.at("id"), rec.at("i").get<int64_t>(), e.at("png")});
}

json journal_header(const std::string& config_hash, const std::string& dataset, const std::string& backbone,
                    int64_t shard_index, int64_t shard_count) {
  return {{"journal", 1},
          {"config_hash", config_hash},
          {"dataset", dataset},
          {"backbone", backbone},
          {"shard", {shard_index, shard_count}}};
}

JournalSchema journal_schema(int64_t num_images, int64_t shard_index, int64_t shard_count,
                             const std::vector<gb::reports::Cell*>& cells) {
  JournalSchema schema;
  schema.num_images = num_images;
  schema.wanted = [shard_index, shard_count](int64_t i) { return in_shard(i, shard_index, shard_count); };
  for (const auto* c : cells) {
    schema.variants.push_back(c->variant);
    schema.thresholds.push_back(c->thresholds.size());
    schema.num_classes.push_back(c->thresholds.empty() ? 0 : c->thresholds.front().confusion.num_classes());
  }
  return schema;
}

}  // namespace gb::runner
