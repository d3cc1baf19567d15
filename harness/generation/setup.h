#pragma once
// What `goca-bench generate` and `goca-bench run` (an experiment's `generation:` section) share before the first
// sampling step: the default image size of a checkpoint and the memory pre-flight of a generation pass
// (docs/generation.md).
#include "harness/backbones/factory.h"
#include "harness/backbones/memory_check.h"

#include <cstdint>
#include <string>

namespace gb::gen {

// The pipelines' default size: sample_size of the denoiser config (unet/ or transformer/) x the VAE scale (SD1.5 and
// SD 2.1-base 64·8 = 512, SD 2.1 96·8 = 768, PixArt-Σ-512 64·8, PixArt-Σ-1024, PixArt-α and SD3.5 128·8, SDXL 128·8);
// Flux's default_sample_size 128 x the VAE scale.
int64_t default_image_size(const std::string& weights, const std::string& kind);

// Pre-flight of one generation pass, modelled as one capture pass of the CFG batch (2 x batch: unconditional and
// conditional) with what S-CFG captures (the method plan at `method`, or the backbone's `scfg` preset): the
// denoiser step dominates; the VAE decoder mirrors the encoder the plan counts. Kinds without a memory model pass.
// `resident_models`: what else stays on the device meanwhile (a generation run's FID Inception and CLIP scorer).
// UserError (exit 2) when the pass cannot fit.
void check_generation_memory(const std::string& what, const std::string& kind, const std::string& weights,
                             const bb::BackboneOptions& options, const std::string& guidance, const std::string& method,
                             int64_t batch, const bb::MemoryCheck& check,
                             const std::vector<bb::ComponentWeights>& resident_models = {});

}  // namespace gb::gen
