#pragma once
// A CLIP-shaped word tokenizer for tests that must not depend on the BPE vocabulary: <sos>, one token per
// lower-cased word or punctuation mark, <pad> to 77.
#include "harness/core/tokenizer.h"

#include <cctype>

namespace gb::test {

class SimpleTokenizer : public gb::TextTokenizer {
 public:
  std::string name() const override { return "simple"; }
  int64_t max_length() const override { return 77; }
  std::vector<gb::TextToken> encode(const std::string& text) const override {
    std::vector<gb::TextToken> out{{49406, "<sos>", true}};
    std::string word;
    auto flush = [&] {
      if (!word.empty()) out.push_back({1000 + static_cast<int64_t>(word.size()), word, false});
      word.clear();
    };
    for (char c : text) {
      if (std::isalnum(static_cast<unsigned char>(c))) {
        word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      } else {
        flush();
        if (!std::isspace(static_cast<unsigned char>(c))) out.push_back({10 + c, std::string(1, c), false});
      }
    }
    flush();
    if (static_cast<int64_t>(out.size()) > 76) out.resize(76);
    while (static_cast<int64_t>(out.size()) < 77) out.push_back({49407, "<pad>", true});
    return out;
  }
};

}  // namespace gb::test
