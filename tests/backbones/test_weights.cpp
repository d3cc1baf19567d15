#include "../test_support.h"
#include "harness/backbones/nn.h"
#include "harness/backbones/weights.h"
#include "harness/core/errors.h"
#include "harness/io/safetensors.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace fs = std::filesystem;
using gb::bb::WeightStore;

namespace {

fs::path temp_dir(const std::string& name) {
  auto p = fs::temp_directory_path() / ("gb_backbones_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

}  // namespace

TEST(WeightStore, HierarchicalNamesAreCheckpointKeys) {
  std::map<std::string, at::Tensor> t{{"a.b.weight", at::ones({3, 2})}, {"a.b.bias", at::zeros({3})}};
  WeightStore ws(t, "mem", at::kDouble, at::Device(at::kCPU));
  gb::bb::Linear lin(ws.sub("a").sub("b"), 2, 3);
  EXPECT_EQ(lin.weight.scalar_type(), at::kDouble);
  EXPECT_NO_THROW(ws.finish());
  auto y = lin(at::ones({1, 2}, at::kDouble));
  EXPECT_DOUBLE_EQ(y[0][0].item<double>(), 2.0);
}

TEST(WeightStore, OneErrorListsMissingMisshapedAndUnexpected) {
  auto dir = temp_dir("strict");
  auto file = (dir / "model.safetensors").string();
  gb::save_safetensors(
      file, std::map<std::string, at::Tensor>{
                {"lin.weight", at::ones({4, 2})}, {"extra.thing", at::ones({1})}, {"decoder.ignored", at::ones({1})}});
  auto ckpt = std::make_shared<gb::SafetensorsCheckpoint>(gb::SafetensorsCheckpoint::open(file));
  WeightStore ws(ckpt, file, at::kFloat, at::Device(at::kCPU));
  ws.ignore_prefix("decoder.");
  gb::bb::Linear lin(ws.sub("lin"), 2, 3);  // weight is [4, 2] on disk, bias absent
  auto msg = gb::test::user_error_message([&] { ws.finish(); });
  EXPECT_NE(msg.find(file), std::string::npos) << msg;
  EXPECT_NE(msg.find("1 missing, 1 mis-shaped, 1 unexpected"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing lin.bias [3]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("mis-shaped lin.weight is [4, 2], expected [3, 2]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected extra.thing [1]"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("decoder.ignored"), std::string::npos) << msg;
  fs::remove_all(dir);
}

TEST(WeightStore, LegacyAliasesServeCurrentNames) {
  std::map<std::string, at::Tensor> t{{"attn.query.weight", at::ones({4, 4, 1, 1})},
                                      {"attn.query.bias", at::zeros({4})}};
  WeightStore ws(t, "mem", at::kFloat, at::Device(at::kCPU));
  auto a = ws.sub("attn");
  a.add_alias("to_q.weight", "query.weight");
  a.add_alias("to_q.bias", "query.bias");
  gb::bb::Linear lin(a.sub("to_q"), 4, 4);
  EXPECT_EQ(lin.weight.sizes(), (at::IntArrayRef{4, 4}));
  EXPECT_NO_THROW(ws.finish());
}

TEST(WeightStore, OpenComponentPrefersPlainThenFp16Variant) {
  auto dir = temp_dir("variant");
  fs::create_directories(dir / "unet");
  gb::save_safetensors((dir / "unet" / "diffusion_pytorch_model.fp16.safetensors").string(),
                       std::map<std::string, at::Tensor>{{"w", at::ones({2}, at::kHalf)}});
  auto ws = WeightStore::open_component(dir.string(), "unet", at::kFloat, at::Device(at::kCPU));
  auto w = ws.get("w", {2});
  EXPECT_EQ(w.scalar_type(), at::kFloat);
  EXPECT_NE(ws.origin().find("fp16"), std::string::npos);
  auto msg = gb::test::user_error_message(
      [&] { WeightStore::open_component(dir.string(), "vae", at::kFloat, at::Device(at::kCPU)); });
  EXPECT_NE(msg.find("vae"), std::string::npos) << msg;
  fs::remove_all(dir);
}

TEST(WeightStore, RandomInitIsSeededPerKey) {
  auto a = WeightStore::random_init(3, 0.1, at::kFloat, at::Device(at::kCPU));
  auto b = WeightStore::random_init(3, 0.1, at::kFloat, at::Device(at::kCPU));
  auto x1 = a.get("x.weight", {5});
  a.get("y.weight", {2});
  b.get("y.weight", {2});
  auto x2 = b.get("x.weight", {5});
  EXPECT_TRUE(at::equal(x1, x2));
  auto n = a.get("norm.weight", {100});
  EXPECT_NEAR(n.mean().item<double>(), 1.0, 0.05);
}
