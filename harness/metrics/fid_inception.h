#pragma once
// FID's Inception-v3 as pytorch-fid builds it (`fid_inception_v3()`: torchvision's Inception3 with the
// TensorFlow-ported blocks FIDInceptionA/C/E_1/E_2) up to the 2048-d pool3 features, in ATen, and the image
// side of T2IBenchmark's `calculate_fid` (docs/metrics.md):
//   PIL convert('RGB') -> centre square crop (offsets (H - S) // 2, (W - S) // 2) -> PIL resize to 299x299,
//   BICUBIC on 8-bit (bit-exact, gb::bb::pil_resize_bicubic) -> ToTensor (x / 255) -> 2x - 1
//   -> the network (no further resize or normalisation) -> pool3 [B, 2048].
// Weights: pytorch-fid's state dict key names (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.running_var`,
// ...) in a safetensors file (tools/convert/fid_inception.py makes it from pt_inception-2015-12-05-6726825d.pth);
// `fc.*` and `*.num_batches_tracked` may be present and are not used. Loading is strict.
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace gb::bb {
class WeightStore;
}

namespace gb::metrics {

inline constexpr int64_t kFidImageSize = 299;
inline constexpr int64_t kFidFeatureDim = 2048;

class FidInception {
 public:
  // From a safetensors file; float32 on `device`. UserError naming the file and every missing, mis-shaped or
  // unexpected key.
  FidInception(const std::string& safetensors_path, at::Device device);
  // From a weight store (tests: WeightStore::random_init or in-memory tensors); calls ws.finish().
  explicit FidInception(const bb::WeightStore& ws);
  ~FidInception();
  FidInception(FidInception&&) noexcept;
  FidInception& operator=(FidInception&&) noexcept;

  // float32 [B, 3, H, W] in [-1, 1] (H, W >= 75) -> pool3 features float32 [B, 2048] on the input's device.
  at::Tensor features(const at::Tensor& x) const;
  at::Device device() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// T2IBenchmark's preprocessing of one RGB uint8 [H, W, 3] image -> float32 [3, 299, 299] in [-1, 1];
// fid_crop_resize is its 8-bit part (centre square crop, PIL bicubic to 299x299) -> uint8 [299, 299, 3].
at::Tensor fid_preprocess(const at::Tensor& rgb_u8_hw3);
at::Tensor fid_crop_resize(const at::Tensor& rgb_u8_hw3);

// The image files of a folder and its subfolders as T2IBenchmark collects them (os.walk, lower-case extensions
// bmp jpg jpeg pgm png ppm tif tiff webp), sorted. UserError when the folder is missing, holds no image, or
// holds a format goca-bench cannot decode (only PNG and JPEG are read).
std::vector<std::string> list_fid_images(const std::string& dir);

// Features of in-memory RGB uint8 [H, W, 3] images (fid_preprocess each), one forward pass: [N, 2048] float32, CPU.
at::Tensor rgb_features(const FidInception& net, const std::vector<at::Tensor>& images);

// Features of the images at `paths` [N, 2048] (float32, CPU), `batch_size` images per forward pass.
// `progress` (may be empty) is called after each batch with the number of images done.
at::Tensor image_features(const FidInception& net, const std::vector<std::string>& paths, int64_t batch_size,
                          const std::function<void(int64_t)>& progress = {});

}  // namespace gb::metrics
