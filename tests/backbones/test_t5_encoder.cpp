// T5 v1.1 encoder: parity with the plain-torch transformers-semantics reference (tools/parity/dit_goldens.py),
// the bucket table of the real XXL config, strict loading and config errors.
#include "dit_test_util.h"

#include "harness/backbones/t5_encoder.h"
#include "harness/backbones/weights.h"
#include "harness/core/errors.h"

#include <filesystem>
#include <fstream>

using namespace gb::bb;
namespace fs = std::filesystem;

namespace {
std::unique_ptr<T5Encoder> tiny(at::ScalarType dt = at::kFloat) {
  return T5Encoder::load(dit_test::golden_dir("t5"), "text_encoder", dt, at::kCPU);
}
}  // namespace

TEST(T5Encoder, BucketTableOfXxlConfigMatchesTransformers) {
  auto g = dit_test::golden("t5");
  auto got = t5_relative_position_bucket(g.at("bucket_rel"), 32, 128);
  EXPECT_TRUE(at::equal(got, g.at("bucket_32_128")));
  // A few hand-checked values: exact below 8, log buckets above, upper half for keys after the query.
  EXPECT_EQ(t5_relative_position_bucket(at::tensor({-3}, at::kLong), 32, 128).item<int64_t>(), 3);
  EXPECT_EQ(t5_relative_position_bucket(at::tensor({3}, at::kLong), 32, 128).item<int64_t>(), 19);
  EXPECT_EQ(t5_relative_position_bucket(at::tensor({-500}, at::kLong), 32, 128).item<int64_t>(), 15);
}

TEST(T5Encoder, MatchesReferenceWithAndWithoutMask) {
  auto g = dit_test::golden("t5");
  auto enc = tiny();
  EXPECT_EQ(enc->config().num_heads, 3);
  EXPECT_EQ(enc->config().inner_dim(), 12);
  dit_test::expect_close((*enc)(g.at("ids"), g.at("mask")), g.at("masked"), "masked");
  dit_test::expect_close((*enc)(g.at("ids")), g.at("unmasked"), "unmasked");
  // The mask matters (pads attended or not), so the two goldens must differ.
  EXPECT_GT(dit_test::rel_err(g.at("masked"), g.at("unmasked")), 1e-3);
}

TEST(T5Encoder, Deterministic) {
  auto g = dit_test::golden("t5");
  auto enc = tiny();
  EXPECT_TRUE(at::equal((*enc)(g.at("ids"), g.at("mask")), (*enc)(g.at("ids"), g.at("mask"))));
}

TEST(T5Encoder, SixteenBitKeepsWoInFp32AndStaysClose) {
  auto g = dit_test::golden("t5");
  auto enc = tiny(at::kBFloat16);
  auto out = (*enc)(g.at("ids"), g.at("mask"));
  EXPECT_EQ(out.scalar_type(), at::kBFloat16);
  EXPECT_LT(dit_test::rel_err(out, g.at("masked")), 0.05);
}

TEST(T5Encoder, StrictLoadingListsEveryProblem) {
  auto src = gb::load_safetensors(dit_test::golden_dir("t5") + "/text_encoder/model.safetensors");
  src.erase("encoder.block.1.layer.0.SelfAttention.k.weight");
  src["encoder.block.0.layer.1.DenseReluDense.wo.weight"] = at::zeros({16, 23});
  src["encoder.block.9.extra.weight"] = at::zeros({2});
  auto cfg = T5Config::from_json(dit_test::golden_dir("t5") + "/text_encoder/config.json");
  WeightStore ws(src, "t5-test", at::kFloat, at::kCPU);
  T5Encoder enc(ws, cfg);
  try {
    ws.finish();
    FAIL() << "expected a UserError";
  } catch (const gb::UserError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("encoder.block.1.layer.0.SelfAttention.k.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("encoder.block.0.layer.1.DenseReluDense.wo.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("encoder.block.9.extra.weight"), std::string::npos) << m;
  }
}

TEST(T5Encoder, TiedEmbeddingAloneIsAccepted) {
  auto src = gb::load_safetensors(dit_test::golden_dir("t5") + "/text_encoder/model.safetensors");
  src.erase("shared.weight");
  auto cfg = T5Config::from_json(dit_test::golden_dir("t5") + "/text_encoder/config.json");
  WeightStore ws(src, "t5-test", at::kFloat, at::kCPU);
  T5Encoder enc(ws, cfg);
  EXPECT_NO_THROW(ws.finish());
  auto g = dit_test::golden("t5");
  dit_test::expect_close(enc(g.at("ids"), g.at("mask")), g.at("masked"), "masked");
}

TEST(T5Encoder, UnsupportedConfigIsAUserErrorNamingTheFile) {
  auto dir = fs::temp_directory_path() / "gb_t5_cfg_test";
  fs::create_directories(dir);
  auto p = (dir / "config.json").string();
  std::ofstream(p) << R"({"d_model": 8, "d_kv": 2, "d_ff": 8, "num_layers": 1, "num_heads": 4,
                          "feed_forward_proj": "relu"})";
  try {
    T5Config::from_json(p);
    FAIL();
  } catch (const gb::UserError& e) {
    EXPECT_NE(std::string(e.what()).find(p), std::string::npos);
  }
  std::ofstream(p) << R"({"d_model": 8})";
  EXPECT_THROW(T5Config::from_json(p), gb::UserError);
  fs::remove_all(dir);
}
