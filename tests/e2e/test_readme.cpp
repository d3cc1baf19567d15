// README.md's "Real experiments" section, executed as written: its shell block runs in bash with the real
// goca-bench binary on PATH, from a folder that looks like the repository root (configs/ linked), with only the
// paths replaced: /data/... by `datasets make-fixture` folders of the five layouts, /models/... by the
// structure-complete tiny checkpoints. Every /data or /models path of the block must have a replacement, so the
// section cannot drift from what works.
#include "e2e_util.h"

#include <cstdio>
#include <memory>
#include <regex>
#include <sstream>

namespace {

using namespace gb::e2e;

// The indented code of the section "## Real experiments" (4 spaces removed).
std::string readme_recipe() {
  std::ifstream in(fs::path(GB_SOURCE_DIR) / "README.md");
  std::string line, script;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) {
      if (inside) break;
      inside = line == "## Real experiments";
      continue;
    }
    if (inside && line.rfind("    ", 0) == 0) script += line.substr(4) + "\n";
    else if (inside && line.empty() && !script.empty()) script += "\n";
  }
  return script;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

// In `make test-long` (about 80 captures at 128 px as written).
TEST(ReadmeLong, RealExperimentsRecipeRunsAsWritten) {
  std::string script = readme_recipe();
  ASSERT_NE(script.find("goca-bench run configs/experiments/table1.yaml"), std::string::npos) << script;
  const World& w = world();
  // README path -> this world's path; longest first, so /data/VOCdevkit/VOC2012/JPEGImages (Context's images) is
  // replaced before /data/VOCdevkit/VOC2012 (VOC's root).
  const std::vector<std::pair<std::string, std::string>> paths = {
      {"/data/VOCdevkit/VOC2012/JPEGImages", w.data.at("context").images},
      {"/data/VOCdevkit/VOC2012", w.data.at("voc").root},
      {"/data/pascal-context", w.data.at("context").root},
      {"/data/coco-object", w.data.at("coco-object").root},
      {"/data/cityscapes", w.data.at("cityscapes").root},
      {"/data/ADEChallengeData2016", w.data.at("ade20k").root},
      {"/data/goca-captions/voc.json", w.data.at("voc").captions},
      {"/data/goca-captions/context.json", w.data.at("context").captions},
      {"/data/goca-captions/coco-object.json", w.data.at("coco-object").captions},
      {"/data/goca-captions/city.json", w.data.at("cityscapes").captions},
      {"/data/goca-captions/ade.json", w.data.at("ade20k").captions},
      {"/models/stable-diffusion-v1-5", w.weights.at("sd15")},
      {"/models/stable-diffusion-xl-base-1.0", w.weights.at("sdxl")},
      {"/models/PixArt-Sigma-XL-2-1024-MS", w.weights.at("pixart-sigma")},
      {"/models/FLUX.1-dev", w.weights.at("flux")},
  };
  // Every /data or /models path of the recipe starts with one of these (checked on the recipe as written: the
  // world's own folders contain "/data/").
  for (const std::string root : {"/data/", "/models/"})
    for (size_t p = script.find(root); p != std::string::npos; p = script.find(root, p + 1)) {
      bool known = false;
      for (const auto& kv : paths) known = known || script.compare(p, kv.first.size(), kv.first) == 0;
      EXPECT_TRUE(known) << "a README path without a replacement: "
                         << script.substr(p, script.find_first_of(" \n\"", p) - p);
    }
  for (const auto& [from, to] : paths) {
    EXPECT_NE(script.find(from), std::string::npos) << "the README no longer mentions " << from;
    script = replace_all(script, from, to);
  }

  // A folder that looks like the repository root; runs/ is written there.
  const fs::path root = work_dir() / "readme";
  fs::remove_all(root);
  fs::create_directories(root);
  fs::create_symlink(fs::path(GB_SOURCE_DIR) / "configs", root / "configs");
  std::ofstream(root / "recipe.sh") << "set -euo pipefail\n" << script;
  const std::string bin_dir = fs::path(GB_CLI_BINARY).parent_path().string();
  const std::string cmd = "cd '" + root.string() + "' && PATH='" + bin_dir + "':\"$PATH\" bash recipe.sh";
  const auto [status, out] = gb::test::run_shell(cmd);
  ASSERT_EQ(WEXITSTATUS(status), 0) << out;

  // What the recipe promises: the three experiments' outputs, the merged Table 1 with every cell.
  for (const std::string name : {"table1-sd15", "ablations-sd15", "table1"}) {
    EXPECT_TRUE(fs::exists(root / "runs" / name / "results.json")) << name;
    EXPECT_TRUE(fs::exists(root / "runs" / name / "tables/table1.md")) << name;
  }
  // Every (dataset, backbone, variant) cell, 2 images each (Context 1: the paper drops its first listed id, which has
  // no label, after the limit): Table 1 (Vanilla and GoCA on four backbones, Baseline and FTTM on SD1.5), its SD1.5
  // rows, and the ablations (Vanilla, GoCA and 7 + 4 + 9 + 2 variants).
  for (const auto& [name, cells] : std::vector<std::pair<std::string, size_t>>{
           {"table1", 5u * (4 + 2 + 2 + 2)}, {"table1-sd15", 5u * 4}, {"ablations-sd15", 5u * (2 + 7 + 4 + 9 + 2)}}) {
    const auto r = gb::reports::load_results((root / "runs" / name / "results.json").string());
    EXPECT_EQ(r.cells.size(), cells) << name;
    for (const auto& c : r.cells) EXPECT_EQ(c.images, c.dataset == "Context" ? 1 : 2) << name << " " << c.key();
  }
  EXPECT_TRUE(fs::exists(root / "runs/table1/report.html"));
}

}  // namespace
