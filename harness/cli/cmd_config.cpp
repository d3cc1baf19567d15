// `goca-bench config show CONFIG [--set k=v ...]`: the resolved YAML (includes merged, overrides applied).
// `goca-bench config hash CONFIG [--set k=v ...]`: the hash that results.json records for it.
#include "harness/cli/registry.h"
#include "harness/config/config.h"

#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

namespace {

struct Args {
  std::string path;
  std::vector<std::string> sets;
  bool where = false;
};

void add(CLI::App& app) {
  auto* cfg = app.add_subcommand("config", "Inspect YAML configs (includes merged, --set overrides applied)");
  cfg->require_subcommand(1);
  auto args = std::make_shared<Args>();
  auto* show = cfg->add_subcommand("show", "Print the resolved config as YAML");
  auto* hash = cfg->add_subcommand("hash", "Print the hash of the resolved config");
  for (auto* sub : {show, hash}) {
    sub->add_option("config", args->path, "YAML config file")->required();
    sub->add_option("--set", args->sets, "Override a key: a.b=value, list items by index (methods.0.name=x)")
        ->type_name("KEY=VALUE")
        ->allow_extra_args(false);
  }
  show->add_flag("--where", args->where, "Append a comment to each top-level key saying where it was set");
  show->callback([args] {
    const gb::Config c = gb::Config::load(args->path, args->sets);
    std::cout << "# resolved from " << c.source() << " (hash " << c.hash() << ")\n" << c.to_yaml();
    if (args->where) {
      std::cout << "# provenance of the top-level keys:\n";
      for (const auto& kv : c.root()) {
        const std::string k = kv.first.Scalar();
        std::cout << "#   " << k << ": " << c.where(k) << "\n";
      }
    }
  });
  hash->callback([args] { std::cout << gb::Config::load(args->path, args->sets).hash() << "\n"; });
}

GB_REGISTER_COMMAND(add);

}  // namespace
