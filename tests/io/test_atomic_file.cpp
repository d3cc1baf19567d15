// Crash-consistent writes (harness/io/atomic_file.h) and the shared JSON/excerpt helpers (json_io.h,
// excerpt.h): docs/robustness.md.
#include "harness/core/errors.h"
#include "harness/core/excerpt.h"
#include "harness/io/atomic_file.h"
#include "harness/io/json_io.h"
#include "tests/test_support.h"

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

using gb::test::read_bytes;
using gb::test::ScratchDir;

size_t entries(const fs::path& d) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(d), fs::directory_iterator()));
}

}  // namespace

TEST(AtomicFile, WritesReplacesAndNeverLeavesATornFile) {
  const ScratchDir scratch;
  const fs::path d = scratch.path();
  EXPECT_THROW(gb::write_file_atomic((d / "sub/a.txt").string(), "no folder"), gb::UserError);
  fs::create_directories(d / "sub");
  gb::write_file_atomic((d / "sub/a.txt").string(), "first");
  EXPECT_EQ(read_bytes(d / "sub/a.txt"), "first");
  gb::write_file_atomic((d / "sub/a.txt").string(), "second");
  EXPECT_EQ(read_bytes(d / "sub/a.txt"), "second");
  {  // abandoned before commit (an exception mid-way): the target is untouched, the temporary file gone
    gb::AtomicFile f((d / "sub/a.txt").string());
    f.write("third, half");
  }
  EXPECT_EQ(read_bytes(d / "sub/a.txt"), "second");
  EXPECT_EQ(entries(d / "sub"), 1u);
  EXPECT_THROW(gb::write_file_atomic((d / "sub/a.txt/x").string(), "under a file"), gb::UserError);
}

TEST(AtomicFile, AFullDiskIsAUserErrorAndKeepsTheOldFile) {
  const ScratchDir scratch;
  const fs::path d = scratch.path();
  gb::write_file_atomic((d / "r.json").string(), "old");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl {};
    rl.rlim_cur = rl.rlim_max = 1000;
    setrlimit(RLIMIT_FSIZE, &rl);
    try {
      gb::write_file_atomic((d / "r.json").string(), std::string(5000, 'x'));
    } catch (const gb::UserError& e) {
      const std::string m = e.what();
      std::_Exit(m.find("r.json: write failed: File too large (disk full") == std::string::npos ? 3 : 2);
    }
    std::_Exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_EQ(read_bytes(d / "r.json"), "old");
  EXPECT_EQ(entries(d), 1u);
}

TEST(JsonIo, DepthLimitShortMessagesAndCrc) {
  EXPECT_EQ(gb::parse_json(R"({"a": [1, {"b": "[[[[["}]})", "f.json")["a"][1]["b"], "[[[[[");
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  try {
    gb::parse_json(deep, "deep.json");
    FAIL();
  } catch (const gb::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("deep.json: JSON nested deeper than 64 levels"), std::string::npos);
  }
  EXPECT_NO_THROW(gb::parse_json(std::string(64, '[') + std::string(64, ']'), "ok.json"));
  try {
    gb::parse_json("{\"a\": " + std::string(100000, 'x') + "}", "long.json");
    FAIL();
  } catch (const gb::UserError& e) {
    EXPECT_LT(std::string(e.what()).size(), 250u) << e.what();
    EXPECT_NE(std::string(e.what()).find("long.json: not valid JSON"), std::string::npos) << e.what();
  }
  EXPECT_EQ(gb::crc32("123456789"), 0xCBF43926u);
  EXPECT_EQ(gb::crc32(""), 0u);
  EXPECT_EQ(gb::excerpt("ab\ncd"), "'ab\\x0acd'");
  EXPECT_EQ(gb::excerpt(std::string(100, 'z'), 4), "'zzzz'... (100 bytes)");
}
