#pragma once
// Reading the `config.json` of a checkpoint component into a model Config (the DiT family: PixArt, Flux, T5).
// A missing file, bad JSON or a field of the wrong type is a UserError naming the file and the field.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gb::bb {

class JsonConfig {
 public:
  static JsonConfig open(const std::string& path);  // UserError when absent or not a JSON object
  const std::string& path() const { return path_; }
  bool has(const std::string& field) const;  // present and not null
  int64_t get_int(const std::string& field, int64_t fallback) const;
  double get_double(const std::string& field, double fallback) const;
  bool get_bool(const std::string& field, bool fallback) const;
  std::string get_string(const std::string& field, const std::string& fallback) const;
  std::vector<int64_t> get_ints(const std::string& field, const std::vector<int64_t>& fallback) const;
  // Fields that must be present (no fallback).
  int64_t require_int(const std::string& field) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
  std::string path_;
};

}  // namespace gb::bb
