// `goca-bench compare NEW OLD [--miou-tol X] [--gen-tol X] [--time-ratio R]`: diff table of two runs
// (segmentation cells; generation cells' FID and CLIP score).
// Exit codes: 0 same or within tolerance, 1 accuracy changed or speed regressed, 3 not comparable
// (config, dataset list or protocol differ), 2 bad input.
#include "harness/cli/registry.h"
#include "reports/compare.h"
#include "reports/results.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

namespace {

std::string results_path(const std::string& p) {
  namespace fs = std::filesystem;
  return fs::is_directory(p) ? (fs::path(p) / "results.json").string() : p;
}

void add(CLI::App& app) {
  auto* sub =
      app.add_subcommand("compare", "Compare two runs: exit 0 same/within tolerance, 1 regression, 3 not comparable");
  struct Opts {
    std::string now, old;
    double tol = 0;
    double ratio = 0;
    double gen_tol = 0;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("NEW", o->now, "New run folder or results.json")->required();
  sub->add_option("OLD", o->old, "Reference run folder or results.json")->required();
  sub->add_option("--miou-tol", o->tol, "Allowed |ΔmIoU| in points (default 0: confusion matrices must be identical)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--time-ratio", o->ratio,
                  "Flag a speed regression when new s/img > R × old s/img (same device only; default: not checked)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--gen-tol", o->gen_tol,
                  "Generation runs: allowed |ΔFID| and |ΔCLIP score| (default 0: identical values)")
      ->check(CLI::NonNegativeNumber);
  sub->callback([o] {
    const auto a = gb::reports::load_results(results_path(o->now));
    const auto b = gb::reports::load_results(results_path(o->old));
    gb::reports::CompareOptions opt;
    opt.miou_tol = o->tol;
    opt.gen_tol = o->gen_tol;
    if (o->ratio > 0) opt.time_ratio = o->ratio;
    const auto rep = gb::reports::compare_results(a, b, opt);
    std::cout << rep.to_text();
    std::cout.flush();
    if (rep.exit_code() != 0) std::exit(rep.exit_code());
  });
}

GB_REGISTER_COMMAND(add);

}  // namespace
