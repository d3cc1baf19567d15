#include "harness/backbones/dit_config.h"

#include "harness/core/errors.h"

#include <nlohmann/json.hpp>

#include <fstream>

namespace gb::bb {

struct JsonConfig::Impl {
  nlohmann::json j;
};

JsonConfig JsonConfig::open(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail_file(path, "cannot open config file");
  auto impl = std::make_shared<Impl>();
  try {
    in >> impl->j;
  } catch (const std::exception& e) {
    fail_file(path, "not valid JSON ({})", e.what());
  }
  if (!impl->j.is_object()) fail_file(path, "config must be a JSON object");
  JsonConfig c;
  c.impl_ = std::move(impl);
  c.path_ = path;
  return c;
}

bool JsonConfig::has(const std::string& f) const {
  auto it = impl_->j.find(f);
  return it != impl_->j.end() && !it->is_null();
}

int64_t JsonConfig::get_int(const std::string& f, int64_t fallback) const {
  if (!has(f)) return fallback;
  const auto& v = impl_->j.at(f);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>())))
    return static_cast<int64_t>(v.get<double>());
  fail_file(path_, "field '{}' must be an integer", f);
}

double JsonConfig::get_double(const std::string& f, double fallback) const {
  if (!has(f)) return fallback;
  const auto& v = impl_->j.at(f);
  if (!v.is_number()) fail_file(path_, "field '{}' must be a number", f);
  return v.get<double>();
}

bool JsonConfig::get_bool(const std::string& f, bool fallback) const {
  if (!has(f)) return fallback;
  const auto& v = impl_->j.at(f);
  if (!v.is_boolean()) fail_file(path_, "field '{}' must be true or false", f);
  return v.get<bool>();
}

std::string JsonConfig::get_string(const std::string& f, const std::string& fallback) const {
  if (!has(f)) return fallback;
  const auto& v = impl_->j.at(f);
  if (!v.is_string()) fail_file(path_, "field '{}' must be a string", f);
  return v.get<std::string>();
}

std::vector<int64_t> JsonConfig::get_ints(const std::string& f, const std::vector<int64_t>& fallback) const {
  if (!has(f)) return fallback;
  const auto& v = impl_->j.at(f);
  if (!v.is_array()) fail_file(path_, "field '{}' must be a list of integers", f);
  std::vector<int64_t> out;
  for (const auto& e : v) {
    if (!e.is_number_integer()) fail_file(path_, "field '{}' must be a list of integers", f);
    out.push_back(e.get<int64_t>());
  }
  return out;
}

int64_t JsonConfig::require_int(const std::string& f) const {
  if (!has(f)) fail_file(path_, "required field '{}' is missing", f);
  return get_int(f, 0);
}

}  // namespace gb::bb
