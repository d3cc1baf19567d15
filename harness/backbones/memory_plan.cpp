#include "harness/backbones/memory_plan.h"

#include "harness/backbones/memory_parts.h"
#include "harness/backbones/recorder.h"
#include "harness/backbones/registry.h"
#include "harness/core/errors.h"
#include "harness/core/strings.h"
#include "harness/io/safetensors.h"

#include <algorithm>
#include <map>
#include <set>

namespace gb::bb {

namespace {

// Stands in for a tokenizer where only the padded length matters (the `layers` functions read max_length()).
class LengthOnlyTokenizer : public TextTokenizer {
 public:
  explicit LengthOnlyTokenizer(int64_t n) : n_(n) {}
  std::string name() const override { return "length-only"; }
  int64_t max_length() const override { return n_; }
  std::vector<TextToken> encode(const std::string&) const override {
    throw std::logic_error("memory plan: LengthOnlyTokenizer cannot encode");
  }

 private:
  int64_t n_;
};

// The kind's memory model (UserError for an unknown kind or one without a model).
std::unique_ptr<MemoryModel> model_of(const std::string& kind, const std::optional<std::string>& folder) {
  const auto& k = backbone_kind(kind);  // UserError listing the known kinds
  if (!k.memory) {
    std::string planned;
    for (const auto& x : backbone_kinds())
      if (x.memory) planned += (planned.empty() ? "" : ", ") + x.kind;
    fail("memory planning is not available for backbone '{}' ({})", kind, planned);
  }
  return k.memory(folder);
}

std::vector<CaptureBytes> captures_of(const std::string& kind, const MemoryModel& model,
                                      const std::vector<LayerInfo>& layers, const CaptureSpec& spec, int64_t batch,
                                      at::ScalarType store, at::ScalarType dtype) {
  std::map<std::string, std::vector<int64_t>> shapes = mem::layer_shapes(layers);
  std::set<std::string> known;
  for (const auto& l : layers) known.insert(l.name);
  check_capture_keys(spec, known, kind);  // recorder.h: the load's own message
  std::vector<CaptureBytes> out;
  for (const auto& l : layers) {  // forward order
    if (!spec.wants(l.name)) continue;
    CaptureBytes c;
    c.key = l.name;
    c.shape = l.shape;
    const auto parts = parse_capture_key(l.name);
    const bool is_map = parts && parts->tensor == CaptureTensor::map;
    if (spec.self_map_head_mean && is_map && is_self_block(parts->block)) c.shape[0] = 1;
    const bool cross_mean = spec.cross_map_head_mean && is_map && ends_with(parts->block, "-cross");
    if (cross_mean) c.shape[0] = 1;  // gb::head_average_maps: fp32 [B, 1, P, T]
    c.dtype = cross_mean ? at::kFloat : store;
    c.shape.insert(c.shape.begin(), batch);
    int64_t n = 1;
    for (auto x : c.shape) n *= x;
    c.bytes = n * mem::esize(c.dtype);
    if (ends_with(l.name, "special-weight")) {
      // record_weight: the resident weight expanded over the batch (no copy) unless cast to the store dtype.
      c.bytes = store == dtype ? 0 : l.shape[0] * l.shape[1] * mem::esize(store);
    } else {
      c.bytes = model.stored_bytes(l, layers, batch, store, dtype, c.bytes);
    }
    out.push_back(std::move(c));
  }
  return out;
}

// The denoiser phase: units in forward order; captures recorded by earlier units are alive, the current unit's
// own maps are inside its transient.
MemoryPhase denoiser_phase(const MemoryModel& model, const MemoryPlan& plan, const std::vector<LayerInfo>& layers,
                           const CaptureSpec& spec) {
  MemoryPhase den;
  den.name = "denoiser";
  const int64_t B = plan.batch_size, S = plan.image_size;
  auto persistent = model.denoiser_persistent(B, S, plan.dtype);
  auto units = model.denoiser_units(layers, spec, B, S, plan.dtype, plan.store_dtype);
  std::map<std::string, int64_t> unit_bytes;
  for (const auto& cb : plan.captures) unit_bytes[model.unit_of_key(cb.key)] += cb.bytes;
  int64_t before = 0, best = -1;
  for (const auto& u : units) {
    const int64_t total = before + mem::sum(u.transient);
    if (total > best) {
      best = total;
      den.captures = before;
      den.at = u.id;
      den.transient = u.transient;
    }
    before += unit_bytes[u.id];
  }
  if (before >= best) {  // after the last unit every capture is alive
    den.captures = before;
    den.at = "end of the pass (all captures alive)";
    den.transient.clear();
  }
  for (const auto& t : persistent) den.transient.push_back(t);
  return den;
}

}  // namespace

std::string MemoryModel::unit_of_key(const std::string& key) const { return block_of(key); }

int64_t MemoryPhase::transient_bytes() const { return mem::sum(transient); }

int64_t MemoryPlan::weight_bytes() const {
  int64_t n = 0;
  for (const auto& w : weights) n += w.bytes;
  return n;
}

int64_t MemoryPlan::capture_bytes() const {
  int64_t n = 0;
  for (const auto& c : captures) n += c.bytes;
  return n;
}

const MemoryPhase& MemoryPlan::peak_phase() const {
  const MemoryPhase* best = &phases.at(0);
  for (const auto& p : phases)
    if (p.total() > best->total()) best = &p;
  return *best;
}

MemoryPlanOptions memory_plan_options(const std::string& kind, const std::string& weights, const BackboneOptions& o) {
  MemoryPlanOptions mo;
  mo.kind = kind;
  mo.device = o.device;
  if (!weights.empty()) mo.folder = weights;
  mo.dtype = o.dtype;
  if (!mo.dtype && !at::Device(o.device).is_cuda()) mo.dtype = at::kFloat;  // BackboneOptions::resolve_dtype
  mo.store_dtype = o.store_dtype;
  mo.image_size = o.image_size;
  mo.text_encoder = o.text_encoder;
  mo.t5_int8 = o.t5_int8;
  return mo;
}

std::vector<ComponentWeights> plan_weights(const std::string& kind, const std::optional<std::string>& folder,
                                           at::ScalarType dtype, bool t5_int8) {
  auto model = model_of(kind, folder);
  if (t5_int8 && !backbone_kind(kind).takes("t5_int8")) {
    BackboneOptions o;
    o.t5_int8 = true;
    check_options(backbone_kind(kind), o);  // the one message for an option a kind does not take
  }
  return model->weights(dtype, t5_int8);
}

std::vector<CaptureBytes> plan_captures(const std::string& kind, const std::vector<LayerInfo>& layers,
                                        const CaptureSpec& spec, int64_t batch, at::ScalarType store,
                                        at::ScalarType dtype) {
  return captures_of(kind, *model_of(kind, std::nullopt), layers, spec, batch, store, dtype);
}

ComponentWeights fp32_component(const std::string& name, const std::string& safetensors_path) {
  const SafetensorsFile file(safetensors_path);
  ComponentWeights c;
  c.name = name;
  c.storage = "fp32";
  for (const auto& key : file.keys()) {
    int64_t n = 1;
    for (const int64_t d : file.info(key).shape) n *= d;
    c.params += n;
  }
  c.bytes = 4 * c.params;
  return c;
}

namespace {
// The capturable layers at `image_size` with the planned text length (set on `model` too).
std::vector<LayerInfo> planned_layers(const MemoryPlanOptions& o, MemoryModel& model, int64_t image_size) {
  BackboneOptions bo;
  bo.image_size = image_size;
  if (o.text_length) {
    if (*o.text_length <= 0) fail("text length must be positive, got {}", *o.text_length);
    model.set_text_length(*o.text_length);
    bo.tokenizer = std::make_shared<LengthOnlyTokenizer>(*o.text_length);
  }
  return backbone_kind(o.kind).layers(bo, o.folder);
}
}  // namespace

MemoryPlan plan_memory(const MemoryPlanOptions& o, int64_t batch) {
  if (batch <= 0) fail("batch size must be positive, got {}", batch);
  if (o.per_sample_forward) {
    // Sample b > 0 runs batch 1's forward while the stacked [batch, ...] captures (allocated after sample 0,
    // contiguous; a resident weight stays an alias) hold the finished samples.
    MemoryPlanOptions single = o;
    single.per_sample_forward = false;
    MemoryPlan plan = plan_memory(single, 1);
    if (batch == 1) return plan;
    auto model = model_of(o.kind, o.folder);
    const auto layers = planned_layers(o, *model, plan.image_size);
    plan.batch_size = batch;
    plan.captures = captures_of(o.kind, *model, layers, o.spec, batch, plan.store_dtype, plan.dtype);
    const int64_t stacked = plan.capture_bytes();
    for (auto& p : plan.phases) p.captures += stacked;
    return plan;
  }
  auto model = model_of(o.kind, o.folder);
  model->set_device(o.device);
  const BackboneKind& kind = backbone_kind(o.kind);
  MemoryPlan plan;
  plan.kind = o.kind;
  plan.batch_size = batch;
  plan.dtype = o.dtype.value_or(kind.defaults.gpu_dtype);
  if (plan.dtype != at::kFloat && plan.dtype != at::kHalf && plan.dtype != at::kBFloat16)
    fail("dtype must be fp32, fp16 or bf16");
  plan.store_dtype = o.store_dtype.value_or(plan.dtype);
  plan.vae_dtype = model->vae_dtype(plan.dtype);
  plan.image_size = o.image_size.value_or(kind.defaults.image_size);
  plan.text_encoder = o.text_encoder;
  {
    BackboneOptions checked;  // the options a load would refuse
    checked.text_encoder = o.text_encoder;
    if (o.t5_int8.value_or(false)) checked.t5_int8 = true;
    check_options(kind, checked);
  }
  plan.t5_int8 = model->t5_int8(o.t5_int8, plan.dtype);

  const int64_t multiple = model->size_multiple();  // the image size checks the backbones make
  if (plan.image_size <= 0 || plan.image_size % multiple != 0)
    fail("image size {} must be a positive multiple of {}", plan.image_size, multiple);

  plan.weights = model->weights(plan.dtype, plan.t5_int8);
  plan.weights.insert(plan.weights.end(), o.resident_models.begin(), o.resident_models.end());
  const auto layers = planned_layers(o, *model, plan.image_size);
  plan.captures = captures_of(o.kind, *model, layers, o.spec, batch, plan.store_dtype, plan.dtype);

  int64_t all_w = 0, denoise_w = 0;
  for (const auto& w : plan.weights) {
    all_w += w.bytes;
    // offload parks T5 in host memory between encodes; free destroys T5 and Flux's CLIP after encoding
    // (flux_backbone.cpp, pixart_backbone.cpp). Encoding itself always runs with them on the device.
    const bool off = (w.t5 && o.text_encoder != TextEncoderResidency::keep) ||
                     (w.text_encoder && o.text_encoder == TextEncoderResidency::free);
    if (!off) denoise_w += w.bytes;
  }
  MemoryPhase text = model->text_phase(batch, plan.dtype, plan.t5_int8);
  text.weights = all_w;  // every mode encodes with the encoders on the device next to the rest
  MemoryPhase vae = model->vae_phase(batch, plan.image_size, plan.vae_dtype, plan.dtype);
  vae.weights = denoise_w;
  MemoryPhase den = denoiser_phase(*model, plan, layers, o.spec);
  den.weights = denoise_w;
  plan.phases = {text, vae, den};
  for (auto& p : plan.phases)
    std::stable_sort(p.transient.begin(), p.transient.end(),
                     [](const MemoryTerm& a, const MemoryTerm& b) { return a.bytes > b.bytes; });
  return plan;
}

}  // namespace gb::bb
