// `goca-bench run CONFIG.yaml [--set k=v]... [--shard i/n] [--resume] [--batch-size N] [--out DIR]`:
// evaluates an experiment (segmentation, or a generation experiment: harness/runner/generation_run.h) and writes
// results.json, tables/, profile.json, profile.md and report.html.
#include "harness/cli/backbone_flags.h"
#include "harness/cli/registry.h"
#include "harness/core/log.h"
#include "harness/runner/experiment.h"
#include "harness/runner/runner.h"
#include "reports/tables.h"

#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>

namespace {

void add(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "run", "Run an experiment (datasets x backbones x methods, or a generation table) and write its reports");
  struct Opts {
    std::string config;
    std::vector<std::string> sets;
    std::string shard;
    bool resume = false;
    int64_t stop_after = -1;
    int64_t batch_size = 0;
    std::string out;
    bool no_progress = false;
    bool print_run_dir = false;
    gb::cli::MemoryCheckFlags memory;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("CONFIG", o->config,
                  "Experiment YAML (configs/experiments/*.yaml, configs/quickstart.yaml; a `generation:` section: the "
                  "S-CFG table)")
      ->required();
  sub->add_option("--set", o->sets, "Override a config key: a.b=value, datasets.0.set.root=/data/VOC2012 (repeatable)");
  sub->add_option("--shard", o->shard, "Evaluate shard i of n (every image / prompt index with index % n == i): i/n");
  sub->add_flag(
      "--resume", o->resume,
      "Continue a killed run from its journal (no image redone or counted twice; generation: no prompt resampled)");
  sub->add_option("--batch-size", o->batch_size,
                  "Images per capture batch (overrides the config; results do not change while batch_invariant: true, "
                  "the default)");
  sub->add_option("--out", o->out, "Run folder (default: <output_root>/<name>[/shard-i-of-n])");
  sub->add_flag("--no-progress", o->no_progress, "No progress bar");
  sub->add_flag("--print-run-dir", o->print_run_dir,
                "Print the run folder (with --shard: the shard's) and exit without running (for job scripts)");
  gb::cli::add_memory_check_flags(sub, o->memory);
  sub->add_option("--stop-after", o->stop_after, "Debug: exit abruptly after N journalled images (simulates a kill)")
      ->group("");
  sub->callback([o] {
    auto ex = gb::runner::load_experiment(o->config, o->sets);
    if (o->batch_size > 0) ex.batch_size = o->batch_size;
    gb::runner::RunOptions ro;
    if (!o->shard.empty()) gb::runner::parse_shard(o->shard, ro.shard_index, ro.shard_count);
    ro.resume = o->resume;
    ro.stop_after = o->stop_after;
    ro.run_dir = o->out;
    ro.progress = !o->no_progress;
    ro.memory = gb::cli::memory_check(o->memory);
    if (o->print_run_dir) {
      std::cout << gb::runner::resolve_run_dir(ex, ro) << "\n";
      return;
    }
    const auto results = gb::runner::run_experiment(ex, ro);
    if (!results.generation.empty()) {
      const auto gen = gb::reports::generation_table(results);
      std::cout << "\n" << gen.title << "\n\n" << gb::reports::to_markdown(gen);
    }
    const auto table = gb::reports::main_table(results);
    if (!table.rows.empty()) std::cout << "\n" << gb::reports::to_markdown(table);
    for (const auto& t : gb::reports::ablation_tables(results))
      std::cout << "\n" << t.title << "\n\n" << gb::reports::to_markdown(t);
    gb::log::info("outputs in {}", gb::runner::resolve_run_dir(ex, ro));
  });
}

GB_REGISTER_COMMAND(add);

}  // namespace
