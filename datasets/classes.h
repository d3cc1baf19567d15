#pragma once
// The six benchmarks' class tables and id mappings, under the paper's protocol and the standard (mmseg) one.
//
// Paper protocol (the GoCA code, spec §H and appendix): class 0 is background (ADE: "other", kept as a class),
// class counts 21/60/81/20/151/28, no ignore index. Synonym lists are the captioner's exact-match lists from
// caption_dataset.py, typos included (ADE `buildingsedifice`, `hourses`, quirk Q13).
// Standard protocol (mmseg): VOC 21 classes and COCO-Object 81 keep background; Context-59, Cityscapes-19 and
// ADE-150 drop it (reduce_zero_label / trainIds); 255 is ignored everywhere. COCO-Stuff-27: the 27 coarse classes of
// the unsupervised-segmentation protocol (PiCIE/STEGO: fine_to_coarse, no background, unlabeled ignored). Context-59
// uses mmseg's class order (sorted raw ids = alphabetical names), which differs from the paper's ctx59 order. See
// docs/protocols.md for every difference.
#include "harness/core/protocol.h"
#include <cstdint>
#include <string>
#include <vector>

namespace gb::datasets {

enum class DatasetKind { Voc, Context, CocoObject, Cityscapes, Ade20k, CocoStuff };
using gb::parse_protocol;
using gb::Protocol;  // harness/core/protocol.h
using gb::to_string;

// "voc", "context", "coco-object", "cityscapes", "ade20k", "coco-stuff".
const char* to_string(DatasetKind kind);
// Parses the names above (UserError listing the choices otherwise).
DatasetKind parse_dataset_kind(const std::string& name);
const std::vector<DatasetKind>& all_dataset_kinds();

inline constexpr int64_t kIgnoreIndex = 255;  // standard protocol's ignore label
inline constexpr int64_t kNoIgnore = -1;      // paper protocol: every pixel counts

struct ClassInfo {
  std::string name;                   // display name ("background" for the paper's class 0)
  std::vector<std::string> synonyms;  // captioner exact-match list (empty for background)
};

struct ClassTable {
  DatasetKind kind = DatasetKind::Voc;
  Protocol protocol = Protocol::paper;
  std::vector<ClassInfo> classes;    // index = class id; size() == num_classes()
  int64_t ignore_index = kNoIgnore;  // kIgnoreIndex under standard
  bool background_is_class0 = true;  // class 0 is background (paper: all; standard: VOC, COCO-Object)

  int64_t num_classes() const { return static_cast<int64_t>(classes.size()); }
  const ClassInfo& at(int64_t id) const;  // UserError when out of range
  // Captioner synonym lists, index = class id (what the prompt builder aligns against).
  std::vector<std::vector<std::string>> synonym_lists() const;
  std::vector<std::string> names() const;
};

// Tables are built once and live for the program.
const ClassTable& class_table(DatasetKind kind, Protocol protocol);

// ---- id mappings ------------------------------------------------------------------------------------------
// VOC: Annotations/<id>.xml object name -> class id (caption_dataset.py's name_to_id); -1 when unknown.
int64_t voc_xml_name_to_class(const std::string& name);

// Pascal-Context: the paper's ctx59_class list, index = paper class id (0..59), value = raw 459-class id.
const std::vector<int64_t>& context_paper_raw_ids();
// Raw LabelMap id -> paper class (0..59); every raw id not in the list (and 0) -> 0.
int64_t context_raw_to_paper(int64_t raw);
// Raw LabelMap id -> mmseg Context index (0..59, sorted raw ids: 0 background, 1 aeroplane, 2 bag, ...);
// every other raw id -> 0 (what the Detail API's getMask + mmseg's converter produce).
int64_t context_raw_to_mmseg(int64_t raw);
// mmseg SegmentationClassContext PNG value (0..59) <-> paper class id (0..59).
int64_t context_mmseg_to_paper(int64_t mmseg_index);
int64_t context_paper_to_mmseg(int64_t paper_id);

// COCO panoptic categories (panopticapi's list: 80 things, 53 stuff).
struct CocoCategory {
  int64_t id;
  bool isthing;
  const char* name;
};
const std::vector<CocoCategory>& coco_panoptic_categories();
// category_id -> class: things -> 1..80, stuff -> 0, unknown category -> -1 (the paper raises KeyError).
int64_t coco_category_to_class(int64_t category_id);

// Cityscapes labelIds -> paper class (mapping_20: 19 train classes -> 1..19, every other value -> 0).
int64_t cityscapes_label_to_paper(int64_t label_id);
// Cityscapes labelIds -> trainId (cityscapesScripts: 19 classes -> 0..18, everything else -> 255).
int64_t cityscapes_label_to_train(int64_t label_id);

// COCO-Stuff: fine class index (0..181 = COCO-Stuff category id - 1, the stuffthingmaps PNG value) -> coarse class
// (0..26, the paper's fine_to_coarse_dict.pickle `fine_index_to_coarse_index`); -1 outside 0..181.
int64_t coco_stuff_fine_to_coarse(int64_t fine);
inline constexpr int64_t kCocoStuffFine = 182;
inline constexpr int64_t kCocoStuffCoarse = 27;
// The paper's class of a coarse class: coarse + 1, then food-stuff (15) -> food (3) and furniture-stuff (16) ->
// furniture (4), as dataset.py does after encode_labels (so paper classes 15 and 16 never occur in a label).
int64_t coco_stuff_coarse_to_paper(int64_t coarse);

}  // namespace gb::datasets
