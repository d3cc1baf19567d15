#pragma once
// Metrics as JSON, one writer for every output that prints them (results.json, `eval-masks --format json`, the
// evaluator's sweep summary). Non-finite numbers (the standard protocol's NaN for an absent class) are null.
#include "harness/eval/confusion.h"

#include <nlohmann/json.hpp>

namespace gb::eval {

nlohmann::json json_number(double x);  // null when not finite
// {"miou", "aacc", "macc", "fwiou"}
nlohmann::json metrics_means_json(const Metrics& m);
// The means plus per class: "per_class" (IoU), "intersection", "union".
nlohmann::json metrics_json(const Metrics& m);

}  // namespace gb::eval
