#include "harness/cli/registry.h"

#include "cli_test_util.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <memory>
#include <string>

namespace {

using Result = gb::test::CliResult;
Result run_binary(const std::string& args) { return gb::test::run_goca_bench(args); }

TEST(Cli, VersionPrintsLibTorchAndCuda) {
  auto r = run_binary("version");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("LibTorch: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CUDA: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("git commit: "), std::string::npos) << r.out;
}

TEST(Cli, UsageErrorsExitTwo) {
  auto r = run_binary("no-such-command");
  EXPECT_EQ(r.code, 2) << r.out;
  r = run_binary("version --bogus");
  EXPECT_EQ(r.code, 2) << r.out;
}

TEST(Cli, HelpExitsZero) {
  auto r = run_binary("--help");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("version"), std::string::npos);
}

}  // namespace
