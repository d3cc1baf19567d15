#include "harness/core/errors.h"
#include "harness/backbones/synthetic_backbone.h"
#include "harness/backbones/synthetic_scene.h"
#include "tests/backbones/simple_tokenizer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

using namespace gb::bb;

namespace {
std::shared_ptr<const gb::TextTokenizer> tok() { return std::make_shared<gb::test::SimpleTokenizer>(); }

gb::CaptureSpec full_spec(const SyntheticBackboneConfig& c) {
  gb::CaptureSpec spec;
  for (const auto& l : c.layers) {
    spec.add(l.block + "-map");
    spec.add(l.block + "-special-value");
    spec.add(l.block + "-special-post-value");
    spec.add(l.block + "-special-weight");
    spec.add(l.block.substr(0, l.block.size() - 5) + "self-map");
  }
  spec.add(c.ref_block + "-q");
  spec.self_map_head_mean = true;
  return spec;
}

// Every tensor full_spec asks for, for the scene of image `id`.
gb::TensorMap capture_all(const SyntheticBackbone& bb, const std::string& id) {
  return bb.capture_one(id + ".jpg", make_scene(id, bb.config().world).caption(), full_spec(bb.config()));
}
}  // namespace

TEST(SyntheticScene, DeterministicFromIdAndConsistent) {
  SyntheticWorldOptions opt;
  const Scene a = make_scene("synth_000003", opt), b = make_scene("synth_000003", opt);
  EXPECT_EQ(a.caption(), b.caption());
  EXPECT_TRUE(at::equal(render_image(a, 0), render_image(b, 0)));
  EXPECT_NE(make_scene("synth_000004", opt).caption() + std::to_string(make_scene("synth_000004", opt).width),
            a.caption() + std::to_string(a.width) + "x");
  const at::Tensor label = render_label(a);
  EXPECT_EQ(label.size(0), a.height);
  EXPECT_EQ(label.size(1), a.width);
  // Every object class is in the label, with a 255 boundary; nothing else but background.
  for (const auto& o : a.objects) EXPECT_GT((label == o.class_id).sum().item<int64_t>(), 0);
  EXPECT_GT((label == 255).sum().item<int64_t>(), 0);
  const at::Tensor m = concept_masks(a, a.concepts(), 8);
  EXPECT_TRUE(at::allclose(m.sum(0), at::ones({8, 8})));  // concepts partition the image
  // The caption names every object with a captioner synonym and ends with the stuff words.
  std::string cap = a.caption();
  for (char& ch : cap) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (const auto& o : a.objects) EXPECT_NE(cap.find(o.word), std::string::npos) << cap;
  EXPECT_EQ(cap.back(), '.');
}

TEST(SyntheticBackbone, ShapesAndInvariants) {
  SyntheticBackbone bb(SyntheticBackboneConfig::sd15_like(), tok());
  const Scene s = make_scene("synth_000001", bb.config().world);
  const gb::TensorMap m = capture_all(bb, "synth_000001");
  const std::string blk = "up-level2-repeat1-vit-block0-cross";
  const at::Tensor A = m.at(blk + "-map");
  ASSERT_EQ(A.sizes(), (std::vector<int64_t>{4, 256, 77}));
  EXPECT_TRUE(at::allclose(A.sum(-1), at::ones({4, 256})));
  // The start token absorbs most of the mass, unevenly across pixels.
  const at::Tensor sos = A.select(2, 0);
  EXPECT_GT(sos.mean().item<double>(), 0.4);
  EXPECT_GT((sos.max() - sos.min()).item<double>(), 0.1);
  // Post-values are the attention output: concat_h A_h V_h.
  const at::Tensor V = m.at(blk + "-special-value");
  const at::Tensor Z = m.at(blk + "-special-post-value");
  EXPECT_TRUE(at::allclose(Z.narrow(1, 8, 8), at::matmul(A[1], V[1]), 1e-5, 1e-6));
  EXPECT_EQ(m.at(blk + "-special-weight").sizes(), (std::vector<int64_t>{8, 32}));
  const at::Tensor S = m.at("up-level3-repeat0-vit-block0-self-map");
  ASSERT_EQ(S.sizes(), (std::vector<int64_t>{1, 1024, 1024}));
  EXPECT_TRUE(at::allclose(S.sum(-1), at::ones({1, 1024}), 1e-4, 1e-5));
  EXPECT_EQ(m.at(blk + "-q").sizes(), (std::vector<int64_t>{16, 16, 16}));
  // Not asked, not captured.
  gb::CaptureSpec small;
  small.add(blk + "-map");
  EXPECT_EQ(bb.capture_one("synth_000001.jpg", s.caption(), small).size(), 1u);
  gb::CaptureSpec bad;
  bad.add("no-such-block-cross-map");
  EXPECT_THROW(bb.capture_one("synth_000001.jpg", s.caption(), bad), gb::UserError);
}

TEST(SyntheticBackbone, ReliableHeadsContributeMore) {
  SyntheticBackbone bb(SyntheticBackboneConfig::sd15_like(), tok());
  const gb::TensorMap m = capture_all(bb, "synth_000002");
  const std::string blk = "mid-vit-block0-cross";
  const at::Tensor Z = m.at(blk + "-special-post-value"), W = m.at(blk + "-special-weight");
  // Output contribution norm per head vs. the head's out-weight gain (which encodes its reliability).
  std::vector<double> norm, gain;
  for (int h = 0; h < 4; ++h) {
    norm.push_back(at::matmul(Z.narrow(1, h * 8, 8), W.narrow(1, h * 8, 8).t()).norm().item<double>());
    gain.push_back(W[0][h * 8].item<double>());
  }
  const auto hi = std::max_element(gain.begin(), gain.end()) - gain.begin();
  const auto lo = std::min_element(gain.begin(), gain.end()) - gain.begin();
  EXPECT_GT(norm[hi], 2 * norm[lo]);
}

TEST(SyntheticBackbone, BatchEqualsSingle) {
  SyntheticBackbone bb(SyntheticBackboneConfig::sd15_like(), tok());
  gb::CaptureSpec spec;
  spec.add("mid-vit-block0-cross-map");
  spec.add("mid-vit-block0-self-map");
  gb::BackboneBatch batch;
  for (int i = 0; i < 3; ++i) {
    const std::string id = synthetic_id(i);
    batch.images.push_back(at::zeros({4, 4, 3}, at::kByte));
    batch.prompts.push_back(make_scene(id, bb.config().world).caption());
    batch.ids.push_back(id + ".jpg");
  }
  const gb::Capture all = bb.capture(batch, spec);
  gb::BackboneBatch one;
  one.images = {batch.images[2]};
  one.prompts = {batch.prompts[2]};
  one.ids = {batch.ids[2]};
  const gb::Capture single = bb.capture(one, spec);
  EXPECT_TRUE(
      at::equal(all.tensors.at("mid-vit-block0-cross-map")[2], single.tensors.at("mid-vit-block0-cross-map")[0]));
  EXPECT_TRUE(at::equal(all.tensors.at("mid-vit-block0-self-map")[2], single.tensors.at("mid-vit-block0-self-map")[0]));
}

#include "harness/io/image_io.h"

#include <filesystem>
#include <fstream>

TEST(SyntheticDataset, WritesTheRealVocLayout) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / "gb_test_synth_voc";
  fs::remove_all(root);
  SyntheticWorldOptions opt;
  const auto ids = write_synthetic_voc(root.string(), 3, opt);
  ASSERT_EQ(ids.size(), 3u);
  for (const auto& id : ids) {
    EXPECT_TRUE(fs::exists(root / "JPEGImages" / (id + ".jpg")));
    EXPECT_TRUE(fs::exists(root / "Annotations" / (id + ".xml")));
    const gb::ImageHeader h = gb::read_image_header((root / "SegmentationClass" / (id + ".png")).string());
    EXPECT_TRUE(h.palette);
    const at::Tensor label = gb::read_label_png((root / "SegmentationClass" / (id + ".png")).string());
    EXPECT_TRUE(at::equal(label, render_label(make_scene(id, opt))));
    const at::Tensor img = gb::read_image_rgb((root / "JPEGImages" / (id + ".jpg")).string());
    EXPECT_EQ(img.size(0), label.size(0));
  }
  std::ifstream caps(root / "captions.json");
  std::string text((std::istreambuf_iterator<char>(caps)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"synth_000000.jpg\":{\"caption\":"), std::string::npos) << text;
  std::ifstream train(root / "ImageSets/Segmentation/train.txt");
  std::string first;
  train >> first;
  EXPECT_EQ(first, "synth_000000");
  fs::remove_all(root);
}
