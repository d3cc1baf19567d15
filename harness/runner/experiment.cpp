#include "harness/runner/experiment.h"

#include "harness/backbones/registry.h"
#include "harness/backbones/schedulers.h"
#include "harness/core/errors.h"
#include "harness/core/strings.h"
#include "harness/generation/guidance.h"

#include <fmt/format.h>

#include <algorithm>

#include <filesystem>
#include <set>

namespace gb::runner {

namespace fs = std::filesystem;

namespace {

std::string resolve_path(const std::string& p, const std::string& config_source) {
  if (p.empty() || fs::path(p).is_absolute() || fs::exists(p)) return p;
  const fs::path alt = fs::path(config_source).parent_path() / p;
  if (fs::exists(alt)) return alt.lexically_normal().string();
  return p;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

std::string scalar_text(const YAML::Node& n) {
  if (n.IsScalar()) return n.Scalar();
  YAML::Emitter e;
  e << YAML::Flow << n;
  return e.c_str();
}

std::vector<std::string> overrides_of(const ConfigReader& r, const std::string& key) {
  std::vector<std::string> out;
  if (!r.has(key)) return out;
  const YAML::Node& n = r.node(key);
  if (!n.IsMap()) r.fail_at(key, "must be a mapping of keys to values");
  for (const auto& kv : n) out.push_back(kv.first.Scalar() + "=" + scalar_text(kv.second));
  return out;
}

// A path key of the generation section, resolved like method files; existence is checked when the run starts
// (gb::runner::run_generation), so the paper configs load without the user's files.
std::string path_key(const ConfigReader& r, const std::string& key, const std::string& source) {
  const std::string p = resolve_path(r.get<std::string>(key), source);
  if (p.empty()) r.fail_at(key, "must name a file or folder");
  return p;
}

GenerationSpec parse_generation(const ConfigReader& g, const Experiment& ex) {
  GenerationSpec s;
  s.prompts = path_key(g, "prompts", ex.source);
  s.limit = g.get_or<int64_t>("limit", -1);
  s.steps = g.get_or<int64_t>("steps", 0);
  if (s.steps < 0) g.fail_at("steps", "must be 0 (the backbone's default) or positive");
  s.scheduler = g.get_or<std::string>("scheduler", "");
  if (!s.scheduler.empty()) {
    try {
      gb::bb::scheduler_class_for(s.scheduler);
    } catch (const UserError& e) {
      g.fail_at("scheduler", e.what());
    }
  }
  s.image_size = g.get_or<int64_t>("image_size", 0);
  if (s.image_size < 0) g.fail_at("image_size", "must be 0 (the checkpoint's) or positive");
  s.scales = g.get<std::vector<double>>("scales");
  if (s.scales.empty()) g.fail_at("scales", "lists no guidance scale");
  for (size_t i = 0; i < s.scales.size(); ++i) {
    if (!(s.scales[i] > 0)) g.fail_at("scales", fmt::format("scale {} must be positive", s.scales[i]));
    for (size_t j = 0; j < i; ++j)
      if (s.scales[j] == s.scales[i]) g.fail_at("scales", fmt::format("scale {} is listed twice", s.scales[i]));
  }
  s.save_images = g.get_or<bool>("save_images", true);
  s.synthetic = g.get_or<bool>("synthetic", false);
  const ConfigReader m = g.child("metrics");
  s.inception = path_key(m, "inception", ex.source);
  s.reference_stats = path_key(m, "reference_stats", ex.source);
  s.clip = path_key(m, "clip", ex.source);

  const auto names = gb::gen::guidance_names();
  std::set<std::string> seen;
  const auto entries = g.children("guidance");
  if (entries.empty()) g.fail_at("guidance", "lists no guidance (cfg, scfg)");
  for (const auto& e : entries) {
    const std::string name = e.get<std::string>("name");
    if (name.empty() || !seen.insert(name).second) e.fail_at("name", "'" + name + "' is empty or listed twice");
    const std::string type = e.get<std::string>("type");
    if (std::find(names.begin(), names.end(), type) == names.end())
      e.fail_at("type", "'" + type + "' is not a guidance (" + gb::join(names) + ")");
    const std::string method = e.get_or<std::string>("method", "");
    if (!method.empty() && type != "scfg") e.fail_at("method", "only S-CFG (type scfg) takes a mask method");
    std::set<std::string> only;
    for (const auto& b : e.get_or<std::vector<std::string>>("backbones", {})) only.insert(b);
    for (const auto& b : ex.backbones) {
      if (!only.empty() && !only.count(b.name)) continue;
      GuidanceEntry ge;
      ge.name = name;
      ge.type = type;
      if (!method.empty()) {
        ge.method_file = resolve_path(replace_all(method, "{backbone}", b.name), ex.source);
        if (!fs::is_regular_file(ge.method_file))
          e.fail_at("method", "'" + ge.method_file + "' not found (for backbone '" + b.name + "')");
        ge.method_yaml = YAML::Clone(gb::Config::load(ge.method_file).root());
      }
      s.guidance[b.name].push_back(ge);
    }
  }
  return s;
}

}  // namespace

nlohmann::json yaml_to_json(const YAML::Node& n) {
  if (!n || n.IsNull()) return nullptr;
  if (n.IsScalar()) return n.Scalar();
  if (n.IsSequence()) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& x : n) a.push_back(yaml_to_json(x));
    return a;
  }
  nlohmann::json o = nlohmann::json::object();  // std::map: sorted keys
  for (const auto& kv : n) o[kv.first.Scalar()] = yaml_to_json(kv.second);
  return o;
}

std::vector<std::map<std::string, std::string>> grid_product(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& axes) {
  std::vector<std::map<std::string, std::string>> out(1);
  for (const auto& [key, values] : axes) {
    std::vector<std::map<std::string, std::string>> next;
    for (const auto& partial : out)
      for (const auto& v : values) {
        auto m = partial;
        m[key] = v;
        next.push_back(std::move(m));
      }
    out = std::move(next);
  }
  return out;
}

std::string Experiment::run_dir() const { return (fs::path(output_root) / name).string(); }

BackboneEntry read_backbone_entry(const ConfigReader& b) {
  BackboneEntry e;
  e.name = b.get<std::string>("name");
  e.kind = b.get_or<std::string>("kind", e.name);
  const gb::bb::BackboneKind* kind = nullptr;
  try {
    kind = &gb::bb::backbone_kind(e.kind);
  } catch (const UserError& x) {
    b.fail_at(b.has("kind") ? "kind" : "name", x.what());
  }
  e.weights = b.get_or<std::string>("weights", "");
  e.dtype = b.get_or<std::string>("dtype", "");
  if (!e.dtype.empty()) e.options.dtype = b.get_enum("dtype", gb::bb::dtype_names());
  // No `options:` (or an empty one) is the empty mapping: the kind's defaults, the same config hash as `options: {}`.
  e.options_yaml = YAML::Node(YAML::NodeType::Map);
  if (auto o = b.optional_child("options")) {
    e.options_yaml = YAML::Clone(b.node("options"));
    gb::bb::read_backbone_options(*kind, *o, e.options);
  }
  return e;
}

Experiment load_experiment(const std::string& path, const std::vector<std::string>& overrides) {
  if (!fs::exists(path)) fail_file(path, "experiment config not found");
  return parse_experiment(gb::Config::load(path, overrides));
}

namespace {

// name, output_root, seed, batch_size, workers, device, examples, evaluation.select.
void read_run_settings(const ConfigReader& r, Experiment& ex) {
  ex.name = r.get<std::string>("name");
  if (ex.name.empty() || ex.name.find('/') != std::string::npos) r.fail_at("name", "must be a non-empty folder name");
  ex.output_root = r.get_or<std::string>("output_root", "runs");
  ex.seed = static_cast<uint64_t>(r.get_or<int64_t>("seed", 0));
  ex.batch_size = r.get_or<int64_t>("batch_size", 1);
  if (ex.batch_size < 1) r.fail_at("batch_size", "must be at least 1");
  ex.batch_invariant = r.get_or<bool>("batch_invariant", true);
  ex.workers = r.get_or<int64_t>("workers", 2);
  if (ex.workers < 1) r.fail_at("workers", "must be at least 1");
  ex.device = r.get_or<std::string>("device", "auto");
  if (ex.device != "auto" && ex.device != "cpu" && ex.device.rfind("cuda", 0) != 0)
    r.fail_at("device", "must be auto, cpu or cuda[:N]");
  ex.examples = r.get_or<int64_t>("examples", 3);
  if (auto ev = r.optional_child("evaluation")) {
    ex.select = ev->get_or<std::string>("select", "best");
    ev->finish();
  }
}

// `backbones:` (at least one; names unique among `names`, which holds "b:<name>" entries).
void read_backbones(const ConfigReader& r, std::set<std::string>& names, Experiment& ex) {
  for (const auto& b : r.children("backbones")) {
    BackboneEntry e = read_backbone_entry(b);
    if (!names.insert("b:" + e.name).second) b.fail_at("name", "backbone '" + e.name + "' is listed twice");
    b.finish();
    ex.backbones.push_back(e);
  }
  if (ex.backbones.empty()) r.fail_at("backbones", "lists no backbone");
}

// `datasets:` (at least one, names unique).
void read_datasets(const ConfigReader& r, std::set<std::string>& names, Experiment& ex) {
  for (const auto& d : r.children("datasets")) {
    DatasetEntry e;
    e.name = d.get<std::string>("name");
    if (!names.insert("d:" + e.name).second) d.fail_at("name", "dataset '" + e.name + "' is listed twice");
    e.config_path = resolve_path(d.get_or<std::string>("config", ""), ex.source);
    e.overrides = overrides_of(d, "set");
    e.synthetic_images = d.get_or<int64_t>("synthetic_images", 0);
    d.finish();
    ex.datasets.push_back(e);
  }
  if (ex.datasets.empty()) r.fail_at("datasets", "lists no dataset");
}

// One `methods:` entry as written.
struct MethodEntry {
  std::string name, type, file;
  std::vector<std::string> set;
  std::set<std::string> only;  // `backbones:` it is limited to (empty: all)
};

std::vector<MethodEntry> read_methods(const ConfigReader& r, std::set<std::string>& names) {
  std::vector<MethodEntry> methods;
  for (const auto& m : r.children("methods")) {
    MethodEntry e;
    e.name = m.get<std::string>("name");
    if (!names.insert("m:" + e.name).second) m.fail_at("name", "method '" + e.name + "' is listed twice");
    e.type = m.get_or<std::string>("type", "");
    e.file = m.get<std::string>("method");
    e.set = overrides_of(m, "set");
    for (const auto& bname : m.get_or<std::vector<std::string>>("backbones", {})) e.only.insert(bname);
    m.finish();
    methods.push_back(e);
  }
  if (methods.empty()) r.fail_at("methods", "lists no method");
  return methods;
}

// Resolves a variant's method file ({backbone} replaced) and loads it with the entry's `set` and the axis values.
void load_method(const gb::Config& config, const Experiment& ex, const MethodEntry& m, const BackboneEntry& b,
                 const std::map<std::string, std::string>& axes, Variant& v) {
  const std::string file = resolve_path(replace_all(m.file, "{backbone}", b.name), ex.source);
  if (!fs::exists(file))
    fail_file(config.where("methods"), "method '{}': file '{}' not found (for backbone '{}')", m.name, file, b.name);
  std::vector<std::string> sets = m.set;
  for (const auto& [k, val] : axes) sets.push_back(k + "=" + val);
  const gb::Config mc = gb::Config::load(file, sets);
  v.method_yaml = YAML::Clone(mc.root());
  v.method_file = file;
  v.method_overrides = sets;
}

// The main-table variants: each method on each backbone it is not limited away from.
void expand_methods(const gb::Config& config, const std::vector<MethodEntry>& methods, Experiment& ex) {
  for (const auto& b : ex.backbones) {
    auto& list = ex.variants[b.name];
    for (const auto& m : methods) {
      if (!m.only.empty() && !m.only.count(b.name)) continue;
      Variant v;
      v.name = m.name;
      v.method = m.name;
      v.type = m.type;
      load_method(config, ex, m, b, {}, v);
      list.push_back(v);
    }
  }
}

// An ablation's `grid:` as (key, values) axes in file order (a scalar is a one-value axis).
std::vector<std::pair<std::string, std::vector<std::string>>> read_grid(const ConfigReader& a) {
  const YAML::Node& grid = a.node("grid");
  if (!grid.IsMap() || grid.size() == 0) a.fail_at("grid", "must map method keys to lists of values");
  std::vector<std::pair<std::string, std::vector<std::string>>> axes;
  for (const auto& kv : grid) {
    std::vector<std::string> values;
    if (kv.second.IsSequence()) {
      for (const auto& x : kv.second) values.push_back(scalar_text(x));
    } else {
      values.push_back(scalar_text(kv.second));
    }
    if (values.empty()) a.fail_at("grid", "axis '" + kv.first.Scalar() + "' has no values");
    axes.emplace_back(kv.first.Scalar(), values);
  }
  return axes;
}

// One `ablations:` entry: its base method once per grid point on each backbone both allow.
void expand_ablation(const gb::Config& config, const ConfigReader& a, const std::vector<MethodEntry>& methods,
                     Experiment& ex) {
  const std::string group = a.get<std::string>("name");
  const std::string base = a.get<std::string>("base");
  const MethodEntry* bm = nullptr;
  for (const auto& m : methods)
    if (m.name == base) bm = &m;
  if (!bm) a.fail_at("base", "'" + base + "' is not one of the methods");
  std::set<std::string> only;
  for (const auto& bname : a.get_or<std::vector<std::string>>("backbones", {})) only.insert(bname);
  const auto axes = read_grid(a);
  a.finish();
  for (const auto& b : ex.backbones) {
    if (!only.empty() && !only.count(b.name)) continue;
    if (!bm->only.empty() && !bm->only.count(b.name)) continue;
    for (const auto& point : grid_product(axes)) {
      Variant v;
      std::string suffix;
      for (const auto& [k, val] : axes) suffix += (suffix.empty() ? "" : ",") + k + "=" + point.at(k);
      v.name = base + "/" + suffix;
      v.method = base;
      v.type = "ablation";
      v.group = group;
      v.axes = point;
      load_method(config, ex, *bm, b, point, v);
      for (const auto& existing : ex.variants[b.name])
        if (existing.name == v.name) fail_file(config.where("ablations"), "variant '{}' appears twice", v.name);
      ex.variants[b.name].push_back(v);
    }
  }
}

}  // namespace

Experiment parse_experiment(const gb::Config& config) {
  Experiment ex;
  ex.source = config.source();
  ex.resolved_yaml = config.to_yaml();
  ConfigReader r(config);
  read_run_settings(r, ex);
  std::set<std::string> names;
  if (r.has("generation")) {
    for (const char* key : {"datasets", "methods", "ablations", "evaluation"})
      if (r.has(key))
        r.fail_at(key, "a generation experiment (`generation:`) has no datasets, methods, ablations or evaluation");
    read_backbones(r, names, ex);
    ex.generation = parse_generation(r.child("generation"), ex);
    r.finish();
    return ex;
  }
  read_datasets(r, names, ex);
  read_backbones(r, names, ex);
  const std::vector<MethodEntry> methods = read_methods(r, names);
  expand_methods(config, methods, ex);
  if (r.has("ablations"))
    for (const auto& a : r.children("ablations")) expand_ablation(config, a, methods, ex);
  r.finish();
  return ex;
}

}  // namespace gb::runner
