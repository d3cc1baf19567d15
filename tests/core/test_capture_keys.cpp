// The capture-key grammar's block and location parts (harness/core/capture.h).
#include "harness/core/capture.h"
#include "harness/core/errors.h"

#include <gtest/gtest.h>

namespace gb {
namespace {

TEST(CaptureKeys, AttentionBlocksComeApart) {
  const auto cross = parse_attention_block("up-level2-repeat1-vit-block0-cross");
  ASSERT_TRUE(cross.has_value());
  EXPECT_EQ(cross->location, "up-level2-repeat1-vit-block0");
  EXPECT_EQ(cross->kind, AttentionKind::cross);
  const auto self = parse_attention_block(attention_block(vit_block(13), AttentionKind::self));
  ASSERT_TRUE(self.has_value());
  EXPECT_EQ(self->location, "vit-block13");
  EXPECT_EQ(self->kind, AttentionKind::self);
  EXPECT_FALSE(parse_attention_block("-cross").has_value());
  EXPECT_FALSE(parse_attention_block("vit-block27").has_value());
  EXPECT_THROW(self_key_for_cross("-cross-map"), UserError);
  EXPECT_EQ(self_key_for_cross("mid-vit-block0-cross-map"), "mid-vit-block0-self-map");
}

TEST(CaptureKeys, LocationOfAKey) {
  EXPECT_EQ(location_of("vit-block3-cross-special-post-value"), "vit-block3");
  EXPECT_EQ(location_of("vit-block3-self-map"), "vit-block3");
  EXPECT_EQ(location_of(attention_output_key(vit_block(27))), "vit-block27");
  EXPECT_EQ(location_of("vit-block3-map"), "vit-block3-map");  // no attention kind: unchanged
  EXPECT_EQ(location_of("-attn-out"), "-attn-out");
}

}  // namespace
}  // namespace gb
