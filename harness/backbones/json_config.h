#pragma once
// Small helpers to read diffusers/transformers config.json files into Config structs: missing optional
// fields keep their defaults, a wrong type is a UserError naming the file and the field.
#include "harness/io/json_io.h"  // gb::read_json_file

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace gb::bb {

using gb::read_json_file;  // harness/io/json_io.h: depth limit, short messages

[[noreturn]] void throw_json_field_error(const std::string& file, const std::string& key, const std::string& what);

// Reads j[key] into `out` when present and not null.
template <typename T>
void json_get(const nlohmann::json& j, const char* key, T& out, const std::string& file) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  try {
    out = it->get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw_json_field_error(file, key, e.what());
  }
}

// An int or a list of ints (diffusers' "int or tuple" fields), broadcast to `n` entries.
std::vector<int64_t> json_int_or_list(const nlohmann::json& j, const char* key, size_t n, int64_t fallback,
                                      const std::string& file);

// The flow-matching keys of a scheduler_config.json (FlowMatchEulerDiscreteScheduler: shift and dynamic shifting)
// into any config with those members (FlowMatchSchedulerConfig, SchedulerConfig).
template <class C>
void json_get_flow_shift(const nlohmann::json& j, C& c, const std::string& path) {
  const auto get = [&](const char* key, auto& field) { json_get(j, key, field, path); };
  get("shift", c.shift);
  get("use_dynamic_shifting", c.use_dynamic_shifting);
  get("base_shift", c.base_shift);
  get("max_shift", c.max_shift);
  get("base_image_seq_len", c.base_image_seq_len);
  get("max_image_seq_len", c.max_image_seq_len);
}

}  // namespace gb::bb
