// harness/io/read_file.h: the one whole-file reader of the text formats (JSON, YAML, captions, prompts, XML).
#include "harness/io/read_file.h"
#include "tests/test_support.h"

#include <gtest/gtest.h>

TEST(ReadFile, ReturnsEveryByteAndNamesTheFileItCannotOpen) {
  gb::test::ScratchDir dir;
  const std::string bytes = std::string("a\0b\r\n", 5) + std::string(70000, 'x');
  gb::test::write_bytes(dir / "f.bin", bytes);
  EXPECT_EQ(gb::read_whole_file(dir / "f.bin"), bytes);
  gb::test::write_bytes(dir / "empty.json", "");
  EXPECT_EQ(gb::read_whole_file(dir / "empty.json", "caption file"), "");
  gb::test::expect_user_error([&] { gb::read_whole_file(dir / "absent.json", "caption file"); },
                              {"absent.json", "cannot open caption file", "No such file"});
}
