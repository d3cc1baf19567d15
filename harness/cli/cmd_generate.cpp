// `goca-bench generate --weights DIR --prompts FILE --out DIR [--guidance cfg|scfg] [--guidance-scale G]
//  [--steps N] [--scheduler NAME] [--method M.yaml] [--seed S] [--latents FILE.safetensors] [--image-size N]
//  [--dtype fp32|fp16|bf16] [--device cpu|cuda] [--batch-size B] [--limit N] [--shard i/n] [--resume]`
// Text-to-image generation with classifier-free guidance (or S-CFG) on a diffusers-layout checkpoint folder
// (sd15, sd21, sd21-base, sdxl, pixart-sigma, pixart-sigma-512, pixart-alpha, flux, sd35-medium, sd35-large), as the
// paper's generation experiment (docs/generation.md):
//   prompts   .txt (one per line, ids 000000, 000001, … in line order) or .csv with a header (harness/io/prompt_file.h)
//   selection the first --limit prompts, then shard i of n: every prompt index with index % n == i
//   noise     per prompt: CPU generator seeded by noise_seed(--seed, id) -> [C, h, w] float32 (independent of
//             batch size, order and shard); --latents replaces it with tensor `latents` [N, C, h, w] of the N
//             selected prompts in file order
//   outputs   <out>/<id>.png (uint8 RGB, VaeImageProcessor post-processing), written atomically; --resume skips
//             ids already written; <out>/generate.json (settings, provenance, per-stage seconds, peak memory)
// The prompt-file reader (harness/io/prompt_file.h) comes with the metrics work; the command registers once it is in
// the tree.
#include "gb_build_info.h"
#include "harness/core/strings.h"
#include "harness/backbones/memory_check.h"
#include "harness/backbones/registry.h"
#include "harness/cli/backbone_flags.h"
#include "harness/backbones/flux_backbone.h"
#include "harness/cli/registry.h"
#include "harness/core/errors.h"
#include "harness/core/log.h"
#include "harness/core/progress.h"
#include "harness/core/torch_compat.h"
#include "harness/generation/guidance.h"
#include "harness/generation/sampler.h"
#include "harness/generation/setup.h"
#include "harness/io/image_io.h"
#include "harness/io/prompt_file.h"
#include "harness/io/safetensors.h"
#include "harness/runner/runner.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

namespace {

namespace fs = std::filesystem;

struct Args {
  std::string weights, prompts, out, guidance = "cfg", scheduler, method, latents, dtype, device = "cpu", shard,
                                     protocol = "paper";
  double scale = 2.0;
  int64_t steps = 0, image_size = 0, batch_size = 1, limit = -1;
  bool batched_forward = false;
  uint64_t seed = 42;
  bool resume = false, no_progress = false;
  gb::cli::MemoryCheckFlags memory;
};

at::ScalarType parse_dtype(const std::string& s) {
  if (s == "fp32") return at::kFloat;
  if (s == "fp16") return at::kHalf;
  if (s == "bf16") return at::kBFloat16;
  gb::fail("--dtype: unknown dtype '{}' (fp32, fp16, bf16)", s);
}

std::string dtype_name(at::ScalarType t) { return t == at::kHalf ? "fp16" : t == at::kBFloat16 ? "bf16" : "fp32"; }

void write_json_atomic(const fs::path& path, const nlohmann::json& j) {
  const fs::path tmp = path.string() + ".tmp" + std::to_string(::getpid());
  std::ofstream(tmp) << j.dump(2) << "\n";
  fs::rename(tmp, path);
}

// The prompts after --limit, and the ones shard i of n generates.
struct Selection {
  std::vector<gb::PromptEntry> entries, selected;
  int64_t shard_index = 0, shard_count = 1;
};

Selection select_prompts(const Args& a) {
  Selection sel;
  sel.entries = gb::read_prompt_file(a.prompts);
  if (sel.entries.empty()) gb::fail_file(a.prompts, "has no prompts");
  if (a.limit >= 0 && static_cast<size_t>(a.limit) < sel.entries.size())
    sel.entries.resize(static_cast<size_t>(a.limit));
  if (!a.shard.empty()) gb::runner::parse_shard(a.shard, sel.shard_index, sel.shard_count);
  for (int64_t i :
       gb::runner::shard_indices(static_cast<int64_t>(sel.entries.size()), sel.shard_index, sel.shard_count))
    sel.selected.push_back(sel.entries[static_cast<size_t>(i)]);
  return sel;
}

// --latents: tensor `latents` [N, C, h, w], N = the selected prompts (undefined without the flag).
at::Tensor read_given_latents(const Args& a, size_t selected) {
  at::Tensor given;
  if (a.latents.empty()) return given;
  gb::SafetensorsFile f(a.latents);
  if (!f.contains("latents")) gb::fail_file(a.latents, "has no tensor 'latents'");
  given = f.load("latents").to(at::kFloat);
  if (given.dim() != 4 || given.size(0) != static_cast<int64_t>(selected))
    gb::fail_file(a.latents, "'latents' must be [N, C, h, w] with N = {} selected prompts, got {}", selected,
                  gb::bb::shape_str(given.sizes()));
  return given;
}

// Positions in `selected` still to generate (--resume skips ids whose PNG exists; counted in `skipped`).
std::vector<size_t> work_list(const Args& a, const std::vector<gb::PromptEntry>& selected, const fs::path& out,
                              int64_t& skipped) {
  std::vector<size_t> todo;
  for (size_t i = 0; i < selected.size(); ++i) {
    if (a.resume && fs::is_regular_file(out / (selected[i].id + ".png"))) {
      ++skipped;
      continue;
    }
    todo.push_back(i);
  }
  if (skipped) gb::log::info("generate: --resume skips {} images already in {}", skipped, a.out);
  return todo;
}

// Generates `todo` in batches of --batch-size and writes each image atomically as <out>/<id>.png.
void generate_images(const Args& a, const std::vector<gb::PromptEntry>& selected, const std::vector<size_t>& todo,
                     const at::Tensor& given, gb::gen::Sampler& sampler, gb::gen::Guidance& guidance,
                     const std::string& device, const fs::path& out) {
  gb::Progress progress("generate", static_cast<int64_t>(todo.size()), "img");
  if (a.no_progress) progress.set_interactive(false);
  for (size_t k = 0; k < todo.size(); k += static_cast<size_t>(a.batch_size)) {
    std::vector<std::string> texts;
    std::vector<at::Tensor> lat;
    std::vector<const gb::PromptEntry*> items;
    for (size_t j = k; j < std::min(todo.size(), k + static_cast<size_t>(a.batch_size)); ++j) {
      const auto& e = selected[todo[j]];
      items.push_back(&e);
      texts.push_back(e.text);
      lat.push_back(given.defined() ? given[static_cast<int64_t>(todo[j])] : sampler.initial_noise(a.seed, e.id));
    }
    at::Tensor images;
    std::vector<std::string> ids;
    for (const auto* e : items) ids.push_back(e->id);
    gb::bb::rethrow_out_of_memory([&] { images = sampler.generate(texts, at::stack(lat), guidance); }, "generation",
                                  device, "prompts " + gb::join(ids));
    for (size_t j = 0; j < items.size(); ++j) {
      const fs::path final_path = out / (items[j]->id + ".png");
      const fs::path tmp = out / ("." + items[j]->id + ".png.tmp" + std::to_string(::getpid()));
      gb::write_png_rgb(tmp.string(), images[static_cast<int64_t>(j)]);
      fs::rename(tmp, final_path);
    }
    progress.advance(static_cast<int64_t>(items.size()));
  }
  progress.finish();
}

// generate.json's "settings".
nlohmann::json settings_json(const Args& a, const std::string& kind, const gb::gen::Sampler& sampler,
                             const gb::gen::Guidance& guidance, const gb::bb::BackboneOptions& bo,
                             const Selection& sel) {
  nlohmann::json s;
  s["weights"] = a.weights;
  s["backbone"] = kind;
  s["prompts"] = a.prompts;
  s["guidance"] = guidance.name();
  s["guidance_scale"] = a.scale;
  s["steps"] = sampler.steps();
  s["scheduler"] = sampler.scheduler_config().class_name;
  const auto guidance_settings = guidance.settings();
  const auto method_it = guidance_settings.find("method");
  s["method"] = method_it == guidance_settings.end() ? nlohmann::json(nullptr) : nlohmann::json(method_it->second);
  s["protocol"] = a.protocol;
  s["seed"] = a.seed;
  s["latents"] = a.latents.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.latents);
  s["image_size"] = sampler.image_size();
  s["dtype"] = dtype_name(bo.resolve_dtype(gb::bb::backbone_kind(kind).defaults.gpu_dtype));
  s["device"] = a.device;
  s["batch_size"] = a.batch_size;
  s["limit"] = a.limit;
  s["shard"] = fmt::format("{}/{}", sel.shard_index, sel.shard_count);
  s["resume"] = a.resume;
  if (kind == "flux")
    s["flux_guidance"] = guidance.needs_uncond()
                             ? "true CFG on [uncond, cond], guidance embedding 1"
                             : "distilled: guidance embedding = guidance_scale, no unconditional pass";
  for (const auto& [k, v] : guidance.settings()) s["guidance_settings"][k] = v;
  return s;
}

void run(const Args& a) {
  using Clock = std::chrono::steady_clock;
  const auto t_start = Clock::now();
  if (a.batch_size < 1) gb::fail("--batch-size must be at least 1 (got {})", a.batch_size);
  if (a.steps < 0) gb::fail("--steps must be positive (got {})", a.steps);
  if (!a.scheduler.empty()) gb::bb::scheduler_class_for(a.scheduler);  // unknown name: exit 2 before loading

  // ---- prompts and selection ----
  const Selection sel = select_prompts(a);
  const at::Tensor given = read_given_latents(a, sel.selected.size());

  // ---- model ----
  const std::string kind = gb::bb::detect_backbone_kind(a.weights);
  gb::bb::BackboneOptions bo;
  bo.device = a.device;
  if (!a.dtype.empty()) bo.dtype = parse_dtype(a.dtype);
  bo.image_size = a.image_size > 0 ? a.image_size : gb::gen::default_image_size(a.weights, kind);
  gb::gen::check_generation_memory("generate", kind, a.weights, bo, a.guidance, a.method, a.batch_size,
                                   gb::cli::memory_check(a.memory));
  const auto t_load = Clock::now();
  auto backbone = gb::bb::open_backbone(a.weights, bo, kind);
  gb::gen::SamplerOptions so;
  so.steps = a.steps;
  so.scheduler = a.scheduler;
  so.guidance_scale = a.scale;
  so.batch_invariant = !a.batched_forward;
  gb::gen::Sampler sampler(*backbone, a.weights, so);
  gb::gen::GuidanceOptions go;
  go.backbone = kind;
  go.scale = a.scale;
  go.protocol = a.protocol;
  go.model = backbone.get();
  go.method_path = a.method;  // empty: the built-in preset <kind>/scfg
  auto guidance = gb::gen::make_guidance(a.guidance, go);
  const double load_seconds = std::chrono::duration<double>(Clock::now() - t_load).count();
  const auto shape = sampler.latent_shape();
  if (given.defined() && (given.size(1) != shape[0] || given.size(2) != shape[1] || given.size(3) != shape[2]))
    gb::fail_file(a.latents, "'latents' must be [{}, {}, {}, {}] for {} at {}², got {}", sel.selected.size(), shape[0],
                  shape[1], shape[2], kind, sampler.image_size(), gb::bb::shape_str(given.sizes()));

  // ---- work list ----
  const fs::path out(a.out);
  fs::create_directories(out);
  int64_t skipped = 0;
  const std::vector<size_t> todo = work_list(a, sel.selected, out, skipped);
  if (backbone && bo.device.rfind("cuda", 0) == 0) gb::compat::cuda_reset_peak_memory();
  const auto t_gen = Clock::now();
  generate_images(a, sel.selected, todo, given, sampler, *guidance, bo.device, out);
  const double gen_seconds = std::chrono::duration<double>(Clock::now() - t_gen).count();

  nlohmann::json j;
  j["command"] = "generate";
  j["settings"] = settings_json(a, kind, sampler, *guidance, bo, sel);
  j["provenance"] = {{"goca_bench", GB_VERSION},
                     {"git_commit", GB_GIT_COMMIT},
                     {"libtorch", gb::compat::torch_version()},
                     {"reference",
                      "diffusers 0.32.2 pipelines (StableDiffusion, StableDiffusionXL, PixArtSigma, PixArtAlpha, Flux, "
                      "StableDiffusion3)"}};
  j["counts"] = {{"prompts", sel.entries.size()},
                 {"selected", sel.selected.size()},
                 {"skipped_existing", skipped},
                 {"generated", todo.size()}};
  nlohmann::json st = sampler.stage_seconds();
  st["load"] = load_seconds;
  st["generate"] = gen_seconds;
  st["total"] = std::chrono::duration<double>(Clock::now() - t_start).count();
  j["stage_seconds"] = st;
  j["images_per_second"] = gen_seconds > 0 ? static_cast<double>(todo.size()) / gen_seconds : 0.0;
  j["peak_host_bytes"] = gb::runner::peak_rss_bytes();
  j["peak_device_bytes"] = bo.device.rfind("cuda", 0) == 0 ? gb::compat::cuda_peak_memory_bytes() : 0;
  write_json_atomic(out / "generate.json", j);
  gb::log::info("generate: {} images in {} ({} skipped)", todo.size(), a.out, skipped);
}

void add(CLI::App& app) {
  auto* sub =
      app.add_subcommand("generate", "Text-to-image generation with CFG or S-CFG (the paper's generation experiment)");
  auto a = std::make_shared<Args>();
  sub->add_option("--weights", a->weights,
                  "Checkpoint folder (diffusers layout: sd15, sd21, sd21-base, sdxl, pixart-sigma, pixart-sigma-512, "
                  "pixart-alpha, flux, sd35-medium, sd35-large)")
      ->required();
  sub->add_option("--prompts", a->prompts, "Prompt file: .txt (one per line, ids 000000…) or .csv with a header")
      ->required();
  sub->add_option("--out", a->out, "Output folder: <id>.png and generate.json")->required();
  sub->add_option("--guidance", a->guidance, "cfg (classifier-free guidance) or scfg (S-CFG with GoCA masks)");
  sub->add_option("--guidance-scale", a->scale,
                  "Guidance scale G (default 2.0, the paper's; flux cfg: its guidance embedding)");
  sub->add_option("--steps", a->steps,
                  "Denoising steps (default: the SD kinds 50, the PixArt kinds 20, flux and sd35-* 28)");
  sub->add_option("--scheduler", a->scheduler, "pndm, ddim, euler, dpm++2m, flow-euler (default: the checkpoint's)");
  sub->add_option("--method", a->method,
                  "GoCA method YAML for S-CFG's masks (default configs/methods/<backbone>/scfg.yaml)");
  sub->add_option("--seed", a->seed, "Noise seed; each prompt's noise is seeded by (seed, id) (default 42)");
  sub->add_option("--latents", a->latents,
                  "safetensors with tensor 'latents' [N, C, h, w]: the selected prompts' initial latents");
  sub->add_option("--image-size", a->image_size,
                  "Square image size (default: the checkpoint's sample_size x VAE scale)");
  sub->add_option("--dtype", a->dtype, "fp32, fp16 or bf16 (default: fp32 on cpu, the paper's dtype on cuda)");
  sub->add_option("--device", a->device, "cpu, cuda or cuda:N");
  sub->add_option("--batch-size", a->batch_size,
                  "Prompts per batch (images do not depend on it: the prompts of a batch are sampled one at a time)");
  sub->add_flag("--batched-forward", a->batched_forward,
                "One denoiser call per step for the whole batch: faster on a GPU, but an image then matches the one "
                "another batch size gives only up to float rounding");
  sub->add_option("--limit", a->limit, "Only the first N prompts of the file");
  sub->add_option("--shard", a->shard, "Generate shard i of n (every prompt index with index % n == i): i/n");
  sub->add_flag("--resume", a->resume, "Skip ids whose <id>.png already exists in --out");
  sub->add_option("--protocol", a->protocol, "S-CFG protocol (paper)")->group("");
  sub->add_flag("--no-progress", a->no_progress, "Plain progress lines instead of the bar")->group("");
  gb::cli::add_memory_check_flags(sub, a->memory);
  sub->callback([a] { run(*a); });
}

GB_REGISTER_COMMAND(add);

}  // namespace
