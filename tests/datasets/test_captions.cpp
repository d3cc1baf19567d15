#include <gtest/gtest.h>

#include <filesystem>

#include "datasets/captions.h"
#include "harness/core/errors.h"
#include "tests/test_support.h"

using gb::datasets::CaptionFile;

namespace {
std::string error_of(const std::string& text) {
  return gb::test::user_error_message([&] { CaptionFile::parse(text, "caps.json"); });
}
}  // namespace

TEST(Captions, ParsesPaperFormat) {
  auto f = CaptionFile::parse(R"({"b.jpg": {"caption": "cat, sofa."}, "a.jpg": {"caption": "dog", "x": 1}})", "c.json");
  EXPECT_EQ(f.size(), 2u);
  EXPECT_EQ(f.ids(), (std::vector<std::string>{"b.jpg", "a.jpg"}));
  EXPECT_EQ(f.caption("b.jpg"), "cat, sofa.");
  EXPECT_TRUE(f.contains("a.jpg"));
  EXPECT_EQ(f.find("zzz.jpg"), nullptr);
  try {
    f.caption("zzz.jpg");
    FAIL();
  } catch (const gb::UserError& e) {
    EXPECT_STREQ(e.what(), "c.json: no caption for image 'zzz.jpg'");
  }
}

TEST(Captions, ClearErrors) {
  EXPECT_NE(error_of("{").find("caps.json: not valid JSON"), std::string::npos);
  EXPECT_NE(error_of("[]").find("expected a JSON object"), std::string::npos);
  EXPECT_EQ(error_of(R"({"a.jpg": "cat"})"),
            "caps.json: entry 'a.jpg': expected an object with \"caption\", got string");
  EXPECT_EQ(error_of(R"({"a.jpg": {"text": "cat"}})"), "caps.json: entry 'a.jpg': missing \"caption\"");
  EXPECT_EQ(error_of(R"({"a.jpg": {"caption": 3}})"),
            "caps.json: entry 'a.jpg': \"caption\" must be a string, got number");
  EXPECT_EQ(error_of(R"({"a.jpg": {"caption": ""}})"), "caps.json: entry 'a.jpg': empty caption");
  EXPECT_THROW(CaptionFile::load("/nonexistent/caps.json"), gb::UserError);
}

TEST(Captions, ReadsThePapersFiles) {
  const std::string dir = std::string(GB_SHARED_DIR) + "/data/goca-captions/";
  const std::vector<std::pair<std::string, size_t>> files = {{"voc.json", 1464},         {"context.json", 964},
                                                             {"coco-object.json", 5000}, {"city.json", 500},
                                                             {"ade.json", 2000},         {"coco-stuff.json", 5000}};
  for (const auto& [name, count] : files) {
    if (!std::filesystem::exists(dir + name)) GTEST_SKIP() << "caption files not present: " << dir;
    auto f = CaptionFile::load(dir + name);
    EXPECT_EQ(f.size(), count) << name;
  }
  auto voc = CaptionFile::load(dir + "voc.json");
  EXPECT_EQ(voc.caption("2009_004316.jpg"), "cow, water, grass, rocks, mountains, sky");
  auto city = CaptionFile::load(dir + "city.json");
  EXPECT_TRUE(city.contains("frankfurt_000000_011810_leftImg8bit.png"));
}
