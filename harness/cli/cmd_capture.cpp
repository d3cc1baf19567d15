// `goca-bench capture --weights DIR --image IMG (--prompt TEXT | --token-ids IDS [--clip-token-ids IDS])
//  (--layers KEY… | --method M.yaml) [--seed S] [--dtype fp32|fp16|bf16] [--device cpu|cuda]
//  [--text-encoder keep|offload|free] [--t5-int8 on|off] --out D.safetensors`
// One noisy forward pass of a backbone over one image; writes the captured tensors under the paper's keys with
// the batch dimension removed (the `segment` contract) plus the exact denoiser inputs (`input.*`).
//
// Token-id replay feeds the text encoders exactly what the pipeline's tokenizer(padding="max_length") would:
// the given ids (the tokenizer's output: CLIP with its 49406 … 49407, T5 ending in </s> = 1), right-padded to
// the encoder's length with the tokenizer's pad id; longer than that is an error (the pipelines truncate).
//   sd15/sdxl     --token-ids: CLIP tokenizer-1 ids, padded with <|endoftext|> (49407) to 77 (the text
//                 encoder's max_position_embeddings); SDXL derives tokenizer_2's "!"-padded ids itself.
//   pixart-sigma  --token-ids: T5 ids, padded with <pad> (0) to 300; attention mask = 0 exactly on the pad ids.
//   flux          --token-ids: T5 ids padded with 0 to 512 (no mask) and --clip-token-ids: CLIP ids for the
//                 pooled vector, padded with <|endoftext|> (49407) to 77.
#include "harness/backbones/clip_text.h"
#include "harness/backbones/factory.h"
#include "harness/backbones/flux_backbone.h"
#include "harness/backbones/pixart_backbone.h"
#include "harness/backbones/sd_backbone.h"
#include "harness/backbones/t5_encoder.h"
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
  std::string weights, image, prompt, out, dtype, device = "cpu", method, token_ids, clip_token_ids, store_dtype,
      variant, text_encoder = "keep", t5_int8;
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

// The pipelines' T5 max_sequence_length (PixArtSigmaPipeline 300, FluxPipeline 512); the backbones check it too.
constexpr int64_t kPixArtT5Length = 300;
constexpr int64_t kFluxT5Length = 512;

// One text encoder's input as the pipeline's tokenizer(padding="max_length", truncation=True) hands it over.
struct IdRow {
  std::vector<int64_t> ids;  // padded to the encoder's length
  int64_t pad = 0;
};

// "--flag a,b,c": integers in [0, vocab), at most `length`, right-padded with `pad` to `length`.
IdRow parse_ids(const std::string& flag, const std::string& text, const std::string& encoder, int64_t vocab,
                int64_t length, int64_t pad) {
  static const std::regex integer("[+-]?[0-9]+");
  IdRow row;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(',', start);
    std::string item = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    item = b == std::string::npos ? std::string() : item.substr(b, e - b + 1);
    if (!std::regex_match(item, integer))
      gb::fail("{}: '{}' is not an integer (expected comma-separated token ids, e.g. 49406,320,2368,49407)", flag, item);
    int64_t v = 0;
    try {
      v = std::stoll(item);
    } catch (const std::exception&) {
      gb::fail("{}: id {} is out of range (the {} vocabulary has {} ids)", flag, item, encoder, vocab);
    }
    if (v < 0) gb::fail("{}: id {} is negative", flag, v);
    if (v >= vocab) gb::fail("{}: id {} is not below the {} vocabulary size {}", flag, v, encoder, vocab);
    row.ids.push_back(v);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  row.pad = pad;
  if (static_cast<int64_t>(row.ids.size()) > length)
    gb::fail("{}: {} ids, but the {} takes at most {} (the pipeline would truncate them)", flag, row.ids.size(),
             encoder, length);
  row.ids.resize(static_cast<size_t>(length), pad);
  return row;
}

std::string join_ids(const std::vector<int64_t>& ids) {
  std::string s;
  for (auto v : ids) s += (s.empty() ? "" : ",") + std::to_string(v);
  return s;
}

std::string component_config(const std::string& weights, const std::string& component) {
  return (std::filesystem::path(weights) / component / "config.json").string();
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
  sub->add_option("--token-ids", a->token_ids,
                  "Comma-separated token ids instead of --prompt (exact replay): the tokenizer's ids without or with "
                  "padding, padded as the pipeline pads (sd15/sdxl: CLIP ids, pad 49407 to 77; pixart-sigma: T5 ids, "
                  "pad 0 to 300, masked; flux: T5 ids, pad 0 to 512)");
  sub->add_option("--clip-token-ids", a->clip_token_ids,
                  "flux with --token-ids: the CLIP ids for the pooled vector (pad 49407 to 77)");
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
  sub->add_option("--text-encoder", a->text_encoder,
                  "keep | offload | free: where T5 lives once the prompt is encoded (pixart-sigma, flux; free drops it "
                  "before the VAE and the transformer run)");
  sub->add_option("--t5-int8", a->t5_int8, "on | off: Flux's T5 in LLM.int8 as the paper (default on for 16-bit compute)");
  sub->add_flag("--full-heads", a->full_heads, "Keep every head of the maps (default for --layers; --method "
                                                "stores self maps as head means, and cross maps as fp32 head "
                                                "averages when the method averages heads, unless this is given)");
  sub->add_option("--out", a->out, "Output .safetensors")->required();
  sub->callback([a] {
    if (a->prompt.empty() == a->token_ids.empty()) gb::fail("capture needs exactly one of --prompt and --token-ids");
    if (a->layers.empty() && a->method.empty()) gb::fail("capture needs --layers KEY… or --method M.yaml");
#ifndef GB_HAVE_METHOD_YAML
    if (!a->method.empty())
      gb::fail_file(a->method, "--method is not available in this build (no method YAML reader); use --layers with "
                               "the keys from `goca-bench list-layers`");
#endif
    if (!a->clip_token_ids.empty() && a->token_ids.empty())
      gb::fail("--clip-token-ids goes with --token-ids (flux only); with --prompt the CLIP ids come from the tokenizer");
    // Token ids are checked against the folder's configs before the (possibly large) weights are loaded.
    IdRow ids, clip_ids;
    std::string kind;
    if (!a->token_ids.empty()) {
      kind = gb::bb::detect_backbone_kind(a->weights);
      if (kind != "flux" && !a->clip_token_ids.empty())
        gb::fail("--clip-token-ids is for the flux backbone only ({} is {})", a->weights, kind);
      if (kind == "sd15" || kind == "sdxl") {
        auto c = gb::bb::ClipTextConfig::from_json(component_config(a->weights, "text_encoder"));
        ids = parse_ids("--token-ids", a->token_ids, "CLIP text encoder", c.vocab_size, c.max_position_embeddings,
                        c.vocab_size - 1);  // <|endoftext|>, the last id, pads tokenizer-1
      } else if (kind == "pixart-sigma") {
        auto c = gb::bb::T5Config::from_json(component_config(a->weights, "text_encoder"));
        ids = parse_ids("--token-ids", a->token_ids, "T5 text encoder", c.vocab_size, kPixArtT5Length, c.pad_token_id);
      } else if (kind == "flux") {
        if (a->clip_token_ids.empty())
          gb::fail("flux needs --clip-token-ids with --token-ids (CLIP ids for the pooled vector, e.g. 49406,320,2368,49407)");
        auto t = gb::bb::T5Config::from_json(component_config(a->weights, "text_encoder_2"));
        auto c = gb::bb::ClipTextConfig::from_json(component_config(a->weights, "text_encoder"));
        ids = parse_ids("--token-ids", a->token_ids, "T5 text encoder", t.vocab_size, kFluxT5Length, t.pad_token_id);
        clip_ids = parse_ids("--clip-token-ids", a->clip_token_ids, "CLIP text encoder", c.vocab_size,
                             c.max_position_embeddings, c.vocab_size - 1);
      } else {
        gb::fail("--token-ids is not supported for the {} backbone", kind);
      }
    }
    gb::bb::BackboneOptions o;
    o.device = a->device;
    if (!a->dtype.empty()) o.dtype = parse_dtype(a->dtype);
    if (!a->store_dtype.empty()) o.store_dtype = parse_dtype(a->store_dtype);
    if (a->image_size > 0) o.image_size = a->image_size;
    if (a->timestep > 0) o.timestep = a->timestep;
    o.variant = a->variant;
    o.text_encoder = gb::bb::parse_text_encoder_residency(a->text_encoder);
    if (!a->t5_int8.empty()) {
      if (a->t5_int8 != "on" && a->t5_int8 != "off") gb::fail("--t5-int8 must be on or off, not '{}'", a->t5_int8);
      o.t5_int8 = a->t5_int8 == "on";
    }
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
      if (a->full_heads) spec.self_map_head_mean = spec.cross_map_head_mean = false;
    }
#endif
    const std::string id = std::filesystem::path(a->image).stem().string();
    gb::Capture cap;
    if (!a->token_ids.empty()) {
      auto row = [](const IdRow& r) { return at::tensor(r.ids, at::kLong).unsqueeze(0); };
      if (auto* sd = dynamic_cast<gb::bb::StableDiffusionBackbone*>(backbone.get())) {
        cap = sd->capture_ids({image}, row(ids), {id}, a->seed, spec);
      } else if (auto* px = dynamic_cast<gb::bb::PixArtSigmaBackbone*>(backbone.get())) {
        // The pipeline's attention_mask: 0 exactly on the padding (T5 tokenizers never emit <pad> for text).
        auto t = row(ids);
        cap = px->capture_ids({image}, t, t.ne(ids.pad).to(at::kLong), {id}, a->seed, spec);
      } else if (auto* fx = dynamic_cast<gb::bb::FluxBackbone*>(backbone.get())) {
        cap = fx->capture_ids({image}, row(ids), row(clip_ids), {id}, a->seed, spec);
      } else {
        gb::fail("--token-ids is not supported for the {} backbone", backbone->kind());
      }
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
    if (!ids.ids.empty()) meta["token_ids"] = join_ids(ids.ids);  // as fed to the text encoder (padded)
    if (!clip_ids.ids.empty()) meta["clip_token_ids"] = join_ids(clip_ids.ids);
    gb::save_safetensors(a->out, out, meta);
    gb::log::info("wrote {} tensors ({} captured) to {} ({} backbone; text {:.3f}s, vae {:.3f}s, denoiser {:.3f}s)",
                  out.size(), cap.tensors.size(), a->out, backbone->kind(), cap.stage_seconds["text"],
                  cap.stage_seconds["vae"], cap.stage_seconds["denoiser"]);
  });
}

GB_REGISTER_COMMAND(add);

}  // namespace
