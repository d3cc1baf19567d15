#pragma once
// GoogleTest fixtures over a tiny random-weight PixArt-Sigma, Flux or SD3.5 Medium checkpoint folder (written in SetUp, removed
// in TearDown) with the word tokenizers of tiny_dit.h attached, at 16x16. Shared by the backbone, text-encoder
// residency and cross-map tests.
#include "tiny_dit.h"

#include "harness/backbones/registry.h"
#include "harness/backbones/flux_backbone.h"
#include "harness/backbones/pixart_backbone.h"
#include "harness/backbones/sd3_backbone.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

namespace gb::bb::tiny {

struct PixArtFolderTest : ::testing::Test {
  std::filesystem::path root = std::filesystem::temp_directory_path() / "gb_tiny_pixart_test";
  std::shared_ptr<WordTokenizer> tok = std::make_shared<WordTokenizer>("t5", 7, false, 40);
  void SetUp() override {
    std::filesystem::remove_all(root);
    write_tiny_pixart(root);
  }
  void TearDown() override { std::filesystem::remove_all(root); }
  BackboneOptions options(TextEncoderResidency mode = TextEncoderResidency::keep) const {
    BackboneOptions o;
    o.image_size = 16;
    o.tokenizer = tok;
    o.text_encoder = mode;
    return o;
  }
  // Through the factory (detection included).
  std::unique_ptr<gb::Backbone> open() { return open_backbone(root.string(), options()); }
  std::unique_ptr<PixArtSigmaBackbone> open_pixart(TextEncoderResidency mode = TextEncoderResidency::keep) {
    return std::make_unique<PixArtSigmaBackbone>(CheckpointFolder(root.string()), options(mode));
  }
};

struct FluxFolderTest : ::testing::Test {
  std::filesystem::path root = std::filesystem::temp_directory_path() / "gb_tiny_flux_test";
  std::shared_ptr<WordTokenizer> t5 = std::make_shared<WordTokenizer>("t5", 6, false, 40);
  std::shared_ptr<WordTokenizer> clip = std::make_shared<WordTokenizer>("clip", 12, true, 990);
  void SetUp() override {
    std::filesystem::remove_all(root);
    write_tiny_flux(root);
  }
  void TearDown() override { std::filesystem::remove_all(root); }
  BackboneOptions options(TextEncoderResidency mode = TextEncoderResidency::keep) const {
    BackboneOptions o;
    o.image_size = 16;
    o.tokenizer = t5;
    o.text_encoder = mode;
    return o;
  }
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

struct Sd3FolderTest : ::testing::Test {
  std::filesystem::path root = std::filesystem::temp_directory_path() / "gb_tiny_sd3_fixture";
  std::shared_ptr<WordTokenizer> t5 = std::make_shared<WordTokenizer>("t5", 6, false, 40);
  std::shared_ptr<WordTokenizer> clip = std::make_shared<WordTokenizer>("clip", 12, true, 990);
  void SetUp() override {
    std::filesystem::remove_all(root);
    write_tiny_sd3(root);
  }
  void TearDown() override { std::filesystem::remove_all(root); }
  BackboneOptions options(TextEncoderResidency mode = TextEncoderResidency::keep) const {
    BackboneOptions o;
    o.image_size = 16;
    o.tokenizer = t5;
    o.text_encoder = mode;
    return o;
  }
  std::unique_ptr<Sd3Backbone> open_sd3(TextEncoderResidency mode = TextEncoderResidency::keep) {
    auto bb = std::make_unique<Sd3Backbone>(CheckpointFolder(root.string()), options(mode), Sd3Variant::medium);
    bb->set_clip_tokenizer(clip);
    return bb;
  }
};

}  // namespace gb::bb::tiny
