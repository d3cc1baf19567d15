#pragma once
// The paper's caption files (gpt_output/<ds>.json): {"<image file name>": {"caption": "..."}, ...}.
// Keys are image basenames exactly as the readers produce Sample::id ("2009_000133.jpg",
// "frankfurt_000000_000294_leftImg8bit.png"). Every problem is a UserError naming the file.
#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

namespace gb::datasets {

class CaptionFile {
 public:
  // Reads and validates the whole file: a JSON object whose values are objects with a string "caption"
  // (other keys are allowed and ignored). Empty captions are errors.
  static CaptionFile load(const std::string& path);
  // Same from JSON text; `source` names it in errors.
  static CaptionFile parse(const std::string& json_text, const std::string& source);

  const std::string& path() const { return path_; }
  size_t size() const { return ids_.size(); }
  bool contains(const std::string& id) const { return captions_.count(id) != 0; }
  // nullptr when absent.
  const std::string* find(const std::string& id) const;
  // UserError "<file>: no caption for image '<id>'" when absent.
  const std::string& caption(const std::string& id) const;
  const std::vector<std::string>& ids() const { return ids_; }  // file order

 private:
  std::string path_;
  std::vector<std::string> ids_;
  std::unordered_map<std::string, std::string> captions_;
};

}  // namespace gb::datasets
