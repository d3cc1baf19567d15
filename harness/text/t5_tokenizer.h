#pragma once
// T5 through the SentencePiece library, as Hugging Face's slow T5Tokenizer (legacy mode) under the diffusers
// pipelines: sp.encode(text) pieces, truncated to max_length - 1, `</s>` appended, right-padded with `<pad>` to
// max_length (300 for PixArt-Σ, 512 for Flux). Special-token strings in the text ("</s>", "<pad>", "<unk>",
// "<extra_id_N>") are split out first and map to their ids.
#include "harness/core/tokenizer.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gb::text {

class T5Tokenizer : public TextTokenizer {
 public:
  static std::unique_ptr<T5Tokenizer> from_file(const std::string& spiece_model, int64_t max_length);
  // Trains a SentencePiece model (SentencePieceTrainer::Train with command-line style args); for tests and tools.
  static void train(const std::string& args);
  ~T5Tokenizer() override;

  std::string name() const override { return "t5"; }
  int64_t max_length() const override { return max_length_; }
  // Token text as the paper's captioner sees it: "▁" alone -> "<insert>", "</s>" -> "<eos>", "<pad>" stays
  // (these three are special), every "▁" stripped from other pieces.
  std::vector<TextToken> encode(const std::string& text) const override;

  std::vector<int64_t> encode_ids(const std::string& text) const;         // no EOS, no truncation, no padding
  std::vector<std::string> tokenize(const std::string& text) const;       // pieces of the text alone
  std::vector<int64_t> encode_padded_ids(const std::string& text) const;  // what the pipeline feeds T5
  std::string id_to_piece(int64_t id) const;
  int64_t eos_id() const { return eos_id_; }
  int64_t pad_id() const { return pad_id_; }

 private:
  T5Tokenizer() = default;
  void pieces_of(const std::string& text, std::vector<std::string>& pieces, std::vector<int64_t>& ids) const;

  int64_t piece_to_id(const std::string& piece) const;

  void* sp_ = nullptr;  // SentencePieceProcessor behind the gb_spm_shim module (see spm_shim/spm_shim.h)
  int64_t unk_id_ = 2, vocab_size_ = 0;
  int64_t max_length_ = 512, eos_id_ = 1, pad_id_ = 0;
  std::string path_;
};

}  // namespace gb::text
