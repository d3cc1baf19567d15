#pragma once
// The text side a backbone exposes so prompts and token groups can be built for it
// (harness/text implements CLIP BPE and T5 SentencePiece).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace gb {

struct TextToken {
  int64_t id = 0;
  std::string text;      // as the paper's captioner sees it: `</w>` / leading `▁` stripped, specials renamed
                         // (`<sos>`, `<pad>`, `<eos>`, `<insert>`)
  bool special = false;  // start/end/pad/insert tokens get no character span
};

class TextTokenizer {
 public:
  virtual ~TextTokenizer() = default;
  virtual std::string name() const = 0;    // "clip", "t5"
  virtual int64_t max_length() const = 0;  // 77, 300, 512
  // Tokenised, truncated and padded to max_length() exactly as the diffusers pipeline does.
  virtual std::vector<TextToken> encode(const std::string& text) const = 0;
};

// The prompts' token ids, one row each: [prompts, max_length] int64 on the CPU.
at::Tensor token_id_rows(const TextTokenizer& tok, const std::vector<std::string>& prompts);

}  // namespace gb
