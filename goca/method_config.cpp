#include "goca/method_config.h"

#include "harness/core/errors.h"
#include "harness/core/strings.h"

#include <algorithm>
#include <utility>

namespace gb::goca {
namespace {

template <typename E>
struct Entry {
  Entry(E v, const char* c, const char* p, std::vector<const char*> x = std::vector<const char*>())
      : value(v), canonical(c), paper(p), extra(std::move(x)) {}
  E value;
  const char* canonical;
  const char* paper;               // the paper's spelling
  std::vector<const char*> extra;  // further aliases
};

const std::vector<Entry<HeadMethod>>& head_table() {
  static const std::vector<Entry<HeadMethod>> t = {
      {HeadMethod::Average, "average", "average", {"mean", "vanilla"}},
      {HeadMethod::L2Norm, "l2_norm", "l2-norm"},
      {HeadMethod::Cosine, "cosine", "cosine"},
      {HeadMethod::DotProduct, "dot_product", "dot-product"},
      {HeadMethod::DotProductNoClamp, "dot_product_no_clamp", "dot-product w/o clamp", {"goca"}},
      {HeadMethod::CosineVW, "cosine_vw", "cosine + VW"},
      {HeadMethod::DotProductVW, "dot_product_vw", "dot-product + VW"},
  };
  return t;
}

const std::vector<Entry<LayerMethod>>& layer_table() {
  static const std::vector<Entry<LayerMethod>> t = {
      {LayerMethod::Vanilla, "vanilla", "vanilla", {"average", "uniform"}},
      {LayerMethod::DotProductSimilarity, "dot_product_similarity", "dot-product similarity", {"goca"}},
      {LayerMethod::Mse, "mse", "mse"},
      {LayerMethod::IouLike, "iou_like", "iou-like"},
  };
  return t;
}

const std::vector<Entry<RescaleMethod>>& rescale_table() {
  static const std::vector<Entry<RescaleMethod>> t = {
      {RescaleMethod::Raw, "raw", "raw"},
      {RescaleMethod::PerTokenRenorm, "per_token_renorm", "per-token renorm"},
      {RescaleMethod::PerTokenRenormPlus, "per_token_renorm_plus", "per-token renorm+"},
      {RescaleMethod::Sum1, "sum1", "sum-1 rescaling", {"sum1_rescaling"}},
      {RescaleMethod::Sum1Renorm, "sum1_renorm", "sum-1 rescaling + per-token renorm"},
      {RescaleMethod::Sum1RenormPlus,
       "sum1_renorm_plus",
       "sum-1 rescaling + per-token renorm+",
       {"sum-1 + renorm+", "goca"}},
      {RescaleMethod::Sum1RenormXRaw, "sum1_renorm_x_raw", "sum-1 rescaling + per-token renorm x raw"},
      {RescaleMethod::Sum1RenormPlusXRaw, "sum1_renorm_plus_x_raw", "sum-1 rescaling + per-token renorm+ x raw"},
      {RescaleMethod::Sum1RenormPlusXRawRenorm, "sum1_renorm_plus_x_raw_renorm",
       "sum-1 rescaling + per-token renorm+ x raw + renorm"},
  };
  return t;
}

const std::vector<Entry<RefMode>>& ref_table() {
  static const std::vector<Entry<RefMode>> t = {
      {RefMode::Paper, "paper", "paper", {"channel0"}},
      {RefMode::Full, "full", "full"},
  };
  return t;
}

const std::vector<Entry<MultiToken>>& multi_table() {
  static const std::vector<Entry<MultiToken>> t = {
      {MultiToken::Mean, "mean", "mean"},
      {MultiToken::Sum, "sum", "sum"},
  };
  return t;
}

template <typename E>
std::vector<std::string> spellings(const std::vector<Entry<E>>& table) {
  std::vector<std::string> out;
  for (const auto& e : table) out.emplace_back(e.canonical);
  for (const auto& e : table) {
    if (std::string(e.paper) != e.canonical) out.emplace_back(e.paper);
    for (const char* x : e.extra) out.emplace_back(x);
  }
  return out;
}

template <typename E>
E parse(const std::vector<Entry<E>>& table, const std::string& s, const char* what) {
  const std::string n = gb::to_lower(gb::trim(s));
  for (const auto& e : table) {
    if (n == e.canonical || n == gb::to_lower(gb::trim(e.paper))) return e.value;
    for (const char* x : e.extra)
      if (n == x) return e.value;
  }
  std::string list;
  for (const auto& sp : spellings(table)) list += (list.empty() ? "'" : ", '") + sp + "'";
  fail("unknown {} '{}' (accepted: {})", what, s, list);
}

template <typename E>
const Entry<E>& find(const std::vector<Entry<E>>& table, E v) {
  for (const auto& e : table)
    if (e.value == v) return e;
  return table.front();  // unreachable for valid enum values
}

template <typename E>
std::vector<E> values(const std::vector<Entry<E>>& table) {
  std::vector<E> out;
  for (const auto& e : table) out.push_back(e.value);
  return out;
}

}  // namespace

HeadMethod parse_head_method(const std::string& s) { return parse(head_table(), s, "head_method"); }
LayerMethod parse_layer_method(const std::string& s) { return parse(layer_table(), s, "layer_method"); }
RescaleMethod parse_rescale_method(const std::string& s) { return parse(rescale_table(), s, "rescale_method"); }
RefMode parse_ref_mode(const std::string& s) { return parse(ref_table(), s, "ref_mode"); }
MultiToken parse_multi_token(const std::string& s) { return parse(multi_table(), s, "multi_token"); }

const char* to_string(HeadMethod m) { return find(head_table(), m).canonical; }
const char* to_string(LayerMethod m) { return find(layer_table(), m).canonical; }
const char* to_string(RescaleMethod m) { return find(rescale_table(), m).canonical; }
const char* to_string(RefMode m) { return find(ref_table(), m).canonical; }
const char* to_string(MultiToken m) { return find(multi_table(), m).canonical; }

const char* paper_name(HeadMethod m) { return find(head_table(), m).paper; }
const char* paper_name(LayerMethod m) { return find(layer_table(), m).paper; }
const char* paper_name(RescaleMethod m) { return find(rescale_table(), m).paper; }

std::vector<std::string> head_method_spellings() { return spellings(head_table()); }
std::vector<std::string> layer_method_spellings() { return spellings(layer_table()); }
std::vector<std::string> rescale_method_spellings() { return spellings(rescale_table()); }
std::vector<std::string> ref_mode_spellings() { return spellings(ref_table()); }
std::vector<std::string> multi_token_spellings() { return spellings(multi_table()); }

std::vector<HeadMethod> all_head_methods() { return values(head_table()); }
std::vector<LayerMethod> all_layer_methods() { return values(layer_table()); }
std::vector<RescaleMethod> all_rescale_methods() { return values(rescale_table()); }

void MethodConfig::validate(const std::string& source) const {
  if (layers.empty()) fail_file(source, "'layers' is empty (need at least one '...-cross-map' key)");
  for (const auto& l : layers)
    if (!ends_with(l, "-cross-map"))
      fail_file(source, "layer '{}' is not a cross-map key (must end in '-cross-map')", l);
  for (size_t i = 0; i < layers.size(); ++i)
    for (size_t j = i + 1; j < layers.size(); ++j)
      if (layers[i] == layers[j]) fail_file(source, "layer '{}' is listed twice", layers[i]);
  for (const auto& l : self_layers)
    if (!ends_with(l, "-self-map"))
      fail_file(source, "self layer '{}' is not a self-map key (must end in '-self-map')", l);
  if (layer_method != LayerMethod::Vanilla && ref_layer.empty())
    fail_file(source, "layer_method '{}' needs 'ref_layer'", to_string(layer_method));
  if (output_size < 3)
    fail_file(source, "output_size must be >= 3 (the 5x5 reflect-padded blur needs it), got {}", output_size);
  if (propagation_order < 0) fail_file(source, "propagation_order must be >= 0, got {}", propagation_order);
}

}  // namespace gb::goca
