#pragma once
// Tiny benchmark folders in the six real on-disk layouts (JPEG/PNG images, palette PNG labels, Annotations xml,
// pascal-context .mat files written with libmatio and the mmseg PNGs, COCO panoptic RGB PNG + JSON and the
// 80-things PNG form, Cityscapes city folders with labelIds and labelTrainIds, ADE20K, COCO-Stuff val2017 with the
// category-id PNGs beside the images and the stuffthingmaps), with a caption file.
// Deterministic: the same options write the same labels, so goldens made from them by the paper's code
// (tools/parity/datasets_labels.py) stay valid. Used by tests and `goca-bench datasets make-fixture`.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "datasets/classes.h"

namespace gb::datasets {

#ifdef GB_WITH_MATIO
inline constexpr bool kFixtureWritesMat = true;
#else
inline constexpr bool kFixtureWritesMat = false;
#endif

struct FixtureOptions {
  int64_t width = 20;
  int64_t height = 14;
  bool write_captions = true;
  bool write_mat = kFixtureWritesMat;  // Context .mat labels (needs libmatio); the mmseg PNGs are always written
  // Paper-only situations that the standard protocol rejects as bad input: a COCO label file missing from
  // panoptic_val2017.json (quirk Q14, reuses the last annotation), an ADE label with a value > 150 and a COCO-Stuff
  // label with a value that is no category id.
  bool paper_quirks = false;
};

struct Fixture {
  DatasetKind kind = DatasetKind::Voc;
  std::string root;      // the dataset folder to pass as --root (Context: the pascal-context folder)
  std::string images;    // the image folder ("" = the layout default under root; Context: VOC2012/JPEGImages)
  std::string captions;  // caption JSON ("" when not written)
  std::vector<std::string> paper_ids;     // sample ids in the paper's evaluation order
  std::vector<std::string> standard_ids;  // sample ids in the standard protocol's order
};

// Writes the fixture of `kind` under `dir` (created; existing files are overwritten).
Fixture write_fixture(DatasetKind kind, const std::string& dir, const FixtureOptions& options = {});

// Writes `label` (int64 [H, W]) as a MAT v5 file with one uint16 variable (column-major, as MATLAB stores it).
void write_mat_label(const std::string& path, const std::string& variable, const at::Tensor& label);

}  // namespace gb::datasets
