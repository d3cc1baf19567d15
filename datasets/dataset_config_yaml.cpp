// Strict YAML reading of DatasetConfig (kept apart from the defaults so users of the readers alone do not pull in
// the YAML layer).
#include <algorithm>

#include "datasets/dataset_config.h"
#include "harness/config/config.h"
#include "harness/core/errors.h"

namespace gb::datasets {

DatasetConfig read_dataset_config(const ConfigReader& r) {
  std::vector<std::pair<std::string, DatasetKind>> kinds;
  for (DatasetKind k : all_dataset_kinds()) kinds.emplace_back(to_string(k), k);
  const DatasetKind kind = r.get_enum<DatasetKind>("dataset", kinds);
  const Protocol protocol = r.get_enum_or<Protocol>(
      "protocol", {{"paper", Protocol::paper}, {"standard", Protocol::standard}}, Protocol::paper);
  DatasetConfig c = default_dataset_config(kind, protocol);
  c.root = r.get_or<std::string>("root", c.root);
  c.images = r.get_or<std::string>("images", c.images);
  c.split = r.get_or<std::string>("split", c.split);
  c.reverse_split = r.get_or<bool>("reverse_split", c.reverse_split);
  c.limit = r.get_or<int64_t>("limit", c.limit);
  if (c.limit < -1 || c.limit == 0) r.fail_at("limit", "must be -1 (all) or a positive count");
  if (c.split.empty() && c.reverse_split) r.fail_at("reverse_split", "needs a split file");
  if (auto labels = r.optional_child("labels")) {
    c.label_source = labels->get_enum_or<LabelSource>("source", label_source_names(), c.label_source);
    if (!label_source_applies(kind, c.label_source))
      labels->fail_at("source", std::string("label source '") + to_string(c.label_source) + "' does not apply to " +
                                    to_string(kind));
    c.label_dir = labels->get_or<std::string>("dir", c.label_dir);
    c.label_suffix = labels->get_or<std::string>("suffix", c.label_suffix);
    c.panoptic_json = labels->get_or<std::string>("panoptic_json", c.panoptic_json);
    labels->finish();
  }
  const ClassTable& t = class_table(kind, protocol);
  c.num_classes = r.get_or<int64_t>("num_classes", c.num_classes);
  if (c.num_classes != t.num_classes())
    r.fail_at("num_classes", "the " + std::string(to_string(protocol)) + " protocol of " + to_string(kind) + " has " +
                                 std::to_string(t.num_classes()) + " classes");
  c.ignore_index = r.get_or<int64_t>("ignore_index", c.ignore_index);
  if (c.ignore_index != t.ignore_index)
    r.fail_at("ignore_index", protocol == Protocol::paper ? "the paper protocol has no ignore index (-1)"
                                                          : "the standard protocol ignores 255");
  const bool void_bg = r.get_enum_or<bool>("void", {{"background", true}, {"ignore", false}}, c.void_to_background);
  if (void_bg != c.void_to_background)
    r.fail_at("void", protocol == Protocol::paper ? "the paper protocol maps void to background"
                                                  : "the standard protocol ignores void (255)");
  if (r.has("gt_classes")) {
    if (kind != DatasetKind::Voc) r.fail_at("gt_classes", "only VOC takes GT classes from Annotations/*.xml");
    c.gt_from_xml = r.get_enum<bool>("gt_classes", {{"xml", true}, {"label", false}});
  }
  c.on_error = r.get_enum_or<OnError>("on_error", {{"fail", OnError::Fail}, {"skip", OnError::Skip}}, c.on_error);
  c.missing_caption = r.get_enum_or<MissingCaption>(
      "missing_caption",
      {{"fail", MissingCaption::Fail}, {"skip", MissingCaption::Skip}, {"ignore", MissingCaption::Ignore}},
      c.on_error == OnError::Skip ? MissingCaption::Skip : MissingCaption::Fail);
  c.captions = r.get_or<std::string>("captions", c.captions);
  if (auto p = r.optional_child("prompt")) {
    c.add_background_token = p->get_or<bool>("add_background_token", c.add_background_token);
    c.add_missing_class = p->get_or<bool>("add_missing_class", c.add_missing_class);
    p->finish();
  }
  if (auto b = r.optional_child("background")) {
    c.background_method = b->get_or<std::string>("method", c.background_method);
    static const std::vector<std::string> methods = {"vanilla", "max", "exact", "avg", "offset"};
    if (std::find(methods.begin(), methods.end(), c.background_method) == methods.end())
      b->fail_at("method",
                 "unknown background method '" + c.background_method + "' (choices: vanilla, max, exact, avg, offset)");
    c.background_thresholds = b->get_or<std::vector<double>>("thresholds", c.background_thresholds);
    if (c.background_thresholds.empty()) b->fail_at("thresholds", "needs at least one threshold");
    b->finish();
  }
  return c;
}

DatasetConfig load_dataset_config(const std::string& path, const std::vector<std::string>& overrides) {
  Config cfg = Config::load(path, overrides);
  ConfigReader r(cfg);
  DatasetConfig c = read_dataset_config(r);
  r.finish();
  return c;
}

}  // namespace gb::datasets
