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
#include "harness/runner/run_support.h"
#include "reports/html.h"
#include "reports/png_memory.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>
#include <tuple>

namespace gb::runner {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int64_t kThumbnail = 128;

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
              .squeeze(0)
              .permute({1, 2, 0})
              .round()
              .clamp(0, 255)
              .to(at::kByte);
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

namespace {

// The prompt list of a generation experiment after the limit, and the part this shard samples.
struct PromptList {
  std::vector<gb::PromptEntry> entries;
  std::vector<size_t> mine;  // indices of this shard, ascending
  std::string list_hash;     // of "id<TAB>text" lines
};

// Cheap checks first: every input file and the prompts (UserError naming the file).
PromptList read_prompts(const Experiment& ex, const RunOptions& opt) {
  const GenerationSpec& g = *ex.generation;
  for (const auto& [key, path, folder] : {std::tuple<const char*, std::string, bool>{"prompts", g.prompts, false},
                                          {"metrics.inception", g.inception, false},
                                          {"metrics.reference_stats", g.reference_stats, false},
                                          {"metrics.clip", g.clip, true}}) {
    std::error_code ec;
    if (folder ? !fs::is_directory(path, ec) : !fs::is_regular_file(path, ec))
      fail_file(path, "{} not found (generation.{} of {})", folder ? "folder" : "file", key, ex.source);
  }
  PromptList pl;
  pl.entries = gb::read_prompt_file(g.prompts);
  if (pl.entries.empty()) fail_file(g.prompts, "has no prompts");
  if (g.limit >= 0 && static_cast<size_t>(g.limit) < pl.entries.size()) pl.entries.resize(static_cast<size_t>(g.limit));
  std::string list;
  for (const auto& e : pl.entries) list += e.id + "\t" + e.text + "\n";
  pl.list_hash = gb::reports::stable_hash(list);
  for (int64_t i : shard_indices(static_cast<int64_t>(pl.entries.size()), opt.shard_index, opt.shard_count))
    pl.mine.push_back(static_cast<size_t>(i));
  return pl;
}

std::string generation_config_hash(const Experiment& ex, const gb::reports::GenerationInfo& info) {
  const GenerationSpec& g = *ex.generation;
  json doc;
  doc["seed"] = ex.seed;
  doc["generation"] = {{"prompts", info.list_hash},  {"steps", g.steps},   {"scheduler", g.scheduler},
                       {"image_size", g.image_size}, {"scales", g.scales}, {"reference", info.reference_hash}};
  for (const auto& b : ex.backbones) {
    doc["backbones"].push_back(backbone_hash_entry(b));
    for (const auto& ge : g.guidance.at(b.name))
      doc["guidance"][b.name].push_back(
          {{"name", ge.name}, {"type", ge.type}, {"method", yaml_to_json(ge.method_yaml)}});
  }
  return gb::reports::stable_hash(doc.dump());
}

// Backbone options of every backbone, after the memory pre-flight of each of its passes (before anything loads).
std::map<std::string, gb::bb::BackboneOptions> checked_backbone_options(const Experiment& ex, const RunOptions& opt,
                                                                        const std::string& device) {
  const GenerationSpec& g = *ex.generation;
  std::map<std::string, gb::bb::BackboneOptions> options;
  // The metric models stay on the device beside each backbone (fp32, from their files' headers).
  const std::vector<gb::bb::ComponentWeights> metric_models = {
      gb::bb::fp32_component("fid_inception", g.inception),
      gb::bb::fp32_component("clip_scorer", (fs::path(g.clip) / "model.safetensors").string())};
  for (const auto& b : ex.backbones) {
    gb::bb::BackboneOptions bo = b.options;
    bo.device = device;
    bo.seed = ex.seed;
    bo.image_size = g.image_size > 0 ? g.image_size : gb::gen::default_image_size(b.weights, b.kind);
    for (const auto& ge : g.guidance.at(b.name))
      gb::gen::check_generation_memory("backbone '" + b.name + "' (" + ge.name + ")", b.kind, b.weights, bo, ge.type,
                                       ge.method_file, ex.batch_size, opt.memory, metric_models);
    options[b.name] = bo;
  }
  return options;
}

// What every setting of the run shares.
struct GenerationContext {
  const Experiment& ex;
  const RunOptions& opt;
  const std::string& device;
  const std::string& run_dir;
  const PromptList& prompts;
  const gb::metrics::FidStats& ref;
  const gb::metrics::FidInception& inception;
  const gb::metrics::ClipScorer& clip;
  const JournalSchema& schema;
  StopAfter& stop_after;
};

// One setting (backbone, guidance, scale): the journal replayed, the shard's other prompts sampled in batches,
// their FID features summed and CLIP scores added, the sums saved and (unsharded) the FID computed.
class GenerationSetting {
 public:
  GenerationSetting(const GenerationContext& c, const BackboneEntry& b, gb::Backbone& backbone,
                    gb::gen::Sampler& sampler, const GuidanceEntry& ge, double scale, const std::string& config_hash,
                    gb::reports::StageTimes& times)
      : c_(c),
        sampler_(sampler),
        times_(times),
        where_(setting_slug(b.name, ge.name, scale)),
        sums_(gb::metrics::kFidFeatureDim) {
    cell_.backbone = b.name;
    cell_.guidance = ge.name;
    cell_.guidance_type = ge.type;
    cell_.method = ge.method_file;
    cell_.scale = scale;
    cell_.sums_file = "fid-sums/" + where_ + ".safetensors";
    sampler.set_guidance_scale(scale);
    gb::gen::GuidanceOptions go;
    go.backbone = b.kind;
    go.scale = scale;
    go.method_path = ge.method_file;
    go.model = &backbone;
    guidance_ = gb::gen::make_guidance(ge.type, go);
    const json header = {{"config_hash", config_hash},
                         {"setting", cell_.key()},
                         {"shard", fmt::format("{}/{}", c.opt.shard_index, c.opt.shard_count)}};
    journal_ = std::make_unique<Journal>((fs::path(c.run_dir) / "journal" / (where_ + ".jsonl")).string(), header,
                                         !c.opt.resume, c.schema);
  }

  gb::reports::GenerationCell run() {
    const std::vector<size_t> todo = replay_journal();
    image_dir_ = fs::path(c_.run_dir) / "images" / where_;
    if (c_.ex.generation->save_images) fs::create_directories(image_dir_);
    if (c_.opt.progress && !todo.empty())
      progress_ = std::make_unique<gb::Progress>(cell_.key(), static_cast<int64_t>(todo.size()), "img");
    const size_t B = static_cast<size_t>(c_.ex.batch_size);
    for (size_t k = 0; k < todo.size(); k += B)
      sample_batch(std::vector<size_t>(todo.begin() + static_cast<std::ptrdiff_t>(k),
                                       todo.begin() + static_cast<std::ptrdiff_t>(std::min(todo.size(), k + B))));
    if (progress_) progress_->finish();
    std::sort(cell_.samples.begin(), cell_.samples.end(),
              [](const auto& x, const auto& y) { return x.index < y.index; });
    auto t0 = Clock::now();
    sums_.save((fs::path(c_.run_dir) / cell_.sums_file).string());
    times_.seconds["fid_sums"] += seconds_since(t0);
    if (c_.opt.shard_count == 1) {  // a shard's FID of its part is not the run's: `merge` computes it from the sums
      t0 = Clock::now();
      cell_.fid = fid_of(sums_, c_.ref, cell_.key());
      times_.seconds["frechet"] += seconds_since(t0);
    }
    return std::move(cell_);
  }

 private:
  // Adds one record (replayed or fresh) to the sums and the cell.
  void take(const json& rec) {
    const auto t_sum = Clock::now();
    sums_.add(features_from_base64(rec.at("f").get<std::string>()));
    times_.seconds["fid_sums"] += seconds_since(t_sum);
    cell_.clip_sum += rec.at("clip").get<double>();
    cell_.images += 1;
    if (rec.contains("png"))
      cell_.samples.push_back(
          {rec.at("id").get<std::string>(), rec.at("i").get<int64_t>(), rec.at("png").get<std::string>()});
  }

  // Takes the journal's records; returns the shard's prompts still to sample.
  std::vector<size_t> replay_journal() {
    std::set<int64_t> done;
    for (const auto& rec : journal_->replayed()) {
      take(rec);
      done.insert(rec.at("i").get<int64_t>());
    }
    std::vector<size_t> todo;
    for (size_t i : c_.prompts.mine)
      if (!done.count(static_cast<int64_t>(i))) todo.push_back(i);
    if (!done.empty()) log::info("{}: --resume replays {} journalled images", cell_.key(), done.size());
    return todo;
  }

  // Samples one batch of prompts, scores it, journals it (durably) and takes it.
  void sample_batch(const std::vector<size_t>& batch) {
    std::vector<std::string> texts, ids;
    std::vector<at::Tensor> noise;
    for (size_t i : batch) {
      const auto& e = c_.prompts.entries[i];
      texts.push_back(e.text);
      ids.push_back(e.id);
      noise.push_back(sampler_.initial_noise(c_.ex.seed, e.id));
    }
    at::Tensor images;
    gb::bb::rethrow_out_of_memory(
        [&] {
          gb::trace::Span span("sample", cell_.key() + " " + gb::join(ids));
          images = sampler_.generate(texts, at::stack(noise), *guidance_);
        },
        "generation", c_.device, "prompts " + gb::join(ids) + " (" + cell_.key() + ")");
    images = images.to(at::kCPU);
    std::vector<at::Tensor> rgb;
    for (size_t j = 0; j < batch.size(); ++j) {
      rgb.push_back(images[static_cast<int64_t>(j)]);
      if (c_.ex.generation->save_images) gb::write_png_rgb((image_dir_ / (ids[j] + ".png")).string(), rgb.back());
    }
    auto t0 = Clock::now();
    gb::trace::Span fid_span("fid", gb::join(ids));
    const at::Tensor feats = gb::metrics::rgb_features(c_.inception, rgb);
    fid_span.end();
    times_.seconds["fid"] += seconds_since(t0);
    t0 = Clock::now();
    gb::trace::Span clip_span("clip", gb::join(ids));
    const std::vector<double> scores = gb::metrics::clip_pair_scores(c_.clip, rgb, texts);
    clip_span.end();
    times_.seconds["clip"] += seconds_since(t0);
    std::vector<json> records;
    for (size_t j = 0; j < batch.size(); ++j) {
      json rec = {{"i", static_cast<int64_t>(batch[j])},
                  {"id", ids[j]},
                  {"clip", scores[j]},
                  {"f", features_base64(feats[static_cast<int64_t>(j)])}};
      if (static_cast<int64_t>(batch[j]) < c_.ex.examples) rec["png"] = thumbnail_base64(rgb[j]);
      records.push_back(std::move(rec));
    }
    journal_->append(records);
    for (const auto& rec : records) take(rec);
    times_.images += static_cast<int64_t>(records.size());
    if (progress_) progress_->advance(static_cast<int64_t>(records.size()));
    c_.stop_after.journalled(static_cast<int64_t>(records.size()));
  }

  const GenerationContext& c_;
  gb::gen::Sampler& sampler_;
  gb::reports::StageTimes& times_;
  const std::string where_;
  gb::reports::GenerationCell cell_;
  std::unique_ptr<gb::gen::Guidance> guidance_;
  std::unique_ptr<Journal> journal_;
  gb::metrics::FeatureSums sums_;
  fs::path image_dir_;
  std::unique_ptr<gb::Progress> progress_;
};

// Every setting of one backbone (loaded once, one sampler).
void run_backbone(const GenerationContext& c, const BackboneEntry& b, const gb::bb::BackboneOptions& bo,
                  gb::reports::Results& res) {
  const GenerationSpec& g = *c.ex.generation;
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
  so.batch_invariant = c.ex.batch_invariant;
  gb::gen::Sampler sampler(*backbone, b.weights, so);
  gb::reports::StageTimes& times = res.timings["generation|" + b.name];
  times.seconds["load"] += seconds_since(t_load);
  const auto wall0 = Clock::now();
  for (const auto& ge : g.guidance.at(b.name))
    for (const double scale : g.scales)
      res.generation.push_back(GenerationSetting(c, b, *backbone, sampler, ge, scale, res.config_hash, times).run());
  for (const auto& [stage, s] : sampler.stage_seconds()) times.seconds[stage] += s;
  times.wall_seconds += seconds_since(wall0);
}

}  // namespace

gb::reports::Results run_generation(const Experiment& ex, const RunOptions& opt) {
  const GenerationSpec& g = *ex.generation;
  const std::string device = resolve_device(ex.device);
  const std::string run_dir = start_run(ex, opt, device);
  gb::reports::Results res = new_results(ex, opt, device);
  res.protocol = "generation";

  const PromptList prompts = read_prompts(ex, opt);
  const gb::metrics::FidStats ref = read_reference(g.reference_stats);
  gb::reports::GenerationInfo info;
  info.prompts = g.prompts;
  info.num_prompts = static_cast<int64_t>(prompts.entries.size());
  info.list_hash = prompts.list_hash;
  info.reference_stats = g.reference_stats;
  info.reference_hash = reference_hash(ref);
  info.synthetic = g.synthetic;
  res.generation_info = info;
  res.config_hash = generation_config_hash(ex, info);
  const auto options = checked_backbone_options(ex, opt, device);

  c10::InferenceMode inference;
  const at::Device metrics_device = device == "cpu" ? at::Device(at::kCPU) : at::Device(device);
  const gb::metrics::FidInception inception(g.inception, metrics_device);
  const gb::metrics::ClipScorer clip(g.clip, metrics_device);

  JournalSchema schema;
  schema.num_images = static_cast<int64_t>(prompts.entries.size());
  schema.wanted = [&](int64_t i) { return in_shard(i, opt.shard_index, opt.shard_count); };
  schema.record = check_record;

  StopAfter stop_after(opt.stop_after);
  const GenerationContext context{ex, opt, device, run_dir, prompts, ref, inception, clip, schema, stop_after};
  for (const auto& b : ex.backbones) run_backbone(context, b, options.at(b.name), res);
  write_run_outputs(res, device, run_dir);
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
