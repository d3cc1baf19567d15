#pragma once
// Image preprocessing as the paper's extractor does it (GDF `_preprocess_basic` + diffusers VaeImageProcessor,
// spec §2.5): `PIL.Image.resize((S, S))` with Pillow's default filter (BICUBIC, a = -0.5, antialiased: the
// support scales with the downscale factor), reproduced bit-exactly (Pillow's libImaging/Resample.c: separable
// two-pass, horizontal first, 22-bit fixed-point coefficients, 8-bit intermediate), then x/255·2 − 1.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace gb::bb {

// uint8 [H, W, C] -> uint8 [out_h, out_w, C]; identity when the size is unchanged (Pillow returns a copy).
at::Tensor pil_resize_bicubic(const at::Tensor& image_u8_hwc, int64_t out_w, int64_t out_h);

// RGB uint8 [H, W, 3] -> float32 [3, size, size] in [-1, 1] (diffusers: float32(x)/255, then 2x - 1).
at::Tensor preprocess_image(const at::Tensor& rgb_u8_hw3, int64_t size);

// The per-image noise seed: splitmix64 of (seed, FNV-1a of the image id), so a capture does not depend on batch
// composition, order, device or sharding.
uint64_t noise_seed(uint64_t seed, const std::string& image_id);

// A batch's pixels and its two noises per image, on the CPU in float32: each image preprocessed to `size`, then
// from a CPU generator seeded by noise_seed(seed, id) the VAE posterior ε [vae_channels, latent, latent] and the
// diffusion ε [diffusion_channels, latent, latent], in that order (the paper's draw order), stacked [B, ...].
struct PreparedImages {
  at::Tensor pixels, noise_vae, noise;
};
PreparedImages prepare_images(const std::vector<at::Tensor>& images, const std::vector<std::string>& ids, uint64_t seed,
                              int64_t size, int64_t vae_channels, int64_t diffusion_channels, int64_t latent);

}  // namespace gb::bb
