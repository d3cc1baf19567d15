// `goca-bench merge SHARD... --out RUN_DIR`: sums shard results into one results.json identical (in every
// confusion matrix; for generation runs in every FID feature sum and CLIP sum) to a single-process run, then redraws
// the report.
#include "harness/cli/registry.h"
#include "harness/core/log.h"
#include "harness/runner/generation_run.h"
#include "reports/html.h"
#include "reports/merge.h"
#include "reports/results.h"

#include <CLI/CLI.hpp>

#include <filesystem>

namespace {

void add(CLI::App& app) {
  auto* sub = app.add_subcommand("merge", "Merge the partial results of shards 0..n-1 into one run");
  auto inputs = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>();
  sub->add_option("SHARDS", *inputs, "Shard run folders or results.json files")->required();
  sub->add_option("--out", *out, "Output run folder (results.json, tables, report)")->required();
  sub->callback([inputs, out] {
    namespace fs = std::filesystem;
    std::vector<gb::reports::Results> shards;
    std::vector<std::string> sources;
    for (const auto& p : *inputs) {
      const std::string f = fs::is_directory(p) ? (fs::path(p) / "results.json").string() : p;
      shards.push_back(gb::reports::load_results(f));
      sources.push_back(f);
    }
    auto merged = gb::reports::merge_results(shards, sources);
    gb::runner::merge_generation_sums(merged, shards, sources, *out);
    gb::reports::save_results(merged, (fs::path(*out) / "results.json").string());
    gb::reports::write_report(merged, *out);
    gb::log::info("merged {} shards into {}/results.json", shards.size(), *out);
  });
}

GB_REGISTER_COMMAND(add);

}  // namespace
