// `goca-bench list-layers --backbone sd15|sdxl|… [--weights DIR] [--image-size N] [--json]`: every capturable
// tensor key with its shape (batch dimension removed), from the default config or the folder's config.json.
#include "harness/backbones/factory.h"
#include "harness/cli/registry.h"
#include "harness/core/errors.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

namespace {

struct Args {
  std::string backbone;
  std::string weights;
  int64_t image_size = 0;
  std::string filter;
  bool json = false;
};

void add(CLI::App& app) {
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("list-layers", "Print every capturable tensor key of a backbone with its shape");
  sub->add_option("--backbone", a->backbone, "Backbone kind (sd15, sdxl, …); detected from --weights when omitted");
  sub->add_option("--weights", a->weights, "Diffusers-layout checkpoint folder (its config.json files are used)");
  sub->add_option("--image-size", a->image_size, "Input image size (default: the paper's for the backbone)");
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
    gb::bb::BackboneOptions o;
    if (a->image_size > 0) o.image_size = a->image_size;
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
