#include "reports/results.h"

#include "harness/core/errors.h"
#include "harness/core/excerpt.h"
#include "harness/core/hash.h"
#include "harness/io/atomic_file.h"
#include "harness/eval/metrics_json.h"
#include "harness/io/json_io.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

namespace gb::reports {

using nlohmann::json;

namespace {

// results.json's metrics: the means and per-class IoU and accuracy.
json results_metrics_json(const Metrics& m) {
  json j = gb::eval::metrics_means_json(m);
  json iou = json::array(), acc = json::array();
  for (double v : m.iou) iou.push_back(gb::eval::json_number(v));
  for (double v : m.acc) acc.push_back(gb::eval::json_number(v));
  j["per_class_iou"] = iou;
  j["per_class_acc"] = acc;
  return j;
}

template <typename T>
T req(const json& j, const char* key, const std::string& source, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) fail_file(source, "{}: missing key '{}'", where, key);
  try {
    return j.at(key).get<T>();
  } catch (const json::exception& e) {
    fail_file(source, "{}{}{}: {}", where, where.empty() ? "" : ".", key, json_error_text(e));
  }
}

// More classes than any segmentation benchmark has: a corrupt file, not a (C+1) x C matrix to allocate.
constexpr int64_t kMaxClasses = 100000;
// A pixel count above this is corrupt (and summing such counts could overflow int64).
constexpr int64_t kMaxCount = int64_t(1) << 48;

// A value of the wrong type under `key`; results_from_json turns it into a UserError naming file and key.
struct WrongType {
  std::string key, what;
};

template <typename T>
T opt(const json& j, const char* key, const T& fallback) {
  if (!j.is_object() || !j.contains(key) || j.at(key).is_null()) return fallback;
  try {
    return j.at(key).get<T>();
  } catch (const json::exception& e) {
    throw WrongType{key, json_error_text(e)};
  }
}

}  // namespace

int Cell::selected_index() const {
  if (thresholds.empty()) return -1;
  if (select_rule == "fixed") {
    int best = 0;
    for (size_t i = 0; i < thresholds.size(); ++i)
      if (std::fabs(thresholds[i].threshold - fixed_threshold) <
          std::fabs(thresholds[best].threshold - fixed_threshold))
        best = static_cast<int>(i);
    return best;
  }
  int best = 0;  // "best": highest mIoU, first one on ties (the sweep's order)
  for (size_t i = 1; i < thresholds.size(); ++i)
    if (thresholds[i].metrics.miou > thresholds[best].metrics.miou) best = static_cast<int>(i);
  return best;
}

const ThresholdResult* Cell::selected() const {
  const int i = selected_index();
  return i < 0 ? nullptr : &thresholds[static_cast<size_t>(i)];
}

const Cell* Results::find(const std::string& d, const std::string& b, const std::string& v) const {
  for (const auto& c : cells)
    if (c.dataset == d && c.backbone == b && c.variant == v) return &c;
  return nullptr;
}

double GenerationCell::clip_score() const {
  return images > 0 ? std::max(clip_sum / static_cast<double>(images), 0.0) : NAN;
}

std::string GenerationCell::scale_text() const { return fmt::format("{:g}", scale); }

std::string GenerationCell::key() const { return backbone + "|" + guidance + "|" + scale_text(); }

const GenerationCell* Results::find_generation(const std::string& b, const std::string& g, double scale) const {
  for (const auto& c : generation)
    if (c.backbone == b && c.guidance == g && c.scale == scale) return &c;
  return nullptr;
}

const DatasetInfo* Results::dataset(const std::string& n) const {
  for (const auto& d : datasets)
    if (d.name == n) return &d;
  return nullptr;
}

gb::Protocol Results::protocol_of(const std::string& ds) const {
  const DatasetInfo* d = dataset(ds);
  if (d && d->protocol == "standard") return gb::Protocol::standard;
  return gb::Protocol::paper;
}

void Results::recompute_metrics() {
  for (auto& c : cells) {
    const gb::Protocol red = protocol_of(c.dataset);
    for (auto& t : c.thresholds) t.metrics = gb::eval::reduce(t.confusion, red);
  }
}

json to_json(const Results& r) {
  json j;
  j["schema"] = "goca-bench/results";
  j["schema_version"] = r.schema_version;
  json run;
  run["name"] = r.name;
  run["created_utc"] = r.created_utc;
  run["git_commit"] = r.git_commit;
  run["goca_bench_version"] = r.goca_bench_version;
  run["libraries"] = r.libraries;
  run["device"] = r.device;
  run["config_hash"] = r.config_hash;
  run["protocol"] = r.protocol;
  run["seeds"] = r.seeds;
  run["shard"] = {{"index", r.shard_index}, {"count", r.shard_count}};
  run["peak_host_bytes"] = r.peak_host_bytes;
  run["peak_device_bytes"] = r.peak_device_bytes;
  run["planned_peak_device_bytes"] = r.planned_peak_device_bytes;
  run["config_yaml"] = r.config_yaml;
  j["run"] = run;
  json ds = json::array();
  for (const auto& d : r.datasets)
    ds.push_back({{"name", d.name},
                  {"kind", d.kind},
                  {"protocol", d.protocol},
                  {"num_classes", d.num_classes},
                  {"class_names", d.class_names},
                  {"num_images", d.num_images},
                  {"list_hash", d.list_hash}});
  j["datasets"] = ds;
  json cells = json::array();
  for (const auto& c : r.cells) {
    json cj;
    cj["dataset"] = c.dataset;
    cj["backbone"] = c.backbone;
    cj["variant"] = c.variant;
    cj["method"] = c.method;
    cj["type"] = c.type;
    cj["group"] = c.group;
    cj["axes"] = c.axes;
    cj["method_config"] = c.method_config.is_null() ? json::object() : c.method_config;
    cj["background"] = c.background;
    cj["select"] = {{"rule", c.select_rule}, {"fixed_threshold", c.fixed_threshold}};
    cj["images"] = c.images;
    const int sel = c.selected_index();
    cj["selected_threshold"] = sel < 0 ? json(nullptr) : json(c.thresholds[sel].threshold);
    if (sel >= 0) cj["selected"] = results_metrics_json(c.thresholds[sel].metrics);
    json th = json::array();
    for (const auto& t : c.thresholds) {
      json tj = results_metrics_json(t.metrics);
      tj["threshold"] = t.threshold;
      json rows = json::array();
      for (int64_t row = 0; row <= t.confusion.num_classes(); ++row) {
        json rj = json::array();
        for (int64_t col = 0; col < t.confusion.num_classes(); ++col) rj.push_back(t.confusion.at(row, col));
        rows.push_back(rj);
      }
      tj["confusion"] = rows;
      th.push_back(tj);
    }
    cj["thresholds"] = th;
    cj["diagnostics"] = {{"layer_weight_sum", c.layer_weight_sum}, {"head_weight_sum", c.head_weight_sum}};
    cells.push_back(cj);
  }
  j["cells"] = cells;
  json tm = json::object();
  for (const auto& [k, t] : r.timings)
    tm[k] = {{"stage_seconds", t.seconds}, {"wall_seconds", t.wall_seconds}, {"images", t.images}};
  j["timings"] = tm;
  json ex = json::array();
  for (const auto& e : r.examples)
    ex.push_back({{"dataset", e.dataset},
                  {"backbone", e.backbone},
                  {"variant", e.variant},
                  {"id", e.id},
                  {"index", e.index},
                  {"png_base64", e.png_base64}});
  j["examples"] = ex;
  if (r.generation_info) {
    const auto& g = *r.generation_info;
    j["generation"] = {{"prompts", g.prompts},
                       {"num_prompts", g.num_prompts},
                       {"list_hash", g.list_hash},
                       {"reference_stats", g.reference_stats},
                       {"reference_hash", g.reference_hash},
                       {"synthetic", g.synthetic}};
    json gc = json::array();
    for (const auto& c : r.generation) {
      json samples = json::array();
      for (const auto& smp : c.samples)
        samples.push_back({{"id", smp.id}, {"index", smp.index}, {"png_base64", smp.png_base64}});
      gc.push_back({{"backbone", c.backbone},
                    {"guidance", c.guidance},
                    {"guidance_type", c.guidance_type},
                    {"method", c.method},
                    {"scale", c.scale},
                    {"images", c.images},
                    {"clip_sum", c.clip_sum},
                    {"clip_score", gb::eval::json_number(c.clip_score())},
                    {"fid", gb::eval::json_number(c.fid)},
                    {"sums_file", c.sums_file},
                    {"samples", samples}});
    }
    j["generation_cells"] = gc;
  }
  return j;
}

namespace {
Results results_from_json_impl(const json& j, const std::string& src);
}  // namespace

Results results_from_json(const json& j, const std::string& src) {
  try {
    return results_from_json_impl(j, src);
  } catch (const WrongType& e) {
    fail_file(src, "key '{}': {}", e.key, e.what);
  }
}

namespace {

// "run": provenance, shard and memory peaks (every key optional).
void read_run_info(const json& j, Results& r) {
  const json& run = j.contains("run") ? j.at("run") : json::object();
  r.name = opt<std::string>(run, "name", "");
  r.created_utc = opt<std::string>(run, "created_utc", "");
  r.git_commit = opt<std::string>(run, "git_commit", "");
  r.goca_bench_version = opt<std::string>(run, "goca_bench_version", "");
  r.libraries = opt<std::map<std::string, std::string>>(run, "libraries", {});
  r.device = opt<std::string>(run, "device", "");
  r.config_hash = opt<std::string>(run, "config_hash", "");
  r.protocol = opt<std::string>(run, "protocol", "");
  r.seeds = opt<std::map<std::string, int64_t>>(run, "seeds", {});
  if (run.contains("shard")) {
    r.shard_index = opt<int64_t>(run.at("shard"), "index", 0);
    r.shard_count = opt<int64_t>(run.at("shard"), "count", 1);
  }
  r.peak_host_bytes = opt<int64_t>(run, "peak_host_bytes", 0);
  r.peak_device_bytes = opt<int64_t>(run, "peak_device_bytes", 0);
  r.planned_peak_device_bytes = opt<int64_t>(run, "planned_peak_device_bytes", 0);
  r.config_yaml = opt<std::string>(run, "config_yaml", "");
}

DatasetInfo read_dataset_info(const json& d, const std::string& src) {
  DatasetInfo di;
  di.name = req<std::string>(d, "name", src, "datasets[]");
  di.kind = opt<std::string>(d, "kind", "");
  di.protocol = opt<std::string>(d, "protocol", "paper");
  di.num_classes = req<int64_t>(d, "num_classes", src, "datasets[" + di.name + "]");
  if (di.num_classes < 1 || di.num_classes > kMaxClasses)
    fail_file(src, "datasets[{}].num_classes: {} is not in [1, {}]", di.name, di.num_classes, kMaxClasses);
  di.class_names = opt<std::vector<std::string>>(d, "class_names", {});
  di.num_images = opt<int64_t>(d, "num_images", 0);
  di.list_hash = opt<std::string>(d, "list_hash", "");
  return di;
}

// One threshold of a cell: its (C + 1) x C confusion matrix of pixel counts.
ThresholdResult read_threshold(const json& tj, int64_t C, const std::string& src, const std::string& where) {
  ThresholdResult t;
  t.threshold = req<double>(tj, "threshold", src, where);
  const json rows = req<json>(tj, "confusion", src, where);
  if (!rows.is_array() || static_cast<int64_t>(rows.size()) != C + 1)
    fail_file(src, "{}: confusion matrix must have {} rows (classes + out-of-range row)", where, C + 1);
  for (int64_t row = 0; row <= C; ++row) {  // the shape first: no allocation the file does not back
    const json& rj = rows[static_cast<size_t>(row)];
    if (!rj.is_array() || static_cast<int64_t>(rj.size()) != C)
      fail_file(src, "{}: confusion row {} must have {} columns", where, row, C);
  }
  t.confusion = ConfusionMatrix(C);
  for (int64_t row = 0; row <= C; ++row) {
    const json& rj = rows[static_cast<size_t>(row)];
    for (int64_t col = 0; col < C; ++col) {
      const json& v = rj[static_cast<size_t>(col)];
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > kMaxCount)
        fail_file(src, "{}: confusion row {} column {} must be a pixel count (an integer in [0, 2^48]), got {}", where,
                  row, col, excerpt(v.dump()));
      t.confusion.at(row, col) = v.get<int64_t>();
    }
  }
  return t;
}

// One cell; its dataset must already be in r.datasets (the class count of its matrices).
Cell read_cell(const json& cj, const Results& r, const std::string& src) {
  Cell c;
  c.dataset = req<std::string>(cj, "dataset", src, "cells[]");
  c.backbone = req<std::string>(cj, "backbone", src, "cells[]");
  c.variant = req<std::string>(cj, "variant", src, "cells[]");
  const std::string where = "cells[" + c.key() + "]";
  c.method = opt<std::string>(cj, "method", c.variant);
  c.type = opt<std::string>(cj, "type", "");
  c.group = opt<std::string>(cj, "group", "");
  c.axes = opt<std::map<std::string, std::string>>(cj, "axes", {});
  c.method_config = cj.value("method_config", json::object());
  c.background = opt<std::string>(cj, "background", "");
  if (cj.contains("select")) {
    c.select_rule = opt<std::string>(cj.at("select"), "rule", "best");
    c.fixed_threshold = opt<double>(cj.at("select"), "fixed_threshold", 0.0);
  } else {
    c.select_rule = "best";
  }
  c.images = opt<int64_t>(cj, "images", 0);
  const DatasetInfo* di = r.dataset(c.dataset);
  if (!di) fail_file(src, "{}: dataset '{}' is not listed under \"datasets\"", where, c.dataset);
  for (const auto& tj : req<json>(cj, "thresholds", src, where))
    c.thresholds.push_back(read_threshold(tj, di->num_classes, src, where));
  if (cj.contains("diagnostics")) {
    c.layer_weight_sum = opt<std::map<std::string, double>>(cj.at("diagnostics"), "layer_weight_sum", {});
    c.head_weight_sum = opt<std::map<std::string, std::vector<double>>>(cj.at("diagnostics"), "head_weight_sum", {});
  }
  return c;
}

// "timings" and "examples".
void read_timings_and_examples(const json& j, Results& r) {
  const json timings = j.value("timings", json::object());
  for (const auto& [k, tj] : timings.items()) {
    StageTimes t;
    t.seconds = opt<std::map<std::string, double>>(tj, "stage_seconds", {});
    t.wall_seconds = opt<double>(tj, "wall_seconds", 0.0);
    t.images = opt<int64_t>(tj, "images", 0);
    r.timings[k] = t;
  }
  for (const auto& ej : j.value("examples", json::array())) {
    Example e;
    e.dataset = opt<std::string>(ej, "dataset", "");
    e.backbone = opt<std::string>(ej, "backbone", "");
    e.variant = opt<std::string>(ej, "variant", "");
    e.id = opt<std::string>(ej, "id", "");
    e.index = opt<int64_t>(ej, "index", 0);
    e.png_base64 = opt<std::string>(ej, "png_base64", "");
    r.examples.push_back(e);
  }
}

GenerationCell read_generation_cell(const json& cj, const std::string& src) {
  GenerationCell c;
  c.backbone = req<std::string>(cj, "backbone", src, "generation_cells[]");
  c.guidance = req<std::string>(cj, "guidance", src, "generation_cells[]");
  c.scale = req<double>(cj, "scale", src, "generation_cells[]");
  const std::string where = "generation_cells[" + c.key() + "]";
  c.guidance_type = opt<std::string>(cj, "guidance_type", "");
  c.method = opt<std::string>(cj, "method", "");
  c.images = req<int64_t>(cj, "images", src, where);
  if (c.images < 0) fail_file(src, "{}: images must be >= 0, got {}", where, c.images);
  c.clip_sum = req<double>(cj, "clip_sum", src, where);
  c.fid = opt<double>(cj, "fid", NAN);
  c.sums_file = opt<std::string>(cj, "sums_file", "");
  for (const auto& sj : cj.value("samples", json::array()))
    c.samples.push_back(
        {opt<std::string>(sj, "id", ""), opt<int64_t>(sj, "index", 0), opt<std::string>(sj, "png_base64", "")});
  return c;
}

// "generation" and "generation_cells" (generation experiments).
void read_generation(const json& j, Results& r, const std::string& src) {
  if (!j.contains("generation")) return;
  const json& g = j.at("generation");
  GenerationInfo gi;
  gi.prompts = opt<std::string>(g, "prompts", "");
  gi.num_prompts = opt<int64_t>(g, "num_prompts", 0);
  gi.list_hash = opt<std::string>(g, "list_hash", "");
  gi.reference_stats = opt<std::string>(g, "reference_stats", "");
  gi.reference_hash = opt<std::string>(g, "reference_hash", "");
  gi.synthetic = opt<bool>(g, "synthetic", false);
  r.generation_info = gi;
  for (const auto& cj : j.value("generation_cells", json::array()))
    r.generation.push_back(read_generation_cell(cj, src));
}

Results results_from_json_impl(const json& j, const std::string& src) {
  Results r;
  if (!j.is_object() || opt<std::string>(j, "schema", "") != "goca-bench/results")
    fail_file(src, "not a goca-bench results file (missing \"schema\": \"goca-bench/results\")");
  r.schema_version = req<int>(j, "schema_version", src, "");
  if (r.schema_version != kResultsSchemaVersion)
    fail_file(src, "results schema version {} is not supported (this build reads {})", r.schema_version,
              kResultsSchemaVersion);
  read_run_info(j, r);
  try {
    for (const auto& d : j.value("datasets", json::array())) r.datasets.push_back(read_dataset_info(d, src));
    for (const auto& cj : j.value("cells", json::array())) r.cells.push_back(read_cell(cj, r, src));
    read_timings_and_examples(j, r);
    read_generation(j, r, src);
  } catch (const json::exception& e) {
    fail_file(src, "malformed results: {}", json_error_text(e));
  }
  r.recompute_metrics();
  return r;
}

}  // namespace

void save_results(const Results& r, const std::string& path) {
  const std::filesystem::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);  // failures: reported below
  write_file_atomic(path, to_json(r).dump() + "\n");  // compact: matrices of 151 classes x thresholds x variants add up
}

Results load_results(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) fail_file(path, "cannot open results file");
  return results_from_json(read_json_file(path), path);
}

std::string stable_hash(const std::string& text) {
  const uint64_t h = fnv1a(text);
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string utc_now_iso() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace gb::reports
