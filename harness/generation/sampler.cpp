#include "harness/generation/sampler.h"

#include "harness/backbones/registry.h"
#include "harness/backbones/flux_backbone.h"
#include "harness/backbones/image_preprocess.h"
#include "harness/backbones/pixart_backbone.h"
#include "harness/backbones/sd3_backbone.h"
#include "harness/backbones/sd_backbone.h"
#include "harness/backbones/weights.h"
#include "harness/core/errors.h"
#include "harness/core/tokenizer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>

#include <chrono>

namespace gb::gen {

namespace {

using Clock = std::chrono::steady_clock;

// FluxPipeline._unpack_latents: [B, (h/2)(w/2), 4C] -> [B, C, h, w] (inverse of flux_pack_latents).
at::Tensor flux_unpack(const at::Tensor& packed, int64_t h, int64_t w) {
  const int64_t b = packed.size(0), c = packed.size(2);
  return packed.view({b, h / 2, w / 2, c / 4, 2, 2}).permute({0, 3, 1, 4, 2, 5}).reshape({b, c / 4, h, w});
}

// Tokens before the padding of each row: T5 rows end in </s> = 1, CLIP rows in their EOS, the largest id of the
// vocabulary (the row's maximum; SD1.5/SDXL pad with it, SD 2.x with "!" = 0).
std::vector<int64_t> real_token_counts(const at::Tensor& ids_in, bool t5) {
  auto ids = ids_in.to(at::kCPU, at::kLong).contiguous();
  std::vector<int64_t> out;
  for (int64_t r = 0; r < ids.size(0); ++r) {
    const int64_t* p = ids[r].data_ptr<int64_t>();
    const int64_t n = ids.size(1);
    const int64_t eos = t5 ? 1 : *std::max_element(p, p + n);
    int64_t k = 0;
    while (k < n && p[k] != eos) ++k;
    out.push_back(std::min(k + 1, n));
  }
  return out;
}

std::vector<GuidanceTokens> guidance_tokens(const PromptTokens& t, bool t5) {
  std::vector<GuidanceTokens> out;
  if (!t.ids.defined()) return out;
  auto ids = t.ids.to(at::kCPU, at::kLong).contiguous();
  auto real = real_token_counts(ids, t5);
  for (int64_t r = 0; r < ids.size(0); ++r) {
    GuidanceTokens g;
    g.text = static_cast<size_t>(r) < t.texts.size() ? t.texts[static_cast<size_t>(r)] : std::string();
    g.ids.assign(ids[r].data_ptr<int64_t>(), ids[r].data_ptr<int64_t>() + ids.size(1));
    g.real_tokens = real[static_cast<size_t>(r)];
    out.push_back(std::move(g));
  }
  return out;
}

// Text conditioning of one half (or the concatenated CFG batch).
struct TextBatch {
  at::Tensor states, mask, pooled;
  static TextBatch cat(const TextBatch& u, const TextBatch& c) {
    TextBatch t;
    t.states = at::cat({u.states, c.states});
    if (c.mask.defined()) t.mask = at::cat({u.mask, c.mask});
    if (c.pooled.defined()) t.pooled = at::cat({u.pooled, c.pooled});
    return t;
  }
};

}  // namespace

int64_t default_steps(const std::string& kind) {
  if (kind.rfind("pixart", 0) == 0) return 20;                  // PixArtSigmaPipeline, PixArtAlphaPipeline
  if (kind == "flux" || kind.rfind("sd35", 0) == 0) return 28;  // FluxPipeline, StableDiffusion3Pipeline
  return 50;
}

namespace {

// The models a sampler drives (Sampler::Impl), visible to the pieces of generate_tokens below.
struct SamplerModels {
  bb::StableDiffusionBackbone* sd = nullptr;
  bb::PixArtSigmaBackbone* pixart = nullptr;
  bb::FluxBackbone* flux = nullptr;
  bb::Sd3Backbone* sd3 = nullptr;
  double sd3_shift = 3.0;  // the scheduler's fixed shift (sd35-*)
  std::unique_ptr<bb::VaeDecoder> vae;
  at::Device device{at::kCPU};
  at::ScalarType dtype = at::kFloat, vae_dtype = at::kFloat;
  int64_t latent_channels = 4, latent = 64;
  bool sdxl = false;
};

// The text conditioning of one half.
TextBatch encode_half(const SamplerModels& m, const PromptTokens& t) {
  TextBatch out;
  if (m.sd) {
    auto c = m.sd->encode_text(t.ids);
    out.states = c.encoder_hidden_states;
    out.pooled = c.text_embeds;
  } else if (m.pixart) {
    out.mask = t.mask.to(m.device, at::kLong);
    out.states = m.pixart->encode_text(t.ids, t.mask);
  } else if (m.sd3) {  // StableDiffusion3Pipeline.encode_prompt, the negative prompt "" included
    auto c = m.sd3->encode(t.clip_ids, t.ids);
    out.states = c.states;
    out.pooled = c.pooled;
  } else {
    auto [s, p] = m.flux->encode_text(t.ids, t.clip_ids);
    out.states = s;
    out.pooled = p;
  }
  return out;
}

// The conditioning of the batch: `cond`'s, or with CFG the unconditional half first, then `cond`'s.
TextBatch encode_conditioning(const SamplerModels& m, const PromptTokens& cond, const PromptTokens& uncond,
                              bool cfg_batch) {
  TextBatch text = encode_half(m, cond);
  if (cfg_batch) {
    TextBatch u;
    if (m.sdxl) {  // force_zeros_for_empty_prompt: negative_prompt_embeds = zeros_like(prompt_embeds)
      u.states = at::zeros_like(text.states);
      u.pooled = at::zeros_like(text.pooled);
    } else {
      u = encode_half(m, uncond);
    }
    text = TextBatch::cat(u, text);
  }
  return text;
}

// One denoiser call at timestep t on x_in [n, C, h, w] (already scaled by the scheduler); `tt` the timestep as the
// scheduler's models take it; `flux_guidance` the distilled guidance value Flux embeds. Fills `cap` per `spec`.
at::Tensor denoise_once(const SamplerModels& m, const at::Tensor& x_in, const at::Tensor& tt, double t,
                        const TextBatch& text, const CaptureSpec& spec, Capture& cap, int64_t image_size,
                        double flux_guidance, const std::vector<int64_t>& shape) {
  const int64_t n = x_in.size(0);
  const auto dev = at::TensorOptions().device(m.device);
  if (m.sd) {
    bb::UNetInputs in;
    in.latents = x_in;
    in.timestep = tt;
    in.encoder_hidden_states = text.states;
    if (m.sdxl) {
      in.text_embeds = text.pooled;
      const double s = static_cast<double>(image_size);
      in.time_ids = at::tensor(std::vector<double>{s, s, 0, 0, s, s}, dev.dtype(at::kDouble))
                        .to(m.dtype)
                        .unsqueeze(0)
                        .expand({n, 6})
                        .contiguous();
    }
    return m.sd->denoise(in, spec, cap);
  }
  if (m.pixart) {
    bb::PixArtInputs in;
    in.latents = x_in;
    in.timestep = tt;
    in.encoder_hidden_states = text.states;
    in.encoder_attention_mask = text.mask;
    // PixArtAlphaPipeline's resolution / aspect-ratio micro-conditions (sample_size-128 transformers only).
    m.pixart->add_micro_conditions(in, image_size, image_size);
    return m.pixart->denoise(in, spec, cap);
  }
  if (m.sd3) {
    bb::Sd3Inputs in;
    in.latents = x_in;
    in.timestep = tt;  // t.expand(B): the scheduler's float32 σ·1000
    in.encoder_hidden_states = text.states;
    in.pooled_projections = text.pooled;
    return m.sd3->denoise(in, spec, cap);
  }
  const int64_t lat = shape[1];
  bb::FluxInputs in;
  in.latents = bb::flux_pack_latents(x_in);
  // timestep = t.expand(B).to(latents.dtype), fed as timestep / 1000
  in.timestep = at::full({n}, static_cast<float>(t), dev.dtype(at::kFloat)).to(m.dtype) / 1000;
  if (m.flux->transformer().config().guidance_embeds) in.guidance = at::full({n}, flux_guidance, dev.dtype(at::kFloat));
  in.encoder_hidden_states = text.states;
  in.pooled_projections = text.pooled;
  in.img_ids = bb::flux_latent_image_ids(lat / 2, shape[2] / 2, dev.dtype(at::kFloat)).to(m.dtype);
  in.txt_ids = at::zeros({text.states.size(1), 3}, dev.dtype(m.dtype));
  return flux_unpack(m.flux->denoise(in, spec, cap), lat, shape[2]);
}

}  // namespace

struct Sampler::Impl : SamplerModels {};

Sampler::Sampler(gb::Backbone& backbone, const std::string& weights, const SamplerOptions& options)
    : impl_(std::make_unique<Impl>()),
      kind_(backbone.kind()),
      scale_(options.guidance_scale),
      batch_invariant_(options.batch_invariant) {
  auto& m = *impl_;
  bb::CheckpointFolder folder(weights);
  const std::string sched_path = folder.file("scheduler", "scheduler_config.json");
  scheduler_ = bb::SchedulerConfig::from_json(
      sched_path, options.scheduler.empty() ? std::string() : bb::scheduler_class_for(options.scheduler));
  steps_ = options.steps > 0 ? options.steps : default_steps(kind_);
  auto vcfg = bb::VaeConfig::from_json(folder.file("vae"));
  // sd15, sd21, sd21-base, sdxl (StableDiffusionPipeline / XL); pixart-sigma, pixart-sigma-512, pixart-alpha
  // (PixArtSigmaPipeline / PixArtAlphaPipeline); flux (FluxPipeline); sd35-medium, sd35-large
  // (StableDiffusion3Pipeline). The kinds share their backbone classes.
  if ((m.sd = dynamic_cast<bb::StableDiffusionBackbone*>(&backbone))) {
    m.sdxl = kind_ == "sdxl";
    m.dtype = m.sd->dtype();
    image_size_ = m.sd->image_size();
    // StableDiffusionXLPipeline upcasts the VAE for decoding when it is fp16 and force_upcast.
    m.vae_dtype = (m.sdxl && m.dtype == at::kHalf && vcfg.force_upcast) ? at::kFloat : m.dtype;
  } else if ((m.pixart = dynamic_cast<bb::PixArtSigmaBackbone*>(&backbone))) {
    m.dtype = m.vae_dtype = m.pixart->dtype();
    image_size_ = m.pixart->image_size();
  } else if ((m.flux = dynamic_cast<bb::FluxBackbone*>(&backbone)) ||
             (m.sd3 = dynamic_cast<bb::Sd3Backbone*>(&backbone))) {
    m.dtype = m.vae_dtype = m.flux ? m.flux->dtype() : m.sd3->dtype();  // both pipelines decode in their dtype
    image_size_ = m.flux ? m.flux->image_size() : m.sd3->image_size();
    if (scheduler_.class_name != "FlowMatchEulerDiscreteScheduler")
      fail("{}: scheduler '{}' cannot drive a flow-matching model (flow-euler)", kind_, scheduler_.class_name);
    if (m.sd3) {
      if (scheduler_.use_dynamic_shifting)
        fail_file(sched_path, "{}: use_dynamic_shifting is not supported (SD3.5 uses a fixed shift)", kind_);
      m.sd3_shift = scheduler_.shift;
    }
  } else {
    fail(
        "generate: backbone '{}' cannot generate (sd15, sd21, sd21-base, sdxl, pixart-sigma, pixart-sigma-512, "
        "pixart-alpha, flux, sd35-medium, sd35-large)",
        kind_);
  }
  const bool flow = m.flux || m.sd3;
  if (!flow && scheduler_.class_name == "FlowMatchEulerDiscreteScheduler")
    fail("{}: flow-euler is for flow-matching models (flux, sd35-*)", kind_);
  m.device = m.sd ? m.sd->device() : m.pixart ? m.pixart->device() : m.flux ? m.flux->device() : m.sd3->device();
  m.latent_channels = vcfg.latent_channels;
  m.latent = image_size_ / vcfg.scale_factor();
  m.vae = bb::load_component(folder.root(), "vae", m.vae_dtype, m.device, "",
                             [&](const bb::WeightStore& ws) { return std::make_unique<bb::VaeDecoder>(vcfg, ws); });
}

Sampler::~Sampler() = default;

std::vector<int64_t> Sampler::latent_shape() const { return {impl_->latent_channels, impl_->latent, impl_->latent}; }

at::Tensor Sampler::initial_noise(uint64_t seed, const std::string& id) const {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(bb::noise_seed(seed, id));
  return at::randn(latent_shape(), gen, at::TensorOptions().dtype(at::kFloat));
}

PromptTokens Sampler::tokenize(const std::vector<std::string>& prompts) const {
  const auto& m = *impl_;
  PromptTokens t;
  t.texts = prompts;
  if (m.sd) {
    t.ids = token_id_rows(m.sd->tokenizer(), prompts);
  } else if (m.pixart) {
    auto [ids, mask] = m.pixart->token_ids(prompts);
    t.ids = ids;
    t.mask = mask;
  } else if (m.sd3) {
    auto [clip, t5] = m.sd3->token_ids(prompts);
    t.ids = t5;
    t.clip_ids = clip;
  } else {
    t.ids = token_id_rows(m.flux->tokenizer(), prompts);
    if (!m.flux->clip_tokenizer())
      fail("flux: no CLIP tokenizer (tokenizer/vocab.json + merges.txt) for the pooled vector");
    t.clip_ids = token_id_rows(*m.flux->clip_tokenizer(), prompts);
  }
  return t;
}

at::Tensor Sampler::generate(const std::vector<std::string>& prompts, const at::Tensor& latents, Guidance& guidance) {
  if (batch_invariant_ && prompts.size() > 1 && latents.dim() > 0 &&
      latents.size(0) == static_cast<int64_t>(prompts.size())) {
    std::vector<at::Tensor> images, finals;
    for (size_t i = 0; i < prompts.size(); ++i) {
      images.push_back(generate({prompts[i]}, latents.narrow(0, static_cast<int64_t>(i), 1), guidance));
      finals.push_back(last_latents_);
    }
    last_latents_ = at::cat(finals);
    return at::cat(images);
  }
  auto cond = tokenize(prompts);
  PromptTokens uncond;
  if (guidance.needs_uncond()) uncond = tokenize(std::vector<std::string>(prompts.size(), ""));
  return generate_tokens(cond, uncond, latents, guidance);
}

at::Tensor Sampler::generate_tokens(const PromptTokens& cond, const PromptTokens& uncond, const at::Tensor& latents,
                                    Guidance& guidance) {
  c10::InferenceMode inference;
  auto& m = *impl_;
  const int64_t b = cond.ids.size(0);
  const auto shape = latent_shape();
  if (latents.dim() != 4 || latents.size(0) != b || latents.size(1) != shape[0] || latents.size(2) != shape[1] ||
      latents.size(3) != shape[2])
    fail("{}: initial latents must be [{}, {}, {}, {}], got {}", kind_, b, shape[0], shape[1], shape[2],
         bb::shape_str(latents.sizes()));
  const bool cfg_batch = guidance.needs_uncond();
  if (cfg_batch && !uncond.ids.defined() && !m.sdxl) fail("{}: the unconditional tokens are missing", kind_);
  const bool t5 = !m.sd;
  const bool flow = m.flux || m.sd3;
  const auto dev = at::TensorOptions().device(m.device);

  // ---- text ----
  auto t0 = Clock::now();
  const TextBatch text = encode_conditioning(m, cond, uncond, cfg_batch);
  seconds_["text"] += bb::seconds_since(t0, m.device);

  GuidanceStep gstep;
  gstep.count = steps_;
  gstep.scale = scale_;
  gstep.backbone = kind_;
  gstep.cond = guidance_tokens(cond, t5);
  if (cfg_batch) gstep.uncond = guidance_tokens(uncond, t5);
  const CaptureSpec spec = guidance.capture_spec();

  // ---- scheduler ----
  auto sched = bb::make_sampling_scheduler(scheduler_);
  const int64_t lat = shape[1];
  if (m.sd3)  // StableDiffusion3Pipeline passes no sigmas: the scheduler's own spacing, fixed shift
    sched->set_sigmas(bb::flow_match_default_sigmas(steps_, scheduler_.num_train_timesteps, m.sd3_shift));
  else sched->set_timesteps(steps_, m.flux ? bb::flow_match_mu((lat / 2) * (shape[2] / 2), scheduler_) : 0.0);
  at::Tensor x = latents.to(m.device, m.dtype);
  if (!flow) x = x * sched->init_noise_sigma().to(m.device);

  const auto& ts = sched->timesteps();
  for (size_t i = 0; i < ts.size(); ++i) {
    const double t = ts[i];
    at::Tensor x_in = cfg_batch ? at::cat({x, x}) : x;
    x_in = sched->scale_model_input(x_in);
    const int64_t n = x_in.size(0);
    at::Tensor tt = sched->integer_timesteps() ? at::full({n}, static_cast<int64_t>(t), dev.dtype(at::kLong))
                                               : at::full({n}, static_cast<float>(t), dev.dtype(at::kFloat));
    Capture cap;
    t0 = Clock::now();
    const at::Tensor pred =
        denoise_once(m, x_in, tt, t, text, spec, cap, image_size_, cfg_batch ? 1.0 : gstep.scale, shape);
    seconds_["denoiser"] += bb::seconds_since(t0, m.device);
    t0 = Clock::now();
    at::Tensor eps = pred;
    if (cfg_batch) {
      gstep.index = static_cast<int64_t>(i);
      gstep.timestep = t;
      auto halves = pred.chunk(2);
      eps = guidance.combine(halves[0], halves[1], cap, gstep);
    }
    // PixArt: guidance on all channels, then the learned-sigma half dropped (PixArtSigmaPipeline's order).
    if (m.pixart && eps.size(1) / 2 == m.latent_channels) eps = eps.chunk(2, 1)[0];
    seconds_["guidance"] += bb::seconds_since(t0, m.device);
    t0 = Clock::now();
    x = sched->step(eps, x);
    seconds_["scheduler"] += bb::seconds_since(t0, m.device);
  }
  last_latents_ = x;

  // ---- decode ----
  t0 = Clock::now();
  auto z = m.vae->unscale(x.to(m.vae_dtype));
  auto images = bb::vae_postprocess_uint8(m.vae->decode(z));
  seconds_["vae"] += bb::seconds_since(t0, m.device);
  return images;
}

}  // namespace gb::gen
