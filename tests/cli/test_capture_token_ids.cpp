// `goca-bench capture --token-ids` replays the ids the pipeline's tokenizer produces: on tiny random-weight
// PixArt-Sigma and Flux folders with real tokenizer files (T5 SentencePiece, CLIP vocab.json + merges.txt),
// `--prompt P` and `--token-ids <ids of P> [--clip-token-ids <CLIP ids of P>]` write identical files; bad ids are
// one-line user errors (exit 2).
#include "../backbones/tiny_dit.h"
#include "../backbones/tiny_tokenizer_files.h"
#include "cli_test_util.h"

#include "harness/io/image_io.h"
#include "harness/io/safetensors.h"
#include "harness/text/clip_tokenizer.h"
#include "harness/text/t5_tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <tuple>
#include <filesystem>
#include <unistd.h>

namespace fs = std::filesystem;
using Args = std::vector<std::string>;

namespace {

constexpr int64_t kT5Vocab = 512;  // above every id of the tiny SentencePiece model (checked below)
const char* kPrompt = "a photo of a cat on the sofa";

std::string join(const std::vector<int64_t>& ids) {
  std::string s;
  for (auto v : ids) s += (s.empty() ? "" : ",") + std::to_string(v);
  return s;
}

struct Folders {
  fs::path dir;
  std::string pixart, flux, sd, image;
  std::vector<int64_t> t5_ids, clip_ids;  // the tokenizers' ids of kPrompt, unpadded (T5: + </s>; CLIP: BOS … EOS)
  Folders() {
    dir = fs::temp_directory_path() / ("gb_cli_token_ids_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    pixart = gb::bb::tiny::write_tiny_pixart(dir / "pixart");
    gb::bb::tiny::write_t5(dir / "pixart" / "text_encoder", 16, 31, kT5Vocab);
    gb::bb::tiny::install_t5_spiece(dir / "pixart", "tokenizer");
    flux = gb::bb::tiny::write_tiny_flux(dir / "flux");
    gb::bb::tiny::write_t5(dir / "flux" / "text_encoder_2", 24, 32, kT5Vocab);
    gb::bb::tiny::write_clip_text(dir / "flux" / "text_encoder", 33, 49408, 77);
    gb::bb::tiny::install_t5_spiece(dir / "flux", "tokenizer_2");
    gb::bb::tiny::install_clip_vocab_merges(dir / "flux");
    sd = gb::bb::tiny::write_tiny_sd(dir / "sd15", false);
    image = (dir / "img_0007.png").string();
    gb::write_png_rgb(image, gb::bb::tiny::random_image(20, 24, 5));

    auto t5 = gb::text::T5Tokenizer::from_file(gb::bb::tiny::tiny_spiece_model().string(), 300);
    t5_ids = t5->encode_ids(kPrompt);
    t5_ids.push_back(t5->eos_id());
    auto clip = gb::text::ClipTokenizer::from_merges(gb::bb::tiny::clip_merges_gz());
    clip_ids = clip->encode_ids(kPrompt);
    clip_ids.insert(clip_ids.begin(), clip->bos_id());
    clip_ids.push_back(clip->eos_id());
  }
  ~Folders() { fs::remove_all(dir); }
};

const Folders& fx() {
  static Folders f;
  return f;
}

// In-process (process start-up costs about a second here); args after the common ones.
gb::test::CliResult capture(const std::string& weights, const std::string& out, Args more) {
  Args a = {"capture", "--weights", weights,    "--image", fx().image, "--image-size",           "16",
            "--seed",  "3",         "--layers", "*",       "--out",    (fx().dir / out).string()};
  a.insert(a.end(), more.begin(), more.end());
  return gb::test::run_goca_bench_in_process(a);
}

// Every tensor (captures and input.*) identical, dtype and shape included.
void expect_same_files(const std::string& a, const std::string& b) {
  auto ta = gb::load_safetensors((fx().dir / a).string()), tb = gb::load_safetensors((fx().dir / b).string());
  ASSERT_EQ(ta.size(), tb.size());
  for (const auto& [k, v] : ta) {
    ASSERT_TRUE(tb.count(k)) << k;
    EXPECT_EQ(v.scalar_type(), tb.at(k).scalar_type()) << k;
    EXPECT_TRUE(v.sizes() == tb.at(k).sizes() && at::equal(v, tb.at(k))) << k;
  }
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0, end;
  while ((end = s.find(',', start)) != std::string::npos) out.push_back(s.substr(start, end - start)), start = end + 1;
  out.push_back(s.substr(start));
  return out;
}

void expect_user_error(const std::string& weights, Args more, const std::string& message) {
  auto r = capture(weights, "bad.safetensors", more);
  EXPECT_EQ(r.code, 2) << message << "\n" << r.out;
  EXPECT_NE(r.out.find(message), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
}

}  // namespace

TEST(CaptureTokenIds, PixArtIdsReplayThePrompt) {
  ASSERT_LT(*std::max_element(fx().t5_ids.begin(), fx().t5_ids.end()), kT5Vocab);
  auto r = capture(fx().pixart, "pixart_prompt.safetensors", {"--prompt", kPrompt});
  ASSERT_EQ(r.code, 0) << r.out;
  r = capture(fx().pixart, "pixart_ids.safetensors", {"--token-ids", join(fx().t5_ids)});
  ASSERT_EQ(r.code, 0) << r.out;
  expect_same_files("pixart_prompt.safetensors", "pixart_ids.safetensors");
  auto t = gb::load_safetensors((fx().dir / "pixart_ids.safetensors").string());
  ASSERT_TRUE(t.count("input.encoder_attention_mask"));
  EXPECT_EQ(t.at("input.encoder_attention_mask").sum().item<int64_t>(), static_cast<int64_t>(fx().t5_ids.size()));
  EXPECT_GT(t.size(), 8u);  // '*' captured the maps too
  // The metadata records what T5 saw: the ids padded with 0 to 300.
  gb::SafetensorsFile f((fx().dir / "pixart_ids.safetensors").string());
  auto ids = split(f.metadata().at("token_ids"));
  ASSERT_EQ(ids.size(), 300u);
  EXPECT_EQ(ids[0], std::to_string(fx().t5_ids[0]));
  EXPECT_EQ(ids.back(), "0");
  // Already-padded ids (the tokenizer's full output) give the same capture: the mask is 0 exactly on <pad>.
  auto padded = fx().t5_ids;
  padded.resize(300, 0);
  r = capture(fx().pixart, "pixart_padded.safetensors", {"--token-ids", join(padded)});
  ASSERT_EQ(r.code, 0) << r.out;
  expect_same_files("pixart_prompt.safetensors", "pixart_padded.safetensors");
}

TEST(CaptureTokenIds, FluxT5AndClipIdsReplayThePrompt) {
  auto r = capture(fx().flux, "flux_prompt.safetensors", {"--prompt", kPrompt});
  ASSERT_EQ(r.code, 0) << r.out;
  r = capture(fx().flux, "flux_ids.safetensors",
              {"--token-ids", join(fx().t5_ids), "--clip-token-ids", join(fx().clip_ids)});
  ASSERT_EQ(r.code, 0) << r.out;
  expect_same_files("flux_prompt.safetensors", "flux_ids.safetensors");
  gb::SafetensorsFile f((fx().dir / "flux_ids.safetensors").string());
  auto t5 = split(f.metadata().at("token_ids")), clip = split(f.metadata().at("clip_token_ids"));
  ASSERT_EQ(t5.size(), 512u);
  EXPECT_EQ(t5.back(), "0");
  ASSERT_EQ(clip.size(), 77u);
  EXPECT_EQ(clip.front(), "49406");
  EXPECT_EQ(clip.back(), "49407");  // CLIP pads with <|endoftext|>
  // Another CLIP sequence changes the pooled vector only (so --clip-token-ids is really used).
  auto other = fx().clip_ids;
  ASSERT_NE(other[1], 1125);
  other[1] = 1125;
  r = capture(fx().flux, "flux_other.safetensors", {"--token-ids", join(fx().t5_ids), "--clip-token-ids", join(other)});
  ASSERT_EQ(r.code, 0) << r.out;
  auto a = gb::load_safetensors((fx().dir / "flux_ids.safetensors").string());
  auto b = gb::load_safetensors((fx().dir / "flux_other.safetensors").string());
  EXPECT_FALSE(at::equal(a.at("input.pooled_projections"), b.at("input.pooled_projections")));
  EXPECT_TRUE(at::equal(a.at("input.encoder_hidden_states"), b.at("input.encoder_hidden_states")));
}

// sd15/sdxl: short CLIP ids are padded with <|endoftext|> to the text encoder's length (12 in the tiny folder).
TEST(CaptureTokenIds, SdIdsArePaddedWithEndOfText) {
  auto r = capture(fx().sd, "sd_short.safetensors", {"--token-ids", "998,5,6,999"});
  ASSERT_EQ(r.code, 0) << r.out;
  r = capture(fx().sd, "sd_full.safetensors", {"--token-ids", "998,5,6,999,999,999,999,999,999,999,999,999"});
  ASSERT_EQ(r.code, 0) << r.out;
  expect_same_files("sd_short.safetensors", "sd_full.safetensors");
}

TEST(CaptureTokenIds, BadIdsAreOneLineUserErrors) {
  const std::string px = fx().pixart, fl = fx().flux, sd = fx().sd;
  expect_user_error(px, {"--token-ids", "5,x,1"}, "--token-ids: 'x' is not an integer");
  expect_user_error(px, {"--token-ids", "5,,1"}, "--token-ids: '' is not an integer");
  expect_user_error(px, {"--token-ids", "5,1.5"}, "'1.5' is not an integer");
  expect_user_error(px, {"--token-ids", "5,-3,1"}, "--token-ids: id -3 is negative");
  expect_user_error(px, {"--token-ids", "5,512,1"}, "id 512 is not below the T5 text encoder vocabulary size 512");
  expect_user_error(px, {"--token-ids", "5,99999999999999999999"}, "out of range");
  expect_user_error(px, {"--token-ids", join(std::vector<int64_t>(301, 5))},
                    "301 ids, but the T5 text encoder takes at most 300");
  expect_user_error(px, {"--token-ids", "5,1", "--clip-token-ids", "49406,49407"},
                    "--clip-token-ids is not an input of the");
  expect_user_error(sd, {"--token-ids", "998,999", "--clip-token-ids", "49406,49407"},
                    "--clip-token-ids is not an input of the");
  expect_user_error(px, {"--prompt", "cat", "--clip-token-ids", "49406,49407"},
                    "--clip-token-ids goes with --token-ids");
  expect_user_error(fl, {"--token-ids", "5,1"}, "flux needs --clip-token-ids");
  expect_user_error(fl, {"--token-ids", "5,1", "--clip-token-ids", "49406,49408"},
                    "id 49408 is not below the CLIP text encoder vocabulary size 49408");
  expect_user_error(fl, {"--token-ids", "5,1", "--clip-token-ids", join(std::vector<int64_t>(78, 320))},
                    "78 ids, but the CLIP text encoder takes at most 77");
  expect_user_error(fl, {"--token-ids", join(std::vector<int64_t>(513, 5)), "--clip-token-ids", "49406,49407"},
                    "513 ids, but the T5 text encoder takes at most 512");
  expect_user_error(sd, {"--token-ids", "998,1000"}, "id 1000 is not below the CLIP text encoder vocabulary size 1000");
  expect_user_error(sd, {"--token-ids", join(std::vector<int64_t>(13, 998))},
                    "13 ids, but the CLIP text encoder takes at most 12");
  EXPECT_FALSE(fs::exists(fx().dir / "bad.safetensors"));
  // The real binary: exit status 2 as a shell sees it.
  auto r = gb::test::run_goca_bench("capture --weights " + px + " --image " + fx().image +
                                    " --token-ids 5,-3 --layers x --out " + (fx().dir / "bad.safetensors").string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("goca-bench: error: --token-ids: id -3 is negative"), std::string::npos) << r.out;
}

// --text-encoder: offload and free write the same file as keep; the Stable Diffusion backbones keep CLIP resident.
TEST(CaptureTextEncoder, OffloadAndFreeWriteTheSameCapture) {
  for (const auto& [name, folder, more] : std::vector<std::tuple<std::string, std::string, Args>>{
           {"pixart", fx().pixart, {"--prompt", kPrompt}},
           {"flux", fx().flux, {"--token-ids", join(fx().t5_ids), "--clip-token-ids", join(fx().clip_ids)}}}) {
    auto r = capture(folder, name + "_keep.safetensors", more);
    ASSERT_EQ(r.code, 0) << r.out;
    for (const char* mode : {"offload", "free"}) {
      Args m = more;
      m.insert(m.end(), {"--text-encoder", mode});
      r = capture(folder, name + "_" + mode + ".safetensors", m);
      ASSERT_EQ(r.code, 0) << name << " " << mode << "\n" << r.out;
      expect_same_files(name + "_keep.safetensors", name + "_" + mode + ".safetensors");
    }
  }
  expect_user_error(fx().sd, {"--token-ids", "998,999", "--text-encoder", "free"},
                    "sd15: text_encoder must be keep, not 'free'");
  expect_user_error(fx().pixart, {"--prompt", "cat", "--text-encoder", "gpu"},
                    "text_encoder must be keep, offload or free");
}

// --t5-int8: Flux's T5 in LLM.int8 (default off in fp32, so `off` writes the default file and `on` another one);
// a bad value and a backbone without it are user errors.
TEST(CaptureT5Int8, OnChangesFluxCapturesOffIsTheFp32Default) {
  const Args ids = {"--token-ids",       join(fx().t5_ids), "--clip-token-ids",
                    join(fx().clip_ids), "--layers",        "vit-block0-cross-map"};
  auto with = [&](Args more) {
    more.insert(more.begin(), ids.begin(), ids.end());
    return more;
  };
  ASSERT_EQ(capture(fx().flux, "int8_default.safetensors", with({})).code, 0);
  auto r = capture(fx().flux, "int8_off.safetensors", with({"--t5-int8", "off"}));
  ASSERT_EQ(r.code, 0) << r.out;
  expect_same_files("int8_default.safetensors", "int8_off.safetensors");
  r = capture(fx().flux, "int8_on.safetensors", with({"--t5-int8", "on"}));
  ASSERT_EQ(r.code, 0) << r.out;
  auto a = gb::load_safetensors((fx().dir / "int8_off.safetensors").string());
  auto b = gb::load_safetensors((fx().dir / "int8_on.safetensors").string());
  EXPECT_FALSE(at::equal(a.at("vit-block0-cross-map"), b.at("vit-block0-cross-map")));
  expect_user_error(fx().flux, with({"--t5-int8", "yes"}), "--t5-int8 must be on or off, not 'yes'");
  expect_user_error(fx().pixart, {"--prompt", "cat", "--t5-int8", "on"}, "t5_int8 is a flux option");
}
