// Results do not depend on how a run is cut up, with a checkpoint backbone (the tiny structure-complete SD1.5)
// through configs/experiments/table1-sd15.yaml: shards + `merge` = the single run, a killed run + `--resume` = the
// uninterrupted run, batch sizes 1 and 3 = the config's 4. Every confusion matrix is compared exactly.
#include "e2e_util.h"

#include <cstdio>
#include <memory>

namespace {

using namespace gb::e2e;

const char* kConfig = "configs/experiments/table1-sd15.yaml";

// Exact because the run captures one sample at a time (batch_invariant: true, the default; gb::capture_each_sample):
// a batched forward through oneDNN sums some convolutions and GroupNorms in another order at batch 4 than at 1.
TEST(InvarianceLong, ShardsResumeAndBatchSizesWithACheckpointBackbone) {
  const auto sets = world_sets({"sd15"}, 2);  // 2 images of each of the five datasets
  const fs::path dir = work_dir() / "invariance";
  fs::remove_all(dir);
  const auto single = run_config(kConfig, sets, dir / "single");
  ASSERT_EQ(single.cells.size(), 5u * 4u);
  for (const auto& c : single.cells) EXPECT_EQ(c.images, 2) << c.key();

  // Batch sizes 1 and 3 (the config says 4).
  expect_same_confusions(run_config(kConfig, sets, dir / "b1", {"--batch-size", "1"}), single);
  expect_same_confusions(run_config(kConfig, sets, dir / "b3", {"--batch-size", "3"}), single);

  // Two shards, merged.
  const auto s0 = run_config(kConfig, sets, dir / "shard0", {"--shard", "0/2"});
  const auto s1 = run_config(kConfig, sets, dir / "shard1", {"--shard", "1/2"});
  for (const auto& c : s0.cells) EXPECT_EQ(c.images, 1) << c.key();
  const auto m =
      cli({"merge", (dir / "shard0").string(), (dir / "shard1").string(), "--out", (dir / "merged").string()});
  ASSERT_EQ(m.code, 0) << m.out;
  expect_same_confusions(gb::reports::load_results((dir / "merged/results.json").string()), single);

  // Killed after 3 journalled images (the binary exits abruptly, as a kill would), then resumed.
  std::vector<std::string> args = {"run", kConfig};
  args.insert(args.end(), sets.begin(), sets.end());
  args.insert(args.end(), {"--out", (dir / "killed").string(), "--no-progress", "--stop-after", "3"});
  const auto killed = gb::test::run_binary_in_repo(args);  // a kill cannot run in-process
  ASSERT_EQ(killed.code, 75) << killed.out;
  EXPECT_FALSE(fs::exists(dir / "killed/results.json"));
  const auto resumed = run_config(kConfig, sets, dir / "killed", {"--resume"});
  expect_same_confusions(resumed, single);
  EXPECT_EQ(resumed.examples.size(), single.examples.size());
}

}  // namespace
