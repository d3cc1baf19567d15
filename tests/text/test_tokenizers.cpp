// CLIP BPE and T5 SentencePiece against transformers 4.47.1's CLIPTokenizer and T5TokenizerFast (goldens from
// tools/parity/tokenizer_goldens.py and captioner_goldens.py), plus a tiny model trained here with the C++ trainer.
#include "datasets/captions.h"
#include "harness/core/errors.h"
#include "harness/core/hash.h"
#include "harness/text/clip_tokenizer.h"
#include "harness/text/t5_tokenizer.h"
#include "harness/text/unicode.h"
#include "tests/text/gz_json.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

using gb::text::ClipTokenizer;
using gb::text::T5Tokenizer;

namespace {

const std::string kMerges = std::string(GB_SHARED_DIR) + "/data/clip/bpe_simple_vocab_16e6.txt.gz";
const std::string kGolden = std::string(GB_SOURCE_DIR) + "/tests/text/golden/";

const ClipTokenizer& clip() {
  static auto t = ClipTokenizer::from_merges(kMerges);
  return *t;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

std::vector<int64_t> body(const std::vector<int64_t>& ids, int64_t pad) {
  std::vector<int64_t> b = ids;
  while (!b.empty() && b.back() == pad) b.pop_back();
  return b;
}

}  // namespace

TEST(ClipTokenizer, KnownHuggingFaceIds) {
  const auto& t = clip();
  EXPECT_EQ(t.vocab_size(), 49408);
  EXPECT_EQ(t.bos_id(), 49406);
  EXPECT_EQ(t.eos_id(), 49407);
  EXPECT_EQ(t.pad_id(), 49407);
  EXPECT_EQ(t.token_to_id("cat</w>"), 2368);
  EXPECT_EQ(t.token_to_id("!"), 0);
  const auto ids = t.encode_padded_ids("a photo of a cat");
  ASSERT_EQ(ids.size(), 77u);
  EXPECT_EQ(std::vector<int64_t>(ids.begin(), ids.begin() + 7),
            (std::vector<int64_t>{49406, 320, 1125, 539, 320, 2368, 49407}));
  for (size_t i = 7; i < 77; ++i) EXPECT_EQ(ids[i], 49407);
  EXPECT_EQ(body(t.encode_padded_ids("A   Photo OF a dog's tail!"), 49407),
            (std::vector<int64_t>{49406, 320, 1125, 539, 320, 1929, 568, 4132, 256}));
}

TEST(ClipTokenizer, CaptionerViewOfTokens) {
  const auto toks = clip().encode("a cat, café");
  EXPECT_EQ(toks[0].text, "<sos>");
  EXPECT_TRUE(toks[0].special);
  EXPECT_EQ(toks[1].text, "a");
  EXPECT_EQ(toks[2].text, "cat");
  EXPECT_EQ(toks[3].text, ",");
  EXPECT_EQ(toks[4].text, "cafÃ©");  // byte-level characters, as the HF vocabulary spells them
  EXPECT_FALSE(toks[4].special);
  EXPECT_EQ(toks[5].text, "<pad>");  // <|endoftext|> (EOS and padding) is "<pad>" for the captioner
  EXPECT_TRUE(toks[76].special);
}

TEST(ClipTokenizer, TruncationKeepsEndToken) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "cat ";
  const auto ids = clip().encode_padded_ids(text);
  ASSERT_EQ(ids.size(), 77u);
  EXPECT_EQ(ids[0], 49406);
  for (int i = 1; i < 76; ++i) EXPECT_EQ(ids[i], 2368);
  EXPECT_EQ(ids[76], 49407);
}

TEST(ClipTokenizer, MatchesTransformersOnTrickyStrings) {
  auto bang = ClipTokenizer::from_merges(kMerges, "!");
  EXPECT_EQ(bang->pad_id(), 0);
  int n = 0;
  for (const auto& c : read_json(kGolden + "clip_tricky.json")) {
    const std::string text = c["text"];
    EXPECT_EQ(clip().encode_padded_ids(text), c["ids"].get<std::vector<int64_t>>()) << text;
    EXPECT_EQ(bang->encode_padded_ids(text), c["ids_pad_bang"].get<std::vector<int64_t>>()) << text;
    ++n;
  }
  EXPECT_EQ(n, 18);
}

TEST(ClipTokenizer, CleanupLikeHuggingFaceWithoutFtfy) {
  EXPECT_EQ(ClipTokenizer::basic_clean("  Hello\t\nWORLD  "), "hello world");
  EXPECT_EQ(ClipTokenizer::basic_clean("soft\u00adhyphen"), "softhyphen");  // format characters are dropped
  EXPECT_EQ(ClipTokenizer::basic_clean("a\u4e2db"), "a \u4e2d b");          // CJK characters are spaced
}

TEST(ClipTokenizer, BadFilesAreUserErrors) {
  EXPECT_THROW(ClipTokenizer::from_merges("/nonexistent/merges.txt.gz"), gb::UserError);
  const auto dir = std::filesystem::temp_directory_path() / "gb_text_bad_merges";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "merges.txt") << "#version: 0.2\na b\n";
  EXPECT_THROW(ClipTokenizer::from_merges((dir / "merges.txt").string()), gb::UserError);
  std::ofstream(dir / "vocab.json") << "{\"a\": 0, \"b\": 5}";
  EXPECT_THROW(ClipTokenizer::from_files((dir / "vocab.json").string(), kMerges), gb::UserError);
}

TEST(ClipTokenizer, FromVocabJsonAndMergesTxtEqualsFromMergesFile) {
  // write the checkpoint form (vocab.json + merges.txt) from the merges-derived vocabulary
  const auto dir = std::filesystem::temp_directory_path() / "gb_text_ckpt_tok";
  std::filesystem::create_directories(dir);
  nlohmann::json vocab;
  for (int64_t i = 0; i < clip().vocab_size(); ++i) vocab[clip().id_to_token(i)] = i;
  std::ofstream(dir / "vocab.json") << vocab.dump();
  std::ofstream(dir / "merges.txt") << "#version: 0.2\n";
  {
    // copy of the merges file's text (gz readable through the same reader)
    auto t = ClipTokenizer::from_files((dir / "vocab.json").string(), kMerges);
    EXPECT_EQ(t->encode_padded_ids("two dogs playing in the park"),
              clip().encode_padded_ids("two dogs playing in the park"));
  }
}

TEST(Unicode, PythonLowerAndCategories) {
  using namespace gb::text;
  EXPECT_EQ(py_lower("ÀÉÎ ABC Σ ΣΑΣ"), "àéî abc σ σας");
  EXPECT_EQ(py_lower("İ"), "i\u0307");
  EXPECT_TRUE(is_letter(U'é'));
  EXPECT_TRUE(is_number(U'٣'));
  EXPECT_TRUE(is_other(0x200B));
  EXPECT_TRUE(is_py_space(0x2028));
  EXPECT_EQ(utf8_to_u32("a\xff").size(), 2u);  // invalid byte -> U+FFFD
}

// ---- T5 ----------------------------------------------------------------------------------------------------

namespace {
std::string train_tiny_model() {
  const auto dir = std::filesystem::temp_directory_path() / "gb_text_t5";
  std::filesystem::create_directories(dir);
  const auto corpus = (dir / "corpus.txt").string();
  {
    std::ofstream out(corpus);
    const auto caps = read_json(std::string(GB_SHARED_DIR) + "/data/goca-captions/voc.json");
    for (auto it = caps.begin(); it != caps.end(); ++it)
      out << gb::text::py_lower(it.value()["caption"].get<std::string>()) << "\n";
  }
  const auto prefix = (dir / "tiny").string();
  T5Tokenizer::train("--input=" + corpus + " --model_prefix=" + prefix +
                     " --vocab_size=200 --model_type=unigram --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1"
                     " --num_threads=1 --minloglevel=2");
  return prefix + ".model";
}
}  // namespace

TEST(T5Tokenizer, TrainedModelEosPaddingTruncationAndCaptionerView) {
  const std::string model = train_tiny_model();
  auto t = T5Tokenizer::from_file(model, 300);
  EXPECT_EQ(t->max_length(), 300);
  EXPECT_EQ(t->eos_id(), 1);
  EXPECT_EQ(t->pad_id(), 0);
  const auto ids = t->encode_padded_ids("a person, chair, background");
  ASSERT_EQ(ids.size(), 300u);
  const auto body_ids = t->encode_ids("a person, chair, background");
  ASSERT_LT(body_ids.size(), 299u);
  for (size_t i = 0; i < body_ids.size(); ++i) EXPECT_EQ(ids[i], body_ids[i]);
  EXPECT_EQ(ids[body_ids.size()], 1);
  for (size_t i = body_ids.size() + 1; i < 300; ++i) EXPECT_EQ(ids[i], 0);
  // captioner view: pieces lose "▁", a lone "▁" is <insert>, </s> is <eos>
  const auto toks = t->encode("a person, chair, background");
  std::string joined;
  for (size_t i = 0; i < body_ids.size(); ++i) {
    const std::string piece = t->id_to_piece(body_ids[i]);
    if (piece == "\xE2\x96\x81") {
      EXPECT_EQ(toks[i].text, "<insert>");
      EXPECT_TRUE(toks[i].special);
    } else {
      EXPECT_FALSE(toks[i].special);
      EXPECT_EQ(toks[i].text.find("\xE2\x96\x81"), std::string::npos);
      joined += toks[i].text;
    }
  }
  EXPECT_EQ(joined, "aperson,chair,background");
  EXPECT_EQ(toks[body_ids.size()].text, "<eos>");
  EXPECT_EQ(toks.back().text, "<pad>");
  // truncation to max_length - 1 and EOS last (diffusers: truncation=True, add_special_tokens)
  auto t512 = T5Tokenizer::from_file(model, 512);
  std::string longtext;
  for (int i = 0; i < 600; ++i) longtext += "person, ";
  const auto lid = t512->encode_padded_ids(longtext);
  ASSERT_EQ(lid.size(), 512u);
  EXPECT_EQ(lid[511], 1);
  EXPECT_NE(lid[510], 0);
  // special-token strings in the text map to their ids
  const auto sp = t->encode_ids("chair</s>");
  EXPECT_EQ(sp.back(), 1);
}

TEST(T5Tokenizer, MatchesTransformersAndSentencePiece) {
  auto t = T5Tokenizer::from_file(kGolden + "tiny_spiece.model", 512);
  int n = 0;
  for (const auto& c : read_json(kGolden + "t5_tiny.json")) {
    const std::string text = c["text"];
    if (text.find('<') != std::string::npos) continue;  // special-token strings are split before SentencePiece
    EXPECT_EQ(t->tokenize(text), c["pieces"].get<std::vector<std::string>>()) << text;
    EXPECT_EQ(t->encode_ids(text), c["ids"].get<std::vector<int64_t>>()) << text;
    ++n;
  }
  EXPECT_GT(n, 15);
}

TEST(T5Tokenizer, MissingOrBadModelIsAUserError) {
  EXPECT_THROW(T5Tokenizer::from_file("/nonexistent/spiece.model", 512), gb::UserError);
  EXPECT_THROW(T5Tokenizer::from_file(kMerges, 512), gb::UserError);
}

// ---- both tokenizers on every shipped caption ----------------------------------------------------------------

namespace {
std::string join_ids(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + std::to_string(v[i]);
  return s;
}

// "<clip ids>|<t5 ids>", padding stripped, as tools/parity/captioner_goldens.py keys them.
std::string tokenizer_key(const T5Tokenizer& t5, const std::string& text) {
  return join_ids(body(clip().encode_padded_ids(text), clip().pad_id())) + "|" +
         join_ids(body(t5.encode_padded_ids(text), t5.pad_id()));
}

// The low 32 bits of FNV-1a with the published offset basis, as the generator writes them.
std::string low32_fnv1a64(const std::string& s) {
  return fmt::format("{:08x}", gb::fnv1a(s, gb::kFnvStandardOffset) & 0xffffffffULL);
}
}  // namespace

TEST(Tokenizers, MatchTransformersOnEveryShippedCaptionAndBuiltPrompt) {
  const auto g = gb::test::read_gz_json(kGolden + "tokenizers_captions.json.gz");
  auto t5 = T5Tokenizer::from_file(kGolden + "tiny_spiece.model", g["t5"]["max_length"].get<int64_t>());
  ASSERT_EQ(clip().pad_id(), g["clip"]["pad_id"].get<int64_t>());
  ASSERT_EQ(t5->pad_id(), g["t5"]["pad_id"].get<int64_t>());
  int64_t raw_total = 0, built_total = 0, files = 0;
  for (const auto& f : g["files"]) {
    const std::string name = f["captions"];
    const auto captions = gb::datasets::CaptionFile::load(std::string(GB_SHARED_DIR) + "/data/goca-captions/" + name);
    auto ids = captions.ids();
    std::sort(ids.begin(), ids.end());  // Python's sorted() on the (ASCII) image ids
    std::vector<std::string> want;
    std::istringstream in(f["raw"].get<std::string>());
    for (std::string h; in >> h;) want.push_back(h);
    ASSERT_EQ(want.size(), ids.size()) << name;
    int64_t bad = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      const std::string key = tokenizer_key(*t5, captions.caption(ids[i]));
      if (i < f["raw_examples"].size()) {
        EXPECT_EQ(key, f["raw_examples"][i].get<std::string>()) << name << " " << ids[i];
      }
      if (low32_fnv1a64(key) != want[i] && ++bad <= 3) ADD_FAILURE() << name << " " << ids[i] << ": " << key;
      ++raw_total;
    }
    EXPECT_EQ(bad, 0) << name;
    if (f.contains("built")) {
      bad = 0;
      size_t i = 0;
      for (const auto& b : f["built"]) {
        const std::string key = tokenizer_key(*t5, b[1].get<std::string>());
        if (i < f["built_examples"].size()) {
          EXPECT_EQ(key, f["built_examples"][i].get<std::string>()) << name;
        }
        if (low32_fnv1a64(key) != b[2].get<std::string>() && ++bad <= 3)
          ADD_FAILURE() << name << " built " << b[0].get<std::string>() << ": " << key;
        ++built_total;
        ++i;
      }
      EXPECT_EQ(bad, 0) << name << " built prompts";
    }
    ++files;
  }
  EXPECT_EQ(files, 6);
  EXPECT_EQ(raw_total, 2000 + 500 + 5000 + 5000 + 964 + 1464);
  EXPECT_EQ(built_total, 2000 + 500 + 5000 + 964 + 1464);
}
