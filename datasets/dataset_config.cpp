#include "datasets/dataset_config.h"

#include <filesystem>

#include "harness/core/errors.h"

namespace gb::datasets {
namespace fs = std::filesystem;

namespace {

const std::vector<double> kOffsetSweep = {-0.4, -0.3, -0.2, -0.1, 0, 0.1, 0.2, 0.3, 0.4};

std::string join(const std::string& root, const std::string& p) {
  if (p.empty()) return p;
  if (fs::path(p).is_absolute() || root.empty()) return p;
  return (fs::path(root) / p).string();
}

const std::vector<std::pair<std::string, LabelSource>> kSourceNames = {{"auto", LabelSource::Auto},
                                                                       {"png", LabelSource::Png},
                                                                       {"mat", LabelSource::Mat},
                                                                       {"panoptic", LabelSource::Panoptic},
                                                                       {"labelIds", LabelSource::LabelIds},
                                                                       {"labelTrainIds", LabelSource::LabelTrainIds},
                                                                       {"stuffthingmaps", LabelSource::StuffThingMaps}};

}  // namespace

const char* to_string(LabelSource source) {
  for (const auto& [n, s] : kSourceNames)
    if (s == source) return n.c_str();
  return "?";
}

LabelSource parse_label_source(const std::string& name) {
  for (const auto& [n, s] : kSourceNames)
    if (n == name) return s;
  fail("unknown label source '{}' (choices: auto, png, mat, panoptic, labelIds, labelTrainIds, stuffthingmaps)", name);
}

const std::vector<std::pair<std::string, LabelSource>>& label_source_names() { return kSourceNames; }

bool label_source_applies(DatasetKind kind, LabelSource s) {
  switch (kind) {
    case DatasetKind::Voc:
    case DatasetKind::Ade20k: return s == LabelSource::Png;
    case DatasetKind::Context: return s == LabelSource::Auto || s == LabelSource::Mat || s == LabelSource::Png;
    case DatasetKind::CocoObject: return s == LabelSource::Auto || s == LabelSource::Panoptic || s == LabelSource::Png;
    case DatasetKind::Cityscapes: return s == LabelSource::LabelIds || s == LabelSource::LabelTrainIds;
    case DatasetKind::CocoStuff: return s == LabelSource::Png || s == LabelSource::StuffThingMaps;
  }
  return false;
}

const char* to_string(OnError on_error) { return on_error == OnError::Fail ? "fail" : "skip"; }

DatasetConfig default_dataset_config(DatasetKind kind, Protocol protocol) {
  DatasetConfig c;
  c.kind = kind;
  c.protocol = protocol;
  const bool paper = protocol == Protocol::paper;
  const ClassTable& t = class_table(kind, protocol);
  c.num_classes = t.num_classes();
  c.ignore_index = t.ignore_index;
  c.void_to_background = paper;
  c.background_method = "offset";
  c.background_thresholds = kOffsetSweep;
  switch (kind) {
    case DatasetKind::Voc:
      c.split = paper ? "ImageSets/Segmentation/train.txt" : "ImageSets/Segmentation/val.txt";
      c.reverse_split = paper;
      c.limit = paper ? 3000 : -1;
      c.label_source = LabelSource::Png;
      c.gt_from_xml = paper;
      c.add_background_token = true;
      c.add_missing_class = true;
      break;
    case DatasetKind::Context:
      c.split = paper ? "ImageSets/Segmentation/train.txt" : "ImageSets/SegmentationContext/val.txt";
      c.reverse_split = paper;
      c.limit = paper ? 3000 : -1;
      c.label_source = LabelSource::Auto;
      c.add_background_token = false;
      c.add_missing_class = true;
      break;
    case DatasetKind::CocoObject:
      c.limit = paper ? 10000 : -1;
      c.label_source = LabelSource::Auto;
      c.add_background_token = true;
      c.add_missing_class = false;
      break;
    case DatasetKind::Cityscapes:
      c.limit = paper ? 1000 : -1;
      c.label_source = paper ? LabelSource::LabelIds : LabelSource::LabelTrainIds;
      c.add_background_token = false;
      c.add_missing_class = false;
      break;
    case DatasetKind::Ade20k:
      c.limit = paper ? 3000 : -1;
      c.label_source = LabelSource::Png;
      c.add_background_token = true;
      c.add_missing_class = false;
      break;
    case DatasetKind::CocoStuff:
      // paper: val2017/*.jpg and val2017/*.png side by side (config_dataset_coco_stuff.py), the PNG values read as
      // category ids; standard: the official stuffthingmaps_trainval2017/val2017 PNGs.
      c.limit = paper ? 10000 : -1;
      c.label_source = paper ? LabelSource::Png : LabelSource::StuffThingMaps;
      c.add_background_token = false;
      c.add_missing_class = true;
      break;
  }
  return c;
}

std::string resolve_images_dir(const DatasetConfig& c) {
  if (!c.images.empty()) return join(c.root, c.images);
  switch (c.kind) {
    case DatasetKind::Voc:
    case DatasetKind::Context: return join(c.root, "JPEGImages");
    case DatasetKind::CocoObject: return join(c.root, "images/val2017");
    case DatasetKind::Cityscapes: return join(c.root, "leftImg8bit/val");
    case DatasetKind::Ade20k: return join(c.root, "images/validation");
    case DatasetKind::CocoStuff: return join(c.root, "val2017");
  }
  return c.root;
}

LabelSource resolve_label_source(const DatasetConfig& c) {
  if (c.label_source != LabelSource::Auto) return c.label_source;
  if (c.kind == DatasetKind::Context) {
    DatasetConfig m = c;
    m.label_source = LabelSource::Mat;
    return fs::is_directory(resolve_label_dir(m)) ? LabelSource::Mat : LabelSource::Png;
  }
  if (c.kind == DatasetKind::CocoObject) {
    DatasetConfig m = c;
    m.label_source = LabelSource::Panoptic;
    return fs::exists(resolve_panoptic_json(m)) ? LabelSource::Panoptic : LabelSource::Png;
  }
  return c.label_source;
}

std::string resolve_label_dir(const DatasetConfig& c) {
  if (!c.label_dir.empty()) return join(c.root, c.label_dir);
  switch (c.kind) {
    case DatasetKind::Voc: return join(c.root, "SegmentationClass");
    case DatasetKind::Context:
      return join(c.root, resolve_label_source(c) == LabelSource::Mat ? "trainval" : "SegmentationClassContext");
    case DatasetKind::CocoObject:
      return join(c.root, resolve_label_source(c) == LabelSource::Panoptic ? "annotations/panoptic_val2017"
                                                                           : "annotations/object_val2017");
    case DatasetKind::Cityscapes: return join(c.root, "gtFine/val");
    case DatasetKind::Ade20k: return join(c.root, "annotations/validation");
    case DatasetKind::CocoStuff:
      return join(c.root, resolve_label_source(c) == LabelSource::StuffThingMaps ? "stuffthingmaps_trainval2017/val2017"
                                                                                 : "val2017");
  }
  return c.root;
}

std::string resolve_split_file(const DatasetConfig& c) { return join(c.root, c.split); }

std::string resolve_panoptic_json(const DatasetConfig& c) {
  return join(c.root, c.panoptic_json.empty() ? std::string("annotations/panoptic_val2017.json") : c.panoptic_json);
}

}  // namespace gb::datasets
