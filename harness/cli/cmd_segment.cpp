// `goca-bench segment --capture C.safetensors --tokens T.json --method M.yaml --out O.safetensors`
// Runs one method on one capture dump (attention captured anywhere, e.g. by the paper's Python extractor):
//
//   C.safetensors  tensors under the paper's keys, batch dimension removed, F16/BF16/F32
//                  (<block>-cross-map [H,P,T], -cross-special-value [H,T,d], -cross-special-post-value [P,H*d],
//                  -cross-special-weight [Dout,H*d], <block>-self-map [H,P,P], ref_layer [C,r,r])
//   T.json         {"objects": [{"class": 15, "tokens": [3, 4]}, ...], "background_objects": [[9]],
//                   "rescaling_token_ids": [3, 4, 9]}
//   M.yaml         a method file (configs/methods/..., baselines/method_yaml.h); --set overrides its keys
//   O.safetensors  F32: scores [objects+1,S,S] (after propagation), pre_propagation, aggregated [S,S,T],
//                  layer_weights ([L], or [L,S,S] for the vanilla layer method, in `layers` order),
//                  head_weights.<cross-map key> [P,H] per layer; with post: dcrf also crf [objects+1,H,W]
//                  (FTTM marginals at image resolution; needs --image). Metadata: the method (canonical
//                  YAML), the layer order, the inputs, the goca-bench version.
//
// The dump is validated from its header before anything is loaded or computed (baselines/capture_check.h):
// a missing key, a wrong rank, mismatched H or T, a token id >= T or a non-square P is one error line
// naming the file and the key (exit 2).
#include "baselines/capture_check.h"
#include "baselines/method_yaml.h"
#include "baselines/plan_segmentor.h"
#include "gb_build_info.h"
#include "harness/cli/registry.h"
#include "harness/core/errors.h"
#include "harness/core/log.h"
#include "harness/core/torch_compat.h"
#include "harness/io/image_io.h"
#include "harness/io/safetensors.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <memory>

namespace {

struct Args {
  std::string capture, tokens, method, out, image, device = "cpu";
  std::vector<std::string> sets;
};

void run(const Args& a) {
  using namespace gb::baselines;
  const auto t0 = std::chrono::steady_clock::now();
  const MethodPlan plan = load_method_plan(a.method, a.sets);
  const PlanSegmentor segmentor(plan, a.method);
  const gb::TokenGroups groups = gb::TokenGroups::load(a.tokens);
  if (segmentor.needs_image() && a.image.empty())
    gb::fail_file(a.method, "post: dcrf (FTTM) runs the dense CRF on the image: pass --image");
  if (!segmentor.needs_image() && !a.image.empty())
    gb::log::warn("--image is only used by post: dcrf; ignoring {}", a.image);

  // Validate the dump from its header, then load only what the method reads.
  const gb::SafetensorsFile file(a.capture);
  CaptureMeta meta;
  for (const auto& k : file.keys()) {
    const auto& info = file.info(k);
    meta[k] = TensorMeta{info.shape, gb::to_string(info.dtype)};
  }
  const int64_t T = check_capture(meta, plan.method, groups, a.capture, a.tokens);

  at::Device device(at::kCPU);
  if (a.device == "cuda") {
    if (!gb::compat::cuda_available()) gb::fail("--device cuda: this build has no usable CUDA device");
    device = at::Device(at::kCUDA);
  } else if (a.device != "cpu") {
    gb::fail("--device must be cpu or cuda, got '{}'", a.device);
  }
  gb::TensorMap sample;
  for (const auto& k : keys_to_load(plan.method, meta)) sample[k] = file.load(k).to(device);

  std::optional<at::Tensor> image;
  if (segmentor.needs_image()) image = gb::read_image_rgb(a.image);
  const PlanOutput out = segmentor.run(sample, groups, image);

  std::vector<std::pair<std::string, at::Tensor>> tensors;
  auto put = [&](const std::string& name, const at::Tensor& t) {
    tensors.emplace_back(name, t.to(at::kCPU, at::kFloat).contiguous());
  };
  put("scores", out.segment.scores);
  put("pre_propagation", out.segment.pre_propagation);
  put("aggregated", out.segment.aggregated);
  put("layer_weights", out.segment.layer_weights);
  for (const auto& l : plan.method.layers) put("head_weights." + l, out.segment.head_weights.at(l));
  if (out.crf.defined()) put("crf", out.crf);

  nlohmann::json layers = plan.method.layers;
  std::map<std::string, std::string> metadata = {
      {"format", "goca-bench segment v1"},
      {"goca_bench", std::string(GB_VERSION) + " (" + GB_GIT_COMMIT + ")"},
      {"capture", a.capture},
      {"tokens", a.tokens},
      {"method_file", a.method},
      {"method", method_plan_to_yaml(plan)},
      {"layers", layers.dump()},
      {"objects", std::to_string(groups.objects.size())},
      {"tokens_T", std::to_string(T)},
  };
  if (!a.image.empty() && segmentor.needs_image()) metadata["image"] = a.image;
  const auto parent = std::filesystem::path(a.out).parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent))
    gb::fail_file(a.out, "the output folder {} does not exist", parent.string());
  gb::save_safetensors(a.out, tensors, metadata);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  gb::log::info("segment: {} objects, {} layers, T = {}, S = {} -> {} ({:.2f} s)", groups.objects.size(),
                plan.method.layers.size(), T, plan.method.output_size, a.out, secs);
}

void add(CLI::App& app) {
  auto args = std::make_shared<Args>();
  auto* sub = app.add_subcommand("segment", "Run one method on a capture dump (safetensors) and write its score maps");
  sub->add_option("--capture", args->capture, "capture dump: paper keys, batch dimension removed, F16/BF16/F32")
      ->required()
      ->type_name("C.safetensors");
  sub->add_option("--tokens", args->tokens, "token groups JSON (objects, background_objects, rescaling_token_ids)")
      ->required()
      ->type_name("T.json");
  sub->add_option("--method", args->method, "method YAML (e.g. configs/methods/sd15/goca.yaml)")
      ->required()
      ->type_name("M.yaml");
  sub->add_option("--out", args->out, "output safetensors (F32 scores, intermediates, weights)")
      ->required()
      ->type_name("O.safetensors");
  sub->add_option("--set", args->sets, "override a method key: key=value (e.g. head_method=cosine)")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);
  sub->add_option("--image", args->image, "the RGB image, for post: dcrf (FTTM)")->type_name("IMAGE");
  sub->add_option("--device", args->device, "cpu (default) or cuda");
  sub->callback([args] { run(*args); });
}

GB_REGISTER_COMMAND(add);

}  // namespace
