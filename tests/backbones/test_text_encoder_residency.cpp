// text_encoder residency of the T5 backbones (BackboneOptions::text_encoder): keep, offload and free give the same
// captures; free releases T5 (and Flux's CLIP, SD3.5's CLIP-L and CLIP-G) once the prompts are encoded, serves captures
// from the host-memory cache, and refuses prompts it never encoded with a clear error. Also T5Encoder::to /
// weight_bytes.
#include "dit_fixtures.h"
#include "dit_test_util.h"

#include "harness/backbones/registry.h"
#include "harness/backbones/flux_backbone.h"
#include "harness/backbones/pixart_backbone.h"
#include "harness/backbones/text_cache.h"
#include "harness/core/errors.h"
#include "tests/test_support.h"

using namespace gb::bb;
namespace fs = std::filesystem;

namespace {

gb::BackboneBatch make_batch(const std::vector<std::string>& prompts, int salt) {
  return dit_test::prompt_batch(
      prompts, static_cast<int>(prompts.size()),
      [salt](int i) { return tiny::random_image(16 + i, 20, static_cast<uint64_t>(300 + salt + i)); },
      "r" + std::to_string(salt) + "_", 3);
}

void expect_same_capture(const gb::Capture& a, const gb::Capture& b) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [k, t] : a.tensors) {
    ASSERT_TRUE(b.tensors.count(k)) << k;
    EXPECT_TRUE(at::equal(t, b.tensors.at(k))) << k;
  }
  ASSERT_EQ(a.inputs.size(), b.inputs.size());
  for (const auto& [k, t] : a.inputs) EXPECT_TRUE(at::equal(t, b.inputs.at(k))) << k;
}

using gb::test::user_error_message;

struct FluxResidency : tiny::FluxFolderTest {
  std::unique_ptr<FluxBackbone> open(TextEncoderResidency mode) { return open_flux(mode); }
  static gb::CaptureSpec spec() {
    return dit_test::head_mean_spec({"vit-block0-cross-map", "vit-block3-cross-map", "vit-block1-self-map"});
  }
};

struct PixArtResidency : tiny::PixArtFolderTest {
  std::unique_ptr<PixArtSigmaBackbone> open(TextEncoderResidency mode) { return open_pixart(mode); }
  static gb::CaptureSpec spec() {
    return dit_test::head_mean_spec({"vit-block0-cross-map", "vit-block1-cross-map", "vit-block1-self-map"});
  }
};

struct Sd3Residency : tiny::Sd3FolderTest {
  std::unique_ptr<Sd3Backbone> open(TextEncoderResidency mode) { return open_sd3(mode); }
  static gb::CaptureSpec spec() {
    return dit_test::head_mean_spec(
        {"vit-block0-cross-map", "vit-block1-cross-map", "vit-block1-self-map", "vit-block0-attn-out"});
  }
};

}  // namespace

TEST(TextEncoderResidency, ParsesTheThreeModes) {
  EXPECT_EQ(parse_text_encoder_residency("keep"), TextEncoderResidency::keep);
  EXPECT_EQ(parse_text_encoder_residency("offload"), TextEncoderResidency::offload);
  EXPECT_EQ(parse_text_encoder_residency("free"), TextEncoderResidency::free);
  EXPECT_EQ(to_string(TextEncoderResidency::offload), "offload");
  EXPECT_NE(user_error_message([] { parse_text_encoder_residency("cpu"); }).find("keep, offload or free"),
            std::string::npos);
}

TEST(PromptConditioningCache, StoresRowsGathersAndChunksPending) {
  PromptConditioningCache c;
  auto pend = c.pending({"a", "b", "a", "c", "d"}, 2);
  ASSERT_EQ(pend.size(), 2u);
  EXPECT_EQ(pend[0], (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(pend[1], (std::vector<std::string>{"c", "d"}));
  at::Tensor x = at::arange(12, at::kFloat).view({2, 3, 2});
  at::Tensor m = at::tensor({1, 0}, at::kLong);
  c.store({"a", "b"}, {{"x", x}, {"m", m}});
  EXPECT_EQ(c.size(), 2);
  EXPECT_EQ(c.bytes(), 2 * (6 * 4 + 8));
  x.zero_();  // rows own their storage
  auto g = c.gather({"b", "a", "b"}, at::kCPU, "test");
  EXPECT_TRUE(at::equal(g.at("x")[0], at::arange(6, 12, at::kFloat).view({3, 2})));
  EXPECT_TRUE(at::equal(g.at("x")[1], at::arange(6, at::kFloat).view({3, 2})));
  EXPECT_TRUE(at::equal(g.at("m"), at::tensor({0, 1, 0}, at::kLong)));
  EXPECT_EQ(c.pending({"a", "c", "b"}, 4), (std::vector<std::vector<std::string>>{{"c"}}));
  const std::string msg = user_error_message([&] { c.gather({"a", "zebra"}, at::kCPU, "flux"); });
  EXPECT_NE(msg.find("flux:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"zebra\""), std::string::npos) << msg;
}

TEST_F(FluxResidency, FreeAfterPrepareMatchesKeepAndReleasesTheEncoders) {
  auto keep = open(TextEncoderResidency::keep);
  auto free = open(TextEncoderResidency::free);
  const std::vector<std::string> prompts = {"a cat and a dog", "sky", "tree road", "sky"};
  ASSERT_TRUE(free->text_encoders_loaded());
  free->prepare_prompts(prompts, 2);
  EXPECT_FALSE(free->text_encoders_loaded());
  EXPECT_EQ(free->text_cache().size(), 3);
  // Each cached prompt: T5 [T, 4096-analogue] + pooled, in the model dtype.
  for (const auto& batch : {make_batch({"a cat and a dog", "sky"}, 0), make_batch({"tree road"}, 1)})
    expect_same_capture(keep->capture(batch, spec()), free->capture(batch, spec()));
  // A prompt never encoded, and token-id replay, need the freed encoders: one clear error each.
  const std::string msg = user_error_message([&] { free->capture(make_batch({"a new prompt"}, 2), spec()); });
  EXPECT_NE(msg.find("text_encoder: free"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"a new prompt\""), std::string::npos) << msg;
  auto ids = at::zeros({1, free->text_length()}, at::kLong);
  auto clip_ids = at::zeros({1, 12}, at::kLong);
  EXPECT_NE(user_error_message([&] {
              free->capture_ids({tiny::random_image(16, 16, 1)}, ids, clip_ids, {"x"}, 1, spec());
            }).find("freed"),
            std::string::npos);
  // Cached prompts can still be prepared again (no-op); new ones cannot.
  free->prepare_prompts({"sky"}, 2);
  EXPECT_NE(user_error_message([&] { free->prepare_prompts({"sky", "moon"}, 2); }).find("\"moon\""), std::string::npos);
}

TEST_F(FluxResidency, FreeWithoutPrepareEncodesTheFirstBatchThenServesItFromTheCache) {
  auto keep = open(TextEncoderResidency::keep);
  auto free = open(TextEncoderResidency::free);
  const auto batch = make_batch({"tree road", "a cat and a dog"}, 4);
  const auto want = keep->capture(batch, spec());
  expect_same_capture(want, free->capture(batch, spec()));
  EXPECT_FALSE(free->text_encoders_loaded());
  expect_same_capture(want, free->capture(batch, spec()));  // again, from the host cache
  EXPECT_FALSE(user_error_message([&] { free->capture(make_batch({"sky"}, 5), spec()); }).empty());
}

TEST_F(FluxResidency, OffloadMatchesKeep) {
  auto keep = open(TextEncoderResidency::keep);
  auto off = open(TextEncoderResidency::offload);
  EXPECT_TRUE(off->text_encoder()->device().is_cpu());  // parked in host memory (here also the compute device)
  const auto batch = make_batch({"sky", "tree road"}, 6);
  expect_same_capture(keep->capture(batch, spec()), off->capture(batch, spec()));
  EXPECT_TRUE(off->text_encoders_loaded());
}

TEST_F(PixArtResidency, FreeAfterPrepareMatchesKeepIncludingTheMask) {
  auto keep = open(TextEncoderResidency::keep);
  auto free = open(TextEncoderResidency::free);
  // Encoded in the same groups as the captures below: a GEMM's rounding may depend on its batch size (on the
  // CPU the padded rows of T5's output differ by ~1e-7 between batch 1 and 2; they are masked out of every map).
  free->prepare_prompts({"tree", "A Cat, a dog", "sky road"}, 2);
  EXPECT_FALSE(free->text_encoders_loaded());
  EXPECT_EQ(free->text_encoder(), nullptr);
  EXPECT_EQ(free->text_cache().size(), 3);
  const auto batch = make_batch({"tree", "A Cat, a dog"}, 7);
  const auto a = keep->capture(batch, spec());
  const auto b = free->capture(batch, spec());
  expect_same_capture(a, b);
  EXPECT_TRUE(at::equal(b.inputs.at("input.encoder_attention_mask"), a.inputs.at("input.encoder_attention_mask")));
  EXPECT_NE(user_error_message([&] { free->capture(make_batch({"moon"}, 8), spec()); }).find("pixart-sigma:"),
            std::string::npos);
}

TEST_F(PixArtResidency, OffloadAndFreeWithoutPrepareMatchKeep) {
  auto keep = open(TextEncoderResidency::keep);
  auto off = open(TextEncoderResidency::offload);
  auto free = open(TextEncoderResidency::free);
  const auto batch = make_batch({"sky road", "tree"}, 9);
  const auto want = keep->capture(batch, spec());
  expect_same_capture(want, off->capture(batch, spec()));
  expect_same_capture(want, free->capture(batch, spec()));
  EXPECT_FALSE(free->text_encoders_loaded());
  EXPECT_TRUE(off->text_encoders_loaded());
}

TEST_F(PixArtResidency, T5CopiesAndCountsItsWeights) {
  auto keep = open(TextEncoderResidency::keep);
  const T5Encoder& t5 = *keep->text_encoder();
  const T5Config& c = t5.config();
  // embedding + relative bias + final norm + per block (2 norms, q/k/v/o, wi_0/wi_1, wo fp32).
  const int64_t d = c.d_model, inner = c.inner_dim(), ff = c.d_ff;
  const int64_t elems_model_dtype = c.vocab_size * d + c.relative_attention_num_buckets * c.num_heads + d +
                                    c.num_layers * (2 * d + 4 * inner * d + 2 * ff * d);
  const int64_t wo = c.num_layers * d * ff;
  EXPECT_EQ(t5.weight_bytes(), (elems_model_dtype + wo) * 4);  // fp32 on the CPU
  const T5Encoder copy = t5.to(at::kCPU);
  EXPECT_EQ(copy.weight_bytes(), t5.weight_bytes());
  auto ids = at::randint(0, c.vocab_size, {2, 7}, at::kLong);
  EXPECT_TRUE(at::equal(copy(ids), t5(ids)));
}

TEST(TextEncoderResidencyRejected, StableDiffusionKeepsClipResident) {
  const fs::path root = fs::temp_directory_path() / "gb_tiny_pixart_residency_reject";
  fs::remove_all(root);
  tiny::write_tiny_pixart(root);
  BackboneOptions o;
  o.image_size = 16;
  o.t5_int8 = true;
  const std::string msg = user_error_message([&] { open_backbone(root.string(), o); });
  EXPECT_NE(msg.find("t5_int8 is a flux option"), std::string::npos) << msg;
  fs::remove_all(root);
}

TEST_F(Sd3Residency, FreeAfterPrepareMatchesKeepAndReleasesTheThreeEncoders) {
  auto keep = open(TextEncoderResidency::keep);
  auto free = open(TextEncoderResidency::free);
  // Encoded in the groups of the captures below (a GEMM's rounding may depend on its batch size).
  free->prepare_prompts({"a cat and a dog", "sky", "tree road"}, 2);
  EXPECT_FALSE(free->text_encoders_loaded());
  EXPECT_EQ(free->text_cache().size(), 3);
  for (const auto& batch : {make_batch({"a cat and a dog", "sky"}, 20), make_batch({"tree road"}, 21)})
    expect_same_capture(keep->capture(batch, spec()), free->capture(batch, spec()));
  const std::string msg = user_error_message([&] { free->capture(make_batch({"moon"}, 22), spec()); });
  EXPECT_NE(msg.find("sd35-medium:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"moon\""), std::string::npos) << msg;
  const auto clip_ids = at::zeros({1, 12}, at::kLong), t5_ids = at::zeros({1, 6}, at::kLong);
  EXPECT_NE(user_error_message([&] {
              free->capture_ids({tiny::random_image(16, 16, 1)}, clip_ids, t5_ids, {"x"}, 1, spec());
            }).find("freed"),
            std::string::npos);
}

TEST_F(Sd3Residency, OffloadAndFreeWithoutPrepareMatchKeep) {
  auto keep = open(TextEncoderResidency::keep);
  auto off = open(TextEncoderResidency::offload);
  auto free = open(TextEncoderResidency::free);
  const auto batch = make_batch({"sky road", "tree"}, 23);
  const auto want = keep->capture(batch, spec());
  expect_same_capture(want, off->capture(batch, spec()));
  expect_same_capture(want, free->capture(batch, spec()));
  EXPECT_FALSE(free->text_encoders_loaded());
  EXPECT_TRUE(off->text_encoders_loaded());
  expect_same_capture(want, free->capture(batch, spec()));  // again, from the host cache
}
