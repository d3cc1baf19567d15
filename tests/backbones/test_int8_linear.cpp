// LLM.int8 (bitsandbytes 0.45.0 Linear8bitLt inference numerics): every intermediate against the independent
// numpy re-statement in tools/parity/int8_goldens.py, the exact int8 GEMM, the int8 T5 encoder against the same
// script's T5, weight bytes, and Flux's t5_int8 default.
#include "dit_test_util.h"
#include "tiny_dit.h"

#include "harness/backbones/registry.h"
#include "harness/backbones/flux_backbone.h"
#include "harness/backbones/int8_linear.h"
#include "harness/backbones/memory_plan.h"
#include "harness/backbones/t5_encoder.h"
#include "harness/core/torch_compat.h"

#include <filesystem>

using namespace gb::bb;
namespace fs = std::filesystem;

namespace {
std::string int8_dir() { return std::string(GB_SOURCE_DIR) + "/tests/backbones/goldens/int8"; }
std::map<std::string, at::Tensor> golden(const std::string& file) {
  return gb::load_safetensors(int8_dir() + "/" + file);
}
void expect_equal(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  ASSERT_EQ(got.scalar_type(), want.scalar_type()) << what;
  // NaN == NaN here (an fp16 input holding inf gives NaN outputs, in bitsandbytes too).
  const at::Tensor gd = got.to(at::kDouble), wd = want.to(at::kDouble);
  EXPECT_TRUE(at::equal(gd.isnan(), wd.isnan())) << what << ": NaN positions differ";
  const at::Tensor both = gd.isnan().logical_or(wd.isnan());
  EXPECT_TRUE(at::equal(gd.masked_fill(both, 0), wd.masked_fill(both, 0)))
      << what << ": max |diff| " << (gd - wd).masked_fill(both, 0).abs().max().item<double>();
}
}  // namespace

TEST(Int8Linear, EveryIntermediateMatchesTheReferenceForEachInputDtype) {
  auto g = golden("linear.safetensors");
  for (auto [name, dt] : {std::pair{"bf16", at::kBFloat16}, {"fp16", at::kHalf}, {"fp32", at::kFloat}}) {
    const std::string p = std::string(name) + ".";
    SCOPED_TRACE(name);
    const at::Tensor x = g.at("x").to(dt), w = g.at("w").to(dt);
    Int8Linear lin(w);
    expect_equal(lin.cb(), g.at(p + "cb"), p + "cb");
    expect_equal(lin.scb(), g.at(p + "scb"), p + "scb");
    auto qa = int8_vectorwise_quant(x.to(at::kHalf), kLlmInt8Threshold);
    expect_equal(qa.q, g.at(p + "ca"), p + "ca");
    expect_equal(qa.stats, g.at(p + "sca"), p + "sca");
    expect_equal(qa.outlier_cols, g.at(p + "cols"), p + "cols");
    auto acc = gb::compat::int8_matmul(qa.q, lin.cb());
    expect_equal(acc, g.at(p + "acc"), p + "acc");
    expect_equal(int8_mm_dequant(acc, qa.stats, lin.scb()), g.at(p + "dequant"), p + "dequant");
    if (dt == at::kFloat) {
      // fp32 output: the outlier matmul's fp32 sum order (cuBLAS / ATen / the float64 reference) shows.
      dit_test::expect_close(lin(x), g.at(p + "y"), p + "y", 1e-6);
    } else {
      expect_equal(lin(x), g.at(p + "y"), p + "y");
    }
  }
}

TEST(Int8Linear, OutlierBookkeepingOnTheHandBuiltRows) {
  auto g = golden("linear.safetensors");
  auto qa = int8_vectorwise_quant(g.at("x").to(at::kBFloat16).to(at::kHalf), kLlmInt8Threshold);
  // 6.0 exactly is an outlier (>=), 5.96875 is not and sets row 1's scale; 70000 (inf in fp16) and -7.25 are.
  std::vector<int64_t> cols(qa.outlier_cols.data_ptr<int64_t>(),
                            qa.outlier_cols.data_ptr<int64_t>() + qa.outlier_cols.numel());
  for (int64_t c : {4, 13, 17, 30}) EXPECT_NE(std::find(cols.begin(), cols.end(), c), cols.end()) << c;
  EXPECT_EQ(std::find(cols.begin(), cols.end(), 9), cols.end());
  EXPECT_FLOAT_EQ(qa.stats[1].item<float>(), 5.96875f);
  EXPECT_EQ(qa.q[1][9].item<int8_t>(), 127);
  EXPECT_EQ(qa.stats[3].item<float>(), 0.0f);  // all-zero row
  EXPECT_EQ(qa.stats[5].item<float>(), 0.0f);  // outliers and zeros only
  EXPECT_EQ(qa.q.index_select(1, qa.outlier_cols).abs().sum().item<int64_t>(), 0);
  EXPECT_EQ(qa.q.select(0, 3).abs().sum().item<int64_t>(), 0);
  // The outlier path matters: dropping it changes the output.
  Int8Linear lin(g.at("w").to(at::kBFloat16));
  Int8Linear no_outliers(lin.cb(), lin.scb(), 0.0);
  EXPECT_FALSE(at::equal(no_outliers(g.at("x").to(at::kBFloat16)), g.at("bf16.y")));
  // The fp16-saturating 70000 reaches the output through the bf16 outlier matmul, finite.
  EXPECT_TRUE(at::isfinite(lin(g.at("x").to(at::kBFloat16))).all().item<bool>());
}

TEST(Int8Linear, NoOutlierAndSingleRowCases) {
  auto g = golden("linear.safetensors");
  Int8Linear lin(g.at("w").to(at::kBFloat16));
  expect_equal(lin(g.at("noout.x")), g.at("noout.y"), "no outliers");
  expect_equal(lin(g.at("row1.x")), g.at("row1.y"), "single row");
  // 3-D input: rows of all leading dims together, output shape [..., N].
  auto x3 = g.at("row1.x").view({1, 1, -1});
  EXPECT_EQ(lin(x3).sizes(), (std::vector<int64_t>{1, 1, lin.out_features()}));
  EXPECT_EQ(lin.nbytes(), lin.out_features() * lin.in_features() + 4 * lin.out_features());
}

TEST(Int8Matmul, ExactAgainstInt64) {
  auto g = golden("gemm.safetensors");
  auto got = gb::compat::int8_matmul(g.at("a"), g.at("b"));
  EXPECT_EQ(got.scalar_type(), at::kInt);
  expect_equal(got.to(at::kLong), g.at("prod"), "int8 gemm");
  // Random shapes on both sides of the 1024 chunk against an in-test int64 product.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  for (int64_t K : {1, 4, 1023, 1024, 1025, 3000}) {
    auto a = at::randint(-128, 128, {5, K}, gen, at::TensorOptions().dtype(at::kChar));
    auto b = at::randint(-128, 128, {6, K}, gen, at::TensorOptions().dtype(at::kChar));
    auto want = at::matmul(a.to(at::kDouble), b.to(at::kDouble).t()).to(at::kLong);  // exact: |sum| < 2^53
    EXPECT_TRUE(at::equal(gb::compat::int8_matmul(a, b).to(at::kLong), want)) << "K=" << K;
  }
}

namespace {
std::unique_ptr<T5Encoder> tiny_t5(bool int8) {
  return T5Encoder::load(int8_dir() + "/t5", "text_encoder", at::kBFloat16, at::kCPU, int8);
}
}  // namespace

TEST(T5Int8, MatchesTheReferenceT5LoadedIn8Bit) {
  auto g = golden("t5/golden.safetensors");
  auto enc = tiny_t5(true);
  ASSERT_TRUE(enc->int8());
  auto got = (*enc)(g.at("ids"));  // both sequences in one call: encoded one at a time inside
  EXPECT_EQ(got.scalar_type(), at::kBFloat16);
  const double e = dit_test::rel_err(got, g.at("int8_bf16"));
  EXPECT_LE(e, 1e-6) << "int8 T5 vs reference";  // bit-identical here (PyTorch 2.11 both sides)
  // The int8 model is measurably different from the bf16 one (so the comparison above can fail) ...
  EXPECT_GT(dit_test::rel_err(g.at("int8_bf16"), g.at("dense_bf16")), 20 * std::max(e, 1e-4));
  // ... and the bf16 (not int8) encoder still matches its own reference.
  EXPECT_LE(dit_test::rel_err((*tiny_t5(false))(g.at("ids")), g.at("dense_bf16")), 2e-3);
  // Batch independence: a sequence encodes the same alone and in a batch.
  EXPECT_TRUE(at::equal((*enc)(g.at("ids").slice(0, 1, 2)), got.slice(0, 1, 2)));
}

TEST(T5Int8, WeightBytes) {
  auto dense = tiny_t5(false), q = tiny_t5(true);
  const auto& c = dense->config();
  EXPECT_EQ(dense->weight_bytes(), T5Encoder::weight_bytes(c, at::kBFloat16, false));
  EXPECT_EQ(q->weight_bytes(), T5Encoder::weight_bytes(c, at::kBFloat16, true));
  // q, k, v, o, wi_0, wi_1 go from 2 bytes to 1 byte per parameter (+ a float per output row); the rest is kept.
  const int64_t d = c.d_model, in = c.inner_dim(), ff = c.d_ff;
  const int64_t params = c.num_layers * (4 * d * in + 2 * ff * d), rows = c.num_layers * (3 * in + d + 2 * ff);
  EXPECT_EQ(dense->weight_bytes() - q->weight_bytes(), params - 4 * rows);
  // FLUX.1-dev's text_encoder_2 (T5 v1.1 XXL): `wo` is fp32 in both (transformers _keep_in_fp32_modules).
  auto xxl = T5Config::v1_1_xxl();
  EXPECT_EQ(T5Encoder::weight_bytes(xxl, at::kBFloat16, false), int64_t{11537887232});
  EXPECT_EQ(T5Encoder::weight_bytes(xxl, at::kBFloat16, true), int64_t{7917547520});
}

TEST(T5Int8, ToAnotherDeviceKeepsTheQuantizedLayers) {
  Int8Linear lin(golden("linear.safetensors").at("w"));
  auto moved = lin.to(at::kCPU);
  EXPECT_TRUE(at::equal(moved.cb(), lin.cb()));
  EXPECT_TRUE(at::equal(moved.scb(), lin.scb()));
  EXPECT_EQ(moved.threshold(), lin.threshold());
}

namespace {
struct FluxInt8 : ::testing::Test {
  fs::path root = fs::temp_directory_path() / "gb_tiny_flux_int8_test";
  void SetUp() override {
    fs::remove_all(root);
    tiny::write_tiny_flux(root);
  }
  void TearDown() override { fs::remove_all(root); }
  std::unique_ptr<gb::Backbone> open(std::optional<at::ScalarType> dt, std::optional<bool> opt) {
    BackboneOptions o;
    o.image_size = 16;
    o.tokenizer = std::make_shared<tiny::WordTokenizer>("t5", 6, false, 40);
    o.dtype = dt;
    o.t5_int8 = opt;
    auto bb = open_backbone(root.string(), o);
    dynamic_cast<FluxBackbone&>(*bb).set_clip_tokenizer(std::make_shared<tiny::WordTokenizer>("clip", 12, true, 990));
    return bb;
  }
  bool t5_int8(std::optional<at::ScalarType> dt, std::optional<bool> opt) {
    auto bb = open(dt, opt);
    auto* t5 = dynamic_cast<FluxBackbone&>(*bb).text_encoder_2();
    EXPECT_NE(t5, nullptr);
    return t5 && t5->int8();
  }
  gb::Capture capture(std::optional<at::ScalarType> dt, std::optional<bool> opt) {
    gb::BackboneBatch b;
    b.images.push_back(tiny::random_image(16, 24, 200));
    b.prompts.push_back("a cat and a dog");
    b.ids.push_back("f0");
    b.seed = 9;
    gb::CaptureSpec s;
    s.add("vit-block1-cross-map");
    return open(dt, opt)->capture(b, s);
  }
};
}  // namespace

TEST_F(FluxInt8, DefaultFollowsTheComputeDtypeAndTheOptionOverrides) {
  EXPECT_FALSE(t5_int8(std::nullopt, std::nullopt));  // CPU default dtype: fp32
  EXPECT_FALSE(t5_int8(at::kFloat, std::nullopt));
  EXPECT_TRUE(t5_int8(at::kBFloat16, std::nullopt));
  EXPECT_FALSE(t5_int8(at::kBFloat16, false));
  EXPECT_TRUE(t5_int8(at::kFloat, true));
}

TEST_F(FluxInt8, Bf16Int8CaptureStaysNearFp32AndDiffersFromBf16) {
  auto ref = capture(at::kFloat, false), q = capture(at::kBFloat16, std::nullopt), d = capture(at::kBFloat16, false);
  for (const auto& [k, v] : ref.tensors) {
    EXPECT_LT(dit_test::rel_err(q.tensors.at(k), v), 0.1) << k;
    EXPECT_FALSE(at::equal(q.tensors.at(k), d.tensors.at(k))) << k;  // the T5 path really changed
  }
}

namespace {
int64_t planned_t5_bytes(const std::optional<std::string>& folder, bool int8) {
  for (const auto& w : plan_weights("flux", folder, at::kBFloat16, int8))
    if (w.name == "text_encoder_2") return w.bytes;
  ADD_FAILURE() << "no text_encoder_2 in the plan";
  return -1;
}
}  // namespace

// The memory planner's T5 row (counted from a description of this layout) against real int8 loads.
TEST_F(FluxInt8, MemoryPlanCountsTheLoadedInt8Weights) {
  for (bool int8 : {false, true}) {
    auto bb = open(at::kBFloat16, int8);
    const auto* t5 = dynamic_cast<FluxBackbone&>(*bb).text_encoder_2();
    ASSERT_NE(t5, nullptr);
    EXPECT_EQ(planned_t5_bytes(root.string(), int8), t5->weight_bytes()) << "int8 " << int8;
    EXPECT_EQ(planned_t5_bytes(std::nullopt, int8), T5Encoder::weight_bytes(T5Config::v1_1_xxl(), at::kBFloat16, int8));
  }
}
