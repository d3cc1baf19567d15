#include "harness/backbones/image_preprocess.h"

#include "harness/backbones/weights.h"
#include "harness/core/errors.h"
#include "harness/core/hash.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <vector>

namespace gb::bb {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // xmin, count per output pixel
  std::vector<int32_t> k;   // fixed-point, ksize per output pixel
};

// Pillow precompute_coeffs + normalize_coeffs_8bpc for the box (0, in_size).
Coeffs precompute(int in_size, int out_size) {
  const double support_base = 2.0;  // bicubic
  double scale = static_cast<double>(in_size) / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = support_base * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(static_cast<size_t>(out_size) * 2);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> kk(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    double center = (xx + 0.5) * scale;
    double ww = 0.0;
    double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; ++x) {
      double w = bicubic((x + xmin - center + 0.5) * ss);
      kk[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x)
      if (ww != 0.0) kk[x] /= ww;
    for (int x = 0; x < c.ksize; ++x) {
      double v = x < xmax ? kk[x] : 0.0;
      c.k[static_cast<size_t>(xx) * c.ksize + x] = v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits))
                                                         : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    c.bounds[xx * 2] = xmin;
    c.bounds[xx * 2 + 1] = xmax;
  }
  return c;
}

inline uint8_t clip8(int64_t in) {
  int64_t v = in >> kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

}  // namespace

at::Tensor pil_resize_bicubic(const at::Tensor& image, int64_t out_w, int64_t out_h) {
  if (image.dim() != 3 || image.scalar_type() != at::kByte) fail("pil_resize_bicubic expects uint8 [H, W, C]");
  auto src = image.cpu().contiguous();
  const int in_h = static_cast<int>(src.size(0)), in_w = static_cast<int>(src.size(1)),
            ch = static_cast<int>(src.size(2));
  if (in_h == out_h && in_w == out_w) return src.clone();
  // Horizontal pass (all rows; Pillow computes only the rows the vertical pass reads, with the same values).
  at::Tensor tmp = src;
  if (out_w != in_w) {
    auto c = precompute(in_w, static_cast<int>(out_w));
    tmp = at::empty({in_h, out_w, ch}, src.options());
    const uint8_t* in = src.data_ptr<uint8_t>();
    uint8_t* out = tmp.data_ptr<uint8_t>();
    for (int y = 0; y < in_h; ++y)
      for (int xx = 0; xx < out_w; ++xx) {
        const int xmin = c.bounds[xx * 2], xmax = c.bounds[xx * 2 + 1];
        const int32_t* k = &c.k[static_cast<size_t>(xx) * c.ksize];
        for (int b = 0; b < ch; ++b) {
          int64_t ss = int64_t(1) << (kPrecisionBits - 1);
          for (int x = 0; x < xmax; ++x) ss += int64_t(in[(static_cast<size_t>(y) * in_w + x + xmin) * ch + b]) * k[x];
          out[(static_cast<size_t>(y) * out_w + xx) * ch + b] = clip8(ss);
        }
      }
  }
  if (out_h == in_h) return tmp;
  auto c = precompute(in_h, static_cast<int>(out_h));
  auto res = at::empty({out_h, out_w, ch}, src.options());
  const uint8_t* in = tmp.data_ptr<uint8_t>();
  uint8_t* out = res.data_ptr<uint8_t>();
  for (int yy = 0; yy < out_h; ++yy) {
    const int ymin = c.bounds[yy * 2], ymax = c.bounds[yy * 2 + 1];
    const int32_t* k = &c.k[static_cast<size_t>(yy) * c.ksize];
    for (int xx = 0; xx < out_w; ++xx)
      for (int b = 0; b < ch; ++b) {
        int64_t ss = int64_t(1) << (kPrecisionBits - 1);
        for (int y = 0; y < ymax; ++y) ss += int64_t(in[(static_cast<size_t>(y + ymin) * out_w + xx) * ch + b]) * k[y];
        out[(static_cast<size_t>(yy) * out_w + xx) * ch + b] = clip8(ss);
      }
  }
  return res;
}

at::Tensor preprocess_image(const at::Tensor& rgb, int64_t size) {
  if (rgb.dim() != 3 || rgb.size(2) != 3) fail("expected an RGB image [H, W, 3], got {}", shape_str(rgb.sizes()));
  auto r = pil_resize_bicubic(rgb, size, size);
  auto x = r.to(at::kFloat) / 255.0f;
  return (x * 2.0f - 1.0f).permute({2, 0, 1}).contiguous();
}

uint64_t noise_seed(uint64_t seed, const std::string& image_id) {
  return mix64(seed + kGoldenGamma * (fnv1a(image_id) | 1));
}

PreparedImages prepare_images(const std::vector<at::Tensor>& images, const std::vector<std::string>& ids, uint64_t seed,
                              int64_t size, int64_t vae_channels, int64_t diffusion_channels, int64_t latent) {
  if (images.size() != ids.size()) fail("{} images but {} image ids", images.size(), ids.size());
  std::vector<at::Tensor> pix, eps_vae, eps;
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  for (size_t i = 0; i < images.size(); ++i) {
    pix.push_back(preprocess_image(images[i], size));
    auto gen = at::make_generator<at::CPUGeneratorImpl>(noise_seed(seed, ids[i]));
    eps_vae.push_back(at::randn({vae_channels, latent, latent}, gen, f32));
    eps.push_back(at::randn({diffusion_channels, latent, latent}, gen, f32));
  }
  return {at::stack(pix), at::stack(eps_vae), at::stack(eps)};
}

}  // namespace gb::bb
