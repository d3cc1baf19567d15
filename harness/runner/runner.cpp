#include "harness/runner/runner.h"

#include "gb_build_info.h"
#include "harness/core/backbone.h"
#include "harness/core/errors.h"
#include "harness/core/log.h"
#include "harness/core/progress.h"
#include "harness/core/strings.h"
#include "harness/core/torch_compat.h"
#include "harness/core/trace.h"
#include "harness/runner/dataset_prompts.h"
#include "harness/runner/evaluate_item.h"
#include "harness/runner/generation_run.h"
#include "harness/runner/integration.h"
#include "harness/runner/journal.h"
#include "harness/runner/open_datasets.h"
#include "harness/runner/record_codec.h"
#include "harness/runner/variant_run.h"
#include "reports/html.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

#include <filesystem>
#include <memory>
#include <set>

namespace gb::runner {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// What one backbone brings to each of its (dataset, backbone) passes.
struct BackboneRun {
  const BackboneEntry& entry;
  gb::Backbone& backbone;
  const gb::CaptureSpec& spec;
  const std::vector<VariantRun>& variants;
};

struct Job {
  std::vector<PreparedItem> items;
};

// One (dataset, backbone) of a run: its cells are added to the results, the journal replays what a killed run
// already evaluated, and the shard's other images go through a TBB pipeline: a serial source cuts batches, workers
// load and prompt the images of a batch in parallel, and a serial sink captures the batch (one backbone forward),
// evaluates each image, journals the batch and adds it to the cells.
class DatasetPass {
 public:
  DatasetPass(const Experiment& ex, const RunOptions& opt, const std::string& run_dir, const std::string& device,
              const BackboneRun& bb, const OpenDataset& od, gb::reports::Results& res, StopAfter& stop_after)
      : ex_(ex),
        opt_(opt),
        device_(device),
        bb_(bb),
        od_(od),
        res_(res),
        stop_after_(stop_after),
        key_(od.entry.name + "|" + bb.entry.name),
        times_(res.timings[key_]) {
    prompts_ = make_prompt_builder(od.config, od.dataset->classes(), bb.backbone.tokenizer());
    for (auto& c : new_cells(od.entry.name, bb.entry.name, ex.variants.at(bb.entry.name), od.eval))
      res.cells.push_back(std::move(c));
    for (size_t k = res.cells.size() - bb.variants.size(); k < res.cells.size(); ++k) cells_.push_back(&res.cells[k]);
    journal_ = std::make_unique<Journal>(
        (fs::path(run_dir) / "journal" / (od.entry.name + "__" + bb.entry.name + ".jsonl")).string(),
        journal_header(res.config_hash, od.entry.name, bb.entry.name, opt.shard_index, opt.shard_count), !opt.resume,
        journal_schema(static_cast<int64_t>(od.dataset->size()), opt.shard_index, opt.shard_count, cells_));
    how_.variants = &bb.variants;
    how_.eval = od.eval;
    how_.device = device;
    how_.example_threshold = example_threshold(od.eval);
    how_.examples = ex.examples;
  }

  void run() {
    todo_ = replay_journal();
    const auto wall0 = Clock::now();
    if (opt_.progress) progress_ = std::make_unique<gb::Progress>(key_, static_cast<int64_t>(todo_.size()));
    using JobPtr = std::shared_ptr<Job>;
    tbb::task_arena arena(std::min(static_cast<int>(ex_.workers) + 1, tbb::info::default_concurrency()));
    arena.execute([&] {
      tbb::parallel_pipeline(
          static_cast<size_t>(ex_.workers) + 1,
          tbb::make_filter<void, JobPtr>(tbb::filter_mode::serial_in_order, [&](tbb::flow_control& fc) {
            return next_batch(fc);
          }) & tbb::make_filter<JobPtr, JobPtr>(tbb::filter_mode::parallel, [&](JobPtr job) {
            prepare(*job);
            return job;
          }) & tbb::make_filter<JobPtr, void>(tbb::filter_mode::serial_in_order, [&](JobPtr job) { consume(*job); }));
    });
    if (progress_) progress_->finish();
    times_.wall_seconds += seconds_since(wall0);
    if (const auto summary = od_.dataset->report().summary(); !summary.empty()) log::warn("{}: {}", key_, summary);
  }

 private:
  // Adds the journal's records to the cells and examples; returns the shard's images still to evaluate.
  std::vector<int64_t> replay_journal() {
    std::set<int64_t> done;  // the journal has checked every record (types, ranges, no image twice)
    for (const auto& rec : journal_->replayed()) {
      done.insert(rec.at("i").get<int64_t>());
      if (!rec.value("skip", false)) accumulate(rec, cells_);
      collect_examples(rec, od_.entry.name, bb_.entry.name, res_.examples);
    }
    if (!done.empty()) log::info("{}: resuming, {} images already evaluated", key_, done.size());
    std::vector<int64_t> todo;
    for (int64_t i : shard_indices(static_cast<int64_t>(od_.dataset->size()), opt_.shard_index, opt_.shard_count))
      if (!done.count(i)) todo.push_back(i);
    return todo;
  }

  // Source side: the next batch_size images still to evaluate (nullptr and stop at the end).
  std::shared_ptr<Job> next_batch(tbb::flow_control& fc) {
    if (next_ >= todo_.size()) {
      fc.stop();
      return nullptr;
    }
    auto job = std::make_shared<Job>();
    const size_t end = std::min(todo_.size(), next_ + static_cast<size_t>(ex_.batch_size));
    for (size_t k = next_; k < end; ++k) job->items.push_back(PreparedItem{todo_[k], {}, {}, 0, 0});
    next_ = end;
    return job;
  }

  // Worker side: loads and prompts the batch's images in parallel.
  void prepare(Job& job) const {
    tbb::parallel_for(size_t(0), job.items.size(), [&](size_t k) {
      PreparedItem& p = job.items[k];
      auto t0 = Clock::now();
      {
        gb::trace::Span span("decode", "#" + std::to_string(p.index));
        p.sample = od_.dataset->load(static_cast<size_t>(p.index));
      }
      p.decode_s = seconds_since(t0);
      if (!p.sample) return;
      t0 = Clock::now();
      gb::trace::Span span("prompt", p.sample->id);
      p.prompt = dataset_prompt(od_, *prompts_, *p.sample);
      p.prompt_s = seconds_since(t0);
    });
  }

  // One backbone forward over the batch's loaded images (`live`: their positions in the job).
  gb::Capture capture(const Job& job, std::vector<size_t>& live) {
    gb::BackboneBatch batch;
    batch.seed = ex_.seed;
    for (size_t k = 0; k < job.items.size(); ++k) {
      const PreparedItem& p = job.items[k];
      times_.seconds["decode"] += p.decode_s;
      times_.seconds["prompt"] += p.prompt_s;
      if (!p.sample) continue;
      live.push_back(k);
      batch.images.push_back(p.sample->image);
      batch.prompts.push_back(p.prompt.text);
      batch.ids.push_back(p.sample->id);
    }
    gb::Capture capture;
    if (live.empty()) return capture;
    // Out of memory here (a batch larger than planned, another process on the device): exit 2 naming the images;
    // the journal holds every finished batch for --resume.
    gb::bb::rethrow_out_of_memory(
        [&] {
          gb::trace::Span span("capture", gb::join(batch.ids));
          capture = ex_.batch_invariant ? gb::capture_each_sample(bb_.backbone, batch, bb_.spec)
                                        : bb_.backbone.capture(batch, bb_.spec);
        },
        "the capture", device_, "images " + gb::join(batch.ids) + " (" + key_ + ")");
    for (const auto& [stage, s] : capture.stage_seconds) times_.seconds[stage] += s;
    return capture;
  }

  // Sink side: captures, evaluates, journals (durably) and sums one batch, in image order.
  void consume(Job& job) {
    // The captures are inference tensors (the backbones run under InferenceMode). Consumed outside it they
    // dispatch with autograd keys not excluded, and oneDNN kernels (MKLDNNCommon.cpp) assert on that.
    // InferenceMode is per thread, and this filter runs on whichever TBB worker picks it up: set it here, where
    // the model runs and its outputs are segmented and evaluated.
    c10::InferenceMode inference_guard;
    std::vector<size_t> live;
    const gb::Capture captures = capture(job, live);
    std::map<size_t, json> by_item;
    for (size_t n = 0; n < live.size(); ++n)
      by_item[live[n]] =
          evaluate_item(job.items[live[n]], captures.sample(static_cast<int64_t>(n)), how_, times_.seconds);
    std::vector<json> records;
    for (size_t k = 0; k < job.items.size(); ++k)
      records.push_back(by_item.count(k) ? by_item[k] : skip_record(job.items[k].index));
    journal_->append(records);
    for (const auto& rec : records) {
      if (rec.value("skip", false)) continue;
      accumulate(rec, cells_);
      times_.images += 1;
      collect_examples(rec, od_.entry.name, bb_.entry.name, res_.examples);
    }
    if (progress_) progress_->advance(static_cast<int64_t>(records.size()));
    stop_after_.journalled(static_cast<int64_t>(records.size()));
  }

  const Experiment& ex_;
  const RunOptions& opt_;
  const std::string& device_;
  const BackboneRun& bb_;
  const OpenDataset& od_;
  gb::reports::Results& res_;
  StopAfter& stop_after_;
  const std::string key_;
  gb::reports::StageTimes& times_;
  std::unique_ptr<gb::text::PromptBuilder> prompts_;
  std::vector<gb::reports::Cell*> cells_;
  std::unique_ptr<Journal> journal_;
  ItemEvaluation how_;
  std::unique_ptr<gb::Progress> progress_;
  std::vector<int64_t> todo_;  // the shard's images not in the journal, ascending
  size_t next_ = 0;            // first of todo_ not yet batched
};

// What `goca-bench memory` expects of a backbone's pass, recorded beside the measured peak_device_bytes (CUDA).
void record_planned_peak(const BackboneEntry& b, const std::string& device, const gb::CaptureSpec& spec,
                         int64_t batch_size, bool per_sample_forward, gb::reports::Results& res) {
  if (device == "cpu") return;
  try {
    const int64_t planned = planned_peak_bytes(b, device, spec, batch_size, per_sample_forward);
    if (planned > 0) {
      log::info("{}: planned peak device memory {:.2f} GB at batch {} (goca-bench memory)", b.name, planned / 1e9,
                batch_size);
      res.planned_peak_device_bytes = std::max(res.planned_peak_device_bytes, planned);
    }
  } catch (const std::exception& e) {
    log::warn("{}: no memory plan ({})", b.name, e.what());
  }
}

// Sorts the examples and derives every cell's metrics.
void finish_cells(gb::reports::Results& res) {
  std::stable_sort(res.examples.begin(), res.examples.end(), [](const auto& a, const auto& b) {
    if (a.dataset != b.dataset) return a.dataset < b.dataset;
    if (a.backbone != b.backbone) return a.backbone < b.backbone;
    if (a.index != b.index) return a.index < b.index;
    return a.variant < b.variant;
  });
  res.recompute_metrics();
}

}  // namespace

std::string device_description(const std::string& device) {
  if (device.rfind("cuda", 0) == 0) {
    int idx = 0;
    if (device.size() > 5) idx = std::stoi(device.substr(5));
    return device + " " + gb::compat::cuda_device_name(idx);
  }
  return "cpu";
}

std::string resolve_run_dir(const Experiment& ex, const RunOptions& opt) {
  if (!opt.run_dir.empty()) return opt.run_dir;
  if (opt.shard_count <= 1) return ex.run_dir();
  return (fs::path(ex.run_dir()) / fmt::format("shard-{}-of-{}", opt.shard_index, opt.shard_count)).string();
}

std::string prepare_run_dir(const Experiment& ex, const RunOptions& opt) {
  const std::string run_dir = resolve_run_dir(ex, opt);
  fs::create_directories(run_dir);
  return run_dir;
}

gb::reports::Results new_results(const Experiment& ex, const RunOptions& opt, const std::string& device) {
  gb::reports::Results res;
  res.name = ex.name;
  res.created_utc = gb::reports::utc_now_iso();
  res.git_commit = GB_GIT_COMMIT;
  res.goca_bench_version = GB_VERSION;
  res.libraries = {{"libtorch", gb::compat::torch_version()}};
  res.device = device_description(device);
  res.config_yaml = ex.resolved_yaml;
  res.seeds = {{"noise", static_cast<int64_t>(ex.seed)}};
  res.shard_index = opt.shard_index;
  res.shard_count = opt.shard_count;
  return res;
}

std::string start_run(const Experiment& ex, const RunOptions& opt, const std::string& device) {
  const std::string run_dir = prepare_run_dir(ex, opt);
  if (!opt.resume) {
    std::error_code ec;
    fs::remove_all(fs::path(run_dir) / "journal", ec);
  }
  gb::trace::take_events();  // this run's timeline only (profile.trace.json)
  gb::trace::set_collecting(true);
  if (device != "cpu") gb::compat::cuda_reset_peak_memory();
  return run_dir;
}

void write_run_outputs(gb::reports::Results& res, const std::string& device, const std::string& run_dir) {
  res.peak_host_bytes = peak_rss_bytes();
  if (device != "cpu") res.peak_device_bytes = gb::compat::cuda_peak_memory_bytes();
  gb::trace::write_chrome_trace((fs::path(run_dir) / "profile.trace.json").string(), gb::trace::take_events());
  gb::trace::set_collecting(false);
  gb::reports::save_results(res, (fs::path(run_dir) / "results.json").string());
  gb::reports::write_report(res, run_dir);
}

gb::reports::Results run_experiment(const Experiment& ex, const RunOptions& opt) {
  if (ex.generation) return run_generation(ex, opt);
  const std::string device = resolve_device(ex.device);
  const std::string run_dir = start_run(ex, opt, device);
  gb::reports::Results res = new_results(ex, opt, device);
  // Datasets first: generate synthetic data where asked, open, list, hash.
  const std::vector<OpenDataset> datasets = open_datasets(ex, res);
  res.config_hash = config_hash(ex, datasets);

  // Memory pre-flight: every backbone's pass is planned before the first weight is loaded, and work that cannot
  // fit is refused now (exit 2) rather than hours in.
  for (const auto& b : ex.backbones)
    if (const auto mo = memory_plan_options(b, device, required_capture(ex.variants.at(b.name)), ex.batch_invariant))
      gb::bb::check_memory_fits("backbone '" + b.name + "'", *mo, ex.batch_size, opt.memory);

  StopAfter stop_after(opt.stop_after);
  for (const auto& b : ex.backbones) {
    std::unique_ptr<gb::Backbone> backbone = make_backbone(b, device, ex.seed);
    const gb::CaptureSpec spec = required_capture(ex.variants.at(b.name));
    const std::vector<VariantRun> variants = load_variants(ex.variants.at(b.name));
    record_planned_peak(b, device, spec, ex.batch_size, ex.batch_invariant, res);
    // text_encoder: free — every prompt of this shard goes through the text encoders first; they are then freed
    // and the captures read the conditioning from host memory.
    if (wants_prompt_preencoding(b))
      // One prompt per encoder call under batch_invariant: a GEMM's rounding can depend on its batch.
      preencode_prompts(*backbone, b.name, datasets, opt.shard_index, opt.shard_count,
                        ex.batch_invariant ? 1 : ex.batch_size, res.timings);
    const BackboneRun bb{b, *backbone, spec, variants};
    for (const auto& od : datasets) DatasetPass(ex, opt, run_dir, device, bb, od, res, stop_after).run();
  }
  finish_cells(res);
  write_run_outputs(res, device, run_dir);
  return res;
}

}  // namespace gb::runner
