#include "goca/method_config.h"

#include "harness/core/errors.h"

#include <gtest/gtest.h>

using namespace gb::goca;

TEST(MethodConfig, ParsesCanonicalAndPaperSpellings) {
  EXPECT_EQ(parse_head_method("dot_product_no_clamp"), HeadMethod::DotProductNoClamp);
  EXPECT_EQ(parse_head_method("dot-product w/o clamp"), HeadMethod::DotProductNoClamp);
  EXPECT_EQ(parse_head_method("  Cosine + VW "), HeadMethod::CosineVW);
  EXPECT_EQ(parse_head_method("dot-product + VW"), HeadMethod::DotProductVW);
  EXPECT_EQ(parse_head_method("l2-norm"), HeadMethod::L2Norm);
  EXPECT_EQ(parse_layer_method("dot-product similarity"), LayerMethod::DotProductSimilarity);
  EXPECT_EQ(parse_layer_method("iou-like"), LayerMethod::IouLike);
  EXPECT_EQ(parse_rescale_method("sum-1 rescaling + per-token renorm+"), RescaleMethod::Sum1RenormPlus);
  EXPECT_EQ(parse_rescale_method("sum-1 rescaling + per-token renorm+ x raw + renorm"),
            RescaleMethod::Sum1RenormPlusXRawRenorm);
  EXPECT_EQ(parse_rescale_method("per-token renorm+"), RescaleMethod::PerTokenRenormPlus);
  EXPECT_EQ(parse_ref_mode("full"), RefMode::Full);
  EXPECT_EQ(parse_multi_token("sum"), MultiToken::Sum);
}

TEST(MethodConfig, RoundTripsEveryValue) {
  for (auto m : all_head_methods()) {
    EXPECT_EQ(parse_head_method(to_string(m)), m);
    EXPECT_EQ(parse_head_method(paper_name(m)), m);
  }
  for (auto m : all_layer_methods()) {
    EXPECT_EQ(parse_layer_method(to_string(m)), m);
    EXPECT_EQ(parse_layer_method(paper_name(m)), m);
  }
  for (auto m : all_rescale_methods()) {
    EXPECT_EQ(parse_rescale_method(to_string(m)), m);
    EXPECT_EQ(parse_rescale_method(paper_name(m)), m);
  }
  EXPECT_EQ(all_head_methods().size(), 7u);
  EXPECT_EQ(all_layer_methods().size(), 4u);
  EXPECT_EQ(all_rescale_methods().size(), 9u);
  // every listed spelling parses
  for (const auto& s : head_method_spellings()) EXPECT_NO_THROW(parse_head_method(s)) << s;
  for (const auto& s : layer_method_spellings()) EXPECT_NO_THROW(parse_layer_method(s)) << s;
  for (const auto& s : rescale_method_spellings()) EXPECT_NO_THROW(parse_rescale_method(s)) << s;
}

TEST(MethodConfig, UnknownStringIsUserErrorListingSpellings) {
  try {
    parse_rescale_method("sum-1 renorm");
    FAIL() << "no throw";
  } catch (const gb::UserError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("rescale_method"), std::string::npos);
    EXPECT_NE(msg.find("'sum-1 renorm'"), std::string::npos);
    EXPECT_NE(msg.find("sum-1 rescaling + per-token renorm+"), std::string::npos);
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
  EXPECT_THROW(parse_head_method("dot-product w/o clamps"), gb::UserError);
  EXPECT_THROW(parse_layer_method(""), gb::UserError);
}

TEST(MethodConfig, Validate) {
  MethodConfig c;
  EXPECT_THROW(c.validate("m.yaml"), gb::UserError);  // no layers
  c.layers = {"mid-vit-block0-cross-map"};
  EXPECT_THROW(c.validate("m.yaml"), gb::UserError);  // dot-product similarity without ref_layer
  c.ref_layer = "up-level2-repeat1-vit-block0-cross-q";
  EXPECT_NO_THROW(c.validate("m.yaml"));
  c.self_layers = {"mid-vit-block0-cross-map"};
  EXPECT_THROW(c.validate("m.yaml"), gb::UserError);
  c.self_layers = {"mid-vit-block0-self-map"};
  c.output_size = 2;
  EXPECT_THROW(c.validate("m.yaml"), gb::UserError);
  c.output_size = 64;
  c.layers.push_back("mid-vit-block0-cross-map");
  EXPECT_THROW(c.validate("m.yaml"), gb::UserError);
  try {
    c.validate("m.yaml");
  } catch (const gb::UserError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("m.yaml: ", 0), 0u);
  }
}
