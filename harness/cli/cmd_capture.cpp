// `goca-bench capture --weights DIR --image IMG --prompt TEXT (--layers KEY… | --method M.yaml) [--seed S]
//  [--dtype fp32|fp16|bf16] [--device cpu|cuda] --out D.safetensors`
// One noisy forward pass of a backbone over one image; writes the captured tensors under the paper's keys with
// the batch dimension removed (the `segment` contract) plus the exact denoiser inputs (`input.*`).
#include "harness/backbones/factory.h"
#include "harness/backbones/sd_backbone.h"
#include "harness/cli/registry.h"
#include "harness/core/errors.h"
#include "harness/core/log.h"
#include "harness/io/image_io.h"
#include "harness/io/safetensors.h"

#include <CLI/CLI.hpp>

// --method needs the method YAML reader (baselines) and Segmentor::required_capture() (goca).
#if __has_include("baselines/method_yaml.h")
#include "baselines/method_yaml.h"
#include "goca/segmentor.h"
#define GB_HAVE_METHOD_YAML 1
#endif

#include <filesystem>
#include <regex>
#include <sstream>

namespace {

struct Args {
  std::string weights, image, prompt, out, dtype, device = "cpu", method, token_ids, store_dtype, variant;
  std::vector<std::string> layers;
  uint64_t seed = 0;
  int64_t image_size = 0, timestep = 0;
  bool full_heads = false;
};

at::ScalarType parse_dtype(const std::string& s) {
  if (s == "fp32" || s == "float32") return at::kFloat;
  if (s == "fp16" || s == "float16") return at::kHalf;
  if (s == "bf16" || s == "bfloat16") return at::kBFloat16;
  gb::fail("unknown dtype '{}' (fp32, fp16, bf16)", s);
}

// Exact keys, or patterns with '*' matched against every capturable key.
gb::CaptureSpec resolve_layers(const std::vector<std::string>& patterns, const std::vector<gb::LayerInfo>& layers) {
  gb::CaptureSpec spec;
  for (const auto& p : patterns) {
    if (p.find('*') == std::string::npos) {
      spec.add(p);  // unknown keys are reported by the backbone, with the list-layers hint
      continue;
    }
    std::string re;
    for (char c : p) re += c == '*' ? std::string(".*") : (std::isalnum(static_cast<unsigned char>(c)) ? std::string(1, c) : std::string("\\") + c);
    std::regex rx(re);
    size_t n = 0;
    for (const auto& l : layers)
      if (std::regex_match(l.name, rx)) spec.add(l.name), ++n;
    if (n == 0) gb::fail("--layers pattern '{}' matches no capturable key", p);
  }
  return spec;
}

void add(CLI::App& app) {
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("capture", "Run one noisy denoiser pass over an image and write the captured tensors");
  sub->add_option("--weights", a->weights, "Diffusers-layout checkpoint folder")->required();
  sub->add_option("--image", a->image, "Input image (PNG or JPEG)")->required();
  sub->add_option("--prompt", a->prompt, "Prompt text");
  sub->add_option("--token-ids", a->token_ids, "Comma-separated token ids instead of --prompt (exact replay)");
  auto* layers = sub->add_option("--layers", a->layers, "Capture keys (see list-layers; '*' wildcards allowed)");
  auto* method = sub->add_option("--method", a->method, "Method YAML: capture what it needs");
  layers->excludes(method);
  sub->add_option("--seed", a->seed, "Noise seed (combined with the image id = file stem)");
  sub->add_option("--dtype", a->dtype, "fp32 | fp16 | bf16 (default: the paper's on CUDA, fp32 on CPU)");
  sub->add_option("--device", a->device, "cpu | cuda | cuda:N");
  sub->add_option("--image-size", a->image_size, "Resize the image to this square size (default: the paper's)");
  sub->add_option("--timestep", a->timestep, "The paper's t (default 100)");
  sub->add_option("--store-dtype", a->store_dtype, "dtype of the written tensors (default: the compute dtype)");
  sub->add_option("--variant", a->variant, "Weight variant, e.g. fp16");
  sub->add_flag("--full-heads", a->full_heads, "Keep every head of self maps (default for --layers; --method "
                                                "stores their head mean unless this is given)");
  sub->add_option("--out", a->out, "Output .safetensors")->required();
  sub->callback([a] {
    if (a->prompt.empty() == a->token_ids.empty()) gb::fail("capture needs exactly one of --prompt and --token-ids");
    if (a->layers.empty() && a->method.empty()) gb::fail("capture needs --layers KEY… or --method M.yaml");
#ifndef GB_HAVE_METHOD_YAML
    if (!a->method.empty())
      gb::fail_file(a->method, "--method is not available in this build (no method YAML reader); use --layers with "
                               "the keys from `goca-bench list-layers`");
#endif
    gb::bb::BackboneOptions o;
    o.device = a->device;
    if (!a->dtype.empty()) o.dtype = parse_dtype(a->dtype);
    if (!a->store_dtype.empty()) o.store_dtype = parse_dtype(a->store_dtype);
    if (a->image_size > 0) o.image_size = a->image_size;
    if (a->timestep > 0) o.timestep = a->timestep;
    o.variant = a->variant;
    auto image = gb::read_image_rgb(a->image);
    auto backbone = gb::bb::open_backbone(a->weights, o);
    gb::CaptureSpec spec;
    if (!a->layers.empty()) {
      spec = resolve_layers(a->layers, backbone->list_layers());
      spec.self_map_head_mean = false;
    }
#ifdef GB_HAVE_METHOD_YAML
    if (!a->method.empty()) {
      // Exactly what the method reads (image size and timestep stay the backbone's paper defaults unless given).
      auto plan = gb::baselines::load_method_plan(a->method);
      spec = gb::goca::Segmentor(plan.method).required_capture();
      if (a->full_heads) spec.self_map_head_mean = false;
    }
#endif
    const std::string id = std::filesystem::path(a->image).stem().string();
    gb::Capture cap;
    if (!a->token_ids.empty()) {
      std::vector<int64_t> ids;
      std::stringstream ss(a->token_ids);
      std::string item;
      while (std::getline(ss, item, ',')) {
        try {
          ids.push_back(std::stoll(item));
        } catch (const std::exception&) {
          gb::fail("--token-ids: '{}' is not an integer", item);
        }
      }
      auto* sd = dynamic_cast<gb::bb::StableDiffusionBackbone*>(backbone.get());
      if (!sd) gb::fail("--token-ids is supported for the sd15/sdxl backbones only");
      cap = sd->capture_ids({image}, at::tensor(ids, at::kLong).unsqueeze(0), {id}, a->seed, spec);
    } else {
      gb::BackboneBatch batch;
      batch.images = {image};
      batch.prompts = {a->prompt};
      batch.ids = {id};
      batch.seed = a->seed;
      cap = backbone->capture(batch, spec);
    }
    auto sample = cap.sample(0, /*with_inputs=*/true);
    std::map<std::string, at::Tensor> out;
    for (auto& [k, v] : sample) out[k] = v.contiguous().cpu();
    std::map<std::string, std::string> meta{{"backbone", backbone->kind()},
                                            {"weights", a->weights},
                                            {"image", a->image},
                                            {"image_id", id},
                                            {"seed", std::to_string(a->seed)}};
    if (!a->prompt.empty()) meta["prompt"] = a->prompt;
    gb::save_safetensors(a->out, out, meta);
    gb::log::info("wrote {} tensors ({} captured) to {} ({} backbone; text {:.3f}s, vae {:.3f}s, denoiser {:.3f}s)",
                  out.size(), cap.tensors.size(), a->out, backbone->kind(), cap.stage_seconds["text"],
                  cap.stage_seconds["vae"], cap.stage_seconds["denoiser"]);
  });
}

GB_REGISTER_COMMAND(add);

}  // namespace
