#include "harness/runner/generation_run.h"

#include "harness/backbones/registry.h"
#include "harness/core/errors.h"
#include "harness/core/log.h"
#include "harness/core/progress.h"
#include "harness/core/strings.h"
#include "harness/core/torch_compat.h"
#include "harness/core/trace.h"
#include "harness/generation/guidance.h"
#include "harness/generation/sampler.h"
#include "harness/generation/setup.h"
#include "harness/io/image_io.h"
#include "harness/io/prompt_file.h"
#include "harness/metrics/clip_score.h"
#include "harness/metrics/fid_inception.h"
#include "harness/metrics/fid_sums.h"
#include "harness/metrics/frechet.h"
#include "harness/runner/integration.h"
#include "harness/runner/journal.h"
#include "reports/html.h"
#include "reports/png_memory.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>
#include <tuple>

namespace gb::runner {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int64_t kThumbnail = 128;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// A folder/file name for a label: letters, digits, '-', '_', '.'; everything else '_'.
std::string slug(const std::string& s) {
  std::string o;
  for (char ch : s) o += (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.') ? ch : '_';
  return o;
}

std::string setting_slug(const std::string& backbone, const std::string& guidance, double scale) {
  return slug(backbone) + "/" + slug(guidance) + "/g" + fmt::format("{:g}", scale);
}

std::string tensor_bytes_hash(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kCPU).contiguous();
  return gb::reports::stable_hash(
      std::string(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel() * c.element_size())));
}

std::string features_base64(const at::Tensor& row) {
  const at::Tensor c = row.to(at::kCPU).to(at::kFloat).contiguous();
  const auto* p = static_cast<const uint8_t*>(c.data_ptr());
  return gb::reports::base64_encode(std::vector<uint8_t>(p, p + c.numel() * sizeof(float)));
}

at::Tensor features_from_base64(const std::string& text) {
  const auto bytes = gb::reports::base64_decode(text);
  if (bytes.size() != gb::metrics::kFidFeatureDim * sizeof(float))
    fail("journal: features of {} bytes, expected {}", bytes.size(), gb::metrics::kFidFeatureDim * sizeof(float));
  at::Tensor t = at::empty({1, gb::metrics::kFidFeatureDim}, at::kFloat);
  std::memcpy(t.data_ptr<float>(), bytes.data(), bytes.size());
  return t;
}

// The image, area-averaged down to at most kThumbnail px on its longer side, as base64 PNG.
std::string thumbnail_base64(const at::Tensor& rgb) {
  at::Tensor img = rgb.to(at::kCPU);
  const int64_t H = img.size(0), W = img.size(1), m = std::max(H, W);
  if (m > kThumbnail) {
    const int64_t h = std::max<int64_t>(1, H * kThumbnail / m), w = std::max<int64_t>(1, W * kThumbnail / m);
    img = at::adaptive_avg_pool2d(img.permute({2, 0, 1}).to(at::kFloat).unsqueeze(0), {h, w})
              .squeeze(0).permute({1, 2, 0}).round().clamp(0, 255).to(at::kByte);
  }
  img = img.contiguous();
  const auto* p = img.data_ptr<uint8_t>();
  return gb::reports::base64_encode(
      gb::reports::encode_png_rgb(std::vector<uint8_t>(p, p + img.numel()), img.size(1), img.size(0)));
}

// What a journal line of a generation setting holds besides "i".
void check_record(json& rec, const std::string& file, int64_t line) {
  static const size_t kFeatureChars = (gb::metrics::kFidFeatureDim * sizeof(float) + 2) / 3 * 4;
  for (const auto& [k, v] : rec.items())
    if (k != "i" && k != "id" && k != "clip" && k != "f" && k != "png")
      fail_file(file, "line {}: unknown key '{}'", line, k);
  if (!rec.contains("id") || !rec["id"].is_string() || rec["id"].get_ref<const std::string&>().empty())
    fail_file(file, "line {}: \"id\" must be a non-empty string", line);
  if (!rec.contains("clip") || !rec["clip"].is_number() || !std::isfinite(rec["clip"].get<double>()))
    fail_file(file, "line {}: \"clip\" must be a finite number", line);
  if (!rec.contains("f") || !rec["f"].is_string() || rec["f"].get_ref<const std::string&>().size() != kFeatureChars)
    fail_file(file, "line {}: \"f\" must be the base64 of {} float32 features", line, gb::metrics::kFidFeatureDim);
  if (rec.contains("png") && !rec["png"].is_string()) fail_file(file, "line {}: \"png\" must be a string", line);
}

int64_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;
}

double fid_of(const gb::metrics::FeatureSums& sums, const gb::metrics::FidStats& ref, const std::string& what) {
  if (sums.count() < 2) {
    log::warn("{}: {} image(s), FID needs at least 2 (left empty)", what, sums.count());
    return NAN;
  }
  return gb::metrics::frechet_distance(sums.stats(), ref).distance;
}

gb::metrics::FidStats read_reference(const std::string& path) {
  auto ref = gb::metrics::read_fid_stats(path);
  if (ref.mu.size(0) != gb::metrics::kFidFeatureDim)
    fail_file(path, "statistics have {} dimensions, FID's pool3 features have {}", ref.mu.size(0),
              gb::metrics::kFidFeatureDim);
  return ref;
}

std::string reference_hash(const gb::metrics::FidStats& ref) {
  return gb::reports::stable_hash(tensor_bytes_hash(ref.mu) + tensor_bytes_hash(ref.sigma));
}

}  // namespace

gb::reports::Results run_generation(const Experiment& ex, const RunOptions& opt) {
  const GenerationSpec& g = *ex.generation;
  const std::string device = resolve_device(ex.device);
  const std::string run_dir = prepare_run_dir(ex, opt);
  if (!opt.resume) {
    std::error_code ec;
    fs::remove_all(fs::path(run_dir) / "journal", ec);
  }
  gb::trace::take_events();  // this run's timeline only (profile.trace.json)
  gb::trace::set_collecting(true);
  gb::reports::Results res = new_results(ex, opt, device);
  res.protocol = "generation";
  if (device != "cpu") gb::compat::cuda_reset_peak_memory();

  // Cheap checks first: every input file, the prompts, the reference statistics.
  for (const auto& [key, path, folder] : {std::tuple<const char*, std::string, bool>{"prompts", g.prompts, false},
                                          {"metrics.inception", g.inception, false},
                                          {"metrics.reference_stats", g.reference_stats, false},
                                          {"metrics.clip", g.clip, true}}) {
    std::error_code ec;
    if (folder ? !fs::is_directory(path, ec) : !fs::is_regular_file(path, ec))
      fail_file(path, "{} not found (generation.{} of {})", folder ? "folder" : "file", key, ex.source);
  }
  auto entries = gb::read_prompt_file(g.prompts);
  if (entries.empty()) fail_file(g.prompts, "has no prompts");
  if (g.limit >= 0 && static_cast<size_t>(g.limit) < entries.size()) entries.resize(static_cast<size_t>(g.limit));
  std::string list;
  for (const auto& e : entries) list += e.id + "\t" + e.text + "\n";
  std::vector<size_t> mine;
  for (size_t i = 0; i < entries.size(); ++i)
    if (in_shard(static_cast<int64_t>(i), opt.shard_index, opt.shard_count)) mine.push_back(i);
  const gb::metrics::FidStats ref = read_reference(g.reference_stats);

  gb::reports::GenerationInfo info;
  info.prompts = g.prompts;
  info.num_prompts = static_cast<int64_t>(entries.size());
  info.list_hash = gb::reports::stable_hash(list);
  info.reference_stats = g.reference_stats;
  info.reference_hash = reference_hash(ref);
  info.synthetic = g.synthetic;
  res.generation_info = info;

  json hash_doc;
  hash_doc["seed"] = ex.seed;
  hash_doc["generation"] = {{"prompts", info.list_hash}, {"steps", g.steps},        {"scheduler", g.scheduler},
                            {"image_size", g.image_size}, {"scales", g.scales},   {"reference", info.reference_hash}};
  for (const auto& b : ex.backbones) {
    json options = yaml_to_json(b.options_yaml);
    if (options.is_object())
      for (auto it = options.begin(); it != options.end();)
        it = option_affects_results(it.key()) ? std::next(it) : options.erase(it);
    hash_doc["backbones"].push_back({{"name", b.name}, {"kind", b.kind}, {"dtype", b.dtype}, {"options", options}});
    for (const auto& ge : g.guidance.at(b.name))
      hash_doc["guidance"][b.name].push_back({{"name", ge.name}, {"type", ge.type}, {"method", yaml_to_json(ge.method_yaml)}});
  }
  res.config_hash = gb::reports::stable_hash(hash_doc.dump());

  // Backbone options and the memory pre-flight of every pass before anything loads.
  std::map<std::string, gb::bb::BackboneOptions> options;
  for (const auto& b : ex.backbones) {
    gb::bb::BackboneOptions bo = b.options;
    bo.device = device;
    bo.seed = ex.seed;
    bo.image_size = g.image_size > 0 ? g.image_size : gb::gen::default_image_size(b.weights, b.kind);
    for (const auto& ge : g.guidance.at(b.name))
      gb::gen::check_generation_memory("backbone '" + b.name + "' (" + ge.name + ")", b.kind, b.weights, bo, ge.type,
                                       ge.method_file, ex.batch_size, opt.memory);
    options[b.name] = bo;
  }

  c10::InferenceMode inference;
  const at::Device metrics_device = device == "cpu" ? at::Device(at::kCPU) : at::Device(device);
  const gb::metrics::FidInception inception(g.inception, metrics_device);
  const gb::metrics::ClipScorer clip(g.clip, metrics_device);

  JournalSchema schema;
  schema.num_images = static_cast<int64_t>(entries.size());
  schema.wanted = [&](int64_t i) { return in_shard(i, opt.shard_index, opt.shard_count); };
  schema.record = check_record;

  int64_t journalled_this_process = 0;
  for (const auto& b : ex.backbones) {
    const auto& bo = options.at(b.name);
    const auto t_load = Clock::now();
    std::unique_ptr<gb::Backbone> backbone;
    try {
      backbone = gb::bb::open_backbone(b.weights, bo, b.kind);
    } catch (const UserError& e) {
      fail("backbone '{}': {}", b.name, e.what());
    }
    gb::gen::SamplerOptions so;
    so.steps = g.steps;
    so.scheduler = g.scheduler;
    gb::gen::Sampler sampler(*backbone, b.weights, so);
    gb::reports::StageTimes& times = res.timings["generation|" + b.name];
    times.seconds["load"] += since(t_load);
    const auto wall0 = Clock::now();
    for (const auto& ge : g.guidance.at(b.name)) {
      for (const double scale : g.scales) {
        gb::reports::GenerationCell cell;
        cell.backbone = b.name;
        cell.guidance = ge.name;
        cell.guidance_type = ge.type;
        cell.method = ge.method_file;
        cell.scale = scale;
        const std::string where = setting_slug(b.name, ge.name, scale);
        cell.sums_file = "fid-sums/" + where + ".safetensors";
        sampler.set_guidance_scale(scale);
        gb::gen::GuidanceOptions go;
        go.backbone = b.kind;
        go.scale = scale;
        go.method_path = ge.method_file;
        go.model = backbone.get();
        auto guidance = gb::gen::make_guidance(ge.type, go);

        const json header = {{"config_hash", res.config_hash},
                             {"setting", cell.key()},
                             {"shard", fmt::format("{}/{}", opt.shard_index, opt.shard_count)}};
        Journal journal((fs::path(run_dir) / "journal" / (where + ".jsonl")).string(), header, !opt.resume, schema);
        gb::metrics::FeatureSums sums(gb::metrics::kFidFeatureDim);
        std::set<int64_t> done;
        auto take = [&](const json& rec) {
          const auto t_sum = Clock::now();
          sums.add(features_from_base64(rec.at("f").get<std::string>()));
          times.seconds["fid_sums"] += since(t_sum);
          cell.clip_sum += rec.at("clip").get<double>();
          cell.images += 1;
          if (rec.contains("png"))
            cell.samples.push_back({rec.at("id").get<std::string>(), rec.at("i").get<int64_t>(), rec.at("png").get<std::string>()});
        };
        for (const auto& rec : journal.replayed()) {
          take(rec);
          done.insert(rec.at("i").get<int64_t>());
        }
        std::vector<size_t> todo;
        for (size_t i : mine)
          if (!done.count(static_cast<int64_t>(i))) todo.push_back(i);
        if (!done.empty()) log::info("{}: --resume replays {} journalled images", cell.key(), done.size());

        const fs::path image_dir = fs::path(run_dir) / "images" / where;
        if (g.save_images) fs::create_directories(image_dir);
        std::unique_ptr<gb::Progress> progress;
        if (opt.progress && !todo.empty()) progress = std::make_unique<gb::Progress>(cell.key(), static_cast<int64_t>(todo.size()), "img");
        for (size_t k = 0; k < todo.size(); k += static_cast<size_t>(ex.batch_size)) {
          std::vector<std::string> texts, ids;
          std::vector<at::Tensor> noise;
          std::vector<size_t> batch;
          for (size_t j = k; j < std::min(todo.size(), k + static_cast<size_t>(ex.batch_size)); ++j) {
            const auto& e = entries[todo[j]];
            batch.push_back(todo[j]);
            texts.push_back(e.text);
            ids.push_back(e.id);
            noise.push_back(sampler.initial_noise(ex.seed, e.id));
          }
          at::Tensor images;
          gb::bb::rethrow_out_of_memory(
              [&] {
                gb::trace::Span span("sample", cell.key() + " " + gb::join(ids));
                images = sampler.generate(texts, at::stack(noise), *guidance);
              },
              "generation", device, "prompts " + gb::join(ids) + " (" + cell.key() + ")");
          images = images.to(at::kCPU);
          std::vector<at::Tensor> rgb;
          for (size_t j = 0; j < batch.size(); ++j) {
            rgb.push_back(images[static_cast<int64_t>(j)]);
            if (g.save_images) gb::write_png_rgb((image_dir / (ids[j] + ".png")).string(), rgb.back());
          }
          auto t0 = Clock::now();
          gb::trace::Span fid_span("fid", gb::join(ids));
          const at::Tensor feats = gb::metrics::rgb_features(inception, rgb);
          fid_span.end();
          times.seconds["fid"] += since(t0);
          t0 = Clock::now();
          gb::trace::Span clip_span("clip", gb::join(ids));
          const std::vector<double> scores = gb::metrics::clip_pair_scores(clip, rgb, texts);
          clip_span.end();
          times.seconds["clip"] += since(t0);
          std::vector<json> records;
          for (size_t j = 0; j < batch.size(); ++j) {
            json rec = {{"i", static_cast<int64_t>(batch[j])},
                        {"id", ids[j]},
                        {"clip", scores[j]},
                        {"f", features_base64(feats[static_cast<int64_t>(j)])}};
            if (static_cast<int64_t>(batch[j]) < ex.examples) rec["png"] = thumbnail_base64(rgb[j]);
            records.push_back(std::move(rec));
          }
          journal.append(records);
          for (const auto& rec : records) take(rec);
          times.images += static_cast<int64_t>(records.size());
          if (progress) progress->advance(static_cast<int64_t>(records.size()));
          journalled_this_process += static_cast<int64_t>(records.size());
          if (opt.stop_after >= 0 && journalled_this_process >= opt.stop_after) {
            log::warn("--stop-after {}: stopping abruptly after {} journalled images", opt.stop_after,
                      journalled_this_process);
            std::fflush(stderr);
            std::_Exit(75);
          }
        }
        if (progress) progress->finish();
        std::sort(cell.samples.begin(), cell.samples.end(),
                  [](const auto& x, const auto& y) { return x.index < y.index; });
        auto t0 = Clock::now();
        sums.save((fs::path(run_dir) / cell.sums_file).string());
        times.seconds["fid_sums"] += since(t0);
        if (opt.shard_count == 1) {  // a shard's FID of its part is not the run's: `merge` computes it from the sums
          t0 = Clock::now();
          cell.fid = fid_of(sums, ref, cell.key());
          times.seconds["frechet"] += since(t0);
        }
        res.generation.push_back(std::move(cell));
      }
    }
    for (const auto& [stage, s] : sampler.stage_seconds()) times.seconds[stage] += s;
    times.wall_seconds += since(wall0);
  }
  res.peak_host_bytes = peak_rss_bytes();
  if (device != "cpu") res.peak_device_bytes = gb::compat::cuda_peak_memory_bytes();
  gb::trace::write_chrome_trace((fs::path(run_dir) / "profile.trace.json").string(), gb::trace::take_events());
  gb::trace::set_collecting(false);
  gb::reports::save_results(res, (fs::path(run_dir) / "results.json").string());
  gb::reports::write_report(res, run_dir);
  return res;
}

void merge_generation_sums(gb::reports::Results& merged, const std::vector<gb::reports::Results>& shards,
                           const std::vector<std::string>& sources, const std::string& out_dir) {
  if (merged.generation.empty() || !merged.generation_info) return;
  const auto& info = *merged.generation_info;
  const gb::metrics::FidStats ref = read_reference(info.reference_stats);
  if (reference_hash(ref) != info.reference_hash)
    fail_file(info.reference_stats, "these reference statistics differ from the ones the shards were run against");
  for (size_t k = 0; k < merged.generation.size(); ++k) {
    auto& cell = merged.generation[k];
    gb::metrics::FeatureSums total(gb::metrics::kFidFeatureDim);
    for (size_t s = 0; s < shards.size(); ++s) {
      const auto& sc = shards[s].generation.at(k);
      const fs::path file = fs::path(sources[s]).parent_path() / sc.sums_file;
      const auto part = gb::metrics::FeatureSums::load(file.string(), gb::metrics::kFidFeatureDim);
      if (part.count() != sc.images)
        fail_file(file.string(), "holds {} images, {} says {}", part.count(), sources[s], sc.images);
      total.merge(part);
    }
    total.save((fs::path(out_dir) / cell.sums_file).string());
    cell.fid = fid_of(total, ref, cell.key());
  }
}

}  // namespace gb::runner
