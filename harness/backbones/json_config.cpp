#include "harness/backbones/json_config.h"

#include "harness/core/errors.h"

#include <fstream>

namespace gb::bb {

void throw_json_field_error(const std::string& file, const std::string& key, const std::string& what) {
  fail_file(file, "field '{}' has the wrong type ({})", key, what);
}

std::vector<int64_t> json_int_or_list(const nlohmann::json& j, const char* key, size_t n, int64_t fallback,
                                      const std::string& file) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::vector<int64_t>(n, fallback);
  if (it->is_number_integer()) return std::vector<int64_t>(n, it->get<int64_t>());
  if (!it->is_array()) fail_file(file, "field '{}' must be an integer or a list of integers", key);
  std::vector<int64_t> v;
  for (const auto& x : *it) {
    if (!x.is_number_integer()) fail_file(file, "field '{}' must be an integer or a list of integers", key);
    v.push_back(x.get<int64_t>());
  }
  if (v.size() != n) fail_file(file, "field '{}' has {} entries, expected {}", key, v.size(), n);
  return v;
}

}  // namespace gb::bb
