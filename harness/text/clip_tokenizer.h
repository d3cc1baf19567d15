#pragma once
// CLIP byte-level BPE, identical to Hugging Face's slow CLIPTokenizer without ftfy (the BasicTokenizer
// fallback: control characters dropped, whitespace normalised, CJK spaced, lower-cased), the CLIP
// pre-tokenisation regex, `</w>` word ends, [BOS] + tokens + [EOS] truncated to max_length with EOS kept,
// right-padded with the pad token. See docs/prompts.md.
#include "harness/core/tokenizer.h"

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace gb::text {

class ClipTokenizer : public TextTokenizer {
 public:
  static constexpr const char* kStart = "<|startoftext|>";
  static constexpr const char* kEnd = "<|endoftext|>";

  // From openai's merges file (bpe_simple_vocab_16e6.txt.gz or a plain text copy); the vocabulary is derived
  // from it as openai/HF do. `pad_token` is "<|endoftext|>" (SD1.5, SDXL tokenizer) or "!" (SDXL tokenizer_2).
  static std::unique_ptr<ClipTokenizer> from_merges(const std::string& merges_path, const std::string& pad_token = kEnd,
                                                    int64_t max_length = 77);
  // From a checkpoint's tokenizer/vocab.json + merges.txt.
  static std::unique_ptr<ClipTokenizer> from_files(const std::string& vocab_json, const std::string& merges_txt,
                                                   const std::string& pad_token = kEnd, int64_t max_length = 77);

  std::string name() const override { return "clip"; }
  int64_t max_length() const override { return max_length_; }
  std::vector<TextToken> encode(const std::string& text) const override;

  // Ids of the text alone (no BOS/EOS, no truncation, no padding).
  std::vector<int64_t> encode_ids(const std::string& text) const;
  // Padded and truncated ids, as encode() but ids only.
  std::vector<int64_t> encode_padded_ids(const std::string& text) const;
  // BPE pieces (vocabulary strings) of the text alone.
  std::vector<std::string> tokenize(const std::string& text) const;

  int64_t vocab_size() const { return static_cast<int64_t>(id_to_token_.size()); }
  int64_t token_to_id(const std::string& token) const;  // -1 if absent
  const std::string& id_to_token(int64_t id) const;
  int64_t bos_id() const { return bos_id_; }
  int64_t eos_id() const { return eos_id_; }
  int64_t pad_id() const { return pad_id_; }

  // HF BasicTokenizer(strip_accents=False, do_split_on_punc=False).tokenize joined by spaces.
  static std::string basic_clean(const std::string& text);

 private:
  ClipTokenizer() = default;
  void build(std::vector<std::pair<std::string, std::string>> merges, std::vector<std::string> vocab,
             const std::string& pad_token, int64_t max_length, const std::string& source);
  std::string bpe(const std::string& word) const;  // space-separated pieces
  void tokenize_segment(const std::string& text, std::vector<std::string>& out) const;

  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, int64_t> token_to_id_;
  std::unordered_map<std::string, int64_t> ranks_;  // "first second" -> rank
  std::string byte_encoder_[256];
  int64_t bos_id_ = 0, eos_id_ = 0, pad_id_ = 0, max_length_ = 77;
  std::string pad_token_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::string> cache_;
};

}  // namespace gb::text
