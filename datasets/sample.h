#pragma once
// One benchmark sample, as every reader yields it (see datasets/dataset.h).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace gb::datasets {

struct Sample {
  std::string id;          // the image file name, exactly as the caption files key it ("2009_000133.jpg")
  std::string image_path;  // files it was read from (for messages)
  std::string label_path;
  at::Tensor image;  // RGB uint8 [H, W, 3]
  at::Tensor label;  // int64 [H, W], after the dataset's class mapping (standard protocol: 255 = ignore)
  // GT-present classes (the paper's oracle `existent_objects_gt`), ascending. Paper: VOC from the object names in
  // Annotations/<id>.xml; every other dataset the label values minus 0. Standard: label values minus background
  // (where class 0 is background) and minus the ignore index.
  std::vector<int64_t> gt_classes;
  // The same classes in the order the paper's code first meets them (raster order of the label, or the object
  // order of the VOC xml), so a caller can reproduce Python's set iteration order (quirk Q12).
  std::vector<int64_t> gt_first_seen;
  int64_t width = 0;
  int64_t height = 0;
};

}  // namespace gb::datasets
