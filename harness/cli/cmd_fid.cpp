// `goca-bench fid --images DIR (--ref-stats FILE.npz | --ref-images DIR) --inception FILE.safetensors
//  [--save-stats FILE.npz] [--batch-size B] [--device cpu|cuda] [--json]` (docs/metrics.md).
// T2IBenchmark's calculate_fid: pytorch-fid's FID Inception-v3, its preprocessing, pytorch-fid's Fréchet distance.
#include "harness/cli/registry.h"
#include "harness/core/errors.h"
#include "harness/core/log.h"
#include "harness/core/progress.h"
#include "harness/core/torch_compat.h"
#include "harness/metrics/fid_inception.h"
#include "harness/metrics/frechet.h"

#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

namespace {

struct Opts {
  std::string images, ref_stats, ref_images, inception, save_stats, device = "cpu";
  int64_t batch_size = 32;
  bool json = false;
};

gb::metrics::FidStats folder_stats(const gb::metrics::FidInception& net, const std::string& dir, int64_t batch,
                                   const char* label) {
  const auto paths = gb::metrics::list_fid_images(dir);
  if (paths.size() < 2) gb::fail_file(dir, "FID needs at least 2 images, the folder has {}", paths.size());
  gb::Progress progress(label, static_cast<int64_t>(paths.size()));
  int64_t last = 0;
  at::Tensor feats = gb::metrics::image_features(net, paths, batch, [&](int64_t done) {
    progress.advance(done - last);
    last = done;
  });
  progress.finish();
  return gb::metrics::stats_from_features(feats);
}

void add(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "fid", "FID of an image folder against reference statistics or images (T2IBenchmark's calculate_fid)");
  auto o = std::make_shared<Opts>();
  sub->add_option("--images", o->images, "Folder of images (.png/.jpg, subfolders included)")->required();
  auto* rs = sub->add_option("--ref-stats", o->ref_stats,
                             "Reference statistics .npz (mu, sigma), e.g. T2IBenchmark's MS-COCO val2014 file");
  auto* ri = sub->add_option("--ref-images", o->ref_images, "Folder of reference images");
  rs->excludes(ri);
  ri->excludes(rs);
  sub->add_option("--inception", o->inception,
                  "pytorch-fid's FID Inception-v3 weights as safetensors (tools/convert/fid_inception.py)")
      ->required();
  sub->add_option("--save-stats", o->save_stats, "Write the statistics of --images to this .npz (mu, sigma)");
  sub->add_option("--batch-size", o->batch_size, "Images per forward pass (default 32)");
  sub->add_option("--device", o->device, "cpu (default) or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  sub->add_flag("--json", o->json, "Print one JSON object instead of text");
  sub->callback([o] {
    if (o->ref_stats.empty() && o->ref_images.empty()) gb::fail("fid: give --ref-stats FILE.npz or --ref-images DIR");
    if (o->batch_size < 1) gb::fail("--batch-size must be positive, got {}", o->batch_size);
    at::Device device(at::kCPU);
    if (o->device == "cuda") {
      if (!gb::compat::cuda_available()) gb::fail("--device cuda: this build has no usable CUDA device");
      device = at::Device(at::kCUDA);
    }
    // Cheap checks first: the reference statistics and the folders, before the network loads.
    gb::metrics::FidStats ref;
    if (!o->ref_stats.empty()) ref = gb::metrics::read_fid_stats(o->ref_stats);
    gb::metrics::list_fid_images(o->images);
    if (!o->ref_images.empty()) gb::metrics::list_fid_images(o->ref_images);
    if (ref.mu.defined() && ref.mu.size(0) != gb::metrics::kFidFeatureDim)
      gb::fail_file(o->ref_stats, "statistics have {} dimensions, FID's pool3 features have {}", ref.mu.size(0),
                    gb::metrics::kFidFeatureDim);

    const gb::metrics::FidInception net(o->inception, device);
    const auto stats = folder_stats(net, o->images, o->batch_size, "fid images");
    if (!o->ref_images.empty()) ref = folder_stats(net, o->ref_images, o->batch_size, "fid reference");
    if (!o->save_stats.empty()) {
      gb::metrics::write_fid_stats(o->save_stats, stats);
      gb::log::info("wrote the statistics of {} images to {}", stats.count, o->save_stats);
    }
    const auto r = gb::metrics::frechet_distance(stats, ref);
    if (o->json) {
      nlohmann::json j;
      j["fid"] = r.distance;
      j["n_images"] = stats.count;
      j["n_ref_images"] = ref.count > 0 ? nlohmann::json(ref.count) : nlohmann::json(nullptr);
      j["reference"] = o->ref_stats.empty() ? o->ref_images : o->ref_stats;
      j["dims"] = gb::metrics::kFidFeatureDim;
      j["eps_offset_used"] = r.used_offset;
      std::cout << j.dump() << "\n";
      return;
    }
    std::cout << fmt::format("{} images vs {}\n", stats.count, o->ref_stats.empty() ? o->ref_images : o->ref_stats);
    std::cout << fmt::format("FID {}\n", r.distance);
  });
}

GB_REGISTER_COMMAND(add);

}  // namespace
