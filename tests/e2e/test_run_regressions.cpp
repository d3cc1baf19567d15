// Regression tests of the bugs that kept checkpoint backbones out of `goca-bench run`:
//  - a backbone entry without `options:` (every backbone of configs/experiments/*.yaml) stopped the run with
//    "options must be a mapping": a missing key left a default-constructed YAML::Node, which is a *defined* null.
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
  EXPECT_TRUE(ex.backbones[0].options.IsMap());
  EXPECT_EQ(ex.backbones[0].options.size(), 0u);
  auto bb = gb::runner::make_backbone(ex.backbones[0], "cpu", 0);
  EXPECT_EQ(bb->kind(), "sd15");
  EXPECT_FALSE(gb::runner::wants_prompt_preencoding(ex.backbones[0]));
  // `options:` with nothing after it is the same; a scalar is still an error.
  gb::runner::BackboneEntry e = ex.backbones[0];
  e.options = YAML::Load("options:")["options"];
  EXPECT_NO_THROW(gb::runner::make_backbone(e, "cpu", 0));
  e.options = YAML::Load("7");
  EXPECT_THROW(gb::runner::make_backbone(e, "cpu", 0), gb::UserError);
}

}  // namespace
