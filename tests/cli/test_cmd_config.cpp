// `goca-bench config show|hash`, through the real binary.
#include "cli_test_util.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

namespace {

using Result = gb::test::CliResult;
Result run(const std::string& args) { return gb::test::run_goca_bench(args); }

class ConfigCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("gb_cli_config_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / "base.yaml") << "model:\n  steps: 50\n  name: sd\nseed: 1\n";
    std::ofstream(dir_ / "top.yaml") << "_base_: base.yaml\nseed: 2\n";
    std::ofstream(dir_ / "bad.yaml") << "a: [1,\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string p(const std::string& f) const { return (dir_ / f).string(); }
  std::filesystem::path dir_;
};

TEST_F(ConfigCommand, ShowPrintsResolvedYaml) {
  auto r = run("config show " + p("top.yaml") + " --set model.steps=20 --set extra.k=v");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("steps: 20"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("name: sd"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("seed: 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("k: v"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("_base_"), std::string::npos) << r.out;
  auto w = run("config show --where " + p("top.yaml"));
  EXPECT_NE(w.out.find("seed: " + p("top.yaml") + ":2"), std::string::npos) << w.out;
  auto h = run("config hash " + p("top.yaml") + " --set model.steps=20 --set extra.k=v");
  ASSERT_EQ(h.code, 0) << h.out;
  EXPECT_EQ(h.out.size(), 17u) << h.out;
  EXPECT_NE(r.out.find(h.out.substr(0, 16)), std::string::npos);
}

TEST_F(ConfigCommand, ErrorsExitTwoWithOneLine) {
  auto r = run("config show " + p("bad.yaml"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("bad.yaml:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("YAML syntax error"), std::string::npos) << r.out;
  r = run("config show " + p("top.yaml") + " --set nonsense");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--set nonsense: expected key=value"), std::string::npos) << r.out;
  r = run("config show " + p("absent.yaml"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("absent.yaml: no such file"), std::string::npos) << r.out;
  r = run("config");
  EXPECT_EQ(r.code, 2) << r.out;
}

}  // namespace
