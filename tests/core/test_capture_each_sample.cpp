// gb::capture_each_sample: a batch captured one sample at a time and stacked in place.
#include "harness/core/backbone.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace {

class NoTokenizer : public gb::TextTokenizer {
 public:
  std::string name() const override { return "none"; }
  int64_t max_length() const override { return 4; }
  std::vector<gb::TextToken> encode(const std::string&) const override { return {}; }
};

// Each output depends on the sample (its id and prompt) and, like a real batched GEMM, on the batch size: a
// per-sample capture must never see a batch of more than one.
class BatchSensitive : public gb::Backbone {
 public:
  at::Tensor weight = at::arange(6, at::kFloat).reshape({2, 3});
  std::vector<int64_t> batch_sizes_seen;
  std::string kind() const override { return "test"; }
  std::vector<gb::LayerInfo> list_layers() const override { return {}; }
  const gb::TextTokenizer& tokenizer() const override { return tok_; }
  gb::Capture capture(const gb::BackboneBatch& batch, const gb::CaptureSpec&) override {
    const int64_t B = batch.size();
    batch_sizes_seen.push_back(B);
    gb::Capture c;
    c.batch_size = B;
    at::Tensor maps = at::empty({B, 2, 3});
    at::Tensor lat = at::empty({B, 4});
    for (int64_t b = 0; b < B; ++b) {
      const float v = static_cast<float>(batch.ids[b].size() * 10 + batch.prompts[b].size()) + 0.001f * (B - 1);
      maps[b].fill_(v);
      lat[b].fill_(-v);
    }
    c.tensors["a-map"] = maps;
    c.tensors["a-special-weight"] = weight.as_strided({B, 2, 3}, {0, 3, 1});
    c.inputs["input.latents"] = lat;
    c.stage_seconds["denoiser"] = 1.5;
    return c;
  }

 private:
  NoTokenizer tok_;
};

gb::BackboneBatch batch_of(const std::vector<std::string>& ids) {
  gb::BackboneBatch b;
  for (const auto& id : ids) {
    b.images.push_back(at::zeros({4, 4, 3}, at::kByte));
    b.prompts.push_back("prompt " + id);
    b.ids.push_back(id);
  }
  return b;
}

TEST(CaptureEachSample, StacksSinglesAndKeepsSharedTensorsAliased) {
  BatchSensitive bb;
  const auto batch = batch_of({"a", "bbb", "cc"});
  const gb::Capture c = gb::capture_each_sample(bb, batch, {});
  EXPECT_EQ(bb.batch_sizes_seen, (std::vector<int64_t>{1, 1, 1}));
  EXPECT_EQ(c.batch_size, 3);
  for (int64_t b = 0; b < 3; ++b) {
    const gb::Capture one = bb.capture(batch_of({batch.ids[b]}), {});
    EXPECT_TRUE(at::equal(c.tensors.at("a-map")[b], one.tensors.at("a-map")[0])) << b;
    EXPECT_TRUE(at::equal(c.inputs.at("input.latents")[b], one.inputs.at("input.latents")[0])) << b;
  }
  const at::Tensor& w = c.tensors.at("a-special-weight");
  EXPECT_EQ(w.sizes(), (std::vector<int64_t>{3, 2, 3}));
  EXPECT_EQ(w.stride(0), 0);  // still the resident weight, not three copies
  EXPECT_EQ(w.data_ptr(), bb.weight.data_ptr());
  EXPECT_DOUBLE_EQ(c.stage_seconds.at("denoiser"), 4.5);  // the three forwards' time
}

TEST(CaptureEachSample, ABatchOfOneIsOneCapture) {
  BatchSensitive bb;
  const gb::Capture c = gb::capture_each_sample(bb, batch_of({"x"}), {});
  EXPECT_EQ(bb.batch_sizes_seen, (std::vector<int64_t>{1}));
  EXPECT_EQ(c.tensors.at("a-map").size(0), 1);
}

}  // namespace
