#include "harness/cli/registry.h"

#include "cli_test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/version.h>

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

// The contract: one JSON object with version, git_commit, libtorch, cuda_compiled, cuda_version, cuda_devices (count).
TEST(Cli, VersionJsonContract) {
  auto r = run_binary("version --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.is_object());
  EXPECT_TRUE(j.at("version").is_string());
  EXPECT_TRUE(j.at("git_commit").is_string());
  EXPECT_EQ(j.at("libtorch").get<std::string>(), TORCH_VERSION);
  ASSERT_TRUE(j.at("cuda_compiled").is_boolean());
  EXPECT_TRUE(j.at("cuda_version").is_string());
  ASSERT_TRUE(j.at("cuda_devices").is_number_integer());
  EXPECT_GE(j.at("cuda_devices").get<int64_t>(), 0);
#if defined(GB_WITH_CUDA)
  EXPECT_TRUE(j.at("cuda_compiled").get<bool>());
  EXPECT_FALSE(j.at("cuda_version").get<std::string>().empty());
#else
  EXPECT_FALSE(j.at("cuda_compiled").get<bool>());
#endif
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
