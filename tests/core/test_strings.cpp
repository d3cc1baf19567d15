// harness/core/strings.h: the string helpers every library shares.
#include "harness/core/strings.h"

#include <gtest/gtest.h>

TEST(Strings, TrimStripsAsciiBlanksByDefault) {
  EXPECT_EQ(gb::trim("  a b\t\r\n"), "a b");
  EXPECT_EQ(gb::trim(" \t\r\n"), "");
  EXPECT_EQ(gb::trim(""), "");
  EXPECT_EQ(gb::trim("\va\f"), "\va\f");  // \v and \f are not blanks by default
}

TEST(Strings, TrimTakesTheCharacterSet) {
  EXPECT_EQ(gb::trim("\v\f a \f\v", gb::kCWhitespace), "a");
  EXPECT_EQ(gb::trim("\f\v", gb::kCWhitespace), "");
  EXPECT_EQ(gb::trim("xxaxx", "x"), "a");
  for (char c = 0; c < 127; ++c)
    EXPECT_EQ(gb::kCWhitespace.find(c) != std::string_view::npos, std::isspace(static_cast<unsigned char>(c)) != 0)
        << static_cast<int>(c);
}

TEST(Strings, CaseAndAffixes) {
  EXPECT_EQ(gb::to_lower("GoCA-SD15"), "goca-sd15");
  EXPECT_TRUE(gb::starts_with("vit-block3-cross-map", "vit-block"));
  EXPECT_TRUE(gb::ends_with("vit-block3-cross-map", "-map"));
  EXPECT_FALSE(gb::ends_with("map", "-map"));
  EXPECT_EQ(gb::join({"a", "b", "c"}), "a, b, c");
  EXPECT_EQ(gb::join({}), "");
}
