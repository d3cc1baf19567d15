// `goca-bench run` on a generation experiment: configs/experiments/scfg-sd15.yaml with `--set` overrides only, on the
// structure-complete tiny SD1.5 (64 px, 2 steps), a random-weight FID Inception (the metrics tests' weights) and the
// tiny random CLIPModel; 3 prompts x {CFG, S-CFG (GoCA)} x scales {2, 5}; numbers marked synthetic. Checks: the
// paper's table layout and report; FID and CLIP score equal `goca-bench fid` / `clip-score` on the saved images;
// shards 0/2 (killed, then `--resume`d) + 1/2 + `merge` reproduce the single run's FID and CLIP score; bad
// `generation:` sections exit 2 with one line.
#include "e2e_util.h"

#include "harness/io/safetensors.h"
#include "harness/runner/journal.h"
#include "harness/metrics/frechet.h"
#include "tests/metrics/clip_test_folder.h"
#include "tests/metrics/metric_test_weights.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstdio>
#include <memory>

namespace {

using namespace gb::e2e;

const char* kConfig = "configs/experiments/scfg-sd15.yaml";

struct GenWorld {
  fs::path dir;
  std::vector<std::string> sets;  // --set overrides pointing the paper config at the tiny world
};

const GenWorld& gen_world() {
  static const GenWorld w =
      [] {
        GenWorld g;
        g.dir = work_dir() / "generation-run";
        fs::remove_all(g.dir);
        fs::create_directories(g.dir);
        const std::string weights = gb::bb::tiny::write_structural_checkpoint("sd15", g.dir / "sd15");
        auto inception = gb::testing::fid_test_weights();
        gb::save_safetensors((g.dir / "inception.safetensors").string(),
                             std::vector<std::pair<std::string, at::Tensor>>(inception.begin(), inception.end()));
        gb::testing::make_tiny_clip_folder(g.dir / "clip");
        auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
        gb::metrics::write_fid_stats((g.dir / "ref.npz").string(),
                                     gb::metrics::stats_from_features(at::rand({6, 2048}, gen, at::kFloat)));
        std::ofstream(g.dir / "prompts.txt")
            << "a red cat on a sofa\ntwo dogs in a park\na bowl of fruit\na fourth prompt\n";
        for (const std::string& kv : std::vector<std::string>{
                 "device=cpu", "batch_size=1", "examples=2", "backbones.0.weights=" + weights, "backbones.0.dtype=fp32",
                 "generation.prompts=" + (g.dir / "prompts.txt").string(), "generation.limit=3", "generation.steps=2",
                 "generation.image_size=" + std::to_string(kImageSize), "generation.scales=[2.0, 5.0]",
                 "generation.guidance=[{name: CFG, type: cfg}, {name: S-CFG (GoCA), type: scfg, method: "
                 "configs/methods/sd15/scfg.yaml}]",
                 "generation.metrics.inception=" + (g.dir / "inception.safetensors").string(),
                 "generation.metrics.reference_stats=" + (g.dir / "ref.npz").string(),
                 "generation.metrics.clip=" + (g.dir / "clip").string(), "generation.synthetic=true"}) {
          g.sets.push_back("--set");
          g.sets.push_back(kv);
        }
        return g;
      }();
  return w;
}

// The real binary from the repository root, with one OpenMP thread: on this shared 2-core machine, with `ctest -j2`
// and other jobs running, two spinning OpenMP threads per process made these runs 6x slower (measured: the single
// run 165 s with 2 threads vs 26 s with 1 at load average 4-5; LAPACK's geev in the Fréchet distance suffers most).
gb::test::CliResult run_binary(const std::vector<std::string>& args) {
  return gb::test::run_binary_in_repo(args, true);
}

// `goca-bench run CONFIG <sets> --out OUT <extra>` through the binary like run_binary, its results.json.
gb::reports::Results run_fresh(const std::vector<std::string>& sets, const fs::path& out,
                               const std::vector<std::string>& extra = {}) {
  return run_config(kConfig, sets, out, extra, /*one_omp_thread_binary=*/true);
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

using gb::test::last_line;

void expect_same_metrics(const gb::reports::Results& got, const gb::reports::Results& want, const std::string& what) {
  ASSERT_EQ(got.generation.size(), want.generation.size()) << what;
  for (size_t k = 0; k < want.generation.size(); ++k) {
    const auto& g = got.generation[k];
    const auto& w = want.generation[k];
    EXPECT_EQ(g.key(), w.key()) << what;
    EXPECT_EQ(g.images, w.images) << what << " " << w.key();
    EXPECT_NEAR(g.fid, w.fid, 1e-9 * std::fabs(w.fid)) << what << " " << w.key();
    EXPECT_NEAR(g.clip_score(), w.clip_score(), 1e-9 * std::fabs(w.clip_score())) << what << " " << w.key();
    ASSERT_EQ(g.samples.size(), w.samples.size()) << what << " " << w.key();
    for (size_t s = 0; s < w.samples.size(); ++s) EXPECT_EQ(g.samples[s].png_base64, w.samples[s].png_base64) << what;
  }
}

TEST(GenerationRun, PapersTableShardsMergeAndResume) {
  const GenWorld& w = gen_world();
  const fs::path dir = w.dir / "runs";
  fs::remove_all(dir);
  const auto single = run_fresh(w.sets, dir / "single");
  ASSERT_EQ(single.generation.size(), 4u);
  for (const auto& c : single.generation) {
    EXPECT_EQ(c.images, 3) << c.key();
    EXPECT_TRUE(std::isfinite(c.fid) && c.fid > 0) << c.key() << " " << c.fid;
    EXPECT_TRUE(std::isfinite(c.clip_score())) << c.key();
    EXPECT_EQ(c.samples.size(), 2u) << c.key();  // examples: 2
  }
  // S-CFG changes the images, hence the features.
  EXPECT_NE(single.generation[0].fid, single.generation[2].fid);

  // The table, as the paper lays it out, in the three formats, and the report with a sample grid per setting.
  const std::string md = read_text(dir / "single/tables/generation.md");
  EXPECT_NE(md.find("SYNTHETIC"), std::string::npos) << md;
  EXPECT_NE(md.find("| Backbone | Guidance | FID ↓ G=2 | FID ↓ G=5 | CLIP ↑ G=2 | CLIP ↑ G=5 |"), std::string::npos)
      << md;
  EXPECT_NE(md.find(fmt::format("| sd15 | CFG | {:.2f} |", single.generation[0].fid)), std::string::npos) << md;
  EXPECT_NE(md.find("| sd15 | S-CFG (GoCA) |"), std::string::npos) << md;
  EXPECT_EQ(
      read_text(dir / "single/tables/generation.csv").rfind("Backbone,Guidance,FID ↓ G=2,FID ↓ G=5,CLIP ↑ G=2", 0), 0u);
  EXPECT_NE(read_text(dir / "single/tables/generation.tex").find("$\\downarrow$"), std::string::npos);
  const std::string html = read_text(dir / "single/report.html");
  EXPECT_NE(html.find("Generated samples"), std::string::npos);
  size_t grids = 0;
  for (size_t pos = html.find("data:image/png;base64,"); pos != std::string::npos;
       pos = html.find("data:image/png;base64,", pos + 1))
    ++grids;
  EXPECT_EQ(grids, 8u);  // 2 samples x 4 settings

  // The run's numbers are `goca-bench fid` and `clip-score` on the images it saved.
  const fs::path images = dir / "single/images/sd15/CFG/g2";
  ASSERT_TRUE(fs::exists(images / "000002.png"));
  auto quiet = [](std::vector<std::string> args) {
    args.push_back("--json");
    auto r = run_binary(args);
    r.out = last_line(r.out);
    return r;
  };
  auto r = quiet({"fid", "--images", images.string(), "--ref-stats", (w.dir / "ref.npz").string(), "--inception",
                  (w.dir / "inception.safetensors").string()});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NEAR(nlohmann::json::parse(last_line(r.out))["fid"].get<double>(), single.generation[0].fid,
              1e-6 * single.generation[0].fid);
  r = quiet({"clip-score", "--images", images.string(), "--prompts", (w.dir / "prompts.txt").string(), "--clip",
             (w.dir / "clip").string()});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NEAR(nlohmann::json::parse(last_line(r.out))["clip_score"].get<double>(), single.generation[0].clip_score(),
              1e-4);

  // Shard 0/2 (prompts 0, 2) killed after 3 journalled images (the binary exits abruptly, as a kill would: setting 1
  // done, setting 2 half done) and resumed; shard 1/2 (prompt 1); merged. The merge equals the single run only if
  // the resumed shard's sums are exactly an uninterrupted shard's.
  std::vector<std::string> args = {"run", kConfig};
  args.insert(args.end(), w.sets.begin(), w.sets.end());
  args.insert(args.end(), {"--shard", "0/2", "--out", (dir / "shard0").string(), "--no-progress", "--stop-after", "3"});
  const auto killed = run_binary(args);
  ASSERT_EQ(killed.code, 75) << killed.out;
  EXPECT_FALSE(fs::exists(dir / "shard0/results.json"));
  const auto s0 = run_fresh(w.sets, dir / "shard0", {"--shard", "0/2", "--resume"});
  const auto s1 = run_fresh(w.sets, dir / "shard1", {"--shard", "1/2"});
  ASSERT_EQ(s0.generation.size(), 4u);
  ASSERT_EQ(s1.generation.size(), 4u);
  for (size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(s0.generation[k].images, 2);
    EXPECT_EQ(s1.generation[k].images, 1);
    EXPECT_TRUE(std::isnan(s0.generation[k].fid));  // a shard's FID comes from the merged sums
    EXPECT_TRUE(fs::exists(dir / "shard1" / s1.generation[k].sums_file));
  }
  EXPECT_EQ(s0.timings.at("generation|sd15").images, 8 - 3);  // the resumed part only
  r = run_binary({"merge", (dir / "shard1").string(), (dir / "shard0").string(), "--out", (dir / "merged").string()});
  ASSERT_EQ(r.code, 0) << r.out;
  const auto merged = gb::reports::load_results((dir / "merged/results.json").string());
  expect_same_metrics(merged, single, "shards (one killed and resumed) + merge");
  r = run_binary({"compare", (dir / "merged").string(), (dir / "single").string(), "--gen-tol", "1e-9"});
  EXPECT_EQ(r.code, 0) << r.out;
  r = cli({"report", (dir / "merged").string()});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(read_text(dir / "merged/tables/generation.md")
                .find(fmt::format("| sd15 | CFG | {:.2f} |", single.generation[0].fid)),
            std::string::npos);
  // A journal line with a valid checksum but a bad record stops --resume with exit 2 naming the line.
  fs::copy(dir / "shard1", dir / "corrupt", fs::copy_options::recursive);
  std::ofstream(dir / "corrupt/journal/sd15/CFG/g2.jsonl", std::ios::app)
      << gb::runner::Journal::encode_line({{"i", 1}, {"id", "000001"}, {"clip", "high"}, {"f", ""}});
  r = [&] {
    std::vector<std::string> a = {"run", kConfig};
    a.insert(a.end(), w.sets.begin(), w.sets.end());
    a.insert(a.end(), {"--shard", "1/2", "--resume", "--out", (dir / "corrupt").string(), "--no-progress"});
    return cli(a);
  }();
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("g2.jsonl: line 3: \"clip\" must be a finite number"), std::string::npos) << r.out;

  // A shard alone is not comparable with a whole run.
  r = run_binary({"compare", (dir / "shard0").string(), (dir / "single").string()});
  EXPECT_EQ(r.code, 3) << r.out;
  if (!HasFailure()) fs::remove_all(dir);  // about 0.7 GB: the feature sums of 5 runs x 4 settings, 32 MB each
}

TEST(GenerationRun, BadGenerationSectionsExit2WithOneLine) {
  const GenWorld& w = gen_world();
  auto expect_exit2 = [&](const std::vector<std::string>& extra, const std::string& needle) {
    std::vector<std::string> args = {"run", kConfig};
    args.insert(args.end(), w.sets.begin(), w.sets.end());
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"--out", (w.dir / "runs/bad").string(), "--no-progress"});
    gb::test::expect_exit2_one_line(cli(args), needle);
  };
  expect_exit2({"--set", "generation.bogus_key=1"}, "bogus_key");
  expect_exit2({"--set", "generation.metrics.fid_weights=x"}, "fid_weights");
  expect_exit2({"--set", "generation.prompts=" + (w.dir / "no-prompts.txt").string()}, "no-prompts.txt");
  expect_exit2({"--set", "generation.metrics.inception=" + (w.dir / "no-inception.safetensors").string()},
               "no-inception.safetensors");
  expect_exit2({"--set", "generation.guidance=[{name: X, type: pag}]"}, "pag");
  expect_exit2({"--set", "generation.scales=[]"}, "scales");
  expect_exit2({"--set", "datasets=[{name: voc}]"}, "generation experiment");
}

}  // namespace
