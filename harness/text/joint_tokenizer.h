#pragma once
// Several tokenizers whose token lists are concatenated along one key axis, as a backbone whose text encoders'
// states are concatenated along the sequence: SD3.5's CLIP (77) then T5 (256). encode() gives the parts' padded
// token lists in order; the prompt builder reads the part boundaries (parts()) to scan each part's tokens
// against the caption (docs/prompts.md "Joint text axes").
#include "harness/core/tokenizer.h"

#include <memory>
#include <string>
#include <vector>

namespace gb::text {

class JointTokenizer : public TextTokenizer {
 public:
  // At least two parts, none null. UserError otherwise.
  explicit JointTokenizer(std::vector<std::shared_ptr<const TextTokenizer>> parts);

  std::string name() const override;    // the parts' names joined by "+", e.g. "clip+t5"
  int64_t max_length() const override;  // the sum of the parts' lengths
  std::vector<TextToken> encode(const std::string& text) const override;

  const std::vector<std::shared_ptr<const TextTokenizer>>& parts() const { return parts_; }

 private:
  std::vector<std::shared_ptr<const TextTokenizer>> parts_;
};

}  // namespace gb::text
