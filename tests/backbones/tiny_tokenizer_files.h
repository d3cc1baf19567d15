#pragma once
// Real tokenizer files in a tiny checkpoint folder: the T5 SentencePiece test model (tests/text/golden/
// tiny_spiece.model) as tokenizer*/spiece.model, and CLIP's vocab.json + merges.txt derived from the shared
// openai merges (bpe_simple_vocab_16e6.txt.gz, 49408 ids).
#include "harness/text/clip_tokenizer.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace gb::bb::tiny {

inline std::filesystem::path tiny_spiece_model() {
  return std::filesystem::path(GB_SOURCE_DIR) / "tests/text/golden/tiny_spiece.model";
}

inline std::string clip_merges_gz() { return std::string(GB_SHARED_DIR) + "/data/clip/bpe_simple_vocab_16e6.txt.gz"; }

// <folder>/<component>/spiece.model (component: "tokenizer" for PixArt-Sigma, "tokenizer_2" for Flux).
inline void install_t5_spiece(const std::filesystem::path& folder, const std::string& component) {
  std::filesystem::create_directories(folder / component);
  std::filesystem::copy_file(tiny_spiece_model(), folder / component / "spiece.model",
                             std::filesystem::copy_options::overwrite_existing);
}

// <folder>/<component>/vocab.json + merges.txt as Hugging Face ships CLIP's tokenizer.
inline void install_clip_vocab_merges(const std::filesystem::path& folder, const std::string& component = "tokenizer") {
  const auto dir = folder / component;
  std::filesystem::create_directories(dir);
  const auto merges = dir / "merges.txt";
  if (std::system(("gzip -dc '" + clip_merges_gz() + "' > '" + merges.string() + "'").c_str()) != 0)
    throw std::runtime_error("cannot gunzip " + clip_merges_gz());
  auto tok = gb::text::ClipTokenizer::from_merges(clip_merges_gz());
  nlohmann::json vocab = nlohmann::json::object();
  for (int64_t i = 0; i < tok->vocab_size(); ++i) vocab[tok->id_to_token(i)] = i;
  std::ofstream(dir / "vocab.json") << vocab.dump();
}

}  // namespace gb::bb::tiny
