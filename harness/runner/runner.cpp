#include "harness/runner/runner.h"

#include "datasets/dataset.h"
#include "gb_build_info.h"
#include "baselines/method_yaml.h"
#include "baselines/plan_segmentor.h"
#include "harness/core/errors.h"
#include "harness/core/log.h"
#include "harness/core/progress.h"
#include "harness/core/torch_compat.h"
#include "harness/eval/evaluator.h"
#include "harness/io/image_io.h"
#include "harness/runner/integration.h"
#include "harness/runner/generation_run.h"
#include "harness/runner/journal.h"
#include "harness/core/strings.h"
#include "harness/core/trace.h"
#include "harness/io/atomic_file.h"
#include "harness/backbones/synthetic_scene.h"
#include "reports/html.h"
#include "reports/png_memory.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/info.h>
#include <tbb/task_arena.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>

namespace gb::runner {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

void parse_shard(const std::string& text, int64_t& index, int64_t& count) {
  const auto slash = text.find('/');
  try {
    if (slash == std::string::npos) throw std::invalid_argument("no slash");
    size_t a = 0, b = 0;
    index = std::stoll(text.substr(0, slash), &a);
    count = std::stoll(text.substr(slash + 1), &b);
    if (a != slash || b != text.size() - slash - 1) throw std::invalid_argument("trailing characters");
  } catch (const std::exception&) {
    fail("--shard '{}': expected i/n, e.g. 0/4", text);
  }
  if (count < 1 || index < 0 || index >= count) fail("--shard '{}': need 0 <= i < n", text);
}

bool in_shard(int64_t index, int64_t shard_index, int64_t shard_count) { return index % shard_count == shard_index; }

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// One variant of one backbone, ready to run.
struct VariantRun {
  Variant variant;
  gb::baselines::MethodPlan plan;
  std::unique_ptr<gb::baselines::PlanSegmentor> segmentor;
};

struct Prepared {
  int64_t index = 0;
  std::optional<gb::datasets::Sample> sample;
  PreparedPrompt prompt;
  double decode_s = 0, prompt_s = 0;
};

struct Job {
  std::vector<Prepared> items;
};

// Per-image outcome of one variant, journalled and summed.
struct VariantDelta {
  std::vector<std::vector<std::array<int64_t, 3>>> sparse;  // per threshold: (row, col, count)
  std::map<std::string, double> layer_weights;
  std::map<std::string, std::vector<double>> head_weights;
};

json delta_to_json(const VariantDelta& d) {
  json t = json::array();
  for (const auto& th : d.sparse) {
    json a = json::array();
    for (const auto& e : th) a.push_back({e[0], e[1], e[2]});
    t.push_back(a);
  }
  return {{"t", t}, {"lw", d.layer_weights}, {"hw", d.head_weights}};
}

// Adds a journalled (or fresh) image record into the cells.
void accumulate(const json& rec, std::vector<gb::reports::Cell*>& cells) {
  const json& vs = rec.at("v");
  if (vs.size() != cells.size()) fail("journal record of image {} has {} variants, expected {}", rec.value("id", ""), vs.size(), cells.size());
  for (size_t v = 0; v < cells.size(); ++v) {
    gb::reports::Cell& c = *cells[v];
    const json& vj = vs[v];
    const json& t = vj.at("t");
    if (t.size() != c.thresholds.size()) fail("journal record has {} thresholds, expected {}", t.size(), c.thresholds.size());
    for (size_t k = 0; k < t.size(); ++k)
      for (const auto& e : t[k]) c.thresholds[k].confusion.at(e[0].get<int64_t>(), e[1].get<int64_t>()) += e[2].get<int64_t>();
    for (const auto& [l, w] : vj.at("lw").items()) c.layer_weight_sum[l] += w.get<double>();
    for (const auto& [l, w] : vj.at("hw").items()) {
      auto& dst = c.head_weight_sum[l];
      const auto src = w.get<std::vector<double>>();
      if (dst.size() < src.size()) dst.resize(src.size(), 0.0);
      for (size_t h = 0; h < src.size(); ++h) dst[h] += src[h];
    }
    c.images += 1;
  }
}


// Image | ground truth | prediction, nearest-resized to a common height, as an RGB buffer.
std::string overlay_png_base64(const at::Tensor& image, const at::Tensor& label, const at::Tensor& pred) {
  const int64_t H = label.size(0), W = label.size(1);
  const int64_t oh = std::min<int64_t>(H, 128);
  const int64_t ow = std::max<int64_t>(1, W * oh / H);
  const auto palette = gb::voc_palette(256);
  at::Tensor img = image.to(at::kCPU).contiguous();
  at::Tensor lab = label.to(at::kCPU).to(at::kLong).contiguous();
  at::Tensor prd = pred.to(at::kCPU).to(at::kLong).contiguous();
  const int64_t iH = img.size(0), iW = img.size(1);
  auto ia = img.accessor<uint8_t, 3>();
  auto la = lab.accessor<int64_t, 2>();
  auto pa = prd.accessor<int64_t, 2>();
  const int64_t gap = 4, total_w = 3 * ow + 2 * gap;
  std::vector<uint8_t> rgb(static_cast<size_t>(total_w * oh * 3), 255);
  for (int64_t y = 0; y < oh; ++y)
    for (int64_t x = 0; x < ow; ++x) {
      const int64_t ly = y * H / oh, lx = x * W / ow;
      const int64_t iy = y * iH / oh, ix = x * iW / ow;
      for (int panel = 0; panel < 3; ++panel) {
        uint8_t* px = &rgb[static_cast<size_t>((y * total_w + panel * (ow + gap) + x) * 3)];
        for (int c = 0; c < 3; ++c) {
          const double base = ia[iy][ix][c];
          if (panel == 0) {
            px[c] = static_cast<uint8_t>(base);
          } else {
            const int64_t v = panel == 1 ? la[ly][lx] : pa[ly][lx];
            const auto& col = palette[static_cast<size_t>(std::clamp<int64_t>(v, 0, 255))];
            px[c] = static_cast<uint8_t>(0.35 * base + 0.65 * col[static_cast<size_t>(c)]);
          }
        }
      }
    }
  return gb::reports::base64_encode(gb::reports::encode_png_rgb(rgb, total_w, oh));
}

json canonical_dataset(const gb::datasets::DatasetConfig& c) {
  return {{"kind", gb::datasets::to_string(c.kind)},
          {"protocol", gb::datasets::to_string(c.protocol)},
          {"split", fs::path(c.split).filename().string()},
          {"reverse_split", c.reverse_split},
          {"limit", c.limit},
          {"num_classes", c.num_classes},
          {"ignore_index", c.ignore_index},
          {"void_to_background", c.void_to_background},
          {"gt_from_xml", c.gt_from_xml},
          {"add_background_token", c.add_background_token},
          {"add_missing_class", c.add_missing_class},
          {"background_method", c.background_method},
          {"background_thresholds", c.background_thresholds}};
}

int64_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;
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

gb::reports::Results run_experiment(const Experiment& ex, const RunOptions& opt) {
  if (ex.generation) return run_generation(ex, opt);
  const std::string device = resolve_device(ex.device);
  const std::string run_dir = prepare_run_dir(ex, opt);
  gb::trace::take_events();  // this run's timeline only (profile.trace.json)
  gb::trace::set_collecting(true);
  if (!opt.resume) {
    std::error_code ec;
    fs::remove_all(fs::path(run_dir) / "journal", ec);
  }

  gb::reports::Results res = new_results(ex, opt, device);
  if (device != "cpu") gb::compat::cuda_reset_peak_memory();

  // Datasets first: generate synthetic data where asked, open, list, hash.
  struct OpenDataset {
    DatasetEntry entry;
    gb::datasets::DatasetConfig config;
    std::unique_ptr<gb::datasets::Dataset> dataset;
    gb::eval::EvalConfig eval;
  };
  std::vector<OpenDataset> datasets;
  json hash_doc;
  hash_doc["seed"] = ex.seed;
  hash_doc["select"] = ex.select;
  std::set<std::string> protocols;
  for (const auto& e : ex.datasets) {
    OpenDataset od;
    od.entry = e;
    od.config = load_dataset_entry(e);
    if (e.synthetic_images > 0) {
      gb::bb::SyntheticWorldOptions world;
      world.seed = ex.seed;
      const fs::path marker = fs::path(od.config.root) / ".goca-bench-synthetic";
      const std::string stamp = fmt::format("images={} seed={}\n", e.synthetic_images, ex.seed);
      // Shards started together (a job array) write the dataset once: the first takes the lock and writes,
      // the others wait and then find the marker.
      fs::create_directories(od.config.root);
      const std::string lock_path = (fs::path(od.config.root) / ".goca-bench-synthetic.lock").string();
      const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (lock_fd < 0) fail_file(lock_path, "cannot create the lock file: {}", std::strerror(errno));
      struct Unlock {
        int fd;
        ~Unlock() { ::close(fd); }  // closing releases the flock
      } unlock{lock_fd};
      while (::flock(lock_fd, LOCK_EX) != 0)
        if (errno != EINTR) fail_file(lock_path, "cannot lock: {}", std::strerror(errno));
      bool fresh = true;
      if (fs::exists(marker)) {
        std::ifstream in(marker);
        std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        fresh = s != stamp;
      }
      if (fresh) {
        log::info("writing the synthetic VOC dataset ({} images) to {}", e.synthetic_images, od.config.root);
        gb::bb::write_synthetic_voc(od.config.root, e.synthetic_images, world);
        gb::write_file_atomic(marker.string(), stamp);
      }
    }
    od.dataset = gb::datasets::Dataset::open(od.config);
    const auto& ct = od.dataset->classes();
    od.eval.protocol = od.config.protocol == gb::datasets::Protocol::Paper ? gb::eval::Protocol::paper
                                                                          : gb::eval::Protocol::standard;
    od.eval.num_classes = ct.num_classes();
    od.eval.ignore_index = od.config.ignore_index < 0 ? 255 : od.config.ignore_index;
    od.eval.method = gb::eval::parse_background_method(od.config.background_method);
    if (!od.config.background_thresholds.empty()) od.eval.thresholds = od.config.background_thresholds;
    od.eval.rule = gb::eval::ThresholdRule::parse(ex.select);
    std::string ids;
    for (size_t i = 0; i < od.dataset->size(); ++i) ids += od.dataset->id(i) + "\n";
    gb::reports::DatasetInfo di;
    di.name = e.name;
    di.kind = gb::datasets::to_string(od.config.kind);
    di.protocol = gb::datasets::to_string(od.config.protocol);
    di.num_classes = ct.num_classes();
    di.class_names = ct.names();
    di.num_images = static_cast<int64_t>(od.dataset->size());
    di.list_hash = gb::reports::stable_hash(ids);
    protocols.insert(di.protocol);
    res.datasets.push_back(di);
    hash_doc["datasets"].push_back({{"name", e.name}, {"config", canonical_dataset(od.config)}});
    datasets.push_back(std::move(od));
  }
  for (const auto& p : protocols) res.protocol += (res.protocol.empty() ? "" : "+") + p;
  for (const auto& b : ex.backbones) {
    json options = yaml_to_json(b.options_yaml);
    if (options.is_object())  // a tokenizer path or where the text encoder lives does not change results
      for (auto it = options.begin(); it != options.end();)
        it = option_affects_results(it.key()) ? std::next(it) : options.erase(it);
    hash_doc["backbones"].push_back({{"name", b.name}, {"kind", b.kind}, {"dtype", b.dtype}, {"options", options}});
    for (const auto& v : ex.variants.at(b.name))
      hash_doc["variants"][b.name].push_back({{"name", v.name}, {"method", yaml_to_json(v.method_yaml)}});
  }
  res.config_hash = gb::reports::stable_hash(hash_doc.dump());

  // Memory pre-flight: every backbone's pass is planned before the first weight is loaded, and work that cannot
  // fit is refused now (exit 2) rather than hours in.
  for (const auto& b : ex.backbones)
    if (const auto mo = memory_plan_options(b, device, required_capture(ex.variants.at(b.name))))
      gb::bb::check_memory_fits("backbone '" + b.name + "'", *mo, ex.batch_size, opt.memory);

  int64_t journalled_this_process = 0;
  for (const auto& b : ex.backbones) {
    std::unique_ptr<gb::Backbone> backbone = make_backbone(b, device, ex.seed);
    std::vector<VariantRun> variants;
    const gb::CaptureSpec spec = required_capture(ex.variants.at(b.name));
    for (const auto& v : ex.variants.at(b.name)) {
      VariantRun vr;
      vr.variant = v;
      vr.plan = gb::baselines::load_method_plan(v.method_file, v.method_overrides);
      vr.segmentor = std::make_unique<gb::baselines::PlanSegmentor>(vr.plan, v.method_file);
      variants.push_back(std::move(vr));
    }
    if (device != "cpu") {  // what `goca-bench memory` expects, to read beside the measured peak_device_bytes
      try {
        const int64_t planned = planned_peak_bytes(b, device, spec, ex.batch_size);
        if (planned > 0) {
          log::info("{}: planned peak device memory {:.2f} GB at batch {} (goca-bench memory)", b.name, planned / 1e9,
                    ex.batch_size);
          res.planned_peak_device_bytes = std::max(res.planned_peak_device_bytes, planned);
        }
      } catch (const std::exception& e) {
        log::warn("{}: no memory plan ({})", b.name, e.what());
      }
    }
    if (wants_prompt_preencoding(b)) {
      // text_encoder: free — every prompt of this shard goes through the text encoders first; they are then
      // freed and the captures read the conditioning from host memory.
      const auto t0 = Clock::now();
      std::vector<std::string> all;
      std::vector<std::pair<std::string, size_t>> per_dataset;
      for (auto& od : datasets) {
        const auto builder = make_prompt_builder(od.config, od.dataset->classes(), backbone->tokenizer());
        const auto* caps = od.dataset->captions();
        if (!caps) fail("dataset '{}': no caption file configured (`captions:`)", od.entry.name);
        std::vector<int64_t> idx;
        for (int64_t i = 0; i < static_cast<int64_t>(od.dataset->size()); ++i)
          if (in_shard(i, opt.shard_index, opt.shard_count)) idx.push_back(i);
        std::vector<std::string> texts(idx.size());
        tbb::parallel_for(size_t(0), idx.size(), [&](size_t k) {
          const auto sample = od.dataset->load(static_cast<size_t>(idx[k]));
          if (sample) texts[k] = build_prompt(*builder, *sample, caps->caption(sample->id), od.config).text;
        });
        size_t n = 0;
        for (auto& t : texts)
          if (!t.empty()) all.push_back(std::move(t)), ++n;
        per_dataset.emplace_back(od.entry.name + "|" + b.name, n);
      }
      log::info("{}: encoding {} prompts before capturing (text_encoder: free)", b.name, all.size());
      backbone->prepare_prompts(all, ex.batch_size);
      const double secs = since(t0);
      for (const auto& [key, n] : per_dataset)
        if (!all.empty()) res.timings[key].seconds["text"] += secs * static_cast<double>(n) / static_cast<double>(all.size());
    }
    for (auto& od : datasets) {
      const std::string key = od.entry.name + "|" + b.name;
      // Cells of this (dataset, backbone).
      const auto prompts = make_prompt_builder(od.config, od.dataset->classes(), backbone->tokenizer());
      const size_t first_cell = res.cells.size();
      for (const auto& vr : variants) {
        gb::reports::Cell c;
        c.dataset = od.entry.name;
        c.backbone = b.name;
        c.variant = vr.variant.name;
        c.method = vr.variant.method;
        c.type = vr.variant.type;
        c.group = vr.variant.group;
        c.axes = vr.variant.axes;
        c.method_config = yaml_to_json(vr.variant.method_yaml);
        c.background = gb::eval::to_string(od.eval.method);
        c.select_rule = od.eval.rule.kind == gb::eval::ThresholdRule::Kind::fixed ? "fixed" : "best";
        c.fixed_threshold = od.eval.rule.value;
        for (double t : od.eval.thresholds) {
          gb::reports::ThresholdResult tr;
          tr.threshold = t;
          tr.confusion = gb::reports::ConfusionMatrix(od.eval.num_classes);
          c.thresholds.push_back(tr);
        }
        res.cells.push_back(std::move(c));
      }
      std::vector<gb::reports::Cell*> cells;
      for (size_t k = first_cell; k < res.cells.size(); ++k) cells.push_back(&res.cells[k]);

      // Journal: replay what a killed run already evaluated.
      const json header = {{"journal", 1},        {"config_hash", res.config_hash}, {"dataset", od.entry.name},
                           {"backbone", b.name},  {"shard", {opt.shard_index, opt.shard_count}}};
      JournalSchema schema;
      schema.num_images = static_cast<int64_t>(od.dataset->size());
      schema.wanted = [&](int64_t i) { return in_shard(i, opt.shard_index, opt.shard_count); };
      for (const auto& vr : variants) schema.variants.push_back(vr.variant.name);
      for (const auto* c : cells) {
        schema.thresholds.push_back(c->thresholds.size());
        schema.num_classes.push_back(c->thresholds.empty() ? 0 : c->thresholds.front().confusion.num_classes);
      }
      Journal journal((fs::path(run_dir) / "journal" / (od.entry.name + "__" + b.name + ".jsonl")).string(), header,
                      !opt.resume, std::move(schema));
      std::set<int64_t> done;  // the journal has checked every record (types, ranges, no image twice)
      for (const auto& rec : journal.replayed()) {
        const int64_t i = rec.at("i").get<int64_t>();
        done.insert(i);
        if (!rec.value("skip", false)) accumulate(rec, cells);
        for (const auto& e : rec.value("ex", json::array()))
          res.examples.push_back({od.entry.name, b.name, e.at("variant"), rec.at("id"), i, e.at("png")});
      }
      if (!done.empty()) log::info("{}: resuming, {} images already evaluated", key, done.size());

      std::vector<int64_t> todo;
      for (int64_t i = 0; i < static_cast<int64_t>(od.dataset->size()); ++i)
        if (in_shard(i, opt.shard_index, opt.shard_count) && !done.count(i)) todo.push_back(i);

      gb::reports::StageTimes& times = res.timings[key];
      std::mutex times_mu;
      const auto wall0 = Clock::now();
      std::unique_ptr<gb::Progress> progress;
      if (opt.progress) progress = std::make_unique<gb::Progress>(key, static_cast<int64_t>(todo.size()));
      const double example_threshold = [&] {
        if (od.eval.rule.kind == gb::eval::ThresholdRule::Kind::fixed) return od.eval.rule.value;
        double best = od.eval.thresholds.front();
        for (double t : od.eval.thresholds)
          if (std::fabs(t) < std::fabs(best)) best = t;
        return best;
      }();

      size_t next = 0;
      const size_t B = static_cast<size_t>(ex.batch_size);
      tbb::task_arena arena(std::min(static_cast<int>(ex.workers) + 1, tbb::info::default_concurrency()));
      arena.execute([&] {
        tbb::parallel_pipeline(
            static_cast<size_t>(ex.workers) + 1,
            tbb::make_filter<void, std::shared_ptr<Job>>(
                tbb::filter_mode::serial_in_order,
                [&](tbb::flow_control& fc) -> std::shared_ptr<Job> {
                  if (next >= todo.size()) {
                    fc.stop();
                    return nullptr;
                  }
                  auto job = std::make_shared<Job>();
                  for (size_t k = next; k < std::min(todo.size(), next + B); ++k) {
                    Prepared p;
                    p.index = todo[k];
                    job->items.push_back(std::move(p));
                  }
                  next += job->items.size();
                  return job;
                }) &
                tbb::make_filter<std::shared_ptr<Job>, std::shared_ptr<Job>>(
                    tbb::filter_mode::parallel,
                    [&](std::shared_ptr<Job> job) {
                      tbb::parallel_for(size_t(0), job->items.size(), [&](size_t k) {
                        Prepared& p = job->items[k];
                        auto t0 = Clock::now();
                        {
                          gb::trace::Span span("decode", "#" + std::to_string(p.index));
                          p.sample = od.dataset->load(static_cast<size_t>(p.index));
                        }
                        p.decode_s = since(t0);
                        if (!p.sample) return;
                        t0 = Clock::now();
                        gb::trace::Span span("prompt", p.sample->id);
                        const auto* caps = od.dataset->captions();
                        if (!caps) fail("dataset '{}': no caption file configured (`captions:`)", od.entry.name);
                        p.prompt = build_prompt(*prompts, *p.sample, caps->caption(p.sample->id), od.config);
                        p.prompt_s = since(t0);
                      });
                      return job;
                    }) &
                tbb::make_filter<std::shared_ptr<Job>, void>(
                    tbb::filter_mode::serial_in_order, [&](std::shared_ptr<Job> job) {
                      // The captures are inference tensors (the backbones run under InferenceMode). Consumed
                      // outside it they dispatch with autograd keys not excluded, and oneDNN kernels
                      // (MKLDNNCommon.cpp) assert on that. InferenceMode is per thread, and this filter runs
                      // on whichever TBB worker picks it up: set it here, where the model runs and its outputs
                      // are segmented and evaluated.
                      c10::InferenceMode inference_guard;
                      gb::BackboneBatch batch;
                      batch.seed = ex.seed;
                      std::vector<size_t> live;
                      std::vector<json> records;
                      for (size_t k = 0; k < job->items.size(); ++k) {
                        const Prepared& p = job->items[k];
                        times.seconds["decode"] += p.decode_s;
                        times.seconds["prompt"] += p.prompt_s;
                        if (!p.sample) continue;
                        live.push_back(k);
                        batch.images.push_back(p.sample->image);
                        batch.prompts.push_back(p.prompt.text);
                        batch.ids.push_back(p.sample->id);
                      }
                      gb::Capture capture;
                      if (!live.empty()) {
                        // Out of memory here (a batch larger than planned, another process on the device):
                        // exit 2 naming the images; the journal holds every finished batch for --resume.
                        gb::bb::rethrow_out_of_memory(
                            [&] {
                              gb::trace::Span span("capture", gb::join(batch.ids));
                              capture = backbone->capture(batch, spec);
                            },
                            "the capture", device, "images " + gb::join(batch.ids) + " (" + key + ")");
                        for (const auto& [stage, s] : capture.stage_seconds) times.seconds[stage] += s;
                      }
                      std::map<size_t, json> by_item;
                      for (size_t n = 0; n < live.size(); ++n) {
                        const Prepared& p = job->items[live[n]];
                        const gb::TensorMap sample = capture.sample(static_cast<int64_t>(n));
                        std::vector<int64_t> present;
                        for (const auto& o : p.prompt.groups.objects) present.push_back(o.class_id);
                        at::Tensor label = p.sample->label;
                        if (device != "cpu") label = label.to(at::Device(device));
                        json rec = {{"i", p.index}, {"id", p.sample->id}, {"v", json::array()}};
                        json examples = json::array();
                        for (const auto& vr : variants) {
                          auto t0 = Clock::now();
                          gb::trace::Span aggregation_span("aggregation", vr.variant.name + " " + p.sample->id);
                          const gb::baselines::PlanOutput plan_out =
                              vr.segmentor->needs_image()
                                  ? vr.segmentor->run(sample, p.prompt.groups, p.sample->image)
                                  : vr.segmentor->run(sample, p.prompt.groups);
                          const gb::goca::SegmentOutput& out = plan_out.segment;
                          const at::Tensor& scores = plan_out.final_scores();
                          VariantDelta d;
                          if (out.layer_weights.defined()) {
                            at::Tensor lw = out.layer_weights.to(at::kCPU).to(at::kDouble);
                            if (lw.dim() > 1) lw = lw.reshape({lw.size(0), -1}).mean(1);
                            for (int64_t l = 0; l < lw.size(0) && l < static_cast<int64_t>(vr.plan.method.layers.size()); ++l)
                              d.layer_weights[vr.plan.method.layers[static_cast<size_t>(l)]] = lw[l].item<double>();
                          }
                          for (const auto& [layer, w] : out.head_weights) {
                            at::Tensor m = at::nan_to_num(w.to(at::kCPU).to(at::kDouble), 0.0).mean(0);
                            d.head_weights[layer] = std::vector<double>(m.data_ptr<double>(), m.data_ptr<double>() + m.numel());
                          }
                          times.seconds["aggregation"] += since(t0);
                          aggregation_span.end();
                          t0 = Clock::now();
                          gb::trace::Span evaluation_span("evaluation", vr.variant.name + " " + p.sample->id);
                          gb::eval::SweepEvaluator ev(od.eval);
                          ev.add_image(scores, present, label);
                          for (const auto& cm : ev.matrices()) {
                            at::Tensor counts = cm.counts();
                            at::Tensor nz = at::nonzero(counts);
                            auto na = nz.accessor<int64_t, 2>();
                            auto ca = counts.accessor<int64_t, 2>();
                            std::vector<std::array<int64_t, 3>> sp;
                            for (int64_t z = 0; z < nz.size(0); ++z) sp.push_back({na[z][0], na[z][1], ca[na[z][0]][na[z][1]]});
                            d.sparse.push_back(std::move(sp));
                          }
                          if (p.index < ex.examples && vr.variant.group.empty()) {
                            const at::Tensor pred = ev.predict(scores, present, label.size(0), label.size(1), example_threshold);
                            examples.push_back({{"variant", vr.variant.name},
                                                {"png", overlay_png_base64(p.sample->image, p.sample->label, pred)}});
                          }
                          times.seconds["evaluation"] += since(t0);
                          rec["v"].push_back(delta_to_json(d));
                        }
                        if (!examples.empty()) rec["ex"] = examples;
                        by_item[live[n]] = std::move(rec);
                      }
                      for (size_t k = 0; k < job->items.size(); ++k) {
                        const Prepared& p = job->items[k];
                        if (by_item.count(k)) {
                          records.push_back(by_item[k]);
                        } else {
                          records.push_back({{"i", p.index}, {"skip", true}});
                        }
                      }
                      journal.append(records);
                      for (const auto& rec : records) {
                        if (rec.value("skip", false)) continue;
                        accumulate(rec, cells);
                        times.images += 1;
                        for (const auto& e : rec.value("ex", json::array()))
                          res.examples.push_back({od.entry.name, b.name, e.at("variant"), rec.at("id"), rec.at("i"), e.at("png")});
                      }
                      if (progress) progress->advance(static_cast<int64_t>(records.size()));
                      journalled_this_process += static_cast<int64_t>(records.size());
                      if (opt.stop_after >= 0 && journalled_this_process >= opt.stop_after) {
                        log::warn("--stop-after {}: stopping abruptly after {} journalled images", opt.stop_after,
                                  journalled_this_process);
                        std::fflush(stderr);
                        std::_Exit(75);
                      }
                    }));
      });
      if (progress) progress->finish();
      times.wall_seconds += since(wall0);
      if (const auto summary = od.dataset->report().summary(); !summary.empty()) log::warn("{}: {}", key, summary);
    }
  }
  std::stable_sort(res.examples.begin(), res.examples.end(), [](const auto& a, const auto& b) {
    if (a.dataset != b.dataset) return a.dataset < b.dataset;
    if (a.backbone != b.backbone) return a.backbone < b.backbone;
    if (a.index != b.index) return a.index < b.index;
    return a.variant < b.variant;
  });
  res.peak_host_bytes = peak_rss_bytes();
  if (device != "cpu") res.peak_device_bytes = gb::compat::cuda_peak_memory_bytes();
  res.recompute_metrics();
  gb::trace::write_chrome_trace((fs::path(run_dir) / "profile.trace.json").string(), gb::trace::take_events());
  gb::trace::set_collecting(false);
  gb::reports::save_results(res, (fs::path(run_dir) / "results.json").string());
  gb::reports::write_report(res, run_dir);
  return res;
}

}  // namespace gb::runner
