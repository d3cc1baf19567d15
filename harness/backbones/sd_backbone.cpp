#include "harness/backbones/sd_backbone.h"

#include "harness/backbones/capture_steps.h"
#include "harness/backbones/image_preprocess.h"
#include "harness/backbones/json_config.h"
#include "harness/backbones/memory_plan.h"
#include "harness/backbones/recorder.h"
#include "harness/core/errors.h"
#include "harness/core/tokenizer.h"
#include "harness/core/trace.h"
#include "harness/core/log.h"
#include "harness/core/torch_compat.h"
#include "harness/text/clip_tokenizer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <filesystem>

namespace gb::bb {

namespace fs = std::filesystem;

namespace {

// The paper's settings: fp16 on the GPU, t = 100, CLIP's 77 tokens; each model's native resolution: 512² (SD1.5,
// SD 2.1-base), 768² (SD 2.1 768-v), 1024² (SDXL).
BackboneDefaults sd_defaults(SdVariant v) {
  BackboneDefaults d;
  d.gpu_dtype = at::kHalf;
  d.image_size = v == SdVariant::sdxl ? 1024 : v == SdVariant::sd21 ? 768 : 512;
  d.timestep = 100;
  d.text_length = 77;
  return d;
}

bool is_sd21(SdVariant v) { return v == SdVariant::sd21 || v == SdVariant::sd21_base; }

}  // namespace

const char* to_string(SdVariant v) {
  switch (v) {
    case SdVariant::sd15: return "sd15";
    case SdVariant::sd21: return "sd21";
    case SdVariant::sd21_base: return "sd21-base";
    case SdVariant::sdxl: return "sdxl";
  }
  return "?";
}

UNetConfig sd_default_unet(SdVariant v) {
  switch (v) {
    case SdVariant::sd15: return UNetConfig::sd15();
    case SdVariant::sd21: return UNetConfig::sd21();
    case SdVariant::sd21_base: return UNetConfig::sd21_base();
    case SdVariant::sdxl: return UNetConfig::sdxl();
  }
  return UNetConfig::sd15();
}

ClipTextConfig sd_default_text_encoder(SdVariant v) {
  return is_sd21(v) ? ClipTextConfig::openclip_h() : ClipTextConfig::clip_l();
}

SchedulerConfig sd_scheduler_config(const CheckpointFolder& folder, SdVariant v) {
  // GDF's version '2-1': EulerDiscreteScheduler.from_pretrained(folder, subfolder="scheduler").
  return SchedulerConfig::from_json(folder.file("scheduler", "scheduler_config.json"),
                                    is_sd21(v) ? "EulerDiscreteScheduler" : "");
}

std::shared_ptr<const TextTokenizer> load_folder_tokenizer(const CheckpointFolder& folder, int64_t max_length) {
  fs::path dir = fs::path(folder.root()) / "tokenizer";
  if (!fs::is_directory(dir)) return nullptr;
  std::string pad = text::ClipTokenizer::kEnd;
  auto special = dir / "special_tokens_map.json";
  if (fs::is_regular_file(special)) {
    auto j = read_json_file(special.string());
    if (j.contains("pad_token")) {
      const auto& p = j["pad_token"];
      if (p.is_string()) pad = p.get<std::string>();
      else if (p.is_object() && p.contains("content")) pad = p["content"].get<std::string>();
    }
  }
  if (fs::is_regular_file(dir / "vocab.json") && fs::is_regular_file(dir / "merges.txt"))
    return text::ClipTokenizer::from_files((dir / "vocab.json").string(), (dir / "merges.txt").string(), pad,
                                           max_length);
  if (fs::is_regular_file(dir / "merges.txt"))
    return text::ClipTokenizer::from_merges((dir / "merges.txt").string(), pad, max_length);
  fail_file(dir.string(), "has neither vocab.json + merges.txt nor merges.txt");
}

StableDiffusionBackbone::StableDiffusionBackbone(const CheckpointFolder& folder, const BackboneOptions& options,
                                                 SdVariant variant)
    : variant_(variant),
      sdxl_(variant == SdVariant::sdxl),
      options_(options),
      device_(options.torch_device()),
      dtype_(options.resolve_dtype(sd_defaults(variant).gpu_dtype)),
      vae_dtype_(dtype_) {
  const bool sdxl = sdxl_;
  auto unet_cfg = UNetConfig::from_json(folder.file("unet"));
  if (unet_cfg.is_sdxl() != sdxl)
    fail_file(folder.file("unet"), "config ({}) disagrees with the weights ({})",
              unet_cfg.is_sdxl() ? "SDXL text_time conditioning" : "no added conditioning", kind());
  if (is_sd21(variant) && !unet_cfg.use_linear_projection)
    fail_file(folder.file("unet"), "use_linear_projection is false, but the weights are {} (linear proj_in)", kind());
  auto vae_cfg = VaeConfig::from_json(folder.file("vae"));
  // The SDXL img2img pipeline upcasts the VAE when force_upcast; the SD1.5/2.1 one runs it in the model dtype.
  if (sdxl && vae_cfg.force_upcast) vae_dtype_ = at::kFloat;
  scheduler_ = sd_scheduler_config(folder, variant);
  image_size_ = options.image_size.value_or(sd_defaults(variant).image_size);
  const int64_t vae_scale = vae_cfg.scale_factor();
  if (image_size_ <= 0 || image_size_ % (vae_scale << (unet_cfg.block_out_channels.size() - 1)) != 0)
    fail("image size {} must be a positive multiple of {}", image_size_,
         vae_scale << (unet_cfg.block_out_channels.size() - 1));
  try {  // a checkpoint whose scheduler only samples (DDIM, DPM, ...) still loads; capture() then refuses
    plan_ = plan_noising(scheduler_, options.timestep.value_or(sd_defaults(variant).timestep));
  } catch (const UserError& e) {
    noising_error_ = folder.file("scheduler", "scheduler_config.json") + ": " + e.what();
  }

  unet_ = load_component(folder.root(), "unet", dtype_, device_, options.variant,
                         [&](const WeightStore& ws) { return std::make_unique<UNet2DConditionModel>(unet_cfg, ws); });
  vae_ = load_component(folder.root(), "vae", vae_dtype_, device_, options.variant,
                        [&](const WeightStore& ws) { return std::make_unique<VaeEncoder>(vae_cfg, ws); });
  const auto load_clip = [&](const char* component, const ClipTextConfig& cfg) {
    return load_component(folder.root(), component, dtype_, device_, options.variant,
                          [&](const WeightStore& ws) { return std::make_unique<ClipTextModel>(cfg, ws); });
  };
  text1_ = load_clip("text_encoder", ClipTextConfig::from_json(folder.file("text_encoder")));
  if (sdxl) {
    auto cfg = ClipTextConfig::from_json(folder.file("text_encoder_2"));
    if (!cfg.with_projection) fail_file(folder.file("text_encoder_2"), "SDXL needs CLIPTextModelWithProjection");
    text2_ = load_clip("text_encoder_2", cfg);
    const int64_t ctx = text1_->config().hidden_size + cfg.hidden_size;
    if (ctx != unet_cfg.cross_attention_dim)
      fail_file(folder.file("unet"), "cross_attention_dim {} != {} + {} (text encoder widths)",
                unet_cfg.cross_attention_dim, text1_->config().hidden_size, cfg.hidden_size);
    const int64_t add_in = cfg.projection_dim + 6 * unet_cfg.addition_time_embed_dim;
    if (add_in != unet_cfg.projection_class_embeddings_input_dim)
      fail_file(folder.file("unet"), "projection_class_embeddings_input_dim {} != {} + 6·{}",
                unet_cfg.projection_class_embeddings_input_dim, cfg.projection_dim, unet_cfg.addition_time_embed_dim);
  } else if (text1_->config().hidden_size != unet_cfg.cross_attention_dim) {
    fail_file(folder.file("unet"), "cross_attention_dim {} != text encoder hidden_size {}",
              unet_cfg.cross_attention_dim, text1_->config().hidden_size);
  }
  tokenizer_ =
      options.tokenizer ? options.tokenizer : load_folder_tokenizer(folder, text1_->config().max_position_embeddings);
  for (const auto& l : list_layers()) layer_names_.insert(l.name);
}

std::vector<LayerInfo> StableDiffusionBackbone::list_layers() const {
  const int64_t latent = image_size_ / vae_->config().scale_factor();
  return unet_capture_layers(unet_->config(), latent, text1_->config().max_position_embeddings);
}

const TextTokenizer& StableDiffusionBackbone::tokenizer() const {
  if (!tokenizer_)
    fail("{}: no CLIP tokenizer (the checkpoint folder has no tokenizer/ with vocab.json + merges.txt)", kind());
  return *tokenizer_;
}

SdTextConditioning StableDiffusionBackbone::encode_text(const at::Tensor& ids_in) const {
  auto ids = ids_in.to(device_, at::kLong);
  SdTextConditioning out;
  if (!sdxl_) {
    out.encoder_hidden_states = text1_->forward(ids, true).last_hidden_state;
    return out;
  }
  // tokenizer_2 pads with "!" (id 0) where tokenizer-1 pads with EOS; the BPE is the same.
  // EOS is the last vocabulary id (49407 for CLIP).
  const int64_t eos = text1_->config().vocab_size - 1;
  auto after_first_eos = ids.eq(eos).to(at::kInt).cumsum(1).gt(0);
  auto first_eos = after_first_eos.to(at::kInt).cumsum(1).eq(1) & after_first_eos;
  auto ids2 = ids.masked_fill(after_first_eos & first_eos.logical_not(), 0);
  auto e1 = text1_->forward(ids, false);
  auto e2 = text2_->forward(ids2, true);
  out.encoder_hidden_states = at::cat({e1.penultimate, e2.penultimate}, -1);
  out.text_embeds = e2.text_embeds;
  return out;
}

Capture StableDiffusionBackbone::capture(const BackboneBatch& batch, const CaptureSpec& spec) {
  const auto& tok = tokenizer();
  if (batch.prompts.size() != batch.images.size())
    fail("batch has {} images but {} prompts", batch.images.size(), batch.prompts.size());
  return capture_ids(batch.images, token_id_rows(tok, batch.prompts), batch.ids, batch.seed, spec);
}

Capture StableDiffusionBackbone::capture_ids(const std::vector<at::Tensor>& images, const at::Tensor& ids,
                                             const std::vector<std::string>& image_ids, uint64_t seed,
                                             const CaptureSpec& spec) {
  const int64_t b = static_cast<int64_t>(images.size());
  if (b == 0) fail("{}: empty batch", kind());
  if (static_cast<int64_t>(image_ids.size()) != b) fail("{}: {} images but {} image ids", kind(), b, image_ids.size());
  const int64_t latent = image_size_ / vae_->config().scale_factor();
  auto t0 = std::chrono::steady_clock::now();
  const PreparedImages in = prepare_images(images, image_ids, seed, image_size_, vae_->config().latent_channels,
                                           unet_->config().in_channels, latent);
  double prep = seconds_since(t0, at::Device(at::kCPU));
  auto cap = capture_with_noise(in.pixels, ids, in.noise_vae, in.noise, spec);
  cap.stage_seconds["preprocess"] = prep;
  return cap;
}

Capture StableDiffusionBackbone::capture_with_noise(const at::Tensor& pixels, const at::Tensor& ids,
                                                    const at::Tensor& noise_vae, const at::Tensor& noise,
                                                    const CaptureSpec& spec) {
  c10::InferenceMode guard;
  const int64_t b = pixels.size(0);
  check_id_rows(ids, b, "token", kind());
  check_capture_keys(spec, layer_names_, kind());
  if (!noising_error_.empty()) throw UserError(noising_error_);
  Capture cap;
  cap.batch_size = b;
  auto t0 = std::chrono::steady_clock::now();
  gb::trace::Span text_span("text");
  auto cond = encode_text(ids);
  cap.stage_seconds["text"] = seconds_since(t0, device_);
  text_span.end();

  t0 = std::chrono::steady_clock::now();
  gb::trace::Span vae_span("vae");
  auto x = pixels.to(device_, vae_dtype_);
  auto z0 = vae_->latents(x, noise_vae.to(device_, vae_dtype_), dtype_);
  cap.stage_seconds["vae"] = seconds_since(t0, device_);
  vae_span.end();

  UNetInputs in;
  in.latents = plan_.apply(z0, noise.to(device_, dtype_));
  auto dev = at::TensorOptions().device(device_);
  in.timestep = plan_.timestep_is_int ? at::full({b}, static_cast<int64_t>(plan_.timestep), dev.dtype(at::kLong))
                                      : at::full({b}, plan_.timestep, dev.dtype(at::kFloat));
  in.encoder_hidden_states = cond.encoder_hidden_states;
  if (sdxl_) {
    in.text_embeds = cond.text_embeds;
    // (original size, crop top-left, target size), GDF _get_add_time_ids in the prompt dtype.
    const double s = static_cast<double>(image_size_);
    in.time_ids = at::tensor(std::vector<double>{s, s, 0, 0, s, s}, dev.dtype(at::kDouble))
                      .to(dtype_)
                      .unsqueeze(0)
                      .expand({b, 6})
                      .contiguous();
  }
  denoiser_stage(cap, spec, options_.store_dtype, device_, kind(),
                 [&](CaptureRecorder* rec) { return unet_->forward(in, rec, options_.skip_tail); });

  cap.inputs["input.latents"] = in.latents;
  cap.inputs["input.timestep"] = in.timestep;
  cap.inputs["input.encoder_hidden_states"] = in.encoder_hidden_states;
  if (sdxl_) {
    cap.inputs["input.text_embeds"] = in.text_embeds;
    cap.inputs["input.time_ids"] = in.time_ids;
  }
  return cap;
}

at::Tensor StableDiffusionBackbone::denoise(const UNetInputs& in, const CaptureSpec& spec, Capture& cap) const {
  c10::InferenceMode guard;
  return record_denoise(spec, layer_names_, kind(), options_.store_dtype, cap, in.latents.size(0),
                        [&](CaptureRecorder* rec) { return unet_->forward(in, rec, false); });
}

namespace {

std::vector<LayerInfo> config_layers(SdVariant v, const BackboneOptions& o, const std::optional<std::string>& folder) {
  UNetConfig unet = sd_default_unet(v);
  int64_t vae_levels = 4, text_len = sd_defaults(v).text_length;
  if (folder) {
    CheckpointFolder f(*folder);
    unet = UNetConfig::from_json(f.file("unet"));
    vae_levels = static_cast<int64_t>(VaeConfig::from_json(f.file("vae")).block_out_channels.size());
    text_len = ClipTextConfig::from_json(f.file("text_encoder")).max_position_embeddings;
  }
  const int64_t size = o.image_size.value_or(sd_defaults(v).image_size);
  return unet_capture_layers(unet, size / (int64_t(1) << (vae_levels - 1)), text_len);
}

bool unet_weights(const CheckpointFolder& f) {
  return f.has_key("unet", "time_embedding.linear_1.weight") && f.has_key("unet", "conv_in.weight");
}

// SD1.5 and SD 2.x share the key names; SD 2.x's transformers project with Linear (a 2-D proj_in weight), SD1.5's
// with a 1x1 Conv2d (4-D).
bool linear_projection(const CheckpointFolder& f) {
  for (const auto& k : f.keys("unet"))
    if (k.size() > 15 && k.compare(k.size() - 15, 15, ".proj_in.weight") == 0) return f.shape("unet", k).size() == 2;
  return false;
}

// SD 2.1 (768-v) and 2.1-base have the same weights layout; the scheduler's prediction_type tells them apart.
bool v_prediction(const CheckpointFolder& f) {
  if (!f.has_component("scheduler")) return false;
  auto j = read_json_file(f.file("scheduler", "scheduler_config.json"));
  return j.value("prediction_type", std::string("epsilon")) == "v_prediction";
}

bool sd1_family(const CheckpointFolder& f) {
  return unet_weights(f) && !f.has_key("unet", "add_embedding.linear_1.weight");
}

}  // namespace

namespace {

// Token-id replay: tokenizer-1 ids padded with <|endoftext|> (the last id) to the text encoder's length; SDXL
// derives tokenizer_2's ids itself.
TokenReplay sd_token_replay() {
  TokenReplay r;
  r.inputs = [](const CheckpointFolder& f) {
    auto c = ClipTextConfig::from_json(f.file("text_encoder"));
    return std::vector<TokenIdInput>{
        {"--token-ids", "CLIP text encoder", c.vocab_size, c.max_position_embeddings, c.vocab_size - 1}};
  };
  r.capture = [](Backbone& b, const std::vector<at::Tensor>& images, const std::vector<at::Tensor>& ids,
                 const std::vector<std::string>& image_ids, uint64_t seed, const CaptureSpec& spec) {
    return dynamic_cast<StableDiffusionBackbone&>(b).capture_ids(images, ids.at(0), image_ids, seed, spec);
  };
  return r;
}

BackboneKind sd_kind(SdVariant v) {
  BackboneKind k;
  k.kind = to_string(v);
  k.defaults = sd_defaults(v);
  k.load = [v](const std::optional<CheckpointFolder>& f, const BackboneOptions& o) -> std::unique_ptr<Backbone> {
    return std::make_unique<StableDiffusionBackbone>(*f, o, v);
  };
  k.layers = [v](const BackboneOptions& o, const std::optional<std::string>& folder) {
    return config_layers(v, o, folder);
  };
  k.memory = [v](const std::optional<std::string>& folder) { return sd_memory_model(v, folder); };
  k.token_ids = sd_token_replay();
  return k;
}

}  // namespace

BackboneKind sd15_backbone_kind() {
  BackboneKind k = sd_kind(SdVariant::sd15);
  k.description = "Stable Diffusion v1.5 (UNet2DConditionModel, CLIP-L, PNDM at t = 101)";
  k.detect_from_weights = [](const CheckpointFolder& f) { return sd1_family(f) && !linear_projection(f); };
  k.pipeline_classes = {"StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline"};
  return k;
}

BackboneKind sd21_backbone_kind() {
  BackboneKind k = sd_kind(SdVariant::sd21);
  k.description =
      "Stable Diffusion 2.1 768-v (UNet2DConditionModel with linear projections and upcast attention, OpenCLIP-H, "
      "v-prediction; Euler (linspace) at t = 99 as GDF's version '2-1')";
  k.detect_from_weights = [](const CheckpointFolder& f) {
    return sd1_family(f) && linear_projection(f) && v_prediction(f);
  };
  k.pipeline_classes = {"StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline"};
  return k;
}

BackboneKind sd21_base_backbone_kind() {
  BackboneKind k = sd_kind(SdVariant::sd21_base);
  k.description =
      "Stable Diffusion 2.1-base 512 (UNet2DConditionModel with linear projections, OpenCLIP-H, epsilon; "
      "Euler (linspace) at t = 99 as GDF's version '2-1')";
  k.detect_from_weights = [](const CheckpointFolder& f) {
    return sd1_family(f) && linear_projection(f) && !v_prediction(f);
  };
  k.pipeline_classes = {"StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline"};
  return k;
}

BackboneKind sdxl_backbone_kind() {
  BackboneKind k = sd_kind(SdVariant::sdxl);
  k.description = "SDXL base 1.0 (UNet2DConditionModel text_time, CLIP-L + OpenCLIP-bigG, Euler at t = 100)";
  k.detect_from_weights = [](const CheckpointFolder& f) {
    return unet_weights(f) && f.has_key("unet", "add_embedding.linear_1.weight");
  };
  k.pipeline_classes = {"StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline"};
  return k;
}

}  // namespace gb::bb
