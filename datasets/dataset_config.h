#pragma once
// A dataset's label protocol and layout (configs/datasets/*.yaml), read strictly through harness/config.
//
//   dataset: voc                      # voc | context | coco-object | cityscapes | ade20k | coco-stuff
//   protocol: paper                   # paper (the GoCA code, quirks included) | standard (mmseg)
//   root: /data/VOCdevkit/VOC2012     # dataset folder (Context: the pascal-context folder)
//   images: ""                        # image folder; "" = the layout's default
//   split: ImageSets/Segmentation/train.txt   # id list relative to root; "" = sorted listing of the images
//   reverse_split: true
//   limit: 3000                       # -1 = all; applied before any filter, as the paper slices
//   labels: {source: png, dir: SegmentationClass, suffix: .png, panoptic_json: ""}
//   num_classes: 21                   # declared; must agree with the protocol's class table
//   ignore_index: -1                  # -1 (paper: none) or 255 (standard)
//   void: background                  # background (paper: void/boundary -> 0) | ignore (standard: -> 255)
//   gt_classes: xml                   # VOC only: xml (Annotations/<id>.xml) | label
//   on_error: fail                    # bad input: fail (UserError) | skip (counted and reported)
//   missing_caption: fail             # ids without a caption: fail | skip | ignore (no caption file check)
//   captions: ""                      # the paper's caption JSON ("" = none)
//   prompt: {add_background_token: true, add_missing_class: true}
//   background: {method: offset, thresholds: [-0.4, -0.3, -0.2, -0.1, 0, 0.1, 0.2, 0.3, 0.4]}
// Every key except `dataset` is optional; missing keys take the protocol's defaults (default_dataset_config).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "datasets/classes.h"

namespace gb {
class Config;
class ConfigReader;
}  // namespace gb

namespace gb::datasets {

enum class OnError { Fail, Skip };
enum class MissingCaption { Fail, Skip, Ignore };

enum class LabelSource {
  Auto,            // context: mat if <root>/trainval exists, else png; coco-object: panoptic if its json exists
  Png,             // voc, ade20k: index/gray PNG; context: mmseg SegmentationClassContext; coco-object: 80 things + bg
  Mat,             // context: pascal-context/trainval/<id>.mat LabelMap (raw 459 ids)
  Panoptic,        // coco-object: panoptic RGB PNG + panoptic_val2017.json
  LabelIds,        // cityscapes: *_gtFine_labelIds.png
  LabelTrainIds,   // cityscapes: *_gtFine_labelTrainIds.png
  StuffThingMaps,  // coco-stuff: stuffthingmaps_trainval2017 PNG (value = fine class 0..181, 255 unlabeled)
                   // (coco-stuff `png`: value = COCO-Stuff category id 1..182, 0 unlabeled, as the paper's loader
                   // reads)
};
const char* to_string(LabelSource source);
// "auto", "png", "mat", "panoptic", "labelIds", "labelTrainIds", "stuffthingmaps" (UserError otherwise).
LabelSource parse_label_source(const std::string& name);
const std::vector<std::pair<std::string, LabelSource>>& label_source_names();
// Whether a label source applies to a dataset (voc/ade20k: png; context: auto/mat/png; coco-object:
// auto/panoptic/png; cityscapes: labelIds/labelTrainIds; coco-stuff: png/stuffthingmaps).
bool label_source_applies(DatasetKind kind, LabelSource source);
const char* to_string(OnError on_error);

struct DatasetConfig {
  DatasetKind kind = DatasetKind::Voc;
  Protocol protocol = Protocol::paper;
  std::string root;
  std::string images;  // "" = layout default
  std::string split;   // relative to root (or absolute); "" = sorted listing
  bool reverse_split = false;
  int64_t limit = -1;
  LabelSource label_source = LabelSource::Png;
  std::string label_dir;      // relative to root (or absolute)
  std::string label_suffix;   // appended to the id stem (".png", "_gtFine_labelIds.png", ...)
  std::string panoptic_json;  // coco-object panoptic: relative to root (or absolute)
  int64_t num_classes = 0;
  int64_t ignore_index = kNoIgnore;
  bool void_to_background = true;
  bool gt_from_xml = false;  // VOC paper: Annotations/<id>.xml object names
  OnError on_error = OnError::Fail;
  MissingCaption missing_caption = MissingCaption::Fail;
  std::string captions;
  bool add_background_token = false;
  bool add_missing_class = false;
  std::string background_method = "offset";
  std::vector<double> background_thresholds;

  std::string name() const { return to_string(kind); }
};

// The paper's settings (configs/config-dataset/*.py, spec §H) or the standard (mmseg) ones.
DatasetConfig default_dataset_config(DatasetKind kind, Protocol protocol);

// Reads one mapping (the file's root or a child such as `dataset:` in an experiment) strictly: unknown keys,
// wrong types and settings that contradict the protocol are UserErrors with file and line.
DatasetConfig read_dataset_config(const ConfigReader& reader);
DatasetConfig load_dataset_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Resolved paths of the layout (defaults filled in, relative paths joined to root).
std::string resolve_images_dir(const DatasetConfig& c);
std::string resolve_label_dir(const DatasetConfig& c);
std::string resolve_split_file(const DatasetConfig& c);  // "" for sorted listings
std::string resolve_panoptic_json(const DatasetConfig& c);
// Auto resolved against the folder on disk.
LabelSource resolve_label_source(const DatasetConfig& c);

}  // namespace gb::datasets
