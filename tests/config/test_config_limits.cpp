// YAML limits of the config reader (docs/robustness.md): nested aliases, deep nesting, include explosions.
#include "../test_support.h"
#include "harness/config/config.h"
#include "harness/core/errors.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <fstream>

namespace fs = std::filesystem;

TEST(ConfigLimits, NestedAliasesAreRefusedNotExpanded) {
  // Ten levels of 10 aliases each: 10^10 values if expanded.
  std::string y = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 10; ++i) {
    y += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) y += std::string(k ? ", " : "") + "*a" + std::to_string(i - 1);
    y += "]\n";
  }
  const std::string e = gb::test::user_error_message([&] { gb::Config::from_string(y, "laughs.yaml"); });
  EXPECT_NE(e.find("expands to more than 200000 values"), std::string::npos) << e;
  EXPECT_LT(e.size(), 300u);
  // The same through --set, as a flow mapping.
  std::string flow = "{b0: &b0 [x, x, x, x, x, x, x, x, x, x]";
  for (int i = 1; i <= 10; ++i) {
    flow += ", b" + std::to_string(i) + ": &b" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) flow += std::string(k ? ", " : "") + "*b" + std::to_string(i - 1);
    flow += "]";
  }
  flow += "}";
  const std::string s =
      gb::test::user_error_message([&] { gb::Config::from_string("a: 1\n", "c.yaml", {"a=" + flow}); });
  EXPECT_NE(s.find("expands to more than"), std::string::npos) << s;
  // Small aliases still work.
  const auto c = gb::Config::from_string("a: &x [1, 2]\nb: *x\n", "ok.yaml");
  EXPECT_EQ(c.root()["b"].size(), 2u);
}

TEST(ConfigLimits, DeepNestingAndIncludeDiamondsAreRefused) {
  const std::string deep = "a: " + std::string(500, '[') + std::string(500, ']') + "\n";
  const std::string e = gb::test::user_error_message([&] { gb::Config::from_string(deep, "deep.yaml"); });
  EXPECT_FALSE(e.empty());
  EXPECT_LT(e.size(), 300u) << e;
  // Each level includes the next one twice: 2^12 file reads if unbounded.
  const fs::path d = fs::temp_directory_path() / "gb_test_config_limits";
  fs::remove_all(d);
  fs::create_directories(d);
  for (int i = 0; i < 12; ++i)
    std::ofstream(d / ("l" + std::to_string(i) + ".yaml"))
        << "_base_: [l" << i + 1 << ".yaml, l" << i + 1 << ".yaml]\nk" << i << ": 1\n";
  std::ofstream(d / "l12.yaml") << "leaf: 1\n";
  const std::string inc = gb::test::user_error_message([&] { gb::Config::load((d / "l0.yaml").string()); });
  EXPECT_NE(inc.find("more than 256 files read through _base_"), std::string::npos) << inc;
  fs::remove_all(d);
}

TEST(ConfigLimits, BytesThatAreNotTextAreRefused) {
  // Found by fuzz/fuzz_config: a key holding a NUL byte and invalid UTF-8 loaded, but its resolved YAML
  // (config show) did not load back to the same config.
  static const char kNul[] = "a: 1\n_b\x98\x14\x00_: x\n";
  const std::string nul(kNul, sizeof kNul - 1);
  const std::string e = gb::test::user_error_message([&] { gb::Config::from_string(nul, "bad.yaml"); });
  EXPECT_NE(e.find("bad.yaml: line 2: byte 0x98 at offset 7 is not text"), std::string::npos) << e;
  for (const std::string& bad : {std::string("a: \xc0\xaf\n"), std::string("a: \xed\xa0\x80\n"),
                                 std::string("a: \xe2\x82\n"), std::string("a: \x01\n"),
                                 std::string("a: b\x7f"
                                             "c\n"),
                                 std::string("a: \xc2\x85\n"), std::string("a: x\xe2\x80\xa8y\n")}) {
    EXPECT_NE(gb::test::user_error_message([&] { gb::Config::from_string(bad, "b.yaml"); }).find("is not text"),
              std::string::npos);
  }
  EXPECT_NE(gb::test::user_error_message([&] {
              gb::Config::from_string("a: 1\n", "c.yaml", {std::string("a=\x00", 3)});
            }).find("--set: byte 0x00"),
            std::string::npos);
  // Found by fuzz/fuzz_config: a --set value with lone carriage returns did not survive config show + reload.
  EXPECT_NE(gb::test::user_error_message([&] {
              gb::Config::from_string("a: 1\n", "c.yaml", {"z=x[1\r\r\t\r, K2b]"});
            }).find("--set: byte 0x0d at offset 5"),
            std::string::npos);
  EXPECT_NE(gb::test::user_error_message([&] {
              gb::Config::from_string("a: 1\rb: 2\n", "mac.yaml");
            }).find("mac.yaml: line 1: byte 0x0d"),
            std::string::npos);
  // UTF-8 text, tabs and CRLF line ends load.
  const auto c = gb::Config::from_string("a: \"caf\xc3\xa9 \xf0\x9f\x90\x88\"\r\nb:\t2\r\n", "ok.yaml");
  EXPECT_EQ(c.root()["a"].as<std::string>(), "caf\xc3\xa9 \xf0\x9f\x90\x88");
}

TEST(ConfigLimits, TextOnWhichYamlCppLoopsIsRefused) {
  // Found by fuzz/fuzz_config (timeouts): yaml-cpp 0.7 loops forever on a ',' where a document's node starts
  // or after it ends.
  for (const std::string& y :
       {std::string(", K2]\na: &a"), std::string("---\n,"), std::string("# c\n  &a !t ,"), std::string("[],"),
        std::string("{a: 1} ,"), std::string("\"a\","), std::string("$x # c\n,se[1, K2b]\n")}) {
    const std::string e = gb::test::user_error_message([&] { gb::Config::from_string(y, "comma.yaml"); });
    EXPECT_NE(e.find("comma.yaml: line "), std::string::npos) << e;
    EXPECT_NE(e.find("not valid YAML"), std::string::npos) << e;
  }
  for (const char* v : {"a=,", "a=[1, 2],", "a='x' ,"}) {
    EXPECT_NE(
        gb::test::user_error_message([&] { gb::Config::from_string("a: 1\n", "c.yaml", {v}); }).find("not valid YAML"),
        std::string::npos)
        << v;
  }
  // Commas elsewhere are fine ("---," is a plain scalar, not a document marker).
  const auto c = gb::Config::from_string("a: x,y\nb: [1, 2]\nc: |\n  ,\nd: x ,y\n", "ok.yaml", {"e=---,x", "f=[3, 4]"});
  EXPECT_EQ(c.root()["a"].as<std::string>(), "x,y");
  EXPECT_EQ(c.root()["c"].as<std::string>(), ",\n");
  EXPECT_EQ(c.root()["d"].as<std::string>(), "x ,y");
  EXPECT_EQ(c.root()["e"].as<std::string>(), "---,x");
  // Many aliases of one anchor are still one event each (not the loop).
  std::string many = "a: &x [1, 2]\nb: [";
  for (int i = 0; i < 500; ++i) many += std::string(i ? ", " : "") + "*x";
  EXPECT_EQ(gb::Config::from_string(many + "]\n", "aliases.yaml").root()["b"].size(), 500u);
}

TEST(ConfigLimits, UnknownYamlTagsAreRefused) {
  // Found by fuzz/fuzz_config: a value with a custom tag and no content loaded as an empty string but came back
  // as null from `config show` and a reload.
  EXPECT_NE(gb::test::user_error_message([] {
              gb::Config::from_string("a: 1\nb: !3c='1\n", "tag.yaml");
            }).find("tag.yaml:2: the YAML tag '!3c='1' is not supported"),
            std::string::npos);
  const auto c = gb::Config::from_string("a: !!str 12\nb: !!str\nc: '7'\n", "ok.yaml");
  EXPECT_EQ(gb::Config::from_string(c.to_yaml(), "again.yaml").hash(), c.hash());
  EXPECT_EQ(c.root()["b"].as<std::string>(), "");
}
