// End-to-end runner tests on the synthetic world (real VOC reader, real CLIP tokenizer and prompt builder,
// real Segmentor and evaluator): config expansion, shard + merge = single run, kill + resume = uninterrupted
// run, batch-size independence, and the committed regression results.
#include "harness/core/errors.h"
#include <ATen/Parallel.h>
#include "harness/runner/experiment.h"
#include "harness/runner/integration.h"
#include "harness/backbones/memory_plan.h"
#include "../backbones/tiny_dit.h"
#include "harness/runner/runner.h"
#include "harness/backbones/synthetic_scene.h"
#include "harness/text/clip_tokenizer.h"
#include "reports/compare.h"
#include "reports/merge.h"
#include "reports/results.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <set>
#include <map>
#include <nlohmann/json.hpp>
#include <fstream>

#include <csignal>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace gb::runner;
using namespace gb::bb;

namespace {

const fs::path kWork = fs::temp_directory_path() / "gb_test_runner";

// A small experiment: 6 synthetic images, Vanilla + GoCA + a 2-value ablation.
std::string mini_config(const std::string& name, int images = 6, const std::string& backbone_extra = "") {
  const std::string src = GB_SOURCE_DIR;
  return "name: " + name + "\noutput_root: " + (kWork / "runs").string() +
         "\nseed: 0\nbatch_size: 2\nworkers: 2\n"
         "device: cpu\nexamples: 1\n"
         "datasets:\n  - name: synthetic-voc\n"
         "    synthetic_images: " +
         std::to_string(images) +
         "\n    set:\n      dataset: voc\n      protocol: paper\n      root: " + (kWork / "data").string() +
         "\n      captions: " + (kWork / "data/captions.json").string() +
         "\n      limit: -1\n"
         "backbones:\n  - name: synthetic\n    kind: synthetic\n    options: {tokenizer: " +
         src + "/configs/synthetic/clip-mini-merges.txt.gz" + backbone_extra +
         "}\n"
         "methods:\n"
         "  - {name: Vanilla, type: Training-free, method: " +
         src +
         "/configs/methods/sd15/vanilla.yaml, set: {output_size: 16}}\n"
         "  - {name: GoCA, type: Training-free, method: " +
         src +
         "/configs/methods/sd15/goca.yaml, set: {output_size: 16}}\n"
         "ablations:\n  - {name: head, base: GoCA, grid: {head_method: [average, dot_product_no_clamp]}}\n";
}

Experiment load(const std::string& name, const std::vector<std::string>& sets = {}, int images = 6,
                const std::string& backbone_extra = "") {
  fs::create_directories(kWork);
  const fs::path p = kWork / (name + ".yaml");
  std::ofstream(p) << mini_config(name, images, backbone_extra);
  return load_experiment(p.string(), sets);
}

RunOptions quiet() {
  RunOptions o;
  o.progress = false;
  return o;
}

void expect_same_accuracy(const gb::reports::Results& a, const gb::reports::Results& b) {
  ASSERT_EQ(a.cells.size(), b.cells.size());
  for (size_t k = 0; k < a.cells.size(); ++k) {
    ASSERT_EQ(a.cells[k].key(), b.cells[k].key());
    EXPECT_EQ(a.cells[k].images, b.cells[k].images);
    for (size_t t = 0; t < a.cells[k].thresholds.size(); ++t)
      EXPECT_EQ(a.cells[k].thresholds[t].confusion, b.cells[k].thresholds[t].confusion) << a.cells[k].key();
  }
  EXPECT_EQ(a.config_hash, b.config_hash);
}

}  // namespace

// fork() for a child that runs the pipeline. GNU OpenMP is not fork-safe: the parent's thread pool does not exist
// in the child, whose first parallel region would wait for it forever. One intra-op thread keeps the child off it.
static pid_t fork_single_threaded() {
  const pid_t pid = fork();
  if (pid == 0) at::set_num_threads(1);
  return pid;
}

TEST(Experiment, ExpandsMethodsAndAblationGrids) {
  const Experiment ex = load("expand");
  ASSERT_EQ(ex.variants.at("synthetic").size(), 4u);
  const auto& v = ex.variants.at("synthetic");
  EXPECT_EQ(v[0].name, "Vanilla");
  EXPECT_EQ(v[2].name, "GoCA/head_method=average");
  EXPECT_EQ(v[2].group, "head");
  EXPECT_EQ(v[2].axes.at("head_method"), "average");
  EXPECT_EQ(v[2].method_yaml["head_method"].as<std::string>(), "average");
  EXPECT_EQ(v[3].method_yaml["output_size"].as<int>(), 16);
  const auto grid = grid_product({{"a", {"1", "2"}}, {"b", {"x", "y", "z"}}});
  EXPECT_EQ(grid.size(), 6u);
  EXPECT_EQ(grid[5].at("b"), "z");
  // --set reaches any key; bad input names the file.
  EXPECT_EQ(load("expand", {"batch_size=5"}).batch_size, 5);
  EXPECT_THROW(load("expand", {"ablations.0.base=Nope"}), gb::UserError);
  EXPECT_THROW(load("expand", {"bogus_key=1"}), gb::UserError);
}

TEST(Experiment, PaperConfigsParseAndExpand) {
  const fs::path dir = fs::path(GB_SOURCE_DIR) / "configs/experiments";
  const fs::path cwd = fs::current_path();
  fs::current_path(GB_SOURCE_DIR);  // method paths in the configs are relative to the repository
  const Experiment t1 = load_experiment((dir / "table1.yaml").string());
  EXPECT_EQ(t1.datasets.size(), 5u);
  EXPECT_EQ(t1.backbones.size(), 4u);
  EXPECT_EQ(t1.variants.at("sd15").size(), 4u);  // Vanilla, Baseline, FTTM, GoCA
  EXPECT_EQ(t1.variants.at("sdxl").size(), 2u);  // Vanilla, GoCA
  const Experiment ab = load_experiment((dir / "ablations-sd15.yaml").string());
  EXPECT_EQ(ab.variants.at("sd15").size(), 2u + 7 + 4 + 9 + 2);
  EXPECT_NO_THROW(load_experiment((dir / "table1-sd15.yaml").string()));
  // Every backbone x {Vanilla, GoCA} x the six datasets (issue 16).
  const Experiment sc = load_experiment((dir / "scaling.yaml").string());
  EXPECT_EQ(sc.datasets.size(), 6u);
  EXPECT_EQ(sc.backbones.size(), 10u);
  for (const auto& b : sc.backbones) EXPECT_EQ(sc.variants.at(b.name).size(), 2u) << b.name;
  EXPECT_NO_THROW(load_experiment((fs::path(GB_SOURCE_DIR) / "configs/quickstart.yaml").string()));
  fs::current_path(cwd);
}

TEST(Runner, ShardsMergeToTheSingleRunAndBatchSizeDoesNotMatter) {
  const Experiment ex = load("single");
  const auto single = run_experiment(ex, quiet());
  EXPECT_EQ(single.cells.size(), 4u);
  EXPECT_EQ(single.cells[0].images, 6);
  EXPECT_TRUE(fs::exists(fs::path(ex.run_dir()) / "report.html"));
  EXPECT_TRUE(fs::exists(fs::path(ex.run_dir()) / "tables/table1.md"));
  {  // The timeline: one span per stage per image (or batch) on the thread that ran it, in the Chrome trace format.
    std::ifstream in(fs::path(ex.run_dir()) / "profile.trace.json");
    const auto trace = nlohmann::json::parse(in);
    std::map<std::string, int> count;
    std::set<int64_t> threads;
    for (const auto& e : trace.at("traceEvents")) {
      if (e.at("ph") != "X") continue;
      ++count[e.at("name").get<std::string>()];
      EXPECT_GE(e.at("dur").get<int64_t>(), 0);
      threads.insert(e.at("tid").get<int64_t>());
    }
    EXPECT_EQ(count["decode"], 6);
    EXPECT_EQ(count["prompt"], 6);
    EXPECT_GE(count["capture"], 1);
    EXPECT_EQ(count["aggregation"], 6 * static_cast<int>(ex.variants.begin()->second.size()));
    EXPECT_EQ(count["evaluation"], count["aggregation"]);
    EXPECT_FALSE(threads.empty());
    std::ifstream md(fs::path(ex.run_dir()) / "profile.md");
    const std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("Pipeline utilisation: the denoiser was busy"), std::string::npos);
  }

  std::vector<gb::reports::Results> shards;
  std::vector<std::string> names;
  for (int i = 0; i < 3; ++i) {
    RunOptions o = quiet();
    o.shard_index = i;
    o.shard_count = 3;
    shards.push_back(run_experiment(ex, o));
    names.push_back("shard" + std::to_string(i));
    EXPECT_EQ(shards.back().cells[0].images, 2);
  }
  const auto merged = gb::reports::merge_results(shards, names);
  expect_same_accuracy(merged, single);
  EXPECT_EQ(merged.examples.size(), single.examples.size());
  EXPECT_EQ(gb::reports::compare_results(merged, single, {}).verdict, gb::reports::Verdict::Same);

  Experiment ex1 = ex;
  ex1.batch_size = 1;
  ex1.output_root = (kWork / "runs-b1").string();
  expect_same_accuracy(run_experiment(ex1, quiet()), single);
  Experiment ex5 = ex;
  ex5.batch_size = 5;
  ex5.output_root = (kWork / "runs-b5").string();
  expect_same_accuracy(run_experiment(ex5, quiet()), single);
  Experiment batched = ex5;  // one forward per batch: the synthetic backbone is batch-invariant by construction
  batched.batch_invariant = false;
  batched.output_root = (kWork / "runs-b5-batched").string();
  expect_same_accuracy(run_experiment(batched, quiet()), single);
}

TEST(Runner, TextEncoderFreePreEncodesEveryPromptOfTheShardFirst) {
  // The synthetic backbone with text_encoder: free refuses any prompt the runner did not hand to prepare_prompts.
  const Experiment keep = load("te-keep");
  const Experiment free = load("te-free", {}, 6, ", text_encoder: free");
  const auto a = run_experiment(keep, quiet());
  const auto b = run_experiment(free, quiet());
  expect_same_accuracy(a, b);  // same numbers, and text_encoder stays out of the config hash
  EXPECT_GT(b.timings.at("synthetic-voc|synthetic").seconds.at("text"), 0.0);
  RunOptions o = quiet();
  o.shard_index = 1;
  o.shard_count = 2;
  EXPECT_EQ(run_experiment(free, o).cells[0].images, 3);
  // A bad value is one clear error (when the experiment is read).
  try {
    run_experiment(load("te-bad", {}, 6, ", text_encoder: sideways"), quiet());
    ADD_FAILURE() << "no error";
  } catch (const gb::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("keep or free"), std::string::npos) << e.what();
  }
}

// One `backbones:` entry as an experiment lists it, read and checked as the experiment loader does.
BackboneEntry entry_of(const std::string& yaml) {
  const gb::Config cfg = gb::Config::from_string(yaml, "entry.yaml");
  const gb::ConfigReader r(cfg);
  BackboneEntry e = read_backbone_entry(r);
  r.finish();
  return e;
}

TEST(Runner, CheckpointBackboneOptionsAreCheckedStrictly) {
  const std::string weights = (kWork / "no-such-folder").string();
  auto error_of = [&](const std::string& options) {
    try {
      make_backbone(entry_of("{name: flux, kind: flux, weights: " + weights + ", options: " + options + "}"), "cpu", 0);
    } catch (const gb::UserError& ex) {
      return std::string(ex.what());
    }
    return std::string();
  };
  EXPECT_NE(error_of("{bogus: 1}").find("entry.yaml:1: options.bogus: unknown key"), std::string::npos);
  EXPECT_NE(error_of("{text_encoder: sideways}").find("keep, offload or free"), std::string::npos);
  EXPECT_NE(error_of("{store_dtype: fp8}").find("options.store_dtype: 'fp8' is not one of"), std::string::npos);
  EXPECT_NE(error_of("{image_size: -4}").find("options.image_size: must be positive"), std::string::npos);
  EXPECT_NE(error_of("{t5_int8: maybe}").find("options.t5_int8: expected true or false"), std::string::npos);
  // A common option the kind does not take is an unknown key of its options; a mode it lacks names who has it.
  try {
    entry_of("{name: sd15, options: {t5_int8: false}}");
    ADD_FAILURE() << "no error";
  } catch (const gb::UserError& ex) {
    EXPECT_NE(std::string(ex.what()).find("options.t5_int8: unknown key"), std::string::npos) << ex.what();
  }
  try {
    entry_of("{name: sd15, options: {text_encoder: free}}");
    ADD_FAILURE() << "no error";
  } catch (const gb::UserError& ex) {
    EXPECT_NE(std::string(ex.what()).find("text_encoder must be keep, not 'free'"), std::string::npos) << ex.what();
  }
  // Valid options get as far as the (missing) folder.
  EXPECT_NE(error_of("{text_encoder: free, t5_int8: true, image_size: 512}").find("no-such-folder"), std::string::npos);
  EXPECT_TRUE(wants_prompt_preencoding(entry_of("{name: flux, options: {text_encoder: free}}")));
  EXPECT_FALSE(wants_prompt_preencoding(entry_of("{name: flux, options: {text_encoder: offload}}")));
  EXPECT_FALSE(option_affects_results("text_encoder"));
  EXPECT_TRUE(option_affects_results("t5_int8"));
  EXPECT_TRUE(option_affects_results("image_size"));
}

TEST(Runner, PlannedPeakIsTheMemoryPlanOfTheEntry) {
  const fs::path dir = kWork / "tiny-flux-plan";
  fs::remove_all(dir);
  gb::bb::tiny::write_tiny_flux(dir);
  const BackboneEntry e = entry_of("{name: flux, weights: " + dir.string() +
                                   ", dtype: bf16, options: {image_size: 16, text_encoder: free, store_dtype: fp32}}");
  gb::CaptureSpec spec;
  spec.add("vit-block0-cross-map");
  spec.add("vit-block3-self-map");
  spec.self_map_head_mean = spec.cross_map_head_mean = true;
  gb::bb::MemoryPlanOptions mo;
  mo.kind = "flux";
  mo.folder = dir.string();
  mo.dtype = at::kBFloat16;
  mo.store_dtype = at::kFloat;
  mo.image_size = 16;
  mo.text_encoder = gb::bb::TextEncoderResidency::free;
  mo.spec = spec;
  const int64_t want = gb::bb::plan_memory(mo, 3).peak();
  EXPECT_GT(want, 0);
  EXPECT_EQ(planned_peak_bytes(e, "cuda", spec, 3, false), want);
  mo.text_encoder = gb::bb::TextEncoderResidency::keep;
  EXPECT_NE(planned_peak_bytes(e, "cuda", spec, 3, false), gb::bb::plan_memory(mo, 3).peak());  // options are honoured
  EXPECT_EQ(planned_peak_bytes(entry_of("{name: synthetic}"), "cuda", spec, 3, false), 0);      // no memory model
  // One forward per sample: batch 1's phases with the three samples' stacked captures beside them.
  mo.text_encoder = gb::bb::TextEncoderResidency::free;
  const auto one = gb::bb::plan_memory(mo, 1), three = gb::bb::plan_memory(mo, 3);
  mo.per_sample_forward = true;
  const auto each = gb::bb::plan_memory(mo, 3);
  EXPECT_EQ(planned_peak_bytes(e, "cuda", spec, 3, true), each.peak());
  EXPECT_EQ(each.capture_bytes(), three.capture_bytes());
  EXPECT_EQ(each.peak(), one.peak() + three.capture_bytes());
  EXPECT_LT(each.peak(), three.peak());
  fs::remove_all(dir);
}

TEST(Runner, KilledAndResumedEqualsUninterrupted) {
  const Experiment ex = load("resume");
  const auto whole = run_experiment(ex, quiet());
  fs::remove_all(kWork / "runs/resume-killed");
  // Kill a child mid-run (it exits abruptly after 3 journalled images, as a kill would), then resume.
  const pid_t pid = fork_single_threaded();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    RunOptions o = quiet();
    o.stop_after = 3;
    o.run_dir = (kWork / "runs/resume-killed").string();
    run_experiment(ex, o);
    std::_Exit(0);  // not reached: stop_after exits with 75
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 75);
  EXPECT_FALSE(fs::exists(kWork / "runs/resume-killed/results.json"));
  RunOptions o = quiet();
  o.resume = true;
  o.run_dir = (kWork / "runs/resume-killed").string();
  const auto resumed = run_experiment(ex, o);
  expect_same_accuracy(resumed, whole);
  EXPECT_EQ(resumed.examples.size(), whole.examples.size());
  // Resuming a finished run redoes nothing and counts nothing twice.
  expect_same_accuracy(run_experiment(ex, o), whole);
}

// A full disk mid-run (a file-size limit just past the journal's third record): the run stops with a UserError
// (exit 2 in the CLI) naming the journal, no results.json is left behind, and --resume completes it to the
// uninterrupted result. Then a torn last record (a kill -9 mid-write, simulated by truncation) is dropped.
TEST(Runner, FullDiskStopsWithAUserErrorAndResumeCompletes) {
  const Experiment ex = load("fulldisk");
  const auto whole = run_experiment(ex, quiet());
  const fs::path journal_dir = kWork / "runs/fulldisk/journal";
  ASSERT_TRUE(fs::exists(journal_dir));
  const fs::path journal = fs::directory_iterator(journal_dir)->path();
  std::string text;
  {
    std::ifstream in(journal, std::ios::binary);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  size_t limit = 0;  // header + 3 records (the batches hold 2 images: the 2nd batch write fails half-way)
  for (int line = 0; line < 4; ++line) limit = text.find('\n', limit) + 1;
  const fs::path run_dir = kWork / "runs/fulldisk-killed";
  fs::remove_all(run_dir);
  const pid_t pid = fork_single_threaded();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);  // as goca-bench's main() does: EFBIG instead of a kill
    struct rlimit rl {};
    rl.rlim_cur = rl.rlim_max = limit;
    setrlimit(RLIMIT_FSIZE, &rl);
    RunOptions o = quiet();
    o.run_dir = run_dir.string();
    try {
      run_experiment(ex, o);
    } catch (const gb::UserError& e) {
      const std::string m = e.what();
      std::_Exit(m.find("journal") != std::string::npos && m.find("File too large") != std::string::npos ? 2 : 3);
    }
    std::_Exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 2);
  EXPECT_FALSE(fs::exists(run_dir / "results.json"));
  for (const auto& e : fs::recursive_directory_iterator(run_dir))  // no temporary file left behind
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  const fs::path killed_journal = run_dir / "journal" / journal.filename();
  {  // The failed batch is cut back off: header + the first batch of 2 records, each whole. (Not compared byte
     // for byte with the uninterrupted journal: the child runs one intra-op thread, so float sums may round
     // differently and print with another number of digits.)
    std::ifstream in(killed_journal, std::ios::binary);
    const std::string kept((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(std::count(kept.begin(), kept.end(), '\n'), 3);
    EXPECT_EQ(kept.back(), '\n');
  }
  // A torn record on top (a kill -9 in the middle of the next write) is dropped on resume.
  std::ofstream(killed_journal, std::ios::app | std::ios::binary) << text.substr(limit, 25);
  RunOptions o = quiet();
  o.resume = true;
  o.run_dir = run_dir.string();
  const auto resumed = run_experiment(ex, o);
  expect_same_accuracy(resumed, whole);
  EXPECT_EQ(resumed.examples.size(), whole.examples.size());
}

TEST(Runner, ShardSyntax) {
  int64_t i = 0, n = 0;
  parse_shard("2/5", i, n);
  EXPECT_EQ(i, 2);
  EXPECT_EQ(n, 5);
  EXPECT_THROW(parse_shard("5/5", i, n), gb::UserError);
  EXPECT_THROW(parse_shard("x", i, n), gb::UserError);
  EXPECT_TRUE(in_shard(7, 1, 3));
  EXPECT_FALSE(in_shard(7, 0, 3));
}

// CI regression: a reduced quickstart against committed expected results, compared exactly (every
// confusion matrix). A change in any method, the evaluator, the prompt builder, the readers or the synthetic
// world shows up here. After an intended change, regenerate with GB_UPDATE_REGRESSION=1 and commit.
TEST(Regression, ReducedQuickstartMatchesCommittedResults) {
  const Experiment ex = load("regression", {"examples=0"});
  const auto now = run_experiment(ex, quiet());
  const fs::path expected = fs::path(GB_SOURCE_DIR) / "tests/regression/quickstart-mini/results.json";
  if (std::getenv("GB_UPDATE_REGRESSION")) {
    gb::reports::Results stored = now;
    stored.timings.clear();  // keep the committed file free of machine-specific numbers
    stored.created_utc = "";
    stored.git_commit = "";
    stored.peak_host_bytes = 0;
    stored.config_yaml = "";
    gb::reports::save_results(stored, expected.string());
    GTEST_SKIP() << "wrote " << expected;
  }
  ASSERT_TRUE(fs::exists(expected)) << "run with GB_UPDATE_REGRESSION=1 once to create " << expected;
  const auto old = gb::reports::load_results(expected.string());
  const auto rep = gb::reports::compare_results(now, old, {});
  EXPECT_EQ(rep.verdict, gb::reports::Verdict::Same) << rep.to_text();
}

TEST(SyntheticTokenizer, MiniMergesTokenizeLikeFullClip) {
  const auto full =
      gb::text::ClipTokenizer::from_merges(std::string(GB_SHARED_DIR) + "/data/clip/bpe_simple_vocab_16e6.txt.gz");
  const auto mini =
      gb::text::ClipTokenizer::from_merges(std::string(GB_SOURCE_DIR) + "/configs/synthetic/clip-mini-merges.txt.gz");
  SyntheticWorldOptions opt;
  for (int i = 0; i < 40; ++i) {
    const std::string caption = make_scene(synthetic_id(i), opt).caption() + ", background";
    const auto a = full->encode(caption), b = mini->encode(caption);
    ASSERT_EQ(a.size(), b.size());
    for (size_t t = 0; t < a.size(); ++t) {
      EXPECT_EQ(a[t].text, b[t].text) << caption;
      EXPECT_EQ(a[t].special, b[t].special);
    }
  }
}
