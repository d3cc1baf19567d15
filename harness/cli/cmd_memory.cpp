// `goca-bench memory --backbone KIND [--weights DIR] (--method M.yaml | --layers KEY…)
//  [--batch-size N…] [--dtype fp32|fp16|bf16] [--store-dtype …] [--image-size N] [--text-encoder keep|offload|free]
//  [--t5-int8 on|off] [--device cuda|cpu] [--budget-gb G] [--json]`
// Device memory of one capture pass per batch size: exact weights and captures, modelled transients, the peak per
// phase under the text-encoder residency (harness/backbones/memory_plan.h, docs/memory.md).
#include "baselines/method_yaml.h"
#include "goca/segmentor.h"
#include "harness/backbones/memory_plan.h"
#include "harness/backbones/registry.h"
#include "harness/cli/backbone_flags.h"
#include "harness/cli/registry.h"
#include "harness/core/capture.h"
#include "harness/core/strings.h"
#include "harness/core/errors.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <iostream>
#include <map>
#include <sstream>

namespace {

struct Args {
  std::string backbone, weights, method;
  gb::cli::BackboneFlags flags;
  std::vector<std::string> layers, batch_sizes;
  double budget_gb = 0;
  bool json = false, full_heads = false;
};

std::vector<int64_t> parse_batches(const std::vector<std::string>& items) {
  std::vector<int64_t> out;
  for (const auto& item : items) {
    std::stringstream ss(item);
    std::string part;
    while (std::getline(ss, part, ',')) {
      if (part.empty()) continue;
      size_t used = 0;
      long long v = 0;
      try {
        v = std::stoll(part, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != part.size() || v <= 0) gb::fail("--batch-size: '{}' is not a positive integer", part);
      out.push_back(v);
    }
  }
  if (out.empty()) out.push_back(1);
  return out;
}

std::string gb_str(int64_t bytes) { return fmt::format("{:.3f}", static_cast<double>(bytes) / 1e9); }
std::string gib_str(int64_t bytes) { return fmt::format("{:.2f}", static_cast<double>(bytes) / 1073741824.0); }

// "-cross-map", "-self-map", "-cross-special-value", "-special-weight", "-attn-out", "-q", ... (the tensor part of
// a key, with the block's attention kind where it tells maps and cross tensors apart); other keys unchanged.
std::string tensor_kind(const std::string& key) {
  const std::string attn_out = gb::attention_output_key("");
  if (gb::ends_with(key, attn_out)) return attn_out;
  const auto parts = gb::parse_capture_key(key);
  if (!parts) return key;
  const auto block = gb::parse_attention_block(parts->block);
  const std::string tensor = std::string("-") + gb::to_string(parts->tensor);
  if (parts->tensor == gb::CaptureTensor::map) return block ? gb::attention_block("", block->kind) + tensor : key;
  if (parts->tensor != gb::CaptureTensor::q && block && block->kind == gb::AttentionKind::cross)
    return gb::attention_block("", gb::AttentionKind::cross) + tensor;
  return tensor;
}

nlohmann::json plan_json(const gb::bb::MemoryPlan& p, int64_t budget) {
  nlohmann::json j;
  j["batch_size"] = p.batch_size;
  j["weights"] = nlohmann::json::array();
  for (const auto& w : p.weights)
    j["weights"].push_back({{"component", w.name},
                            {"storage", w.storage},
                            {"params", w.params},
                            {"bytes", w.bytes},
                            {"text_encoder", w.text_encoder}});
  j["weight_bytes"] = p.weight_bytes();
  j["capture_bytes"] = p.capture_bytes();
  j["captures"] = nlohmann::json::array();
  for (const auto& c : p.captures) j["captures"].push_back({{"key", c.key}, {"shape", c.shape}, {"bytes", c.bytes}});
  j["phases"] = nlohmann::json::array();
  for (const auto& ph : p.phases) {
    nlohmann::json t = nlohmann::json::array();
    for (const auto& x : ph.transient) t.push_back({{"name", x.name}, {"bytes", x.bytes}});
    j["phases"].push_back({{"name", ph.name},
                           {"at", ph.at},
                           {"weights", ph.weights},
                           {"captures", ph.captures},
                           {"transient_bytes", ph.transient_bytes()},
                           {"transient", t},
                           {"total", ph.total()}});
  }
  j["peak_phase"] = p.peak_phase().name;
  j["peak_bytes"] = p.peak();
  if (budget > 0) j["fits"] = p.peak() <= budget;
  return j;
}

void print_plan(const gb::bb::MemoryPlan& p, int64_t budget) {
  std::cout << fmt::format(
      "== {} batch {}: compute {}, store {}, VAE {}, image {}², text_encoder {}{}\n", p.kind, p.batch_size,
      gb::bb::dtype_name(p.dtype), gb::bb::dtype_name(p.store_dtype), gb::bb::dtype_name(p.vae_dtype), p.image_size,
      gb::bb::to_string(p.text_encoder),
      gb::bb::backbone_kind(p.kind).takes("t5_int8") ? std::string(", t5_int8 ") + (p.t5_int8 ? "on" : "off") : "");
  std::cout << "weights (exact)                                  params           bytes        GB\n";
  for (const auto& w : p.weights)
    std::cout << fmt::format("  {:<15} {:<24} {:>14} {:>15} {:>9}\n", w.name, w.storage, w.params, w.bytes,
                             gb_str(w.bytes));
  std::cout << fmt::format("  {:<40} {:>14} {:>15} {:>9}\n", "total", "", p.weight_bytes(), gb_str(p.weight_bytes()));
  std::map<std::string, std::pair<int64_t, int64_t>> kinds;  // count, bytes
  for (const auto& c : p.captures) {
    auto& k = kinds[tensor_kind(c.key)];
    k.first += 1;
    k.second += c.bytes;
  }
  std::cout << fmt::format("captures (exact, {:>3} keys)                                      bytes        GB\n",
                           p.captures.size());
  for (const auto& [name, v] : kinds)
    std::cout << fmt::format("  {:<28} {:>4} keys {:>39} {:>9}{}\n", name, v.first, v.second, gb_str(v.second),
                             v.second == 0 ? "  (views of the resident weights)" : "");
  std::cout << fmt::format("  {:<62} {:>15} {:>9}\n", "total", p.capture_bytes(), gb_str(p.capture_bytes()));
  std::cout << "phases (GB; transient modelled)      weights   captures  transient      total\n";
  for (const auto& ph : p.phases)
    std::cout << fmt::format("  {:<32} {:>9} {:>10} {:>10} {:>10}   at {}\n", ph.name, gb_str(ph.weights),
                             gb_str(ph.captures), gb_str(ph.transient_bytes()), gb_str(ph.total()), ph.at);
  const auto& peak = p.peak_phase();
  std::cout << fmt::format("peak: {} GB ({} GiB) in the {} phase\n", gb_str(p.peak()), gib_str(p.peak()), peak.name);
  for (const auto& t : peak.transient) std::cout << fmt::format("  {:>9} GB  {}\n", gb_str(t.bytes), t.name);
  if (budget > 0)
    std::cout << fmt::format("budget {} GB: {}\n", gb_str(budget), p.peak() <= budget ? "fits" : "does NOT fit");
  std::cout << "\n";
}

void add(CLI::App& app) {
  auto a = std::make_shared<Args>();
  auto* sub =
      app.add_subcommand("memory", "Plan the device memory of one capture pass (weights, captures, transients)");
  sub->add_option("--backbone", a->backbone,
                  gb::bb::known_kinds(true) + " (detected from --weights when omitted; kinds with a memory model)");
  sub->add_option("--weights", a->weights, "Checkpoint folder: its config.json files give the shapes");
  auto* method = sub->add_option("--method", a->method, "Method YAML: plan the capture it needs");
  auto* layers = sub->add_option("--layers", a->layers, "Capture keys (see list-layers; '*' wildcards allowed)");
  layers->excludes(method);
  sub->add_option("--batch-size", a->batch_sizes, "Batch sizes (repeat or comma-separate: 1,8; default 1)");
  a->flags.device = "cuda";  // the planner's purpose: the paper's GPU runs
  sub->add_option("--device", a->flags.device,
                  "Device planned for: its attention kernels, and fp32 by default on cpu (default: cuda)");
  gb::cli::add_backbone_flags(
      sub, a->flags,
      gb::cli::kDtype | gb::cli::kStoreDtype | gb::cli::kImageSize | gb::cli::kTextEncoder | gb::cli::kT5Int8,
      "the paper's GPU dtype");
  sub->add_option("--budget-gb", a->budget_gb, "Device budget in GB (1e9 bytes): which batch sizes fit, the largest");
  sub->add_flag("--full-heads", a->full_heads, "With --method: keep every head of the self and cross maps");
  sub->add_flag("--json", a->json, "Machine-readable output (docs/memory.md lists the keys)");
  sub->callback([a] {
    if (a->backbone.empty() && a->weights.empty()) gb::fail("memory needs --backbone or --weights");
    if (a->layers.empty() && a->method.empty()) gb::fail("memory needs --method M.yaml or --layers KEY…");
    std::string kind = a->backbone;
    std::optional<std::string> folder;
    if (!a->weights.empty()) {
      auto detected = gb::bb::detect_backbone_kind(a->weights);
      if (!kind.empty() && kind != detected)
        gb::fail_file(a->weights, "--backbone {} but the weights are {}", kind, detected);
      kind = detected;
      folder = a->weights;
    }
    const auto& k = gb::bb::backbone_kind(kind);  // UserError listing the kinds
    const gb::bb::BackboneOptions bo = gb::cli::backbone_options(a->flags);
    gb::bb::MemoryPlanOptions o = gb::bb::memory_plan_options(kind, folder.value_or(""), bo);
    if (a->budget_gb < 0 || !std::isfinite(a->budget_gb)) gb::fail("--budget-gb must be positive");
    const auto batches = parse_batches(a->batch_sizes);
    if (!a->layers.empty()) {
      o.spec = gb::cli::select_layers(a->layers, k.layers(bo, folder));
    } else {
      auto plan = gb::baselines::load_method_plan(a->method);
      o.spec = gb::goca::Segmentor(plan.method).required_capture();
      if (a->full_heads) o.spec.self_map_head_mean = o.spec.cross_map_head_mean = false;
    }
    const int64_t budget = static_cast<int64_t>(std::llround(a->budget_gb * 1e9));
    std::vector<gb::bb::MemoryPlan> plans;
    for (int64_t b : batches) plans.push_back(gb::bb::plan_memory(o, b));
    // Largest batch within the budget (the peak grows with the batch): doubling, then bisection.
    int64_t max_batch = -1;
    if (budget > 0) {
      auto fits = [&](int64_t b) { return gb::bb::plan_memory(o, b).peak() <= budget; };
      if (!fits(1)) {
        max_batch = 0;
      } else {
        int64_t lo = 1, hi = 2;
        while (hi <= (int64_t(1) << 20) && fits(hi)) lo = hi, hi *= 2;
        while (hi - lo > 1) {
          int64_t mid = lo + (hi - lo) / 2;
          (fits(mid) ? lo : hi) = mid;
        }
        max_batch = lo;
      }
    }
    if (a->json) {
      const auto& p0 = plans.front();
      nlohmann::json j;
      j["backbone"] = kind;
      j["device"] = o.device;
      j["weights_folder"] = folder ? *folder : "";
      j["dtype"] = gb::bb::dtype_name(p0.dtype);
      j["store_dtype"] = gb::bb::dtype_name(p0.store_dtype);
      j["vae_dtype"] = gb::bb::dtype_name(p0.vae_dtype);
      j["image_size"] = p0.image_size;
      j["text_encoder"] = gb::bb::to_string(p0.text_encoder);
      j["t5_int8"] = p0.t5_int8;
      j["self_map_head_mean"] = o.spec.self_map_head_mean;
      j["cross_map_head_mean"] = o.spec.cross_map_head_mean;
      if (budget > 0) {
        j["budget_bytes"] = budget;
        j["max_batch_within_budget"] = max_batch;
      }
      j["plans"] = nlohmann::json::array();
      for (const auto& p : plans) j["plans"].push_back(plan_json(p, budget));
      std::cout << j.dump(1) << "\n";
      return;
    }
    for (const auto& p : plans) print_plan(p, budget);
    if (budget > 0) {
      if (max_batch == 0)
        std::cout << fmt::format("largest batch within {} GB: none (batch 1 needs {} GB)\n", gb_str(budget),
                                 gb_str(gb::bb::plan_memory(o, 1).peak()));
      else std::cout << fmt::format("largest batch within {} GB: {}\n", gb_str(budget), max_batch);
    }
  });
}

GB_REGISTER_COMMAND(add);

}  // namespace
