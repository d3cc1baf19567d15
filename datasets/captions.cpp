#include "datasets/captions.h"

#include <nlohmann/json.hpp>

#include "harness/core/errors.h"
#include "harness/core/excerpt.h"
#include "harness/io/json_io.h"
#include "harness/io/read_file.h"

namespace gb::datasets {

CaptionFile CaptionFile::load(const std::string& path) { return parse(read_whole_file(path, "caption file"), path); }

CaptionFile CaptionFile::parse(const std::string& text, const std::string& source) {
  const nlohmann::ordered_json doc = parse_ordered_json(text, source);
  if (!doc.is_object())
    fail_file(source, "expected a JSON object {{\"<image file name>\": {{\"caption\": \"...\"}}}}, got {}",
              doc.type_name());
  CaptionFile f;
  f.path_ = source;
  f.ids_.reserve(doc.size());
  for (const auto& [key, value] : doc.items()) {
    if (!value.is_object())
      fail_file(source, "entry {}: expected an object with \"caption\", got {}", excerpt(key), value.type_name());
    auto it = value.find("caption");
    if (it == value.end()) fail_file(source, "entry {}: missing \"caption\"", excerpt(key));
    if (!it->is_string())
      fail_file(source, "entry {}: \"caption\" must be a string, got {}", excerpt(key), it->type_name());
    std::string caption = it->get<std::string>();
    if (caption.empty()) fail_file(source, "entry {}: empty caption", excerpt(key));
    if (!f.captions_.emplace(key, std::move(caption)).second) fail_file(source, "duplicate entry {}", excerpt(key));
    f.ids_.push_back(key);
  }
  return f;
}

const std::string* CaptionFile::find(const std::string& id) const {
  auto it = captions_.find(id);
  return it == captions_.end() ? nullptr : &it->second;
}

const std::string& CaptionFile::caption(const std::string& id) const {
  auto it = captions_.find(id);
  if (it == captions_.end()) fail_file(path_, "no caption for image '{}'", id);
  return it->second;
}

}  // namespace gb::datasets
