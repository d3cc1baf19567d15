// Robustness of the command line (docs/robustness.md): a full disk (here a file-size limit) is the one-line
// exit-2 error, not a kill; a wrong-typed results.json value names the file and the key; deep nesting and
// kilobytes of garbage give short messages.
#include "cli_test_util.h"
#include "tests/test_support.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace {

using gb::test::ScratchDir;

const std::string kResults = std::string(GB_SOURCE_DIR) + "/tests/regression/quickstart-mini/results.json";

}  // namespace

TEST(Robustness, AFullDiskIsExitTwoAndLeavesNoTornFile) {
  const ScratchDir scratch;
  const fs::path d = scratch.path();
  fs::copy_file(kResults, d / "results.json");
  // 64 blocks of 512 bytes: the tables fit, report.html (embedding every matrix) does not.
  const auto [status, out] =
      gb::test::run_shell("sh -c 'ulimit -f 64; exec " + std::string(GB_CLI_BINARY) + " report " + d.string() + "'");
  ASSERT_TRUE(WIFEXITED(status)) << out;  // not killed by SIGXFSZ
  EXPECT_EQ(WEXITSTATUS(status), 2) << out;
  EXPECT_NE(out.find("File too large"), std::string::npos) << out;
  EXPECT_NE(out.find("disk full"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  for (const auto& e : fs::recursive_directory_iterator(d))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

TEST(Robustness, AWrongTypedResultsValueNamesTheFileAndTheKey) {
  const ScratchDir scratch;
  const fs::path d = scratch.path();
  std::ifstream in(kResults);
  auto j = nlohmann::json::parse(in);
  j["run"]["name"] = 42;
  std::ofstream(d / "results.json") << j.dump();
  auto r = gb::test::run_goca_bench_in_process({"report", d.string()});
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find((d / "results.json").string() + ": key 'name'"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("internal error"), std::string::npos) << r.out;

  std::ofstream(d / "results.json") << std::string(100000, '[') << std::string(100000, ']');
  r = gb::test::run_goca_bench_in_process({"report", d.string()});
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("nested deeper than"), std::string::npos) << r.out;

  std::ofstream(d / "results.json") << "{\"schema\": \"" << std::string(50000, 'x') << "\" x}";
  r = gb::test::run_goca_bench_in_process({"report", d.string()});
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_LT(r.out.size(), 600u) << r.out.substr(0, 600);
}
