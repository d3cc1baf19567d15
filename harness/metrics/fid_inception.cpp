#include "harness/metrics/fid_inception.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "harness/backbones/image_preprocess.h"
#include "harness/backbones/weights.h"
#include "harness/core/errors.h"
#include "harness/io/image_io.h"
#include "harness/io/safetensors.h"

namespace fs = std::filesystem;

namespace gb::metrics {
namespace {

using bb::WeightStore;

// torchvision BasicConv2d: conv (no bias) -> BatchNorm2d(eps 0.001, eval) -> ReLU.
struct BasicConv {
  at::Tensor w, bn_w, bn_b, bn_mean, bn_var;
  int64_t sh = 1, sw = 1, ph = 0, pw = 0;
  BasicConv() = default;
  BasicConv(const WeightStore& parent, const std::string& name, int64_t in, int64_t out, int64_t kh, int64_t kw,
            int64_t stride = 1, int64_t pad_h = 0, int64_t pad_w = 0)
      : sh(stride), sw(stride), ph(pad_h), pw(pad_w) {
    WeightStore ws = parent.sub(name);
    w = ws.sub("conv").get("weight", {out, in, kh, kw});
    WeightStore bn = ws.sub("bn");
    bn_w = bn.get("weight", {out});
    bn_b = bn.get("bias", {out});
    bn_mean = bn.get("running_mean", {out});
    bn_var = bn.get("running_var", {out});
    bn.ignore("num_batches_tracked");
  }
  at::Tensor operator()(const at::Tensor& x) const {
    at::Tensor y = at::conv2d(x, w, {}, {sh, sw}, {ph, pw});
    y = at::batch_norm(y, bn_w, bn_b, bn_mean, bn_var, /*training=*/false, 0.1, 0.001, /*cudnn_enabled=*/true);
    return at::relu_(y);
  }
};

// TensorFlow's average pool ignores the padded zeros.
at::Tensor avg_pool_3x3(const at::Tensor& x) {
  return at::avg_pool2d(x, {3, 3}, {1, 1}, {1, 1}, /*ceil_mode=*/false, /*count_include_pad=*/false);
}

struct BlockA {  // FIDInceptionA
  BasicConv b1, b5_1, b5_2, d1, d2, d3, pool;
  BlockA() = default;
  BlockA(const WeightStore& ws, int64_t in, int64_t pool_features)
      : b1(ws, "branch1x1", in, 64, 1, 1),
        b5_1(ws, "branch5x5_1", in, 48, 1, 1),
        b5_2(ws, "branch5x5_2", 48, 64, 5, 5, 1, 2, 2),
        d1(ws, "branch3x3dbl_1", in, 64, 1, 1),
        d2(ws, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1),
        d3(ws, "branch3x3dbl_3", 96, 96, 3, 3, 1, 1, 1),
        pool(ws, "branch_pool", in, pool_features, 1, 1) {}
  at::Tensor operator()(const at::Tensor& x) const {
    return at::cat({b1(x), b5_2(b5_1(x)), d3(d2(d1(x))), pool(avg_pool_3x3(x))}, 1);
  }
};

struct BlockB {  // torchvision InceptionB (Mixed_6a)
  BasicConv b3, d1, d2, d3;
  BlockB() = default;
  BlockB(const WeightStore& ws, int64_t in)
      : b3(ws, "branch3x3", in, 384, 3, 3, 2),
        d1(ws, "branch3x3dbl_1", in, 64, 1, 1),
        d2(ws, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1),
        d3(ws, "branch3x3dbl_3", 96, 96, 3, 3, 2) {}
  at::Tensor operator()(const at::Tensor& x) const {
    return at::cat({b3(x), d3(d2(d1(x))), at::max_pool2d(x, {3, 3}, {2, 2})}, 1);
  }
};

struct BlockC {  // FIDInceptionC
  BasicConv b1, s1, s2, s3, d1, d2, d3, d4, d5, pool;
  BlockC() = default;
  BlockC(const WeightStore& ws, int64_t in, int64_t c7)
      : b1(ws, "branch1x1", in, 192, 1, 1),
        s1(ws, "branch7x7_1", in, c7, 1, 1),
        s2(ws, "branch7x7_2", c7, c7, 1, 7, 1, 0, 3),
        s3(ws, "branch7x7_3", c7, 192, 7, 1, 1, 3, 0),
        d1(ws, "branch7x7dbl_1", in, c7, 1, 1),
        d2(ws, "branch7x7dbl_2", c7, c7, 7, 1, 1, 3, 0),
        d3(ws, "branch7x7dbl_3", c7, c7, 1, 7, 1, 0, 3),
        d4(ws, "branch7x7dbl_4", c7, c7, 7, 1, 1, 3, 0),
        d5(ws, "branch7x7dbl_5", c7, 192, 1, 7, 1, 0, 3),
        pool(ws, "branch_pool", in, 192, 1, 1) {}
  at::Tensor operator()(const at::Tensor& x) const {
    return at::cat({b1(x), s3(s2(s1(x))), d5(d4(d3(d2(d1(x))))), pool(avg_pool_3x3(x))}, 1);
  }
};

struct BlockD {  // torchvision InceptionD (Mixed_7a)
  BasicConv a1, a2, b1, b2, b3, b4;
  BlockD() = default;
  BlockD(const WeightStore& ws, int64_t in)
      : a1(ws, "branch3x3_1", in, 192, 1, 1),
        a2(ws, "branch3x3_2", 192, 320, 3, 3, 2),
        b1(ws, "branch7x7x3_1", in, 192, 1, 1),
        b2(ws, "branch7x7x3_2", 192, 192, 1, 7, 1, 0, 3),
        b3(ws, "branch7x7x3_3", 192, 192, 7, 1, 1, 3, 0),
        b4(ws, "branch7x7x3_4", 192, 192, 3, 3, 2) {}
  at::Tensor operator()(const at::Tensor& x) const {
    return at::cat({a2(a1(x)), b4(b3(b2(b1(x)))), at::max_pool2d(x, {3, 3}, {2, 2})}, 1);
  }
};

struct BlockE {  // FIDInceptionE_1 (average pool, padding ignored) / FIDInceptionE_2 (max pool)
  BasicConv b1, t1, t2a, t2b, d1, d2, d3a, d3b, pool;
  bool max_pool = false;
  BlockE() = default;
  BlockE(const WeightStore& ws, int64_t in, bool max_pool_)
      : b1(ws, "branch1x1", in, 320, 1, 1),
        t1(ws, "branch3x3_1", in, 384, 1, 1),
        t2a(ws, "branch3x3_2a", 384, 384, 1, 3, 1, 0, 1),
        t2b(ws, "branch3x3_2b", 384, 384, 3, 1, 1, 1, 0),
        d1(ws, "branch3x3dbl_1", in, 448, 1, 1),
        d2(ws, "branch3x3dbl_2", 448, 384, 3, 3, 1, 1, 1),
        d3a(ws, "branch3x3dbl_3a", 384, 384, 1, 3, 1, 0, 1),
        d3b(ws, "branch3x3dbl_3b", 384, 384, 3, 1, 1, 1, 0),
        pool(ws, "branch_pool", in, 192, 1, 1),
        max_pool(max_pool_) {}
  at::Tensor operator()(const at::Tensor& x) const {
    at::Tensor t = t1(x);
    at::Tensor d = d2(d1(x));
    at::Tensor p = max_pool ? at::max_pool2d(x, {3, 3}, {1, 1}, {1, 1}) : avg_pool_3x3(x);
    return at::cat({b1(x), at::cat({t2a(t), t2b(t)}, 1), at::cat({d3a(d), d3b(d)}, 1), pool(p)}, 1);
  }
};

}  // namespace

struct FidInception::Impl {
  at::Device device = at::kCPU;
  BasicConv c1a, c2a, c2b, c3b, c4a;
  BlockA m5b, m5c, m5d;
  BlockB m6a;
  BlockC m6b, m6c, m6d, m6e;
  BlockD m7a;
  BlockE m7b, m7c;

  explicit Impl(const WeightStore& ws)
      : c1a(ws, "Conv2d_1a_3x3", 3, 32, 3, 3, 2),
        c2a(ws, "Conv2d_2a_3x3", 32, 32, 3, 3),
        c2b(ws, "Conv2d_2b_3x3", 32, 64, 3, 3, 1, 1, 1),
        c3b(ws, "Conv2d_3b_1x1", 64, 80, 1, 1),
        c4a(ws, "Conv2d_4a_3x3", 80, 192, 3, 3),
        m5b(ws.sub("Mixed_5b"), 192, 32),
        m5c(ws.sub("Mixed_5c"), 256, 64),
        m5d(ws.sub("Mixed_5d"), 288, 64),
        m6a(ws.sub("Mixed_6a"), 288),
        m6b(ws.sub("Mixed_6b"), 768, 128),
        m6c(ws.sub("Mixed_6c"), 768, 160),
        m6d(ws.sub("Mixed_6d"), 768, 160),
        m6e(ws.sub("Mixed_6e"), 768, 192),
        m7a(ws.sub("Mixed_7a"), 768),
        m7b(ws.sub("Mixed_7b"), 1280, false),
        m7c(ws.sub("Mixed_7c"), 2048, true) {
    device = c1a.w.device();
  }
};

FidInception::FidInception(const WeightStore& ws) {
  ws.ignore_prefix("fc.");  // the 1008-way classifier is not part of the features
  impl_ = std::make_unique<Impl>(ws);
  ws.finish();
}

FidInception::FidInception(const std::string& path, at::Device device)
    : FidInception([&] {
        std::error_code ec;
        if (!fs::is_regular_file(path, ec))
          fail_file(path, "Inception weights not found (make them with tools/convert/fid_inception.py)");
        auto ckpt = std::make_shared<const SafetensorsCheckpoint>(SafetensorsCheckpoint::open(path));
        return WeightStore(ckpt, path, at::kFloat, device);
      }()) {}

FidInception::~FidInception() = default;
FidInception::FidInception(FidInception&&) noexcept = default;
FidInception& FidInception::operator=(FidInception&&) noexcept = default;

at::Device FidInception::device() const { return impl_->device; }

at::Tensor FidInception::features(const at::Tensor& input) const {
  if (input.dim() != 4 || input.size(1) != 3 || input.size(2) < 75 || input.size(3) < 75)
    fail("FID Inception input must be [B, 3, H, W] with H, W >= 75, got {}", bb::shape_str(input.sizes()));
  const Impl& m = *impl_;
  at::Tensor x = input.to(m.device, at::kFloat);
  // Block 0
  x = m.c2b(m.c2a(m.c1a(x)));
  x = at::max_pool2d(x, {3, 3}, {2, 2});
  // Block 1
  x = m.c4a(m.c3b(x));
  x = at::max_pool2d(x, {3, 3}, {2, 2});
  // Block 2
  x = m.m6e(m.m6d(m.m6c(m.m6b(m.m6a(m.m5d(m.m5c(m.m5b(x))))))));
  // Block 3
  x = m.m7c(m.m7b(m.m7a(x)));
  x = at::adaptive_avg_pool2d(x, {1, 1});
  return x.flatten(1).to(input.device());
}

at::Tensor fid_crop_resize(const at::Tensor& rgb) {
  if (rgb.dim() != 3 || rgb.size(2) != 3 || rgb.scalar_type() != at::kByte)
    fail("FID preprocessing expects an RGB uint8 [H, W, 3] image, got {}", bb::shape_str(rgb.sizes()));
  const int64_t h = rgb.size(0), w = rgb.size(1), s = std::min(h, w);
  at::Tensor crop = rgb.narrow(0, (h - s) / 2, s).narrow(1, (w - s) / 2, s).contiguous();
  return bb::pil_resize_bicubic(crop, kFidImageSize, kFidImageSize);
}

at::Tensor fid_preprocess(const at::Tensor& rgb) {
  at::Tensor x = fid_crop_resize(rgb).permute({2, 0, 1}).contiguous().to(at::kFloat).div(255);
  return x.mul(2).sub(1);
}

std::vector<std::string> list_fid_images(const std::string& dir) {
  static const std::set<std::string> kAll = {".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp"};
  static const std::set<std::string> kReadable = {".jpg", ".jpeg", ".png"};
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail_file(dir, "image folder not found");
  std::vector<std::string> out;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) fail_file(dir, "cannot list the folder ({})", ec.message());
    if (!it->is_regular_file(ec)) continue;
    const std::string ext = it->path().extension().string();
    if (!kAll.count(ext)) continue;
    if (!kReadable.count(ext))
      fail_file(it->path().string(), "'{}' images cannot be read (goca-bench reads .png, .jpg, .jpeg)", ext);
    out.push_back(it->path().string());
  }
  if (ec) fail_file(dir, "cannot list the folder ({})", ec.message());
  if (out.empty()) fail_file(dir, "no images (.png, .jpg, .jpeg) in the folder or its subfolders");
  std::sort(out.begin(), out.end());
  return out;
}

at::Tensor rgb_features(const FidInception& net, const std::vector<at::Tensor>& images) {
  if (images.empty()) fail("FID features: no images");
  std::vector<at::Tensor> batch;
  batch.reserve(images.size());
  for (const auto& im : images) batch.push_back(fid_preprocess(im));
  return net.features(at::stack(batch).to(net.device())).to(at::kCPU);
}

at::Tensor image_features(const FidInception& net, const std::vector<std::string>& paths, int64_t batch_size,
                          const std::function<void(int64_t)>& progress) {
  if (batch_size < 1) fail("--batch-size must be positive, got {}", batch_size);
  const int64_t n = static_cast<int64_t>(paths.size());
  at::Tensor out = at::empty({n, kFidFeatureDim}, at::kFloat);
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    const int64_t end = std::min(n, begin + batch_size);
    std::vector<at::Tensor> batch;
    batch.reserve(end - begin);
    for (int64_t i = begin; i < end; ++i) batch.push_back(read_image_rgb(paths[i]));
    out.narrow(0, begin, end - begin).copy_(rgb_features(net, batch));
    if (progress) progress(end);
  }
  return out;
}

}  // namespace gb::metrics
