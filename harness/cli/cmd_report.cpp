// `goca-bench report RUN_DIR`: redraws tables/, profile.json, profile.md and report.html from
// RUN_DIR/results.json alone (no model runs).
#include "harness/cli/registry.h"
#include "harness/core/log.h"
#include "reports/html.h"
#include "reports/results.h"

#include <CLI/CLI.hpp>

#include <filesystem>

namespace {

void add(CLI::App& app) {
  auto* sub = app.add_subcommand("report", "Redraw tables, profile and report.html of a run from its results.json");
  auto run_dir = std::make_shared<std::string>();
  sub->add_option("RUN_DIR", *run_dir, "Run folder holding results.json (or the results.json file)")->required();
  sub->callback([run_dir] {
    namespace fs = std::filesystem;
    fs::path dir(*run_dir), file = dir / "results.json";
    if (!fs::is_directory(dir)) {
      file = dir;
      dir = dir.parent_path().empty() ? fs::path(".") : dir.parent_path();
    }
    const auto results = gb::reports::load_results(file.string());
    gb::reports::write_report(results, dir.string());
    gb::log::info("wrote {}/tables/, profile.json, profile.md and report.html", dir.string());
  });
}

GB_REGISTER_COMMAND(add);

}  // namespace
