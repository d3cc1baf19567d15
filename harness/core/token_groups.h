#pragma once
// Which caption tokens belong to which object (spec goca-method.md §D, §G.8).
#include <cstdint>
#include <string>
#include <vector>

namespace gb {

struct ObjectTokens {
  int64_t class_id = 0;         // dataset class id this entity was aligned to
  std::vector<int64_t> tokens;  // token positions in the padded prompt (may be empty: quirk Q4)
  bool operator==(const ObjectTokens& o) const { return class_id == o.class_id && tokens == o.tokens; }
};

struct TokenGroups {
  std::vector<ObjectTokens> objects;                     // ordered: channel k of the score maps is objects[k]
  std::vector<std::vector<int64_t>> background_objects;  // entities not aligned to a class, in order
  std::vector<int64_t> rescaling_token_ids;              // every token assigned to any entity (the rho set)

  bool operator==(const TokenGroups& o) const {
    return objects == o.objects && background_objects == o.background_objects &&
           rescaling_token_ids == o.rescaling_token_ids;
  }

  // JSON form (the `segment` contract's T.json):
  // {"objects": [{"class": 15, "tokens": [3, 4]}, ...], "background_objects": [[9], [11, 12]],
  //  "rescaling_token_ids": [3, 4, 9, 11, 12]}
  std::string to_json() const;
  // `source` names the file in error messages. Throws UserError on malformed input.
  static TokenGroups from_json(const std::string& text, const std::string& source);
  static TokenGroups load(const std::string& path);
  void save(const std::string& path) const;
};

}  // namespace gb
