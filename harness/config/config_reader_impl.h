#pragma once
// Template definitions of ConfigReader (included by config.h; do not include directly).
#include <string>
#include <type_traits>
#include <vector>

namespace gb {

namespace config_detail {
// Strict scalar conversions (config.cpp). Quoted scalars are strings: "3" is not an integer, 'true' not a bool.
bool to_bool(const ConfigReader& r, const YAML::Node& n, const std::string& key);
int64_t to_int64(const ConfigReader& r, const YAML::Node& n, const std::string& key);
double to_double(const ConfigReader& r, const YAML::Node& n, const std::string& key);
std::string to_string(const ConfigReader& r, const YAML::Node& n, const std::string& key);
[[noreturn]] void not_a(const ConfigReader& r, const YAML::Node& n, const std::string& key, const char* what);
std::string describe(const YAML::Node& n);
}  // namespace config_detail

template <typename T>
struct ConfigConvert {
  static_assert(sizeof(T) == 0,
                "ConfigReader supports bool, int, int64_t, double, float, std::string and std::vector of those");
};

template <>
struct ConfigConvert<bool> {
  static bool run(const ConfigReader& r, const YAML::Node& n, const std::string& k) {
    return config_detail::to_bool(r, n, k);
  }
};
template <>
struct ConfigConvert<int64_t> {
  static int64_t run(const ConfigReader& r, const YAML::Node& n, const std::string& k) {
    return config_detail::to_int64(r, n, k);
  }
};
template <>
struct ConfigConvert<int> {
  static int run(const ConfigReader& r, const YAML::Node& n, const std::string& k) {
    const int64_t v = config_detail::to_int64(r, n, k);
    if (v < INT32_MIN || v > INT32_MAX) r.fail_at(k, "integer " + std::to_string(v) + " is out of range");
    return static_cast<int>(v);
  }
};
template <>
struct ConfigConvert<double> {
  static double run(const ConfigReader& r, const YAML::Node& n, const std::string& k) {
    return config_detail::to_double(r, n, k);
  }
};
template <>
struct ConfigConvert<float> {
  static float run(const ConfigReader& r, const YAML::Node& n, const std::string& k) {
    return static_cast<float>(config_detail::to_double(r, n, k));
  }
};
template <>
struct ConfigConvert<std::string> {
  static std::string run(const ConfigReader& r, const YAML::Node& n, const std::string& k) {
    return config_detail::to_string(r, n, k);
  }
};
template <typename T>
struct ConfigConvert<std::vector<T>> {
  static std::vector<T> run(const ConfigReader& r, const YAML::Node& n, const std::string& k) {
    if (!n.IsSequence()) config_detail::not_a(r, n, k, "a list");
    std::vector<T> out;
    out.reserve(n.size());
    for (size_t i = 0; i < n.size(); ++i) out.push_back(ConfigConvert<T>::run(r, n[i], k + "." + std::to_string(i)));
    return out;
  }
};

template <typename T>
T ConfigReader::convert(const YAML::Node& n, const std::string& key) const {
  return ConfigConvert<T>::run(*this, n, key);
}

template <typename T>
T ConfigReader::get(const std::string& key) const {
  YAML::Node n = find(key);
  if (!n.IsDefined() || n.IsNull()) missing(key);
  return convert<T>(n, key);
}

template <typename T>
T ConfigReader::get_or(const std::string& key, const T& fallback) const {
  YAML::Node n = find(key);
  if (!n.IsDefined() || n.IsNull()) return fallback;
  return convert<T>(n, key);
}

template <typename T>
std::optional<T> ConfigReader::get_optional(const std::string& key) const {
  YAML::Node n = find(key);
  if (!n.IsDefined() || n.IsNull()) return std::nullopt;
  return convert<T>(n, key);
}

template <typename E>
E ConfigReader::get_enum(const std::string& key, const std::vector<std::pair<std::string, E>>& names) const {
  const std::string s = get<std::string>(key);
  std::string all;
  for (const auto& [name, value] : names) {
    if (name == s) return value;
    all += (all.empty() ? "" : ", ") + name;
  }
  fail_at(key, "'" + s + "' is not one of: " + all);
}

template <typename E>
E ConfigReader::get_enum_or(const std::string& key, const std::vector<std::pair<std::string, E>>& names,
                            E fallback) const {
  YAML::Node n = find(key);
  if (!n.IsDefined() || n.IsNull()) return fallback;
  return get_enum<E>(key, names);
}

}  // namespace gb
