#include "harness/cli/registry.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <memory>
#include <string>

namespace {

struct Result {
  int code;
  std::string out;
};

// Runs the real binary so exit codes and stdout/stderr are what a user sees.
Result run_binary(const std::string& args) {
  std::string cmd = std::string(GB_CLI_BINARY) + " " + args + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe.get())) > 0) out.append(buf.data(), n);
  int status = pclose(pipe.release());
  return {WEXITSTATUS(status), out};
}

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
