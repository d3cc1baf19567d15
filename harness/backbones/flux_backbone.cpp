#include "harness/backbones/flux_backbone.h"
#include "harness/backbones/memory_plan.h"

#include "harness/backbones/capture_steps.h"
#include "harness/backbones/image_preprocess.h"
#include "harness/backbones/recorder.h"
#include "harness/backbones/sd_backbone.h"
#include "harness/core/errors.h"
#include "harness/core/tokenizer.h"
#include "harness/core/trace.h"
#include "harness/core/log.h"
#include "harness/core/torch_compat.h"
#include "harness/text/clip_tokenizer.h"
#include "harness/text/t5_tokenizer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <filesystem>

namespace gb::bb {

namespace fs = std::filesystem;

namespace {

// The paper's settings: bf16 on the GPU, 1024², t = 150, the pipeline's 512 T5 tokens.
BackboneDefaults flux_defaults() {
  BackboneDefaults d;
  d.gpu_dtype = at::kBFloat16;
  d.image_size = 1024;
  d.timestep = 150;
  d.text_length = kFluxTextLength;
  return d;
}
constexpr int64_t kFluxSteps = 28;  // default num_inference_steps (spec §5.7)

}  // namespace

bool flux_t5_int8(std::optional<bool> asked, at::ScalarType dtype) {
  return asked.value_or(dtype == at::kBFloat16 || dtype == at::kHalf);
}

FluxBackbone::FluxBackbone(const CheckpointFolder& folder, const BackboneOptions& options)
    : options_(options), device_(options.torch_device()), dtype_(options.resolve_dtype(flux_defaults().gpu_dtype)) {
  auto tcfg = FluxConfig::from_json(folder.file("transformer"));
  auto vcfg = VaeConfig::from_json(folder.file("vae"));
  auto ccfg = ClipTextConfig::from_json(folder.file("text_encoder"));
  auto ecfg = T5Config::from_json(folder.file("text_encoder_2"));
  auto scfg = FlowMatchSchedulerConfig::from_json(folder.file("scheduler", "scheduler_config.json"));
  const std::string tpath = folder.file("transformer");
  if (vcfg.latent_channels * 4 != tcfg.in_channels)
    fail_file(tpath, "in_channels {} != 4 x VAE latent_channels {} (2x2 packing)", tcfg.in_channels,
              vcfg.latent_channels);
  if (ecfg.d_model != tcfg.joint_attention_dim)
    fail_file(tpath, "joint_attention_dim {} != T5 d_model {}", tcfg.joint_attention_dim, ecfg.d_model);
  if (ccfg.hidden_size != tcfg.pooled_projection_dim)
    fail_file(tpath, "pooled_projection_dim {} != CLIP hidden_size {}", tcfg.pooled_projection_dim, ccfg.hidden_size);
  if (!vcfg.shift_factor) fail_file(folder.file("vae"), "Flux's VAE needs shift_factor");
  image_size_ = options.image_size.value_or(flux_defaults().image_size);
  const int64_t vae_scale = vcfg.scale_factor();
  if (image_size_ <= 0 || image_size_ % (vae_scale * 2) != 0)
    fail("image size {} must be a positive multiple of {}", image_size_, vae_scale * 2);
  const int64_t tokens = (image_size_ / vae_scale / 2) * (image_size_ / vae_scale / 2);
  plan_ = plan_flux_noising(scfg, tokens, options.timestep.value_or(flux_defaults().timestep), kFluxSteps);

  const auto load = [&](const char* component, auto make) {
    return load_component(folder.root(), component, dtype_, device_, options.variant, make);
  };
  transformer_ =
      load("transformer", [&](const WeightStore& ws) { return std::make_unique<FluxTransformer>(ws, tcfg); });
  // FluxImg2ImgPipeline runs the VAE in the pipeline dtype (no upcast, force_upcast is ignored).
  vae_ = load("vae", [&](const WeightStore& ws) { return std::make_unique<VaeEncoder>(vcfg, ws); });
  clip_ = load("text_encoder", [&](const WeightStore& ws) { return std::make_unique<ClipTextModel>(ccfg, ws); });
  // The paper loads text_encoder_2 with load_in_8bit (LLM.int8); default on for 16-bit compute, off in fp32.
  t5_ = T5Encoder::load_for_backbone(folder.root(), "text_encoder_2", ecfg, dtype_, device_, options.variant,
                                     options.text_encoder == TextEncoderResidency::offload,
                                     flux_t5_int8(options.t5_int8, dtype_));
  tokenizer_ = options.tokenizer;
  // The folder's tokenizers: T5 (tokenizer_2/spiece.model, 512 tokens) for the cross maps and CLIP
  // (tokenizer/vocab.json + merges.txt, 77 tokens) for the pooled vector.
  const fs::path root(folder.root());
  const fs::path spm = root / "tokenizer_2" / "spiece.model";
  if (!tokenizer_ && fs::is_regular_file(spm)) tokenizer_ = text::T5Tokenizer::from_file(spm.string(), kFluxTextLength);
  const fs::path clip_dir = root / "tokenizer";
  if (!clip_tokenizer_ && fs::is_regular_file(clip_dir / "vocab.json") &&
      fs::is_regular_file(clip_dir / "merges.txt")) {
    clip_tokenizer_ = text::ClipTokenizer::from_files(
        (clip_dir / "vocab.json").string(), (clip_dir / "merges.txt").string(), text::ClipTokenizer::kEnd, 77);
  }
  for (const auto& l : list_layers()) layer_names_.insert(l.name);
}

int64_t FluxBackbone::latent_size() const { return image_size_ / vae_->config().scale_factor(); }

int64_t FluxBackbone::text_length() const { return tokenizer_ ? tokenizer_->max_length() : kFluxTextLength; }

std::vector<LayerInfo> FluxBackbone::list_layers() const {
  const int64_t g = latent_size() / 2;
  return flux_capture_layers(transformer_->config(), g * g, text_length());
}

const TextTokenizer& FluxBackbone::tokenizer() const {
  if (!tokenizer_) fail("flux: no T5 tokenizer is attached to this backbone");
  return *tokenizer_;
}

FluxBackbone::Text FluxBackbone::encode(const at::Tensor& t5_ids, const at::Tensor& clip_ids) {
  c10::InferenceMode guard;
  if (!t5_) throw std::logic_error("flux: encode after the text encoders were released");
  Text text;
  text.pooled = clip_->forward(clip_ids.to(device_, at::kLong), true).pooled.to(dtype_);
  const at::Tensor ids = t5_ids.to(device_, at::kLong);
  if (t5_->device() != device_) {  // offloaded: a device copy for this encode only
    const T5Encoder on_device = t5_->to(device_);
    text.t5 = on_device(ids).to(dtype_);  // no attention mask (spec §5.5)
  } else {
    text.t5 = (*t5_)(ids).to(dtype_);
  }
  return text;
}

void FluxBackbone::release_text_encoders() {
  t5_.reset();
  clip_.reset();
  if (device_.is_cuda()) compat::cuda_empty_cache();
}

PromptConditioningCache::Rows FluxBackbone::encode_rows(const std::vector<std::string>& prompts) {
  if (!clip_tokenizer_) fail("flux: no CLIP tokenizer is attached to this backbone (needed for the pooled vector)");
  const at::Tensor t5_ids = token_id_rows(tokenizer(), prompts);
  if (t5_ids.size(1) != text_length())
    fail("flux: T5 ids have length {} but the captures are laid out for {}", t5_ids.size(1), text_length());
  const Text t = encode(t5_ids, token_id_rows(*clip_tokenizer_, prompts));
  return {{"t5", t.t5}, {"pooled", t.pooled}};
}

PromptConditioningCache::Encoders FluxBackbone::encoders() {
  return {t5_ != nullptr, [this](const std::vector<std::string>& p) { return encode_rows(p); },
          [this] { release_text_encoders(); }};
}

void FluxBackbone::prepare_prompts(const std::vector<std::string>& prompts, int64_t batch_size) {
  text_cache_.prepare(prompts, batch_size, options_.text_encoder, encoders(), kind());
}

Capture FluxBackbone::capture(const BackboneBatch& batch, const CaptureSpec& spec) {
  const auto [rows, text_s] =
      text_stage(batch, spec, layer_names_, kind(), text_cache_, options_.text_encoder, encoders(), device_);
  return capture_text(batch.images, Text{rows.at("t5"), rows.at("pooled")}, batch.ids, batch.seed, spec, text_s);
}

Capture FluxBackbone::capture_ids(const std::vector<at::Tensor>& images, const at::Tensor& t5_ids,
                                  const at::Tensor& clip_ids, const std::vector<std::string>& image_ids, uint64_t seed,
                                  const CaptureSpec& spec) {
  const int64_t b = static_cast<int64_t>(images.size());
  check_id_rows(t5_ids, b, "T5", kind());
  if (t5_ids.size(1) != text_length())
    fail("flux: T5 ids have length {} but the captures are laid out for {}", t5_ids.size(1), text_length());
  check_id_rows(clip_ids, b, "CLIP", kind());
  check_capture_keys(spec, layer_names_, kind());
  if (!t5_) fail("flux: the text encoders were freed (text_encoder: free); token-id replay needs them");
  const auto [text, text_s] = timed_stage("text", device_, [&] {
    Text t = encode(t5_ids, clip_ids);
    if (options_.text_encoder == TextEncoderResidency::free) release_text_encoders();
    return t;
  });
  return capture_text(images, text, image_ids, seed, spec, text_s);
}

Capture FluxBackbone::capture_text(const std::vector<at::Tensor>& images, const Text& text,
                                   const std::vector<std::string>& image_ids, uint64_t seed, const CaptureSpec& spec,
                                   double text_seconds) {
  c10::InferenceMode guard;
  Capture cap = begin_capture(images, image_ids, text_seconds, kind());
  const int64_t b = cap.batch_size;

  const EncodedImages z = vae_stage(cap, *vae_, images, image_ids, seed, image_size_, device_, dtype_, dtype_);

  FluxInputs in;
  in.latents = flux_pack_latents(plan_.apply(z.latents, z.noise));
  in.timestep = plan_.model_timestep(b, dtype_, device_);
  auto f32dev = at::TensorOptions().dtype(at::kFloat).device(device_);
  if (transformer_->config().guidance_embeds) in.guidance = at::full({b}, guidance_scale(), f32dev);
  in.encoder_hidden_states = text.t5;
  in.pooled_projections = text.pooled;
  in.img_ids = flux_latent_image_ids(latent_size() / 2, latent_size() / 2, f32dev).to(dtype_);
  in.txt_ids = at::zeros({text.t5.size(1), 3}, f32dev.dtype(dtype_));
  denoiser_stage(cap, spec, options_.store_dtype, device_, kind(),
                 [&](CaptureRecorder* rec) { return (*transformer_)(in, rec, !options_.skip_tail); });

  cap.inputs["input.latents"] = in.latents;
  cap.inputs["input.timestep"] = in.timestep;
  if (in.guidance.defined()) cap.inputs["input.guidance"] = in.guidance;
  cap.inputs["input.encoder_hidden_states"] = in.encoder_hidden_states;
  cap.inputs["input.pooled_projections"] = in.pooled_projections;
  // Batch first like every other input (the model takes them without the batch dimension).
  cap.inputs["input.img_ids"] = in.img_ids.unsqueeze(0).expand({b, in.img_ids.size(0), 3});
  cap.inputs["input.txt_ids"] = in.txt_ids.unsqueeze(0).expand({b, in.txt_ids.size(0), 3});
  return cap;
}

std::pair<at::Tensor, at::Tensor> FluxBackbone::encode_text(const at::Tensor& t5_ids, const at::Tensor& clip_ids) {
  if (!t5_) fail("flux: the text encoders were freed (text_encoder: free)");
  auto t = encode(t5_ids, clip_ids);
  return {t.t5, t.pooled};
}

at::Tensor FluxBackbone::denoise(const FluxInputs& in, const CaptureSpec& spec, Capture& cap) const {
  c10::InferenceMode guard;
  return record_denoise(spec, layer_names_, kind(), options_.store_dtype, cap, in.latents.size(0),
                        [&](CaptureRecorder* rec) { return (*transformer_)(in, rec, true); });
}

BackboneKind flux_backbone_kind() {
  BackboneKind k;
  k.kind = "flux";
  k.description = "FLUX.1-dev (FluxTransformer2DModel, CLIP-L pooled + T5 v1.1 XXL, flow matching at strength 0.15)";
  k.detect_from_weights = [](const CheckpointFolder& f) {
    return f.has_key("transformer", "x_embedder.weight") &&
           f.has_key("transformer", "single_transformer_blocks.0.proj_mlp.weight");
  };
  k.defaults = flux_defaults();
  k.options.push_back("t5_int8");
  k.text_encoder_modes = {TextEncoderResidency::keep, TextEncoderResidency::offload, TextEncoderResidency::free};
  k.pipeline_classes = {"FluxPipeline", "FluxImg2ImgPipeline"};
  k.load = [](const std::optional<CheckpointFolder>& f, const BackboneOptions& o) -> std::unique_ptr<Backbone> {
    return std::make_unique<FluxBackbone>(*f, o);
  };
  k.layers = [](const BackboneOptions& o, const std::optional<std::string>& folder) {
    FluxConfig cfg = FluxConfig::dev();
    int64_t vae_levels = 4;
    if (folder) {
      CheckpointFolder f(*folder);
      cfg = FluxConfig::from_json(f.file("transformer"));
      vae_levels = static_cast<int64_t>(VaeConfig::from_json(f.file("vae")).block_out_channels.size());
    }
    const int64_t g = o.image_size.value_or(flux_defaults().image_size) / (int64_t(1) << (vae_levels - 1)) / 2;
    return flux_capture_layers(cfg, g * g, o.tokenizer ? o.tokenizer->max_length() : kFluxTextLength);
  };
  k.memory = [](const std::optional<std::string>& folder) { return flux_memory_model(folder); };
  // Token-id replay: T5 ids padded with <pad> to 512 (no mask) and CLIP ids for the pooled vector, padded with
  // <|endoftext|> (the last id) to 77.
  k.token_ids.inputs = [](const CheckpointFolder& f) {
    return t5_clip_token_id_inputs(f, "text_encoder_2", kFluxTextLength);
  };
  k.token_ids.capture = [](Backbone& b, const std::vector<at::Tensor>& images, const std::vector<at::Tensor>& ids,
                           const std::vector<std::string>& image_ids, uint64_t seed, const CaptureSpec& spec) {
    return dynamic_cast<FluxBackbone&>(b).capture_ids(images, ids.at(0), ids.at(1), image_ids, seed, spec);
  };
  return k;
}

}  // namespace gb::bb
