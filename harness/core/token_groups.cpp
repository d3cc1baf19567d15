#include "harness/core/token_groups.h"

#include "harness/core/errors.h"
#include "harness/io/read_file.h"
#include "harness/core/excerpt.h"
#include "harness/io/atomic_file.h"
#include "harness/io/json_io.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

namespace gb {

std::string TokenGroups::to_json() const {
  nlohmann::json j;
  j["objects"] = nlohmann::json::array();
  for (const auto& o : objects) j["objects"].push_back({{"class", o.class_id}, {"tokens", o.tokens}});
  j["background_objects"] = background_objects;
  j["rescaling_token_ids"] = rescaling_token_ids;
  return j.dump();
}

namespace {
std::vector<int64_t> int_list(const nlohmann::json& j, const std::string& source, const std::string& what) {
  if (!j.is_array()) fail_file(source, "'{}' must be a list of integers", what);
  std::vector<int64_t> out;
  for (const auto& x : j) {
    if (!x.is_number_integer()) fail_file(source, "'{}' must be a list of integers, found {}", what, excerpt(x.dump()));
    out.push_back(x.get<int64_t>());
  }
  return out;
}
}  // namespace

TokenGroups TokenGroups::from_json(const std::string& text, const std::string& source) {
  const nlohmann::json j = parse_json(text, source);
  if (!j.is_object()) fail_file(source, "expected a JSON object with 'objects'");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "objects" && it.key() != "background_objects" && it.key() != "rescaling_token_ids") {
      fail_file(source, "unknown key '{}' (expected objects, background_objects, rescaling_token_ids)",
                excerpt(it.key()));
    }
  }
  if (!j.contains("objects")) fail_file(source, "missing required key 'objects'");
  TokenGroups g;
  const auto& objs = j["objects"];
  if (!objs.is_array()) fail_file(source, "'objects' must be a list");
  for (size_t i = 0; i < objs.size(); ++i) {
    const auto& o = objs[i];
    if (!o.is_object() || !o.contains("class") || !o.contains("tokens") || !o["class"].is_number_integer()) {
      fail_file(source, "objects[{}] must be {{\"class\": <int>, \"tokens\": [<int>...]}}", i);
    }
    g.objects.push_back(
        {o["class"].get<int64_t>(), int_list(o["tokens"], source, fmt::format("objects[{}].tokens", i))});
  }
  if (j.contains("background_objects")) {
    const auto& b = j["background_objects"];
    if (!b.is_array()) fail_file(source, "'background_objects' must be a list of token lists");
    for (size_t i = 0; i < b.size(); ++i) {
      g.background_objects.push_back(int_list(b[i], source, fmt::format("background_objects[{}]", i)));
    }
  }
  if (j.contains("rescaling_token_ids")) {
    g.rescaling_token_ids = int_list(j["rescaling_token_ids"], source, "rescaling_token_ids");
  }
  return g;
}

TokenGroups TokenGroups::load(const std::string& path) {
  return from_json(read_whole_file(path, "token groups file"), path);
}

void TokenGroups::save(const std::string& path) const { write_file_atomic(path, to_json() + "\n"); }

}  // namespace gb
