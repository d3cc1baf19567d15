// The `generation:` section of an experiment (harness/runner/experiment.h): the paper configs parse and expand, the
// {backbone} placeholder, and bad sections are UserErrors naming the key.
#include "harness/core/errors.h"
#include "harness/runner/experiment.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace gb::runner;

namespace {

struct InRepo {
  fs::path saved = fs::current_path();
  InRepo() { fs::current_path(GB_SOURCE_DIR); }
  ~InRepo() { fs::current_path(saved); }
};

TEST(GenerationExperiment, PaperConfigsParse) {
  InRepo here;
  for (const std::string kind : {"sd15", "pixart-sigma"}) {
    const Experiment ex = load_experiment("configs/experiments/scfg-" + kind + ".yaml");
    ASSERT_TRUE(ex.generation) << kind;
    EXPECT_TRUE(ex.datasets.empty());
    ASSERT_EQ(ex.backbones.size(), 1u);
    EXPECT_EQ(ex.backbones[0].kind, kind == "sd15" ? kind : "pixart-sigma-512");  // the paper's 512-MS checkpoint
    const auto& g = *ex.generation;
    EXPECT_EQ(g.scales, (std::vector<double>{2.0, 3.0, 5.0, 7.5, 10.0}));
    EXPECT_EQ(g.steps, kind == "sd15" ? 50 : 20);
    EXPECT_EQ(g.limit, -1);
    EXPECT_FALSE(g.synthetic);
    const auto& rows = g.guidance.at(kind);
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[0].name, "CFG");
    EXPECT_EQ(rows[0].type, "cfg");
    EXPECT_EQ(rows[1].method_file, "configs/methods/" + kind + "/vanilla.yaml");
    EXPECT_EQ(rows[2].method_file, "configs/methods/" + kind + "/scfg.yaml");
    EXPECT_EQ(rows[2].method_yaml["ref_mode"].as<std::string>(), "full");
    EXPECT_NE(g.prompts.find("MS-COCO_val2014_30k_captions.csv"), std::string::npos);
  }
}

TEST(GenerationExperiment, BackbonePlaceholderFiltersAndErrors) {
  InRepo here;
  const fs::path dir = fs::temp_directory_path() / ("gb_gen_exp_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "gen.yaml").string();
  std::ofstream(path) << R"(name: g
backbones:
  - {name: sd15, weights: /nowhere/sd15}
  - {name: pixart-sigma, weights: /nowhere/pixart}
generation:
  prompts: p.txt
  scales: [7.5]
  guidance:
    - name: CFG
      type: cfg
    - name: GoCA
      type: scfg
      method: configs/methods/{backbone}/scfg.yaml
    - name: Preset
      type: scfg
      backbones: [pixart-sigma]
  metrics: {inception: i.safetensors, reference_stats: r.npz, clip: clip}
)";
  const Experiment ex = load_experiment(path);
  EXPECT_EQ(ex.generation->guidance.at("sd15").size(), 2u);
  ASSERT_EQ(ex.generation->guidance.at("pixart-sigma").size(), 3u);
  EXPECT_EQ(ex.generation->guidance.at("pixart-sigma")[1].method_file, "configs/methods/pixart-sigma/scfg.yaml");
  EXPECT_EQ(ex.generation->guidance.at("pixart-sigma")[2].method_file, "");
  auto expect_error = [&](const std::vector<std::string>& sets, const std::string& needle) {
    try {
      load_experiment(path, sets);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const gb::UserError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error({"generation.oops=1"}, "oops");
  expect_error({"generation.metrics.batch=1"}, "batch");
  expect_error({"generation.scales=[2, 2]"}, "listed twice");
  expect_error({"generation.scales=[0]"}, "positive");
  expect_error({"generation.guidance.0.method=configs/methods/sd15/scfg.yaml"}, "only S-CFG");
  expect_error({"generation.guidance.1.method=configs/methods/{backbone}/none.yaml"}, "none.yaml");
  expect_error({"generation.scheduler=nope"}, "nope");
  expect_error({"methods=[]"}, "generation experiment");
  fs::remove_all(dir);
}

}  // namespace
