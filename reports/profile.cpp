#include "reports/profile.h"

#include "harness/core/errors.h"
#include "harness/io/atomic_file.h"
#include "reports/tables.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>

namespace gb::reports {

namespace {
// Stages in pipeline order; others (if a backbone reports more) follow alphabetically.
const std::vector<std::string> kStageOrder = {"decode",   "prompt",  "text",        "vae",
                                              "denoiser", "capture", "aggregation", "evaluation"};

std::vector<std::string> ordered_stages(const StageTimes& t) {
  std::vector<std::string> out;
  for (const auto& s : kStageOrder)
    if (t.seconds.count(s)) out.push_back(s);
  for (const auto& [s, v] : t.seconds)
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  return out;
}
}  // namespace

// Denoiser busy time over wall time (0 when either is unknown).
static double denoiser_utilisation(const StageTimes& t) {
  const auto it = t.seconds.find("denoiser");
  if (it == t.seconds.end() || t.wall_seconds <= 0) return 0.0;
  return it->second / t.wall_seconds;
}

nlohmann::json profile_json(const Results& r) {
  nlohmann::json j;
  j["schema"] = "goca-bench/profile";
  j["schema_version"] = 1;
  j["run"] = r.name;
  j["device"] = r.device;
  j["peak_host_bytes"] = r.peak_host_bytes;
  j["peak_device_bytes"] = r.peak_device_bytes;
  j["planned_peak_device_bytes"] = r.planned_peak_device_bytes;
  nlohmann::json per = nlohmann::json::object();
  for (const auto& [k, t] : r.timings) {
    nlohmann::json e;
    e["images"] = t.images;
    e["wall_seconds"] = t.wall_seconds;
    e["images_per_second"] = t.wall_seconds > 0 ? t.images / t.wall_seconds : 0.0;
    e["denoiser_utilisation"] = denoiser_utilisation(t);
    nlohmann::json st = nlohmann::json::object();
    for (const auto& s : ordered_stages(t)) {
      const double sec = t.seconds.at(s);
      st[s] = {{"seconds", sec}, {"ms_per_image", t.images ? 1000.0 * sec / t.images : 0.0}};
    }
    e["stages"] = st;
    per[k] = e;
  }
  j["per_dataset_backbone"] = per;
  return j;
}

std::string profile_markdown(const Results& r) {
  std::string s = fmt::format("# Profile of run `{}`\n\nDevice: {}. Peak host memory: {:.1f} MiB", r.name,
                              r.device.empty() ? "unknown" : r.device, r.peak_host_bytes / 1048576.0);
  if (r.peak_device_bytes > 0) s += fmt::format(", peak device memory: {:.1f} MiB", r.peak_device_bytes / 1048576.0);
  if (r.planned_peak_device_bytes > 0)
    s += fmt::format(" (planned by `goca-bench memory`: {:.1f} MiB)", r.planned_peak_device_bytes / 1048576.0);
  s += ".\n\nStage times are summed over the worker threads, so they can exceed the wall time when the data\n"
       "pipeline overlaps with the model.\n\n";
  for (const auto& [k, t] : r.timings) {
    s += fmt::format(
        "## {}\n\n{} images in {:.2f} s: {:.2f} images/s. Pipeline utilisation: the denoiser was busy "
        "{:.1f}% of the wall time (the rest: decoding, prompts, text encoding, VAE, aggregation and "
        "evaluation not hidden behind it; the timeline is in profile.trace.json)\n\n",
        k, t.images, t.wall_seconds, t.wall_seconds > 0 ? t.images / t.wall_seconds : 0.0,
        100.0 * denoiser_utilisation(t));
    Table tab;
    tab.header = {"stage", "seconds", "ms / image", "share"};
    double total = 0;
    for (const auto& [st, sec] : t.seconds) total += sec;
    for (const auto& st : ordered_stages(t)) {
      const double sec = t.seconds.at(st);
      tab.rows.push_back({st, fmt::format("{:.3f}", sec), fmt::format("{:.1f}", t.images ? 1000 * sec / t.images : 0.0),
                          fmt::format("{:.1f}%", total > 0 ? 100 * sec / total : 0.0)});
    }
    s += to_markdown(tab) + "\n";
  }
  return s;
}

void write_profile(const Results& r, const std::string& run_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(run_dir, ec);  // a failure is reported by the write below
  write_file_atomic((fs::path(run_dir) / "profile.json").string(), profile_json(r).dump(2) + "\n");
  write_file_atomic((fs::path(run_dir) / "profile.md").string(), profile_markdown(r));
}

}  // namespace gb::reports
