#include "harness/backbones/sd3_backbone.h"

#include "harness/backbones/capture_steps.h"
#include "harness/backbones/image_preprocess.h"
#include "harness/backbones/json_config.h"
#include "harness/backbones/memory_plan.h"
#include "harness/backbones/recorder.h"
#include "harness/backbones/schedulers.h"
#include "harness/backbones/sd_backbone.h"
#include "harness/core/errors.h"
#include "harness/core/tokenizer.h"
#include "harness/core/log.h"
#include "harness/core/torch_compat.h"
#include "harness/core/trace.h"
#include "harness/text/joint_tokenizer.h"
#include "harness/text/t5_tokenizer.h"

#include <c10/core/InferenceMode.h>

#include <chrono>
#include <cmath>
#include <filesystem>

namespace gb::bb {

namespace fs = std::filesystem;

const char* to_string(Sd3Variant v) { return v == Sd3Variant::medium ? "sd35-medium" : "sd35-large"; }

Sd3Config sd3_default_config(Sd3Variant v) {
  return v == Sd3Variant::medium ? Sd3Config::sd35_medium() : Sd3Config::sd35_large();
}

namespace {

// The defaults (docs/backbones.md "SD3.5"): bf16 on the GPU (the model cards' torch_dtype; the T5 states
// overflow fp16), 1024² (sample_size 128 x 8), t = 150 as the paper chose for Flux, 77 CLIP + 256 T5 tokens.
BackboneDefaults sd3_defaults() {
  BackboneDefaults d;
  d.gpu_dtype = at::kBFloat16;
  d.image_size = 1024;
  d.timestep = kSd3DefaultT;
  d.text_length = kSd3ClipLength + kSd3T5Length;
  return d;
}

}  // namespace

Sd3Noising plan_sd3_noising(const FlowMatchSchedulerConfig& c, int64_t paper_t, int64_t steps) {
  if (steps < 1) fail("SD3: num_inference_steps must be positive");
  if (c.use_dynamic_shifting) fail("SD3: use_dynamic_shifting is not supported (SD3.5 uses a fixed shift)");
  const int64_t n = c.num_train_timesteps;
  Sd3Noising p;
  p.sigmas = flow_match_default_sigmas(steps, n, c.shift);
  // StableDiffusion3Img2ImgPipeline.get_timesteps.
  const double strength = static_cast<double>(paper_t) / 1000.0;
  const double init = std::min(static_cast<double>(steps) * strength, static_cast<double>(steps));
  p.t_start = static_cast<int64_t>(std::max(static_cast<double>(steps) - init, 0.0));
  if (paper_t <= 0 || p.t_start >= steps)
    fail("SD3: timestep {} over {} steps leaves no denoising step (the pipeline raises)", paper_t, steps);
  p.sigma = p.sigmas[static_cast<size_t>(p.t_start)];
  p.timestep = p.sigma * static_cast<float>(n);
  return p;
}

at::Tensor Sd3Noising::apply(const at::Tensor& z, const at::Tensor& noise) const {
  at::Tensor s = at::full({}, sigma, z.options());
  return s * noise.to(z.scalar_type()) + (1.0 - s) * z;
}

Sd3Backbone::Sd3Backbone(const CheckpointFolder& folder, const BackboneOptions& options, Sd3Variant variant)
    : variant_(variant),
      options_(options),
      device_(options.torch_device()),
      dtype_(options.resolve_dtype(sd3_defaults().gpu_dtype)) {
  // text_encoder: keep, offload (T5 parked in host memory) or free; no t5_int8 (registry schema, check_options).
  auto tcfg = Sd3Config::from_json(folder.file("transformer"));
  auto vcfg = VaeConfig::from_json(folder.file("vae"));
  auto lcfg = ClipTextConfig::from_json(folder.file("text_encoder"));
  auto gcfg = ClipTextConfig::from_json(folder.file("text_encoder_2"));
  auto ecfg = T5Config::from_json(folder.file("text_encoder_3"));
  auto scfg = FlowMatchSchedulerConfig::from_json(folder.file("scheduler", "scheduler_config.json"));
  const std::string tpath = folder.file("transformer");
  if (!lcfg.with_projection || !gcfg.with_projection)
    fail_file(tpath, "SD3 needs CLIPTextModelWithProjection text encoders (text_encoder, text_encoder_2)");
  if (vcfg.latent_channels != tcfg.in_channels)
    fail_file(tpath, "in_channels {} != VAE latent_channels {}", tcfg.in_channels, vcfg.latent_channels);
  if (ecfg.d_model != tcfg.joint_attention_dim)
    fail_file(tpath, "joint_attention_dim {} != T5 d_model {}", tcfg.joint_attention_dim, ecfg.d_model);
  if (lcfg.hidden_size + gcfg.hidden_size > tcfg.joint_attention_dim)
    fail_file(tpath, "CLIP widths {} + {} exceed joint_attention_dim {}", lcfg.hidden_size, gcfg.hidden_size,
              tcfg.joint_attention_dim);
  if (lcfg.projection_dim + gcfg.projection_dim != tcfg.pooled_projection_dim)
    fail_file(tpath, "pooled_projection_dim {} != {} + {} (CLIP projections)", tcfg.pooled_projection_dim,
              lcfg.projection_dim, gcfg.projection_dim);
  if (!vcfg.shift_factor) fail_file(folder.file("vae"), "SD3's VAE needs shift_factor");
  const int64_t vae_scale = vcfg.scale_factor();
  image_size_ = options.image_size.value_or(sd3_defaults().image_size);
  if (image_size_ <= 0 || image_size_ % (vae_scale * tcfg.patch_size) != 0)
    fail("image size {} must be a positive multiple of {}", image_size_, vae_scale * tcfg.patch_size);
  plan_ = plan_sd3_noising(scfg, options.timestep.value_or(sd3_defaults().timestep));

  const auto load = [&](const char* component, auto make) {
    return load_component(folder.root(), component, dtype_, device_, options.variant, make);
  };
  transformer_ = load("transformer", [&](const WeightStore& ws) { return std::make_unique<Sd3Transformer>(ws, tcfg); });
  // StableDiffusion3Img2ImgPipeline runs the VAE in the pipeline dtype.
  vae_ = load("vae", [&](const WeightStore& ws) { return std::make_unique<VaeEncoder>(vcfg, ws); });
  clip_l_ = load("text_encoder", [&](const WeightStore& ws) { return std::make_unique<ClipTextModel>(lcfg, ws); });
  clip_g_ = load("text_encoder_2", [&](const WeightStore& ws) { return std::make_unique<ClipTextModel>(gcfg, ws); });
  clip_positions_ = lcfg.max_position_embeddings;
  clip_eos_ = lcfg.vocab_size - 1;
  // T5 (the largest encoder by far) is the one text_encoder: offload parks; CLIP-L and CLIP-G stay on the device,
  // as Flux's CLIP.
  t5_ = T5Encoder::load_for_backbone(folder.root(), "text_encoder_3", ecfg, dtype_, device_, options.variant,
                                     options.text_encoder == TextEncoderResidency::offload);

  t5_tokenizer_ = options.tokenizer;
  const fs::path root(folder.root());
  const fs::path spm = root / "tokenizer_3" / "spiece.model";
  if (!t5_tokenizer_ && fs::is_regular_file(spm))
    t5_tokenizer_ = text::T5Tokenizer::from_file(spm.string(), kSd3T5Length);
  clip_tokenizer_ = load_folder_tokenizer(folder, lcfg.max_position_embeddings);
  rebuild_tokenizer();
  for (const auto& l : list_layers()) layer_names_.insert(l.name);
}

void Sd3Backbone::set_clip_tokenizer(std::shared_ptr<const TextTokenizer> t) {
  clip_tokenizer_ = std::move(t);
  rebuild_tokenizer();
}

void Sd3Backbone::rebuild_tokenizer() {
  // CLIP tokens, then T5 tokens: the joint text sequence the transformer attends to.
  tokenizer_ = clip_tokenizer_ && t5_tokenizer_
                   ? std::make_shared<text::JointTokenizer>(
                         std::vector<std::shared_ptr<const TextTokenizer>>{clip_tokenizer_, t5_tokenizer_})
                   : nullptr;
}

int64_t Sd3Backbone::text_length() const {
  return (clip_tokenizer_ ? clip_tokenizer_->max_length() : clip_positions_) +
         (t5_tokenizer_ ? t5_tokenizer_->max_length() : kSd3T5Length);
}

std::vector<LayerInfo> Sd3Backbone::list_layers() const {
  const int64_t g = image_size_ / vae_->config().scale_factor() / transformer_->config().patch_size;
  return sd3_capture_layers(transformer_->config(), g * g, text_length());
}

const TextTokenizer& Sd3Backbone::tokenizer() const {
  if (!tokenizer_)
    fail("{}: no tokenizers (the folder needs tokenizer/ with vocab.json + merges.txt and tokenizer_3/spiece.model)",
         kind());
  return *tokenizer_;
}

Sd3Backbone::Text Sd3Backbone::encode(const at::Tensor& clip_ids_in, const at::Tensor& t5_ids) const {
  c10::InferenceMode guard;
  if (!t5_) fail("{}: the text encoders were freed (text_encoder: free)", kind());
  const at::Tensor ids = clip_ids_in.to(device_, at::kLong);
  // tokenizer_2 pads with "!" (0) where tokenizer pads with EOS (the last vocabulary id); the BPE is the same.
  auto after_first_eos = ids.eq(clip_eos_).to(at::kInt).cumsum(1).gt(0);
  auto first_eos = after_first_eos.to(at::kInt).cumsum(1).eq(1) & after_first_eos;
  auto ids2 = ids.masked_fill(after_first_eos & first_eos.logical_not(), 0);
  auto l = clip_l_->forward(ids, true);
  auto g = clip_g_->forward(ids2, true);
  const at::Tensor tids = t5_ids.to(device_, at::kLong);
  at::Tensor t5;                   // no attention mask, as the pipeline
  if (t5_->device() != device_) {  // offloaded: a device copy for this encode only
    const T5Encoder on_device = t5_->to(device_);
    t5 = on_device(tids).to(dtype_);
  } else {
    t5 = (*t5_)(tids).to(dtype_);
  }
  at::Tensor clip = at::cat({l.penultimate, g.penultimate}, -1).to(dtype_);
  clip = at::constant_pad_nd(clip, {0, t5.size(-1) - clip.size(-1)});
  Text text;
  text.states = at::cat({clip, t5}, 1);
  text.pooled = at::cat({l.text_embeds, g.text_embeds}, -1).to(dtype_);
  return text;
}

std::pair<at::Tensor, at::Tensor> Sd3Backbone::token_ids(const std::vector<std::string>& prompts) const {
  tokenizer();  // the error when a tokenizer is missing
  return {token_id_rows(*clip_tokenizer_, prompts), token_id_rows(*t5_tokenizer_, prompts)};
}

at::Tensor Sd3Backbone::denoise(const Sd3Inputs& in, const CaptureSpec& spec, Capture& cap) const {
  c10::InferenceMode guard;
  return record_denoise(spec, layer_names_, kind(), options_.store_dtype, cap, in.latents.size(0),
                        [&](CaptureRecorder* rec) { return (*transformer_)(in, rec, true); });
}

void Sd3Backbone::release_text_encoders() {
  t5_.reset();
  clip_l_.reset();
  clip_g_.reset();
  if (device_.is_cuda()) compat::cuda_empty_cache();
}

PromptConditioningCache::Rows Sd3Backbone::encode_rows(const std::vector<std::string>& prompts) const {
  tokenizer();  // the error when a tokenizer is missing
  const Text t = encode(token_id_rows(*clip_tokenizer_, prompts), token_id_rows(*t5_tokenizer_, prompts));
  return {{"states", t.states}, {"pooled", t.pooled}};
}

PromptConditioningCache::Encoders Sd3Backbone::encoders() {
  return {t5_ != nullptr, [this](const std::vector<std::string>& p) { return encode_rows(p); },
          [this] { release_text_encoders(); }};
}

void Sd3Backbone::prepare_prompts(const std::vector<std::string>& prompts, int64_t batch_size) {
  if (t5_ && options_.text_encoder == TextEncoderResidency::free) tokenizer();  // the error when a tokenizer is missing
  text_cache_.prepare(prompts, batch_size, options_.text_encoder, encoders(), kind());
}

Capture Sd3Backbone::capture(const BackboneBatch& batch, const CaptureSpec& spec) {
  const auto [rows, text_s] =
      text_stage(batch, spec, layer_names_, kind(), text_cache_, options_.text_encoder, encoders(), device_);
  return capture_text(batch.images, Text{rows.at("states"), rows.at("pooled")}, batch.ids, batch.seed, spec, text_s);
}

Capture Sd3Backbone::capture_ids(const std::vector<at::Tensor>& images, const at::Tensor& clip_ids,
                                 const at::Tensor& t5_ids, const std::vector<std::string>& image_ids, uint64_t seed,
                                 const CaptureSpec& spec) {
  const int64_t b = static_cast<int64_t>(images.size());
  check_id_rows(clip_ids, b, "CLIP", kind());
  check_id_rows(t5_ids, b, "T5", kind());
  if (clip_ids.size(1) + t5_ids.size(1) != text_length())
    fail("{}: {} CLIP + {} T5 ids, but the captures are laid out for {} text tokens", kind(), clip_ids.size(1),
         t5_ids.size(1), text_length());
  check_capture_keys(spec, layer_names_, kind());
  if (!t5_) fail("{}: the text encoders were freed (text_encoder: free); token-id replay needs them", kind());
  auto t0 = std::chrono::steady_clock::now();
  const Text text = encode(clip_ids, t5_ids);
  if (options_.text_encoder == TextEncoderResidency::free) release_text_encoders();
  return capture_text(images, text, image_ids, seed, spec, seconds_since(t0, device_));
}

Capture Sd3Backbone::capture_text(const std::vector<at::Tensor>& images, const Text& text,
                                  const std::vector<std::string>& image_ids, uint64_t seed, const CaptureSpec& spec,
                                  double text_seconds) {
  c10::InferenceMode guard;
  Capture cap = begin_capture(images, image_ids, text_seconds, kind());
  const int64_t b = cap.batch_size;
  const EncodedImages z = vae_stage(cap, *vae_, images, image_ids, seed, image_size_, device_, dtype_, dtype_);

  Sd3Inputs in;
  in.latents = plan_.apply(z.latents, z.noise);
  in.timestep = at::full({b}, plan_.timestep, at::TensorOptions().dtype(at::kFloat).device(device_));
  in.encoder_hidden_states = text.states;
  in.pooled_projections = text.pooled;
  denoiser_stage(cap, spec, options_.store_dtype, device_, kind(),
                 [&](CaptureRecorder* rec) { return (*transformer_)(in, rec, !options_.skip_tail); });
  cap.inputs["input.latents"] = in.latents;
  cap.inputs["input.timestep"] = in.timestep;
  cap.inputs["input.encoder_hidden_states"] = in.encoder_hidden_states;
  cap.inputs["input.pooled_projections"] = in.pooled_projections;
  return cap;
}

namespace {

bool sd3_weights(const CheckpointFolder& f) {
  return f.has_key("transformer", "context_embedder.weight") && f.has_key("transformer", "pos_embed.pos_embed") &&
         f.has_key("transformer", "transformer_blocks.0.attn.add_q_proj.weight");
}

BackboneKind sd3_kind(Sd3Variant v) {
  BackboneKind k;
  k.kind = to_string(v);
  k.defaults = sd3_defaults();
  k.text_encoder_modes = {TextEncoderResidency::keep, TextEncoderResidency::offload, TextEncoderResidency::free};
  k.pipeline_classes = {"StableDiffusion3Pipeline", "StableDiffusion3Img2ImgPipeline"};
  k.load = [v](const std::optional<CheckpointFolder>& f, const BackboneOptions& o) -> std::unique_ptr<Backbone> {
    return std::make_unique<Sd3Backbone>(*f, o, v);
  };
  k.layers = [v](const BackboneOptions& o, const std::optional<std::string>& folder) {
    Sd3Config cfg = sd3_default_config(v);
    int64_t vae_levels = 4, clip_len = kSd3ClipLength;
    if (folder) {
      CheckpointFolder f(*folder);
      cfg = Sd3Config::from_json(f.file("transformer"));
      vae_levels = static_cast<int64_t>(VaeConfig::from_json(f.file("vae")).block_out_channels.size());
      clip_len = ClipTextConfig::from_json(f.file("text_encoder")).max_position_embeddings;
    }
    const int64_t scale = int64_t(1) << (vae_levels - 1);
    const int64_t g = o.image_size.value_or(sd3_defaults().image_size) / scale / cfg.patch_size;
    // The key axis: the CLIP positions, then T5's (BackboneOptions::tokenizer is the T5 tokenizer).
    return sd3_capture_layers(cfg, g * g, clip_len + (o.tokenizer ? o.tokenizer->max_length() : kSd3T5Length));
  };
  k.memory = [v](const std::optional<std::string>& folder) { return sd3_memory_model(v, folder); };
  // Token-id replay: T5 ids padded with <pad> to 256 (no mask) and CLIP-L ids padded with <|endoftext|> (the last
  // id) to 77; CLIP-G's are derived from them.
  k.token_ids.inputs = [](const CheckpointFolder& f) {
    return t5_clip_token_id_inputs(f, "text_encoder_3", kSd3T5Length);
  };
  k.token_ids.capture = [](Backbone& b, const std::vector<at::Tensor>& images, const std::vector<at::Tensor>& ids,
                           const std::vector<std::string>& image_ids, uint64_t seed, const CaptureSpec& spec) {
    return dynamic_cast<Sd3Backbone&>(b).capture_ids(images, ids.at(1), ids.at(0), image_ids, seed, spec);
  };
  return k;
}

}  // namespace

// Medium has the image-only attention (attn2) in its first blocks; Large has none.
BackboneKind sd35_medium_backbone_kind() {
  BackboneKind k = sd3_kind(Sd3Variant::medium);
  k.description =
      "Stable Diffusion 3.5 Medium (SD3Transformer2DModel MMDiT-X, CLIP-L + CLIP-G + T5-XXL, flow matching at "
      "strength 0.15 over 50 steps)";
  k.detect_from_weights = [](const CheckpointFolder& f) {
    return sd3_weights(f) && f.has_key("transformer", "transformer_blocks.0.attn2.to_q.weight");
  };
  return k;
}

BackboneKind sd35_large_backbone_kind() {
  BackboneKind k = sd3_kind(Sd3Variant::large);
  k.description =
      "Stable Diffusion 3.5 Large (SD3Transformer2DModel MMDiT, CLIP-L + CLIP-G + T5-XXL, flow matching at strength "
      "0.15 over 50 steps)";
  k.detect_from_weights = [](const CheckpointFolder& f) {
    // QK RMSNorm without dual attention (SD3 Medium 3.0 has neither and is not a registered kind).
    return sd3_weights(f) && !f.has_key("transformer", "transformer_blocks.0.attn2.to_q.weight") &&
           f.has_key("transformer", "transformer_blocks.0.attn.norm_q.weight");
  };
  return k;
}

}  // namespace gb::bb
