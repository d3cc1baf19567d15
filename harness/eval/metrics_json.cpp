#include "harness/eval/metrics_json.h"

#include <cmath>

namespace gb::eval {

nlohmann::json json_number(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }

nlohmann::json metrics_means_json(const Metrics& m) {
  nlohmann::json j;
  j["miou"] = json_number(m.miou);
  j["aacc"] = json_number(m.aacc);
  j["macc"] = json_number(m.macc);
  j["fwiou"] = json_number(m.fwiou);
  return j;
}

nlohmann::json metrics_json(const Metrics& m) {
  nlohmann::json j = metrics_means_json(m);
  nlohmann::json pc = nlohmann::json::array();
  for (double v : m.iou) pc.push_back(json_number(v));
  j["per_class"] = pc;
  j["intersection"] = m.intersection;
  j["union"] = m.union_;
  return j;
}

}  // namespace gb::eval
