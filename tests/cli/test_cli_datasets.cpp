// `goca-bench datasets make-fixture|inspect|verify`, run as a user would (exit codes, stdout).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <array>
#include <fstream>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <iostream>

#include <unistd.h>

#include "cli_test_util.h"

namespace {

namespace fs = std::filesystem;

using Result = gb::test::CliResult;

// In-process (process start-up costs seconds here); what a user would see, including the one-line error.
Result run(const std::string& args, bool with_stderr = true) {
  return gb::test::run_goca_bench_in_process(args, with_stderr);
}

// The real binary, for the exit code a shell sees.
Result run_binary(const std::string& args) { return gb::test::run_goca_bench(args); }

struct Tmp {
  fs::path path;
  Tmp() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("gb_cli_datasets_" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~Tmp() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::vector<nlohmann::json> lines_of(const std::string& out) {
  std::vector<nlohmann::json> v;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) v.push_back(nlohmann::json::parse(line));
  return v;
}

nlohmann::json make_fixture(const Tmp& t, const std::string& ds) {
  auto r = run("datasets make-fixture --dataset " + ds + " --out " + t.path.string(), false);
  EXPECT_EQ(r.code, 0) << r.out;
  return nlohmann::json::parse(r.out);
}

}  // namespace

TEST(CliDatasets, InspectVocPaperJsonl) {
  Tmp t;
  auto fx = make_fixture(t, "voc");
  auto r = run("datasets inspect --dataset voc --root " + fx["root"].get<std::string>() + " --format jsonl", false);
  ASSERT_EQ(r.code, 0) << r.out;
  auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 4u);
  std::vector<std::string> ids;
  for (const auto& l : lines) ids.push_back(l["id"]);
  EXPECT_EQ(ids, fx["paper_ids"].get<std::vector<std::string>>());
  // 20x14: tv block 9x6, diningtable block 6x4, the 255 ring -> background under the paper protocol.
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')),
            R"({"id":"2009_000123.jpg","width":20,"height":14,"classes":{"0":202,"11":24,"20":54}})");
  auto std_r = run("datasets inspect --dataset voc --protocol standard --limit 1 --root " +
                       fx["root"].get<std::string>() + " --format jsonl",
                   false);
  ASSERT_EQ(std_r.code, 0);
  EXPECT_EQ(std_r.out, R"({"id":"2009_000123.jpg","width":20,"height":14,"classes":{"0":168,"11":24,"20":54,"255":34}})"
                       "\n");
}

TEST(CliDatasets, InspectEveryLayout) {
  for (const std::string ds : {"context", "coco-object", "cityscapes", "ade20k", "coco-stuff"}) {
    Tmp t;
    auto fx = make_fixture(t, ds);
    std::string args = "datasets inspect --dataset " + ds + " --root " + fx["root"].get<std::string>();
    if (!fx["images"].get<std::string>().empty()) args += " --images " + fx["images"].get<std::string>();
    for (const std::string protocol : {"paper", "standard"}) {
      // (Context: the mmseg PNGs, so the test also runs in a build without libmatio.)
      auto r = run(args + " --protocol " + protocol + (ds == "context" ? " --label-source png" : "") +
                       " --format jsonl --gt-classes",
                   false);
      ASSERT_EQ(r.code, 0) << ds << " " << protocol << ": " << r.out;
      auto lines = lines_of(r.out);
      const auto ids = fx[protocol + "_ids"].get<std::vector<std::string>>();
      ASSERT_EQ(lines.size(), ids.size()) << ds;
      for (size_t i = 0; i < ids.size(); ++i) {
        EXPECT_EQ(lines[i]["id"], ids[i]);
        int64_t total = 0;
        for (const auto& [k, v] : lines[i]["classes"].items()) total += v.get<int64_t>();
        EXPECT_EQ(total, 20 * 14);
      }
    }
  }
}

TEST(CliDatasets, VerifyCleanAndBroken) {
  Tmp t;
  auto fx = make_fixture(t, "voc");
  const std::string root = fx["root"], caps = fx["captions"];
  auto ok = run("datasets verify --dataset voc --root " + root + " --captions " + caps);
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_NE(ok.out.find("samples readable: 4 of 4 with a caption"), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("OK: no problems found"), std::string::npos) << ok.out;

  fs::remove(fs::path(root) / "JPEGImages" / "2008_000008.jpg");
  fs::resize_file(fs::path(root) / "SegmentationClass" / "2007_000039.png", 40);
  auto bad = run("datasets verify --dataset voc --root " + root + " --captions " + caps);
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_NE(bad.out.find("PROBLEM missing file: 1"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("2008_000008.jpg: image file missing"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("PROBLEM unreadable file: 1"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("samples readable: 2 of 4"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("verify: 2 problem(s) found"), std::string::npos) << bad.out;
}

TEST(CliDatasets, VerifyReportsImagesWithoutCaptions) {
  Tmp t;
  auto fx = make_fixture(t, "ade20k");
  const fs::path caps = t.path / "few.json";
  {
    std::ofstream out(caps);
    out << R"({"ADE_val_00000001.jpg": {"caption": "wall, person"}, "ADE_val_99999999.jpg": {"caption": "x"}})";
  }
  auto r =
      run("datasets verify --dataset ade20k --root " + fx["root"].get<std::string>() + " --captions " + caps.string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("PROBLEM image without caption: 3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no caption for image 'ADE_val_00000002.jpg'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 caption entries name images outside this split/limit"), std::string::npos) << r.out;
}

TEST(CliDatasets, UserErrorsExitTwo) {
  Tmp t;
  auto r = run_binary("datasets inspect --dataset voc --root " + (t.path / "nope").string() + " --format jsonl");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("dataset root folder does not exist"), std::string::npos) << r.out;
  r = run("datasets inspect --dataset cityscapes --label-source mat --root /tmp --format jsonl");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("label source 'mat' does not apply to cityscapes"), std::string::npos) << r.out;
  r = run("datasets inspect --dataset pascal --root /tmp --format jsonl");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("unknown dataset 'pascal'"), std::string::npos) << r.out;
  auto fx = make_fixture(t, "voc");
  fs::remove(fs::path(fx["root"].get<std::string>()) / "JPEGImages" / "2008_000008.jpg");
  r = run("datasets inspect --dataset voc --root " + fx["root"].get<std::string>() + " --format jsonl");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("2009_000123.jpg"), std::string::npos) << "the samples before the bad one are printed";
  EXPECT_NE(r.out.find("2008_000008.jpg: image file missing"), std::string::npos) << r.out;
  r = run("datasets inspect --dataset voc --on-error skip --root " + fx["root"].get<std::string>() + " --format jsonl");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("skipped (bad input, on_error: skip): 1"), std::string::npos) << r.out;
}
