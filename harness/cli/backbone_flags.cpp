#include "harness/cli/backbone_flags.h"

#include "harness/core/errors.h"

#include <CLI/CLI.hpp>

#include <regex>

namespace gb::cli {

void add_backbone_flags(CLI::App* sub, BackboneFlags& f, unsigned which, const std::string& dtype_help) {
  if (which & kDevice) sub->add_option("--device", f.device, "cpu | cuda | cuda:N");
  if (which & kDtype) sub->add_option("--dtype", f.dtype, "fp32 | fp16 | bf16 (default: " + dtype_help + ")");
  if (which & kStoreDtype)
    sub->add_option("--store-dtype", f.store_dtype, "dtype of the captured tensors (default: the compute dtype)");
  if (which & kImageSize)
    sub->add_option("--image-size", f.image_size, "Square input size the image is resized to (default: the paper's)");
  if (which & kTimestep)
    sub->add_option("--timestep", f.timestep, "The paper's t (default: the backbone's, 100 or 150)");
  if (which & kVariant) sub->add_option("--variant", f.variant, "Weight variant, e.g. fp16");
  if (which & kTextEncoder)
    sub->add_option("--text-encoder", f.text_encoder,
                    "keep | offload | free: where T5 lives once the prompts are encoded (the PixArt kinds, flux, "
                    "sd35-*; free drops the text encoders before the VAE and the transformer run)");
  if (which & kT5Int8)
    sub->add_option("--t5-int8", f.t5_int8,
                    "on | off: Flux's T5 in LLM.int8 as the paper (default on for 16-bit compute)");
}

gb::bb::BackboneOptions backbone_options(const BackboneFlags& f) {
  gb::bb::BackboneOptions o;
  auto dtype = [](const std::string& flag, const std::string& v) {
    try {
      return gb::bb::parse_dtype(v);
    } catch (const UserError& e) {
      fail("{}: {}", flag, e.what());
    }
  };
  o.device = f.device;
  if (!f.dtype.empty()) o.dtype = dtype("--dtype", f.dtype);
  if (!f.store_dtype.empty()) o.store_dtype = dtype("--store-dtype", f.store_dtype);
  if (f.image_size < 0) fail("--image-size must be positive");
  if (f.image_size > 0) o.image_size = f.image_size;
  if (f.timestep < 0 || f.timestep > 999) fail("--timestep must be in [0, 999]");
  if (f.timestep > 0) o.timestep = f.timestep;
  o.variant = f.variant;
  if (!f.text_encoder.empty()) o.text_encoder = gb::bb::parse_text_encoder_residency(f.text_encoder);
  if (!f.t5_int8.empty()) {
    if (f.t5_int8 != "on" && f.t5_int8 != "off") fail("--t5-int8 must be on or off, not '{}'", f.t5_int8);
    o.t5_int8 = f.t5_int8 == "on";
  }
  return o;
}

gb::CaptureSpec select_layers(const std::vector<std::string>& patterns, const std::vector<gb::LayerInfo>& layers) {
  gb::CaptureSpec spec;
  for (const auto& p : patterns) {
    if (p.find('*') == std::string::npos) {
      spec.add(p);
      continue;
    }
    std::string re;
    for (char c : p)
      re += c == '*' ? std::string(".*")
                     : (std::isalnum(static_cast<unsigned char>(c)) ? std::string(1, c) : std::string("\\") + c);
    std::regex rx(re);
    size_t n = 0;
    for (const auto& l : layers)
      if (std::regex_match(l.name, rx)) spec.add(l.name), ++n;
    if (n == 0) fail("--layers pattern '{}' matches no capturable key", p);
  }
  spec.self_map_head_mean = false;
  return spec;
}

void add_memory_check_flags(CLI::App* sub, MemoryCheckFlags& f) {
  sub->add_option("--memory-budget-gb", f.budget_gb,
                  "Memory the run may use, in GB (1e9 bytes); default: what the device has free (CUDA) or "
                  "MemAvailable (CPU). Work whose planned peak exceeds it is refused before loading");
  sub->add_flag("--no-memory-check", f.no_check, "Skip the memory pre-flight (goca-bench memory plans it)");
}

gb::bb::MemoryCheck memory_check(const MemoryCheckFlags& f) {
  gb::bb::MemoryCheck c;
  c.enabled = !f.no_check;
  if (f.budget_gb != 0) c.budget_gb = f.budget_gb;
  return c;
}

}  // namespace gb::cli
