#pragma once
// YAML configuration with includes, overrides and provenance.
//
//   _base_: [../base.yaml, other.yaml]   # paths relative to this file; merged in order, this file last
//   a: {b: 1}                           # mappings merge key by key; later files win; lists are replaced
//
// Overrides (`--set a.b=value`, `--set methods.0.head_method=average`) are parsed as YAML scalars/flows
// and applied after the includes. Every leaf remembers where it came from ("file:line" or "--set"), so
// errors name the file and the line. Typed structs are read through ConfigReader, which is strict:
// unknown keys, wrong types and missing required keys are UserErrors with file and line.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gb {

class Config {
 public:
  Config() = default;
  // Copies are deep (yaml-cpp nodes are references): set() on a copy leaves the original alone.
  Config(const Config& other);
  Config& operator=(const Config& other);
  Config(Config&& other) noexcept;
  Config& operator=(Config&& other) noexcept;

  // Loads `path` with its `_base_` chain (cycles are errors) and applies `overrides` ("a.b=value").
  static Config load(const std::string& path, const std::vector<std::string>& overrides = {});
  // Parses YAML text; `source` names it in errors.
  static Config from_string(const std::string& yaml, const std::string& source,
                            const std::vector<std::string>& overrides = {});

  const YAML::Node& root() const { return root_; }
  const std::string& source() const { return source_; }  // the top-level file
  // "file:line" of a dotted key path ("methods.2.head_method"), or the nearest ancestor's origin.
  std::string where(const std::string& key_path) const;

  // Fully resolved YAML (no `_base_`, overrides applied), deterministic key order as loaded.
  std::string to_yaml() const;
  void save(const std::string& path) const;
  // Stable hash of the resolved content (16 hex digits, FNV-1a 64 of a canonical form with sorted keys:
  // independent of key order and comments), for results.json and `compare`.
  std::string hash() const;

  // Applies one more override in place ("a.b=value"; list items by index, "methods.0.name=x"). The value is
  // parsed as YAML ("3" an integer, "[1, 2]" a list, "'3'" a string); an empty value is the empty string.
  // Missing intermediate mappings are created; a list index must exist.
  void set(const std::string& assignment);

 private:
  YAML::Node root_;
  std::string source_;
  std::map<std::string, std::string> origins_;  // dotted path -> "file:line" / "--set a.b=v"
  friend class ConfigReader;
  friend struct ConfigLoader;
};

// Strict typed view of one mapping of a Config. Read every key you accept, then call finish().
class ConfigReader {
 public:
  explicit ConfigReader(const Config& config);  // the root mapping
  ConfigReader(const ConfigReader&) = default;
  // Assignment rebinds (yaml-cpp's Node::operator= would write through into the config).
  ConfigReader& operator=(const ConfigReader& other);

  bool has(const std::string& key) const;
  std::vector<std::string> keys() const;      // in document order
  std::string path() const { return path_; }  // dotted path of this mapping ("" for the root)

  // Required / optional scalars. T: bool, int64_t, int, double, std::string, std::vector<T> of those.
  template <typename T>
  T get(const std::string& key) const;
  template <typename T>
  T get_or(const std::string& key, const T& fallback) const;
  template <typename T>
  std::optional<T> get_optional(const std::string& key) const;

  // One of the listed spellings (several spellings may map to one value, e.g. paper aliases).
  template <typename E>
  E get_enum(const std::string& key, const std::vector<std::pair<std::string, E>>& names) const;
  template <typename E>
  E get_enum_or(const std::string& key, const std::vector<std::pair<std::string, E>>& names, E fallback) const;

  ConfigReader child(const std::string& key) const;                          // required mapping
  std::optional<ConfigReader> optional_child(const std::string& key) const;  // absent or null: nullopt
  std::vector<ConfigReader> children(const std::string& key) const;          // list of mappings (absent: empty)
  const YAML::Node& node(const std::string& key) const;                      // raw access (marks key as used)

  // Errors at a key: "<file>:<line>: <path.key>: <message>" as a UserError.
  [[noreturn]] void fail_at(const std::string& key, const std::string& message) const;
  // Unknown keys (present but never read) are an error listing them with their lines. Readers made by
  // child()/children() share one record, so finish() on the root also checks every child's keys.
  void finish() const;

  // A null value (`key:` or `key: ~`) counts as absent for get_or/get_optional/optional_child/children.

 private:
  struct State;
  ConfigReader(const Config* config, YAML::Node node, std::string path, std::shared_ptr<State> state);
  const Config* config_;
  YAML::Node node_;
  std::string path_;
  std::shared_ptr<State> used_;
  std::string key_path(const std::string& key) const;
  // Marks `key` as read and returns its value (an invalid node when absent).
  YAML::Node find(const std::string& key) const;
  [[noreturn]] void missing(const std::string& key) const;
  template <typename T>
  T convert(const YAML::Node& n, const std::string& key) const;
  template <typename T>
  friend struct ConfigConvert;
};

}  // namespace gb

#include "harness/config/config_reader_impl.h"
