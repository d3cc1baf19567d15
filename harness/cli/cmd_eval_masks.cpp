// `goca-bench eval-masks`: score predicted label PNGs against ground-truth PNGs (docs/evaluation.md).
#include "harness/cli/registry.h"
#include "harness/core/errors.h"
#include "harness/eval/confusion.h"
#include "harness/eval/metrics_json.h"
#include "harness/io/image_io.h"

#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <set>

namespace fs = std::filesystem;

namespace {

std::set<std::string> png_names(const std::string& dir, const char* what) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) gb::fail_file(dir, "{} folder does not exist", what);
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
    if (ext == ".png") names.insert(e.path().filename().string());
  }
  if (names.empty()) gb::fail_file(dir, "{} folder has no .png files", what);
  return names;
}

std::string pct(double x) { return std::isnan(x) ? std::string("nan") : fmt::format("{:.2f}", 100.0 * x); }

void add(CLI::App& app) {
  auto* sub =
      app.add_subcommand("eval-masks", "Score predicted label PNGs against ground-truth PNGs (matched by file name)");
  struct Opts {
    std::string pred, gt, protocol = "paper", format = "json";
    int64_t num_classes = 0, ignore_index = 255;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("--pred", o->pred, "Folder of predicted label PNGs (palette or gray)")->required();
  sub->add_option("--gt", o->gt, "Folder of ground-truth label PNGs (palette or gray)")->required();
  sub->add_option("--num-classes", o->num_classes, "Number of classes K (predictions must lie in [0, K))")->required();
  sub->add_option("--ignore-index", o->ignore_index, "Label ignored under the standard protocol (default 255)");
  sub->add_option("--protocol", o->protocol, "paper (every pixel counts, absent classes IoU 0) or standard (mmseg)")
      ->check(CLI::IsMember({"paper", "standard"}));
  sub->add_option("--format", o->format, "json or table")->check(CLI::IsMember({"json", "table"}));
  sub->callback([o] {
    if (o->num_classes <= 0) gb::fail("--num-classes must be positive, got {}", o->num_classes);
    const auto protocol = gb::eval::parse_protocol(o->protocol);
    const auto gt_names = png_names(o->gt, "ground-truth");
    const auto pred_names = png_names(o->pred, "prediction");
    for (const auto& n : gt_names) {
      if (!pred_names.count(n))
        gb::fail_file((fs::path(o->pred) / n).string(), "missing prediction for ground truth {}", n);
    }
    for (const auto& n : pred_names) {
      if (!gt_names.count(n))
        gb::fail_file((fs::path(o->gt) / n).string(), "missing ground truth for prediction {}", n);
    }
    gb::eval::ConfusionMatrix cm(o->num_classes);
    for (const auto& n : gt_names) {
      const std::string pp = (fs::path(o->pred) / n).string(), gp = (fs::path(o->gt) / n).string();
      const at::Tensor pred = gb::read_label_png(pp);
      const at::Tensor gt = gb::read_label_png(gp);
      if (pred.sizes() != gt.sizes()) {
        gb::fail_file(pp, "prediction is {}x{} but the ground truth {} is {}x{}", pred.size(1), pred.size(0), gp,
                      gt.size(1), gt.size(0));
      }
      const int64_t lo = pred.min().item<int64_t>(), hi = pred.max().item<int64_t>();
      if (lo < 0 || hi >= o->num_classes) {
        gb::fail_file(pp, "predicted class {} is outside [0, {})", hi >= o->num_classes ? hi : lo, o->num_classes);
      }
      cm.add(pred, gt, protocol, o->ignore_index);
    }
    const auto m = gb::eval::reduce(cm, protocol);
    if (o->format == "json") {
      nlohmann::json j = gb::eval::metrics_json(m);
      j["images"] = gt_names.size();
      j["protocol"] = o->protocol;
      std::cout << j.dump() << "\n";
      return;
    }
    std::cout << fmt::format("{} images, protocol {}, {} classes\n", gt_names.size(), o->protocol, o->num_classes);
    std::cout << fmt::format("mIoU {}  aAcc {}  mAcc {}  fwIoU {}\n", pct(m.miou), pct(m.aacc), pct(m.macc),
                             pct(m.fwiou));
    std::cout << fmt::format("{:>6}  {:>7}  {:>7}  {:>12}  {:>12}\n", "class", "IoU", "Acc", "intersection", "union");
    for (int64_t c = 0; c < o->num_classes; ++c) {
      std::cout << fmt::format("{:>6}  {:>7}  {:>7}  {:>12}  {:>12}\n", c, pct(m.iou[c]), pct(m.acc[c]),
                               m.intersection[c], m.union_[c]);
    }
  });
}

GB_REGISTER_COMMAND(add);

}  // namespace
