// Method files (see method_yaml.h).
#include "baselines/method_yaml.h"

#include "harness/core/errors.h"

#include <fmt/format.h>

#include <sstream>

namespace gb::baselines {
namespace {

// Reads an enum through goca's parse_* (which accepts canonical names and the paper's spellings) and
// re-throws its message at the key's file:line.
template <typename Parse>
auto read_enum(const ConfigReader& r, const std::string& key, Parse parse) -> decltype(parse(std::string())) {
  const std::string s = r.get<std::string>(key);
  try {
    return parse(s);
  } catch (const UserError& e) {
    r.fail_at(key, e.what());
  }
}

template <typename Parse>
auto read_enum_or(const ConfigReader& r, const std::string& key, Parse parse, decltype(parse(std::string())) fallback)
    -> decltype(parse(std::string())) {
  const std::optional<std::string> s = r.get_optional<std::string>(key);
  if (!s) return fallback;
  try {
    return parse(*s);
  } catch (const UserError& e) {
    r.fail_at(key, e.what());
  }
}

template <typename Parse>
auto read_enum_list(const ConfigReader& r, const std::string& key, Parse parse)
    -> std::vector<decltype(parse(std::string()))> {
  std::vector<decltype(parse(std::string()))> out;
  const std::vector<std::string> names = r.get<std::vector<std::string>>(key);
  for (size_t i = 0; i < names.size(); ++i) {
    try {
      out.push_back(parse(names[i]));
    } catch (const UserError& e) {
      r.fail_at(key + "." + std::to_string(i), e.what());
    }
  }
  return out;
}

// Plain YAML scalar when safe, else single-quoted.
std::string scalar(const std::string& s) {
  bool plain = !s.empty();
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) plain = false;
  if (plain && (s == "true" || s == "false" || s == "null" || s == "yes" || s == "no" || s == "on" || s == "off"))
    plain = false;
  if (plain) return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("''") : std::string(1, c);
  return q + "'";
}

void write_list(std::ostringstream& o, const char* key, const std::vector<std::string>& items) {
  if (items.empty()) {
    o << key << ": []\n";
    return;
  }
  o << key << ":\n";
  for (const auto& it : items) o << "  - " << scalar(it) << "\n";
}

}  // namespace

MethodPlan read_method_plan(const ConfigReader& r, const std::string& source) {
  MethodPlan plan;
  goca::MethodConfig& m = plan.method;
  m.head_method = read_enum(r, "head_method", goca::parse_head_method);
  m.layer_method = read_enum(r, "layer_method", goca::parse_layer_method);
  m.rescale_method = read_enum(r, "rescale_method", goca::parse_rescale_method);
  m.layers = r.get<std::vector<std::string>>("layers");
  m.ref_layer = r.get_or<std::string>("ref_layer", "");
  m.ref_mode = read_enum_or(r, "ref_mode", goca::parse_ref_mode, goca::RefMode::Paper);
  m.multi_token = read_enum_or(r, "multi_token", goca::parse_multi_token, goca::MultiToken::Mean);
  m.output_size = r.get<int64_t>("output_size");
  m.self_layers = r.get_or<std::vector<std::string>>("self_layers", {});
  m.propagation_order = r.get_or<int64_t>("propagation_order", 2);
  m.keep_all_objects = r.get_or<bool>("keep_all_objects", false);
  plan.post =
      read_enum_or(r, "post", parse_post_process, m.self_layers.empty() ? PostProcess::None : PostProcess::Affinity);
  if (auto c = r.optional_child("capture")) {
    plan.capture.image_size = c->get<int64_t>("image_size");
    plan.capture.timestep = c->get<int64_t>("timestep");
    if (plan.capture.image_size < 8) c->fail_at("image_size", "must be at least 8");
    if (plan.capture.timestep < 0 || plan.capture.timestep > 1000) c->fail_at("timestep", "must be in [0, 1000]");
    c->finish();
  }
  r.finish();

  // Checks with a key to point at first, then MethodConfig's own validation.
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  if (m.layers.empty()) r.fail_at("layers", "needs at least one cross-map key");
  for (size_t i = 0; i < m.layers.size(); ++i) {
    if (!ends_with(m.layers[i], "-cross-map"))
      r.fail_at("layers." + std::to_string(i),
                "'" + m.layers[i] + "' is not a cross-map key (must end in '-cross-map')");
    for (size_t j = 0; j < i; ++j)
      if (m.layers[i] == m.layers[j]) r.fail_at("layers." + std::to_string(i), "duplicate layer '" + m.layers[i] + "'");
  }
  for (size_t i = 0; i < m.self_layers.size(); ++i)
    if (!ends_with(m.self_layers[i], "-self-map"))
      r.fail_at("self_layers." + std::to_string(i),
                "'" + m.self_layers[i] + "' is not a self-map key (must end in '-self-map')");
  if (m.layer_method != goca::LayerMethod::Vanilla && m.ref_layer.empty())
    r.fail_at("layer_method", std::string("'") + goca::to_string(m.layer_method) +
                                  "' compares every layer with the reference pseudo-attention: set ref_layer");
  if (plan.post == PostProcess::None && !m.self_layers.empty())
    r.fail_at("post", "is 'none' but self_layers lists propagation maps (drop them, or use post: affinity)");
  if (plan.post != PostProcess::None && m.self_layers.empty())
    r.fail_at(r.has("post") ? "post" : "self_layers",
              std::string("post '") + to_string(plan.post) + "' propagates with self_layers, but none are listed");
  if (plan.post == PostProcess::Dcrf && m.keep_all_objects)
    r.fail_at("post", "dcrf (FTTM) expects the merged object + support maps; it cannot run with keep_all_objects");
  if (m.output_size < 3) r.fail_at("output_size", "must be at least 3");
  if (m.propagation_order < 0) r.fail_at("propagation_order", "must be >= 0");
  m.validate(source);
  return plan;
}

MethodPlan load_method_plan(const std::string& path, const std::vector<std::string>& overrides) {
  const Config cfg = Config::load(path, overrides);
  return read_method_plan(ConfigReader(cfg), path);
}

MethodPlan parse_method_plan(const std::string& yaml, const std::string& source) {
  const Config cfg = Config::from_string(yaml, source);
  return read_method_plan(ConfigReader(cfg), source);
}

std::string method_plan_to_yaml(const MethodPlan& plan, const std::string& title) {
  const goca::MethodConfig& m = plan.method;
  std::ostringstream o;
  if (!title.empty()) {
    std::istringstream lines(title);
    for (std::string line; std::getline(lines, line);) o << "# " << line << "\n";
  }
  auto with_paper = [](const char* canonical, const char* paper) {
    return std::string(canonical) == paper ? std::string() : std::string("  # paper: '") + paper + "'";
  };
  o << "head_method: " << goca::to_string(m.head_method)
    << with_paper(goca::to_string(m.head_method), goca::paper_name(m.head_method)) << "\n";
  o << "layer_method: " << goca::to_string(m.layer_method)
    << with_paper(goca::to_string(m.layer_method), goca::paper_name(m.layer_method)) << "\n";
  o << "rescale_method: " << goca::to_string(m.rescale_method)
    << with_paper(goca::to_string(m.rescale_method), goca::paper_name(m.rescale_method)) << "\n";
  o << "ref_layer: " << (m.ref_layer.empty() ? std::string("''") : scalar(m.ref_layer)) << "\n";
  o << "ref_mode: " << goca::to_string(m.ref_mode) << "\n";
  o << "multi_token: " << goca::to_string(m.multi_token) << "\n";
  o << "output_size: " << m.output_size << "\n";
  o << "keep_all_objects: " << (m.keep_all_objects ? "true" : "false") << "\n";
  o << "propagation_order: " << m.propagation_order << "\n";
  o << "post: " << to_string(plan.post) << "\n";
  o << "capture:\n  image_size: " << plan.capture.image_size << "\n  timestep: " << plan.capture.timestep << "\n";
  write_list(o, "self_layers", m.self_layers);
  write_list(o, "layers", m.layers);
  return o.str();
}

AblationAxes load_ablation_axes(const std::string& path) {
  const Config cfg = Config::load(path);
  const ConfigReader r(cfg);
  AblationAxes a;
  a.head_method = read_enum_list(r, "head_method", goca::parse_head_method);
  a.layer_method = read_enum_list(r, "layer_method", goca::parse_layer_method);
  a.rescale_method = read_enum_list(r, "rescale_method", goca::parse_rescale_method);
  a.ref_mode = read_enum_list(r, "ref_mode", goca::parse_ref_mode);
  a.multi_token = read_enum_list(r, "multi_token", goca::parse_multi_token);
  a.propagation_order = r.get<std::vector<int64_t>>("propagation_order");
  a.post = read_enum_list(r, "post", parse_post_process);
  a.keep_all_objects = r.get<std::vector<bool>>("keep_all_objects");
  for (const char* key : {"layer_sets", "self_layer_sets"}) {
    auto& dst = std::string(key) == "layer_sets" ? a.layer_sets : a.self_layer_sets;
    const ConfigReader sets = r.child(key);
    for (const auto& backbone : sets.keys()) {
      const ConfigReader b = sets.child(backbone);
      for (const auto& name : b.keys()) dst[backbone][name] = b.get<std::vector<std::string>>(name);
      b.finish();
    }
    sets.finish();
  }
  for (int64_t n : a.propagation_order)
    if (n < 0) r.fail_at("propagation_order", "orders must be >= 0");
  r.finish();
  return a;
}

}  // namespace gb::baselines
