// PixArt-Sigma and Flux take their T5 tokenizer from the checkpoint folder (tokenizer/ or tokenizer_2/
// spiece.model) when none is injected, so `capture --prompt` works on a downloaded folder.
#include "tiny_dit.h"
#include "tiny_tokenizer_files.h"

#include "harness/backbones/registry.h"
#include "harness/core/errors.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace fs = std::filesystem;

namespace {

TEST(DitFolderTokenizers, PixArtLoadsTokenizerSpiece) {
  const fs::path root = fs::temp_directory_path() / "gb_dit_tok_pixart";
  fs::remove_all(root);
  gb::bb::tiny::write_tiny_pixart(root);
  gb::bb::BackboneOptions o;
  o.image_size = 16;
  EXPECT_THROW(gb::bb::open_backbone(root.string(), o)->tokenizer(), gb::UserError);  // no spiece.model yet
  gb::bb::tiny::install_t5_spiece(root, "tokenizer");
  auto bb = gb::bb::open_backbone(root.string(), o);
  const auto& tok = bb->tokenizer();
  EXPECT_EQ(tok.name(), "t5");
  EXPECT_EQ(tok.max_length(), 300);
  const auto toks = tok.encode("a cat");
  ASSERT_EQ(static_cast<int64_t>(toks.size()), 300);
  fs::remove_all(root);
}

TEST(DitFolderTokenizers, FluxLoadsTokenizer2Spiece) {
  const fs::path root = fs::temp_directory_path() / "gb_dit_tok_flux";
  fs::remove_all(root);
  gb::bb::tiny::write_tiny_flux(root);
  gb::bb::tiny::install_t5_spiece(root, "tokenizer_2");
  gb::bb::BackboneOptions o;
  o.image_size = 16;
  auto bb = gb::bb::open_backbone(root.string(), o);
  EXPECT_EQ(bb->tokenizer().name(), "t5");
  EXPECT_EQ(bb->tokenizer().max_length(), 512);
  fs::remove_all(root);
}

}  // namespace
