// Regression tests of the two bugs that kept checkpoint backbones out of `goca-bench run`:
//  - a backbone entry without `options:` (every backbone of configs/experiments/*.yaml) stopped the run with
//    "options must be a mapping": a missing key left a default-constructed YAML::Node, which is a *defined* null;
//  - the run was reported to die at the first image with "variable_excluded_from_dispatch() INTERNAL ASSERT
//    FAILED at .../mkldnn/MKLDNNCommon.cpp" (1 worker, batch 1). The captures are inference tensors (made under
//    c10::InferenceMode inside the backbone) and the runner's pipeline thread segmented them outside it; the
//    runner now segments under InferenceMode. NOT reproduced with PyTorch 2.11 on the development machine (this
//    test passed before the change too), so it guards the path, it did not demonstrate the crash.
#include "e2e_util.h"

#include "harness/core/errors.h"
#include "harness/runner/experiment.h"
#include "harness/runner/integration.h"

namespace {

using namespace gb::e2e;

TEST(RunRegressions, BackboneEntryWithoutOptionsUsesTheDefaults) {
  InRepoRoot here;
  const auto ex = gb::runner::load_experiment("configs/experiments/table1-sd15.yaml",
                                              {"backbones.0.weights=" + world().weights.at("sd15")});
  ASSERT_EQ(ex.backbones.size(), 1u);
  EXPECT_TRUE(ex.backbones[0].options_yaml.IsMap());
  EXPECT_EQ(ex.backbones[0].options_yaml.size(), 0u);
  auto bb = gb::runner::make_backbone(ex.backbones[0], "cpu", 0);
  EXPECT_EQ(bb->kind(), "sd15");
  EXPECT_FALSE(gb::runner::wants_prompt_preencoding(ex.backbones[0]));
  // `options:` with nothing after it is the same; a scalar is still an error.
  const std::string w = "backbones.0.weights=" + world().weights.at("sd15");
  const auto null_options =
      gb::runner::load_experiment("configs/experiments/table1-sd15.yaml", {w, "backbones.0.options=~"});
  EXPECT_TRUE(null_options.backbones[0].options_yaml.IsMap());
  EXPECT_NO_THROW(gb::runner::make_backbone(null_options.backbones[0], "cpu", 0));
  EXPECT_THROW(gb::runner::load_experiment("configs/experiments/table1-sd15.yaml", {w, "backbones.0.options=7"}),
               gb::UserError);
}

TEST(RunRegressions, CheckpointBackboneRunsOneWorkerBatchOne) {
  // The smallest run that died: one worker, batch size 1, SD1.5 (all four presets), first image.
  auto sets = world_sets({"sd15"}, 1);
  sets.insert(sets.end(), {"--set", "workers=1"});
  const auto r =
      run_config("configs/experiments/table1-sd15.yaml", sets, work_dir() / "regression-b1", {"--batch-size", "1"});
  ASSERT_EQ(r.cells.size(), 5u * 4u);
  for (const auto& c : r.cells) EXPECT_EQ(c.images, 1) << c.key();
}

}  // namespace
