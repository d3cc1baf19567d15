// `goca-bench list-layers --backbone sd15|sdxl|… [--weights DIR] [--image-size N] [--json]`: every capturable
// tensor key with its shape (batch dimension removed), from the default config or the folder's config.json.
#include "harness/backbones/registry.h"
#include "harness/cli/backbone_flags.h"
#include "harness/cli/registry.h"
#include "harness/core/errors.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

namespace {

struct Args {
  std::string backbone, weights, filter;
  gb::cli::BackboneFlags flags;
  bool json = false;
};

void add(CLI::App& app) {
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("list-layers", "Print every capturable tensor key of a backbone with its shape");
  sub->add_option("--backbone", a->backbone, gb::bb::known_kinds() + "; detected from --weights when omitted");
  sub->add_option("--weights", a->weights, "Diffusers-layout checkpoint folder (its config.json files are used)");
  gb::cli::add_backbone_flags(sub, a->flags, gb::cli::kImageSize, "");
  sub->add_option("--filter", a->filter, "Only keys containing this substring (e.g. -cross-map)");
  sub->add_flag("--json", a->json, "Print a JSON list of {name, shape}");
  sub->callback([a] {
    if (a->backbone.empty() && a->weights.empty()) gb::fail("list-layers needs --backbone or --weights");
    std::string kind = a->backbone;
    if (!a->weights.empty()) {
      auto detected = gb::bb::detect_backbone_kind(a->weights);
      if (!kind.empty() && kind != detected)
        gb::fail_file(a->weights, "--backbone {} but the weights are {}", kind, detected);
      kind = detected;
    }
    const gb::bb::BackboneOptions o = gb::cli::backbone_options(a->flags);
    std::optional<std::string> folder;
    if (!a->weights.empty()) folder = a->weights;
    auto layers = gb::bb::backbone_kind(kind).layers(o, folder);
    nlohmann::json j = nlohmann::json::array();
    for (const auto& l : layers) {
      if (!a->filter.empty() && l.name.find(a->filter) == std::string::npos) continue;
      if (a->json) {
        j.push_back({{"name", l.name}, {"shape", l.shape}});
      } else {
        std::string shape;
        for (size_t i = 0; i < l.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(l.shape[i]);
        std::cout << l.name << "  [" << shape << "]\n";
      }
    }
    if (a->json) std::cout << j.dump(1) << "\n";
  });
}

GB_REGISTER_COMMAND(add);

}  // namespace
