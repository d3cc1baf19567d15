#pragma once
// GoogleTest fixtures over a tiny random-weight PixArt-Sigma, Flux or SD3.5 Medium checkpoint folder (written in SetUp,
// removed in TearDown) with the word tokenizers of tiny_dit.h attached, at 16x16. Shared by the backbone, text-encoder
// residency and cross-map tests.
#include "tiny_dit.h"

#include "harness/backbones/registry.h"
#include "harness/backbones/flux_backbone.h"
#include "harness/backbones/pixart_backbone.h"
#include "harness/backbones/sd3_backbone.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>

namespace gb::bb::tiny {

// What the three fixtures share: the folder $TMPDIR/<name> written by `write` in SetUp and removed in TearDown, a
// T5-like tokenizer of `t5_max_len` tokens and a CLIP-like one, and options() at 16x16 with the T5 tokenizer.
struct TinyFolderTest : ::testing::Test {
  using Writer = std::function<void(const std::filesystem::path&)>;
  TinyFolderTest(const std::string& name, Writer write, int64_t t5_max_len)
      : root(std::filesystem::temp_directory_path() / name),
        t5(std::make_shared<WordTokenizer>("t5", t5_max_len, false, 40)),
        write_(std::move(write)) {}
  std::filesystem::path root;
  std::shared_ptr<WordTokenizer> t5;
  std::shared_ptr<WordTokenizer> clip = std::make_shared<WordTokenizer>("clip", 12, true, 990);
  void SetUp() override {
    std::filesystem::remove_all(root);
    write_(root);
  }
  void TearDown() override { std::filesystem::remove_all(root); }
  BackboneOptions options(TextEncoderResidency mode = TextEncoderResidency::keep) const {
    BackboneOptions o;
    o.image_size = 16;
    o.tokenizer = t5;
    o.text_encoder = mode;
    return o;
  }

 private:
  Writer write_;
};

struct PixArtFolderTest : TinyFolderTest {
  PixArtFolderTest()
      : TinyFolderTest(
            "gb_tiny_pixart_test", [](const auto& r) { write_tiny_pixart(r); }, 7) {}
  // Through the factory (detection included).
  std::unique_ptr<gb::Backbone> open() { return open_backbone(root.string(), options()); }
  std::unique_ptr<PixArtSigmaBackbone> open_pixart(TextEncoderResidency mode = TextEncoderResidency::keep) {
    return std::make_unique<PixArtSigmaBackbone>(CheckpointFolder(root.string()), options(mode));
  }
};

struct FluxFolderTest : TinyFolderTest {
  FluxFolderTest()
      : TinyFolderTest(
            "gb_tiny_flux_test", [](const auto& r) { write_tiny_flux(r); }, 6) {}
  // Through the factory (detection included), the CLIP tokenizer attached.
  std::unique_ptr<gb::Backbone> open() {
    auto bb = open_backbone(root.string(), options());
    dynamic_cast<FluxBackbone&>(*bb).set_clip_tokenizer(clip);
    return bb;
  }
  std::unique_ptr<FluxBackbone> open_flux(TextEncoderResidency mode = TextEncoderResidency::keep) {
    auto bb = std::make_unique<FluxBackbone>(CheckpointFolder(root.string()), options(mode));
    bb->set_clip_tokenizer(clip);
    return bb;
  }
};

struct Sd3FolderTest : TinyFolderTest {
  Sd3FolderTest()
      : TinyFolderTest(
            "gb_tiny_sd3_fixture", [](const auto& r) { write_tiny_sd3(r); }, 6) {}
  std::unique_ptr<Sd3Backbone> open_sd3(TextEncoderResidency mode = TextEncoderResidency::keep) {
    auto bb = std::make_unique<Sd3Backbone>(CheckpointFolder(root.string()), options(mode), Sd3Variant::medium);
    bb->set_clip_tokenizer(clip);
    return bb;
  }
};

}  // namespace gb::bb::tiny
