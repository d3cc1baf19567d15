// `goca-bench capture --weights DIR --image IMG (--prompt TEXT | --token-ids IDS [--clip-token-ids IDS])
//  (--layers KEY… | --method M.yaml…) [--seed S] [--dtype fp32|fp16|bf16] [--device cpu|cuda]
//  [--text-encoder keep|offload|free] [--t5-int8 on|off] --out D.safetensors`
// One noisy forward pass of a backbone over one image; writes the captured tensors under the paper's keys with
// the batch dimension removed (the `segment` contract) plus the exact denoiser inputs (`input.*`).
//
// Token-id replay feeds the text encoders exactly what the pipeline's tokenizer(padding="max_length") would:
// the given ids (the tokenizer's output: CLIP with its 49406 … 49407, T5 ending in </s> = 1), right-padded to
// the encoder's length with the tokenizer's pad id; longer than that is an error (the pipelines truncate).
// Which ids a kind takes, their lengths and pad ids are its registry entry's (BackboneKind::token_ids):
//   sd15/sdxl     --token-ids: CLIP tokenizer-1 ids, padded with <|endoftext|> (49407) to 77 (the text
//                 encoder's max_position_embeddings); SDXL derives tokenizer_2's "!"-padded ids itself.
//   pixart-sigma  --token-ids: T5 ids, padded with <pad> (0) to 300; attention mask = 0 exactly on the pad ids.
//   flux          --token-ids: T5 ids padded with 0 to 512 (no mask) and --clip-token-ids: CLIP ids for the
//                 pooled vector, padded with <|endoftext|> (49407) to 77.
#include "harness/backbones/registry.h"
#include "harness/cli/backbone_flags.h"
#include "harness/cli/registry.h"
#include "harness/core/errors.h"
#include "harness/core/log.h"
#include "harness/core/strings.h"
#include "harness/io/image_io.h"
#include "harness/io/safetensors.h"
#include "baselines/method_yaml.h"
#include "baselines/plan_segmentor.h"

#include <CLI/CLI.hpp>

#include <filesystem>
#include <memory>
#include <regex>

namespace {

struct Args {
  std::string weights, image, prompt, out, token_ids, clip_token_ids;
  std::vector<std::string> methods;
  gb::cli::BackboneFlags backbone;
  gb::cli::MemoryCheckFlags memory;
  std::vector<std::string> layers;
  uint64_t seed = 0;
  std::string image_id;
  bool full_heads = false;
};

// "--flag a,b,c": integers in [0, vocab), at most `length`, right-padded with `pad` to `length`.
std::vector<int64_t> parse_ids(const std::string& text, const gb::bb::TokenIdInput& in) {
  static const std::regex integer("[+-]?[0-9]+");
  const std::string& flag = in.flag;
  std::vector<int64_t> ids;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(',', start);
    const std::string item = gb::trim(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (!std::regex_match(item, integer))
      gb::fail("{}: '{}' is not an integer (expected comma-separated token ids, e.g. 49406,320,2368,49407)", flag,
               item);
    int64_t v = 0;
    try {
      v = std::stoll(item);
    } catch (const std::exception&) {
      gb::fail("{}: id {} is out of range (the {} vocabulary has {} ids)", flag, item, in.encoder, in.vocab);
    }
    if (v < 0) gb::fail("{}: id {} is negative", flag, v);
    if (v >= in.vocab) gb::fail("{}: id {} is not below the {} vocabulary size {}", flag, v, in.encoder, in.vocab);
    ids.push_back(v);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  if (static_cast<int64_t>(ids.size()) > in.length)
    gb::fail("{}: {} ids, but the {} takes at most {} (the pipeline would truncate them)", flag, ids.size(), in.encoder,
             in.length);
  ids.resize(static_cast<size_t>(in.length), in.pad);
  return ids;
}

std::string join_ids(const std::vector<int64_t>& ids) {
  std::string s;
  for (auto v : ids) s += (s.empty() ? "" : ",") + std::to_string(v);
  return s;
}

// The padded ids of every text encoder input the kind takes, checked against the folder's configs before the
// (possibly large) weights are loaded. Empty without --token-ids.
std::vector<std::vector<int64_t>> token_id_rows(const Args& a) {
  if (a.token_ids.empty()) {
    if (!a.clip_token_ids.empty())
      gb::fail(
          "--clip-token-ids goes with --token-ids (flux only); with --prompt the CLIP ids come from the tokenizer");
    return {};
  }
  const auto& kind = gb::bb::backbone_kind(gb::bb::detect_backbone_kind(a.weights));
  if (!kind.token_ids) gb::fail("--token-ids is not supported for the {} backbone", kind.kind);
  const auto inputs = kind.token_ids.inputs(gb::bb::CheckpointFolder(a.weights));
  std::vector<std::vector<int64_t>> rows;
  for (const auto& in : inputs) {
    const std::string& text = in.flag == "--token-ids" ? a.token_ids : a.clip_token_ids;
    if (text.empty())
      gb::fail("{} needs {} with --token-ids ({} ids, e.g. 49406,320,2368,49407)", kind.kind, in.flag, in.encoder);
    rows.push_back(parse_ids(text, in));
  }
  if (!a.clip_token_ids.empty() && inputs.size() < 2)
    gb::fail("--clip-token-ids is not an input of the {} backbone ({})", kind.kind, a.weights);
  return rows;
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
  auto* method = sub->add_option("--method", a->methods,
                                 "Method YAML: capture what it needs; repeated: what they need together, as `run` "
                                 "captures for its variants in one forward pass");
  layers->excludes(method);
  sub->add_option("--seed", a->seed, "Noise seed (combined with the image id)");
  sub->add_option("--image-id", a->image_id,
                  "Image id the per-image noise derives from (default: the image's file name with its extension, "
                  "the id `run` gives the same file, so both commands see the same noise)");
  gb::cli::add_backbone_flags(sub, a->backbone, gb::cli::kAllBackboneFlags, "the paper's on CUDA, fp32 on CPU");
  gb::cli::add_memory_check_flags(sub, a->memory);
  sub->add_flag("--full-heads", a->full_heads,
                "Keep every head of the maps (default for --layers; --method "
                "stores self maps as head means, and cross maps as fp32 head "
                "averages when the method averages heads, unless this is given)");
  sub->add_option("--out", a->out, "Output .safetensors")->required();
  sub->callback([a] {
    if (a->prompt.empty() == a->token_ids.empty()) gb::fail("capture needs exactly one of --prompt and --token-ids");
    if (a->layers.empty() && a->methods.empty()) gb::fail("capture needs --layers KEY… or --method M.yaml");
    const auto rows = token_id_rows(*a);
    const gb::bb::BackboneOptions o = gb::cli::backbone_options(a->backbone);
    auto image = gb::read_image_rgb(a->image);
    gb::CaptureSpec spec;
    if (!a->methods.empty()) {
      // Exactly what the methods read (image size and timestep stay the backbone's paper defaults unless given).
      std::vector<std::unique_ptr<gb::baselines::PlanSegmentor>> segs;
      std::vector<const gb::baselines::PlanSegmentor*> all;
      for (const auto& m : a->methods) {
        segs.push_back(std::make_unique<gb::baselines::PlanSegmentor>(gb::baselines::load_method_plan(m), m));
        all.push_back(segs.back().get());
      }
      spec = gb::baselines::union_capture(all);
      if (a->full_heads) spec.self_map_head_mean = spec.cross_map_head_mean = false;
    }
    {  // Refuse what cannot fit before loading anything (the layers from the configs alone).
      const std::string kind = gb::bb::detect_backbone_kind(a->weights);
      const auto& k = gb::bb::backbone_kind(kind);
      if (k.memory) {
        gb::bb::MemoryPlanOptions mo = gb::bb::memory_plan_options(kind, a->weights, o);
        mo.spec = a->layers.empty() ? spec : gb::cli::select_layers(a->layers, k.layers(o, a->weights));
        gb::bb::check_memory_fits("capture", mo, 1, gb::cli::memory_check(a->memory));
      }
    }
    auto backbone = gb::bb::open_backbone(a->weights, o);
    if (!a->layers.empty()) spec = gb::cli::select_layers(a->layers, backbone->list_layers());
    const std::string id = a->image_id.empty() ? gb::image_id_of(a->image) : a->image_id;
    gb::Capture cap;
    gb::bb::rethrow_out_of_memory(
        [&] {
          if (!rows.empty()) {
            std::vector<at::Tensor> ids;
            for (const auto& r : rows) ids.push_back(at::tensor(r, at::kLong).unsqueeze(0));
            cap =
                gb::bb::backbone_kind(backbone->kind()).token_ids.capture(*backbone, {image}, ids, {id}, a->seed, spec);
          } else {
            gb::BackboneBatch batch;
            batch.images = {image};
            batch.prompts = {a->prompt};
            batch.ids = {id};
            batch.seed = a->seed;
            cap = backbone->capture(batch, spec);
          }
        },
        "the capture", o.device, "image '" + id + "'");
    auto sample = cap.sample(0, /*with_inputs=*/true);
    std::map<std::string, at::Tensor> out;
    for (auto& [k, v] : sample) out[k] = v.contiguous().cpu();
    std::map<std::string, std::string> meta{{"backbone", backbone->kind()},
                                            {"weights", a->weights},
                                            {"image", a->image},
                                            {"image_id", id},
                                            {"seed", std::to_string(a->seed)}};
    if (!a->prompt.empty()) meta["prompt"] = a->prompt;
    // As fed to the text encoders (padded).
    if (rows.size() > 0) meta["token_ids"] = join_ids(rows[0]);
    if (rows.size() > 1) meta["clip_token_ids"] = join_ids(rows[1]);
    gb::save_safetensors(a->out, out, meta);
    gb::log::info("wrote {} tensors ({} captured) to {} ({} backbone; text {:.3f}s, vae {:.3f}s, denoiser {:.3f}s)",
                  out.size(), cap.tensors.size(), a->out, backbone->kind(), cap.stage_seconds["text"],
                  cap.stage_seconds["vae"], cap.stage_seconds["denoiser"]);
  });
}

GB_REGISTER_COMMAND(add);

}  // namespace
