// Capture-dump validation (see capture_check.h).
#include "baselines/capture_check.h"

#include "harness/core/capture.h"
#include "harness/core/errors.h"
#include "harness/core/shape.h"

#include <cmath>

namespace gb::baselines {
namespace {

struct Checker {
  const CaptureMeta& capture;
  const std::string& source;

  [[noreturn]] void bad(const std::string& key, const std::string& what) const {
    throw UserError(source + ": " + key + ": " + what);
  }

  const TensorMeta& need(const std::string& key, const std::string& why) const {
    auto it = capture.find(key);
    if (it == capture.end()) {
      // Name the nearest keys of the same block to help spot naming mismatches.
      std::string near;
      const std::string block = key.substr(0, key.rfind('-'));
      int shown = 0;
      for (const auto& [k, m] : capture)
        if (k.rfind(block.substr(0, block.rfind('-')), 0) == 0 && shown < 4) {
          near += (near.empty() ? "" : ", ") + k;
          ++shown;
        }
      bad(key, "missing (needed for " + why + "); the dump holds " + std::to_string(capture.size()) + " tensors" +
                   (near.empty() ? "" : ", e.g. " + near));
    }
    const TensorMeta& m = it->second;
    if (m.dtype != "F16" && m.dtype != "BF16" && m.dtype != "F32")
      bad(key, "dtype " + m.dtype + ", expected F16, BF16 or F32");
    return m;
  }

  const TensorMeta& need_rank(const std::string& key, size_t rank, const char* layout, const std::string& why) const {
    const TensorMeta& m = need(key, why);
    if (m.shape.size() != rank)
      bad(key, "shape " + gb::shape_str(m.shape) + " has rank " + std::to_string(m.shape.size()) + ", expected " +
                   layout + " (batch dimension removed)");
    for (int64_t d : m.shape)
      if (d <= 0) bad(key, "shape " + gb::shape_str(m.shape) + " has an empty dimension");
    return m;
  }

  void self_map(const std::string& key, int64_t expected_pixels, const std::string& why,
                const std::string& against) const {
    const TensorMeta& s = need_rank(key, 3, "[H, P, P]", why);
    if (s.shape[1] != s.shape[2])
      bad(key, "shape " + gb::shape_str(s.shape) + " is not [H, P, P] (query and key pixels differ)");
    if (gb::square_side(s.shape[1]) < 0) bad(key, std::to_string(s.shape[1]) + " pixels is not a square grid");
    if (expected_pixels > 0 && s.shape[1] != expected_pixels)
      bad(key,
          "has " + std::to_string(s.shape[1]) + " pixels, but " + against + " has " + std::to_string(expected_pixels));
  }
};

}  // namespace

std::vector<std::string> keys_to_load(const goca::MethodConfig& m, const CaptureMeta& present) {
  std::vector<std::string> keys;
  auto add = [&](const std::string& k) {
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  };
  for (const auto& l : m.layers) {
    add(l);
    if (m.head_method != goca::HeadMethod::Average &&
        present.count(gb::sibling_key(l, gb::CaptureTensor::special_value))) {
      add(gb::sibling_key(l, gb::CaptureTensor::special_value));
      add(gb::sibling_key(l, gb::CaptureTensor::special_post_value));
      add(gb::sibling_key(l, gb::CaptureTensor::special_weight));
    }
    if (m.layer_method != goca::LayerMethod::Vanilla) add(gb::self_key_for_cross(l));
  }
  if (m.layer_method != goca::LayerMethod::Vanilla) add(m.ref_layer);
  for (const auto& l : m.self_layers) add(l);
  return keys;
}

int64_t check_capture(const CaptureMeta& capture, const goca::MethodConfig& m, const gb::TokenGroups& groups,
                      const std::string& capture_source, const std::string& tokens_source) {
  const Checker c{capture, capture_source};
  int64_t T = -1;
  std::string t_key;
  for (const auto& key : m.layers) {
    const TensorMeta& a = c.need_rank(key, 3, "[H, P, T]", "a cross layer of the method");
    const int64_t H = a.shape[0], P = a.shape[1];
    if (gb::square_side(P) < 0)
      c.bad(key, "shape " + gb::shape_str(a.shape) + ": " + std::to_string(P) + " pixels is not a square grid");
    if (T < 0) {
      T = a.shape[2];
      t_key = key;
    } else if (a.shape[2] != T) {
      c.bad(key, "has " + std::to_string(a.shape[2]) + " tokens (shape " + gb::shape_str(a.shape) + "), but " + t_key +
                     " has " + std::to_string(T));
    }
    const std::string vk = gb::sibling_key(key, gb::CaptureTensor::special_value);
    if (m.head_method != goca::HeadMethod::Average && capture.count(vk)) {
      const std::string why = std::string("head method '") + goca::to_string(m.head_method) + "'";
      const TensorMeta& v = c.need_rank(vk, 3, "[H, T, d]", why);
      if (v.shape[0] != H)
        c.bad(vk, "has " + std::to_string(v.shape[0]) + " heads (shape " + gb::shape_str(v.shape) + "), but " + key +
                      " has " + std::to_string(H) + " (shape " + gb::shape_str(a.shape) + ")");
      if (v.shape[1] != a.shape[2])
        c.bad(vk, "has " + std::to_string(v.shape[1]) + " tokens (shape " + gb::shape_str(v.shape) + "), but " + key +
                      " has " + std::to_string(a.shape[2]));
      const int64_t hd = H * v.shape[2];
      const std::string zk = gb::sibling_key(key, gb::CaptureTensor::special_post_value);
      const TensorMeta& z = c.need_rank(zk, 2, "[P, H*d]", why + " (present with " + vk + ")");
      if (z.shape[0] != P)
        c.bad(zk, "has " + std::to_string(z.shape[0]) + " pixels (shape " + gb::shape_str(z.shape) + "), but " + key +
                      " has " + std::to_string(P));
      if (z.shape[1] != hd)
        c.bad(zk, "has width " + std::to_string(z.shape[1]) + " (shape " + gb::shape_str(z.shape) +
                      "), expected H*d = " + std::to_string(H) + "*" + std::to_string(v.shape[2]) + " from " + key +
                      " and " + vk);
      const std::string wk = gb::sibling_key(key, gb::CaptureTensor::special_weight);
      const TensorMeta& w = c.need_rank(wk, 2, "[Dout, H*d]", why + " (present with " + vk + ")");
      if (w.shape[1] != hd)
        c.bad(wk, "has shape " + gb::shape_str(w.shape) + ", expected [Dout, " + std::to_string(hd) +
                      "] (H*d = " + std::to_string(H) + "*" + std::to_string(v.shape[2]) + ")");
    }
    if (m.layer_method != goca::LayerMethod::Vanilla)
      c.self_map(gb::self_key_for_cross(key), P, "the layer weight of " + key, key);
  }
  if (m.layer_method != goca::LayerMethod::Vanilla) {
    const TensorMeta& f = c.need_rank(m.ref_layer, 3, "[C, r, r]", "the reference pseudo self-attention (ref_layer)");
    if (f.shape[1] != f.shape[2]) c.bad(m.ref_layer, "shape " + gb::shape_str(f.shape) + " is not [C, r, r]");
  }
  for (const auto& key : m.self_layers) c.self_map(key, -1, "affinity propagation (self_layers)", "");

  // Token ids against T.
  auto check_ids = [&](const std::vector<int64_t>& ids, const std::string& where) {
    for (int64_t t : ids)
      if (t < 0 || t >= T)
        throw UserError(tokens_source + ": " + where + ": token id " + std::to_string(t) +
                        " is out of range; the capture has T = " + std::to_string(T) + " tokens (" + capture_source +
                        ": " + t_key + ")");
  };
  for (size_t i = 0; i < groups.objects.size(); ++i)
    check_ids(groups.objects[i].tokens,
              "objects[" + std::to_string(i) + "] (class " + std::to_string(groups.objects[i].class_id) + ")");
  for (size_t i = 0; i < groups.background_objects.size(); ++i)
    check_ids(groups.background_objects[i], "background_objects[" + std::to_string(i) + "]");
  check_ids(groups.rescaling_token_ids, "rescaling_token_ids");
  return T;
}

}  // namespace gb::baselines
