// `goca-bench clip-score --images DIR --prompts FILE --clip DIR [--batch-size B] [--device cpu|cuda] [--json]`
// (docs/metrics.md): torchmetrics' CLIPScore of each <id>.png against the prompt with that id.
#include "harness/cli/registry.h"
#include "harness/core/errors.h"
#include "harness/core/log.h"
#include "harness/core/torch_compat.h"
#include "harness/io/prompt_file.h"
#include "harness/metrics/clip_score.h"

#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>
#include <set>
#include <unordered_map>

namespace fs = std::filesystem;

namespace {

struct Opts {
  std::string images, prompts, clip, device = "cpu";
  int64_t batch_size = 32;
  bool json = false;
};

void add(CLI::App& app) {
  auto* sub =
      app.add_subcommand("clip-score", "CLIP score of <id>.png images against their prompts (torchmetrics CLIPScore)");
  auto o = std::make_shared<Opts>();
  sub->add_option("--images", o->images, "Folder of <id>.png images")->required();
  sub->add_option("--prompts", o->prompts, "Prompt file (.txt one per line, or .csv with id and caption columns)")
      ->required();
  sub->add_option("--clip", o->clip,
                  "Hugging Face CLIPModel folder (config.json, model.safetensors, "
                  "preprocessor_config.json, vocab.json, merges.txt)")
      ->required();
  sub->add_option("--batch-size", o->batch_size, "Pairs per forward pass (default 32)");
  sub->add_option("--device", o->device, "cpu (default) or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  sub->add_flag("--json", o->json, "Print one JSON object instead of text");
  sub->callback([o] {
    if (o->batch_size < 1) gb::fail("--batch-size must be positive, got {}", o->batch_size);
    at::Device device(at::kCPU);
    if (o->device == "cuda") {
      if (!gb::compat::cuda_available()) gb::fail("--device cuda: this build has no usable CUDA device");
      device = at::Device(at::kCUDA);
    }
    const auto prompts = gb::read_prompt_file(o->prompts);
    std::error_code ec;
    if (!fs::is_directory(o->images, ec)) gb::fail_file(o->images, "image folder not found");
    std::set<std::string> stems;
    for (const auto& e : fs::directory_iterator(o->images)) {
      if (e.is_regular_file() && e.path().extension() == ".png") stems.insert(e.path().stem().string());
    }
    if (stems.empty()) gb::fail_file(o->images, "no .png images in the folder");
    std::unordered_map<std::string, const gb::PromptEntry*> by_id;
    for (const auto& p : prompts) by_id[p.id] = &p;
    std::vector<std::string> orphans;
    for (const auto& s : stems)
      if (!by_id.count(s)) orphans.push_back(s + ".png");
    if (!orphans.empty()) {
      std::string list;
      for (size_t i = 0; i < orphans.size() && i < 3; ++i) list += (i ? ", " : "") + orphans[i];
      gb::fail_file(o->images, "{} image(s) have no prompt in {}: {}{}", orphans.size(), o->prompts, list,
                    orphans.size() > 3 ? ", ..." : "");
    }
    std::vector<std::string> paths, texts;
    for (const auto& p : prompts) {
      if (!stems.count(p.id)) continue;
      paths.push_back((fs::path(o->images) / (p.id + ".png")).string());
      texts.push_back(p.text);
    }
    if (paths.size() < prompts.size())
      gb::log::info("{} of {} prompts have an image in {}", paths.size(), prompts.size(), o->images);
    const gb::metrics::ClipScorer scorer(o->clip, device);
    const auto r = gb::metrics::clip_score(scorer, paths, texts, o->batch_size);
    if (o->json) {
      nlohmann::json j;
      j["clip_score"] = r.score;
      j["n_images"] = paths.size();
      std::cout << j.dump() << "\n";
      return;
    }
    std::cout << fmt::format("{} images scored against {}\n", paths.size(), o->prompts);
    std::cout << fmt::format("CLIP score {}\n", r.score);
  });
}

GB_REGISTER_COMMAND(add);

}  // namespace
