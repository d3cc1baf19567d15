#include "harness/backbones/pixart_backbone.h"
#include "harness/backbones/memory_plan.h"

#include "harness/backbones/capture_steps.h"
#include "harness/backbones/image_preprocess.h"
#include "harness/backbones/json_config.h"
#include "harness/backbones/recorder.h"
#include "harness/backbones/sd_backbone.h"
#include "harness/core/errors.h"
#include "harness/core/trace.h"
#include "harness/core/log.h"
#include "harness/core/torch_compat.h"
#include "harness/text/t5_tokenizer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>

namespace gb::bb {

namespace fs = std::filesystem;

namespace {

// The paper's settings: fp16 on the GPU, t = 100; the checkpoint's native resolution (1024², Sigma-512: 512²)
// and its pipeline's T5 length (300, alpha: 120).
BackboneDefaults pixart_defaults(PixArtVariant v) {
  BackboneDefaults d;
  d.gpu_dtype = at::kHalf;
  d.image_size = v == PixArtVariant::sigma_512 ? 512 : 1024;
  d.timestep = 100;
  d.text_length = pixart_text_length(v);
  return d;
}

// PixArt's _text_preprocessing with clean_caption=False: lowercase and strip.
std::string pixart_prompt(const std::string& p) {
  std::string s = p;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto b = s.find_first_not_of(" \t\n\r\f\v");
  auto e = s.find_last_not_of(" \t\n\r\f\v");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

}  // namespace

const char* to_string(PixArtVariant v) {
  switch (v) {
    case PixArtVariant::sigma: return "pixart-sigma";
    case PixArtVariant::sigma_512: return "pixart-sigma-512";
    case PixArtVariant::alpha: return "pixart-alpha";
  }
  return "?";
}

int64_t pixart_text_length(PixArtVariant v) { return v == PixArtVariant::alpha ? 120 : 300; }

PixArtConfig pixart_default_config(PixArtVariant v) {
  switch (v) {
    case PixArtVariant::sigma: return PixArtConfig::sigma_xl_2_1024();
    case PixArtVariant::sigma_512: return PixArtConfig::sigma_xl_2_512();
    case PixArtVariant::alpha: return PixArtConfig::alpha_xl_2_1024_ms();
  }
  return PixArtConfig::sigma_xl_2_1024();
}

PixArtSigmaBackbone::PixArtSigmaBackbone(const CheckpointFolder& folder, const BackboneOptions& options,
                                         PixArtVariant variant)
    : variant_(variant),
      options_(options),
      device_(options.torch_device()),
      dtype_(options.resolve_dtype(pixart_defaults(variant).gpu_dtype)) {
  // No t5_int8 (registry: the paper ran PixArt's T5 in fp16 with `wo` in fp32).
  auto tcfg = PixArtConfig::from_json(folder.file("transformer"));
  auto vcfg = VaeConfig::from_json(folder.file("vae"));
  auto ecfg = T5Config::from_json(folder.file("text_encoder"));
  auto scfg = DpmSchedulerConfig::from_json(folder.file("scheduler", "scheduler_config.json"));
  if (vcfg.latent_channels != tcfg.in_channels)
    fail_file(folder.file("transformer"), "in_channels {} != VAE latent_channels {}", tcfg.in_channels,
              vcfg.latent_channels);
  if (ecfg.d_model != tcfg.caption_channels)
    fail_file(folder.file("transformer"), "caption_channels {} != T5 d_model {}", tcfg.caption_channels, ecfg.d_model);
  image_size_ = options.image_size.value_or(pixart_defaults(variant).image_size);
  const int64_t vae_scale = vcfg.scale_factor();
  if (image_size_ <= 0 || image_size_ % (vae_scale * tcfg.patch_size) != 0)
    fail("image size {} must be a positive multiple of {}", image_size_, vae_scale * tcfg.patch_size);
  plan_ = plan_pixart_noising(scfg, options.timestep.value_or(pixart_defaults(variant).timestep));

  transformer_ = load_component(folder.root(), "transformer", dtype_, device_, options.variant,
                                [&](const WeightStore& ws) { return std::make_unique<PixArtTransformer>(ws, tcfg); });
  // G-pix prepare_latents forces the VAE to fp32 whatever force_upcast says.
  vae_ = load_component(folder.root(), "vae", at::kFloat, device_, options.variant,
                        [&](const WeightStore& ws) { return std::make_unique<VaeEncoder>(vcfg, ws); });
  // T5 in the model dtype (fp16 in the paper), `wo` in fp32.
  t5_ = T5Encoder::load_for_backbone(folder.root(), "text_encoder", ecfg, dtype_, device_, options.variant,
                                     options.text_encoder == TextEncoderResidency::offload);
  pad_id_ = ecfg.pad_token_id;
  tokenizer_ = options.tokenizer;
  // The folder's T5 SentencePiece model (tokenizer/spiece.model), padded to the pipeline's 300 tokens.
  const fs::path spm = fs::path(folder.root()) / "tokenizer" / "spiece.model";
  if (!tokenizer_ && fs::is_regular_file(spm))
    tokenizer_ = text::T5Tokenizer::from_file(spm.string(), pixart_text_length(variant));
  for (const auto& l : list_layers()) layer_names_.insert(l.name);
}

int64_t PixArtSigmaBackbone::text_length() const {
  return tokenizer_ ? tokenizer_->max_length() : pixart_text_length(variant_);
}

std::vector<LayerInfo> PixArtSigmaBackbone::list_layers() const {
  const int64_t latent = image_size_ / vae_->config().scale_factor();
  return pixart_capture_layers(transformer_->config(), latent, latent, text_length());
}

const TextTokenizer& PixArtSigmaBackbone::tokenizer() const {
  if (!tokenizer_) fail("{}: no T5 tokenizer is attached to this backbone", kind());
  return *tokenizer_;
}

std::pair<at::Tensor, at::Tensor> PixArtSigmaBackbone::token_ids(const std::vector<std::string>& prompts) const {
  const auto& tok = tokenizer();
  std::vector<at::Tensor> ids, masks;
  for (const auto& p : prompts) {
    std::vector<int64_t> row, m;
    for (const auto& t : tok.encode(pixart_prompt(p))) {
      row.push_back(t.id);
      m.push_back(t.id == pad_id_ ? 0 : 1);  // padding="max_length": pads are the only zeros
    }
    ids.push_back(at::tensor(row, at::kLong));
    masks.push_back(at::tensor(m, at::kLong));
  }
  return {at::stack(ids), at::stack(masks)};
}

PixArtSigmaBackbone::Text PixArtSigmaBackbone::encode(const at::Tensor& ids, const at::Tensor& mask) {
  c10::InferenceMode guard;
  if (!t5_) throw std::logic_error(kind() + ": encode after the text encoder was released");
  Text text;
  text.mask = mask.to(device_, at::kLong);
  const at::Tensor dids = ids.to(device_, at::kLong);
  if (t5_->device() != device_) {  // offloaded: a device copy for this encode only
    const T5Encoder on_device = t5_->to(device_);
    text.t5 = on_device(dids, text.mask).to(dtype_);
  } else {
    text.t5 = (*t5_)(dids, text.mask).to(dtype_);
  }
  return text;
}

void PixArtSigmaBackbone::release_text_encoder() {
  t5_.reset();
  if (device_.is_cuda()) compat::cuda_empty_cache();
}

PromptConditioningCache::Rows PixArtSigmaBackbone::encode_rows(const std::vector<std::string>& prompts) {
  const auto [ids, mask] = token_ids(prompts);
  if (ids.size(1) != text_length())
    fail("{}: token ids have length {} but the captures are laid out for {}", kind(), ids.size(1), text_length());
  const Text t = encode(ids, mask);
  return {{"t5", t.t5}, {"mask", t.mask}};
}

PromptConditioningCache::Encoders PixArtSigmaBackbone::encoders() {
  return {t5_ != nullptr, [this](const std::vector<std::string>& p) { return encode_rows(p); },
          [this] { release_text_encoder(); }};
}

void PixArtSigmaBackbone::prepare_prompts(const std::vector<std::string>& prompts, int64_t batch_size) {
  text_cache_.prepare(prompts, batch_size, options_.text_encoder, encoders(), kind());
}

Capture PixArtSigmaBackbone::capture(const BackboneBatch& batch, const CaptureSpec& spec) {
  const auto [rows, text_s] =
      text_stage(batch, spec, layer_names_, kind(), text_cache_, options_.text_encoder, encoders(), device_);
  return capture_text(batch.images, Text{rows.at("t5"), rows.at("mask")}, batch.ids, batch.seed, spec, text_s);
}

Capture PixArtSigmaBackbone::capture_ids(const std::vector<at::Tensor>& images, const at::Tensor& ids,
                                         const at::Tensor& mask, const std::vector<std::string>& image_ids,
                                         uint64_t seed, const CaptureSpec& spec) {
  const int64_t b = static_cast<int64_t>(images.size());
  check_id_rows(ids, b, "token", kind());
  if (mask.sizes() != ids.sizes()) fail("{}: mask must match ids {}", kind(), shape_str(ids.sizes()));
  if (ids.size(1) != text_length())
    fail("{}: token ids have length {} but the captures are laid out for {}", kind(), ids.size(1), text_length());
  check_capture_keys(spec, layer_names_, kind());
  if (!t5_) fail("{}: the text encoder was freed (text_encoder: free); token-id replay needs it", kind());
  const auto [text, text_s] = timed_stage("text", device_, [&] {
    Text t = encode(ids, mask);
    if (options_.text_encoder == TextEncoderResidency::free) release_text_encoder();
    return t;
  });
  return capture_text(images, text, image_ids, seed, spec, text_s);
}

Capture PixArtSigmaBackbone::capture_text(const std::vector<at::Tensor>& images, const Text& text,
                                          const std::vector<std::string>& image_ids, uint64_t seed,
                                          const CaptureSpec& spec, double text_seconds) {
  c10::InferenceMode guard;
  Capture cap = begin_capture(images, image_ids, text_seconds, kind());
  const int64_t b = cap.batch_size;

  // The VAE is loaded in fp32 (see the constructor); its latents are cast to the model dtype.
  const EncodedImages z = vae_stage(cap, *vae_, images, image_ids, seed, image_size_, device_, at::kFloat, dtype_);

  PixArtInputs in;
  in.latents = plan_.apply(z.latents, z.noise);
  in.timestep = at::full({b}, plan_.timestep, at::TensorOptions().dtype(at::kLong).device(device_));
  in.encoder_hidden_states = text.t5;
  in.encoder_attention_mask = text.mask;
  add_micro_conditions(in, image_size_, image_size_);
  denoiser_stage(cap, spec, options_.store_dtype, device_, kind(),
                 [&](CaptureRecorder* rec) { return (*transformer_)(in, rec, !options_.skip_tail); });

  cap.inputs["input.latents"] = in.latents;
  cap.inputs["input.timestep"] = in.timestep;
  cap.inputs["input.encoder_hidden_states"] = in.encoder_hidden_states;
  cap.inputs["input.encoder_attention_mask"] = in.encoder_attention_mask;
  if (in.resolution.defined()) {
    cap.inputs["input.resolution"] = in.resolution;
    cap.inputs["input.aspect_ratio"] = in.aspect_ratio;
  }
  return cap;
}

void PixArtSigmaBackbone::add_micro_conditions(PixArtInputs& in, int64_t height, int64_t width) const {
  if (!transformer_->config().use_additional_conditions) return;
  // PixArtAlphaPipeline: torch.tensor([height, width]) and torch.tensor([float(height / width)]), repeated per
  // sample and cast to the prompt dtype.
  const int64_t b = in.latents.size(0);
  const auto opt = at::TensorOptions().dtype(at::kFloat).device(device_);
  in.resolution = at::tensor(std::vector<float>{static_cast<float>(height), static_cast<float>(width)}, opt)
                      .to(dtype_)
                      .unsqueeze(0)
                      .expand({b, 2})
                      .contiguous();
  in.aspect_ratio = at::full({b, 1}, static_cast<double>(height) / static_cast<double>(width), opt).to(dtype_);
}

at::Tensor PixArtSigmaBackbone::encode_text(const at::Tensor& ids, const at::Tensor& mask) {
  if (!t5_) fail("{}: the text encoder was freed (text_encoder: free)", kind());
  return encode(ids, mask).t5;
}

at::Tensor PixArtSigmaBackbone::denoise(const PixArtInputs& in, const CaptureSpec& spec, Capture& cap) const {
  c10::InferenceMode guard;
  return record_denoise(spec, layer_names_, kind(), options_.store_dtype, cap, in.latents.size(0),
                        [&](CaptureRecorder* rec) { return (*transformer_)(in, rec, true); });
}

namespace {

bool pixart_weights(const CheckpointFolder& f) {
  return f.has_key("transformer", "adaln_single.linear.weight") &&
         f.has_key("transformer", "caption_projection.linear_1.weight");
}

// The micro-condition embedders exist only in the 1024-MS alpha checkpoint; alpha and Sigma share everything else,
// so a folder without them is alpha only when model_index.json says so. Sigma 512 vs 1024: sample_size (the
// position table is computed, not stored).
bool alpha_weights(const CheckpointFolder& f) {
  return f.has_key("transformer", "adaln_single.emb.resolution_embedder.linear_1.weight") ||
         f.pipeline_class() == "PixArtAlphaPipeline";
}

int64_t transformer_sample_size(const CheckpointFolder& f) {
  return read_json_file(f.file("transformer")).value("sample_size", int64_t(128));
}

BackboneKind pixart_kind(PixArtVariant v) {
  BackboneKind k;
  k.kind = to_string(v);
  k.defaults = pixart_defaults(v);
  k.text_encoder_modes = {TextEncoderResidency::keep, TextEncoderResidency::offload, TextEncoderResidency::free};
  k.load = [v](const std::optional<CheckpointFolder>& f, const BackboneOptions& o) -> std::unique_ptr<Backbone> {
    return std::make_unique<PixArtSigmaBackbone>(*f, o, v);
  };
  k.layers = [v](const BackboneOptions& o, const std::optional<std::string>& folder) {
    PixArtConfig cfg = pixart_default_config(v);
    int64_t vae_levels = 4;
    if (folder) {
      CheckpointFolder f(*folder);
      cfg = PixArtConfig::from_json(f.file("transformer"));
      vae_levels = static_cast<int64_t>(VaeConfig::from_json(f.file("vae")).block_out_channels.size());
    }
    const int64_t latent = o.image_size.value_or(pixart_defaults(v).image_size) / (int64_t(1) << (vae_levels - 1));
    return pixart_capture_layers(cfg, latent, latent, o.tokenizer ? o.tokenizer->max_length() : pixart_text_length(v));
  };
  k.memory = [v](const std::optional<std::string>& folder) { return pixart_memory_model(v, folder); };
  // Token-id replay: T5 ids padded with <pad> to the pipeline's length; the attention mask is 0 exactly on the
  // padding (T5 tokenizers never emit <pad> for text).
  k.token_ids.inputs = [v](const CheckpointFolder& f) {
    auto c = T5Config::from_json(f.file("text_encoder"));
    return std::vector<TokenIdInput>{
        {"--token-ids", "T5 text encoder", c.vocab_size, pixart_text_length(v), c.pad_token_id, true}};
  };
  k.token_ids.capture = [](Backbone& b, const std::vector<at::Tensor>& images, const std::vector<at::Tensor>& ids,
                           const std::vector<std::string>& image_ids, uint64_t seed, const CaptureSpec& spec) {
    auto& px = dynamic_cast<PixArtSigmaBackbone&>(b);
    return px.capture_ids(images, ids.at(0), ids.at(0).ne(px.pad_id()).to(at::kLong), image_ids, seed, spec);
  };
  return k;
}

}  // namespace

BackboneKind pixart_sigma_backbone_kind() {
  BackboneKind k = pixart_kind(PixArtVariant::sigma);
  k.description = "PixArt-Sigma XL-2 1024-MS (PixArtTransformer2DModel, T5 v1.1 XXL, DPM-Solver++ linspace at t = 100)";
  k.detect_from_weights = [](const CheckpointFolder& f) {
    return pixart_weights(f) && !alpha_weights(f) && transformer_sample_size(f) != 64;
  };
  k.pipeline_classes = {"PixArtSigmaPipeline"};
  return k;
}

BackboneKind pixart_sigma_512_backbone_kind() {
  BackboneKind k = pixart_kind(PixArtVariant::sigma_512);
  k.description =
      "PixArt-Sigma XL-2 512-MS (the paper's generation-experiment checkpoint; 512², 300 T5 tokens, t = 100)";
  k.detect_from_weights = [](const CheckpointFolder& f) {
    return pixart_weights(f) && !alpha_weights(f) && transformer_sample_size(f) == 64;
  };
  k.pipeline_classes = {"PixArtSigmaPipeline"};
  return k;
}

BackboneKind pixart_alpha_backbone_kind() {
  BackboneKind k = pixart_kind(PixArtVariant::alpha);
  k.description =
      "PixArt-alpha XL-2 1024-MS (micro-conditions resolution/aspect ratio, 120 T5 tokens, DPM-Solver++ at t = 100)";
  k.detect_from_weights = [](const CheckpointFolder& f) { return pixart_weights(f) && alpha_weights(f); };
  k.pipeline_classes = {"PixArtAlphaPipeline"};
  return k;
}

}  // namespace gb::bb
