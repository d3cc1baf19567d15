// `goca-bench methods list`: the method presets (Vanilla, Baseline, GoCA, FTTM per backbone; S-CFG's generation ones).
// `goca-bench methods show BACKBONE/VARIANT`: a preset as a method YAML (what configs/methods/ ships).
// `goca-bench methods check M.yaml [--set k=v ...]`: validate a method file, print it in canonical form.
#include "baselines/method_yaml.h"
#include "baselines/presets.h"
#include "harness/cli/registry.h"
#include "harness/core/errors.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <iostream>
#include <memory>

namespace {

struct Args {
  std::string name;
  std::string path;
  std::vector<std::string> sets;
};

std::string title_of(const gb::baselines::Preset& p) {
  const std::string file = gb::baselines::paper_config_file(p);
  const std::string main_prefix = "src-main/";
  const std::string source =
      file.rfind(main_prefix, 0) == 0 ? file.substr(main_prefix.size()) + " (spec goca-method.md section I)" : file;
  return fmt::format(
      "{} {}: {} {}.\n"
      "{}\n"
      "Written by `goca-bench methods show {}/{}`; tests/baselines checks that this file equals the preset.",
      p.backbone, p.variant, p.derived ? "a backbone the paper lacks, derived from the paper's" : "the paper's", source,
      p.note, p.backbone, p.variant);
}

void add(CLI::App& app) {
  auto* methods = app.add_subcommand("methods", "Method presets and method YAML files");
  methods->require_subcommand(1);
  auto args = std::make_shared<Args>();

  auto* list = methods->add_subcommand("list", "List the presets");
  list->callback([] {
    std::cout << fmt::format("{:<26} {:<14} {:<22} {:<24} {:<40} {:>6}  {}\n", "preset", "paper config", "head_method",
                             "layer_method", "rescale_method", "layers", "post");
    for (const auto* table : {&gb::baselines::all_presets(), &gb::baselines::generation_presets()}) {
      for (const auto& p : *table) {
        const auto& m = p.plan.method;
        std::cout << fmt::format("{:<26} {:<14} {:<22} {:<24} {:<40} {:>6}  {}\n", p.backbone + "/" + p.variant,
                                 p.paper_config, gb::goca::to_string(m.head_method),
                                 gb::goca::to_string(m.layer_method), gb::goca::to_string(m.rescale_method),
                                 m.layers.size(), gb::baselines::to_string(p.plan.post));
      }
    }
  });

  auto* show = methods->add_subcommand("show", "Print a preset as a method YAML");
  show->add_option("preset", args->name, "BACKBONE/VARIANT, e.g. sd15/goca")->required();
  show->callback([args] {
    const size_t slash = args->name.find('/');
    if (slash == std::string::npos) gb::fail("methods show: expected BACKBONE/VARIANT, got '{}'", args->name);
    const auto& p = gb::baselines::find_preset(args->name.substr(0, slash), args->name.substr(slash + 1));
    std::cout << gb::baselines::method_plan_to_yaml(p.plan, title_of(p));
  });

  auto* check = methods->add_subcommand("check", "Validate a method YAML and print it in canonical form");
  check->add_option("method", args->path, "method YAML file")->required();
  check->add_option("--set", args->sets, "Override a key: a.b=value")->type_name("KEY=VALUE")->allow_extra_args(false);
  check->callback([args] {
    const auto plan = gb::baselines::load_method_plan(args->path, args->sets);
    std::cout << gb::baselines::method_plan_to_yaml(plan, "canonical form of " + args->path);
  });
}

GB_REGISTER_COMMAND(add);

}  // namespace
