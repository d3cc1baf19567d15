// Class tables and id mappings, checked against the paper's own lists (golden written by
// tools/parity/datasets_classes.py from components/{dataset,caption_dataset}.py).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <set>

#include "datasets/classes.h"
#include "harness/core/errors.h"

using namespace gb::datasets;

namespace {

const nlohmann::json& golden() {
  static const nlohmann::json g = [] {
    std::ifstream in(std::string(GB_SOURCE_DIR) + "/tests/datasets/data/paper_classes.json");
    EXPECT_TRUE(in.good());
    return nlohmann::json::parse(in);
  }();
  return g;
}

}  // namespace

TEST(Classes, NamesRoundTrip) {
  for (DatasetKind k : all_dataset_kinds()) EXPECT_EQ(parse_dataset_kind(to_string(k)), k);
  EXPECT_EQ(parse_protocol("paper"), Protocol::paper);
  EXPECT_EQ(parse_protocol("standard"), Protocol::standard);
  EXPECT_THROW(parse_dataset_kind("pascal-voc"), gb::UserError);
  EXPECT_THROW(parse_protocol("mmseg"), gb::UserError);
}

TEST(Classes, CountsAndIgnore) {
  const std::vector<std::pair<DatasetKind, std::pair<int, int>>> expected = {
      {DatasetKind::Voc, {21, 21}},        {DatasetKind::Context, {60, 59}},  {DatasetKind::CocoObject, {81, 81}},
      {DatasetKind::Cityscapes, {20, 19}}, {DatasetKind::Ade20k, {151, 150}}, {DatasetKind::CocoStuff, {28, 27}}};
  for (const auto& [k, counts] : expected) {
    const auto& p = class_table(k, Protocol::paper);
    const auto& s = class_table(k, Protocol::standard);
    EXPECT_EQ(p.num_classes(), counts.first) << to_string(k);
    EXPECT_EQ(s.num_classes(), counts.second) << to_string(k);
    EXPECT_EQ(p.ignore_index, kNoIgnore);
    EXPECT_EQ(s.ignore_index, kIgnoreIndex);
    EXPECT_TRUE(p.background_is_class0);
    EXPECT_TRUE(p.classes[0].synonyms.empty());
  }
  EXPECT_THROW(class_table(DatasetKind::Voc, Protocol::paper).at(21), gb::UserError);
}

TEST(Classes, PaperSynonymsMatchCaptionDatasetPy) {
  const std::vector<std::pair<DatasetKind, const char*>> keys = {{DatasetKind::Voc, "voc"},
                                                                 {DatasetKind::Context, "context"},
                                                                 {DatasetKind::CocoObject, "coco-object"},
                                                                 {DatasetKind::Cityscapes, "cityscapes"},
                                                                 {DatasetKind::Ade20k, "ade20k"},
                                                                 {DatasetKind::CocoStuff, "coco-stuff"}};
  for (const auto& [k, key] : keys) {
    const auto expected = golden()[key]["synonyms"].get<std::vector<std::vector<std::string>>>();
    EXPECT_EQ(class_table(k, Protocol::paper).synonym_lists(), expected) << key;
  }
  // The typos the captioner matches against (quirk Q13) are kept.
  const auto& ade = class_table(DatasetKind::Ade20k, Protocol::paper);
  EXPECT_EQ(ade.classes[2].synonyms, (std::vector<std::string>{"building", "buildingsedifice"}));
  EXPECT_EQ(ade.classes[26].synonyms, (std::vector<std::string>{"house", "hourses"}));
}

TEST(Classes, StandardTablesShiftOrReorder) {
  const auto& ap = class_table(DatasetKind::Ade20k, Protocol::paper);
  const auto& as = class_table(DatasetKind::Ade20k, Protocol::standard);
  for (int64_t c = 0; c < 150; ++c) EXPECT_EQ(as.classes[c].synonyms, ap.classes[c + 1].synonyms);
  const auto& cp = class_table(DatasetKind::Cityscapes, Protocol::paper);
  const auto& cs = class_table(DatasetKind::Cityscapes, Protocol::standard);
  for (int64_t c = 0; c < 19; ++c) EXPECT_EQ(cs.classes[c].name, cp.classes[c + 1].name);
  // mmseg PascalContextDataset59 order: alphabetical.
  const auto& xs = class_table(DatasetKind::Context, Protocol::standard);
  EXPECT_EQ(xs.classes[0].name, "aeroplane");
  EXPECT_EQ(xs.classes[1].name, "bag");
  EXPECT_EQ(xs.classes[58].name, "wood");
  for (size_t i = 1; i < xs.classes.size(); ++i) EXPECT_LT(xs.classes[i - 1].name, xs.classes[i].name);
  EXPECT_EQ(class_table(DatasetKind::Voc, Protocol::standard).names(),
            class_table(DatasetKind::Voc, Protocol::paper).names());
}

TEST(Classes, VocXmlNames) {
  const auto names = golden()["voc"]["xml_names"].get<std::vector<std::string>>();
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(voc_xml_name_to_class(names[i]), static_cast<int64_t>(i));
  EXPECT_EQ(voc_xml_name_to_class("dining table"), -1);
}

TEST(Classes, ContextMappings) {
  std::map<int64_t, int64_t> raw_to_class;
  for (const auto& [k, v] : golden()["context"]["raw_to_class"].items()) raw_to_class[std::stoll(k)] = v.get<int64_t>();
  for (int64_t raw = -1; raw <= 470; ++raw) {
    auto it = raw_to_class.find(raw);
    EXPECT_EQ(context_raw_to_paper(raw), it == raw_to_class.end() ? 0 : it->second) << raw;
  }
  // mmseg index = rank of the raw id among the sorted 60; round trips.
  EXPECT_EQ(context_raw_to_mmseg(2), 1);     // aeroplane
  EXPECT_EQ(context_raw_to_mmseg(9), 2);     // bag
  EXPECT_EQ(context_raw_to_mmseg(458), 59);  // wood
  EXPECT_EQ(context_raw_to_mmseg(1), 0);     // accordion: not among the 59
  for (int64_t m = 0; m < 60; ++m) EXPECT_EQ(context_paper_to_mmseg(context_mmseg_to_paper(m)), m);
  for (int64_t raw : context_paper_raw_ids())
    EXPECT_EQ(context_mmseg_to_paper(context_raw_to_mmseg(raw)), context_raw_to_paper(raw));
  const auto paper_names = golden()["context"]["synonyms"];
  EXPECT_EQ(paper_names[context_mmseg_to_paper(1)][0], "aeroplane");
}

TEST(Classes, CocoPanopticMapping) {
  const auto& g = golden()["coco-object"];
  ASSERT_EQ(coco_panoptic_categories().size(), g["categories"].size());
  for (size_t i = 0; i < coco_panoptic_categories().size(); ++i) {
    EXPECT_EQ(coco_panoptic_categories()[i].id, g["categories"][i]["id"].get<int64_t>());
    EXPECT_EQ(coco_panoptic_categories()[i].isthing, g["categories"][i]["isthing"].get<int>() == 1);
  }
  std::set<int64_t> things;
  for (const auto& [k, v] : g["category_to_class"].items()) {
    EXPECT_EQ(coco_category_to_class(std::stoll(k)), v.get<int64_t>()) << k;
    if (v.get<int64_t>() != 0) things.insert(v.get<int64_t>());
  }
  EXPECT_EQ(things.size(), 80u);
  EXPECT_EQ(coco_category_to_class(12), -1);  // not a panoptic category
  EXPECT_EQ(coco_category_to_class(90), 80);  // toothbrush
  EXPECT_EQ(coco_category_to_class(92), 0);   // banner (stuff)
}

TEST(Classes, CityscapesMappings) {
  std::map<int64_t, int64_t> m20;
  for (const auto& [k, v] : golden()["cityscapes"]["mapping_20"].items()) m20[std::stoll(k)] = v.get<int64_t>();
  for (int64_t id = -1; id < 40; ++id) {
    auto it = m20.find(id);
    const int64_t paper = it == m20.end() ? 0 : it->second;
    EXPECT_EQ(cityscapes_label_to_paper(id), paper) << id;
    EXPECT_EQ(cityscapes_label_to_train(id), paper == 0 ? kIgnoreIndex : paper - 1) << id;
  }
  // cityscapesScripts trainIds
  EXPECT_EQ(cityscapes_label_to_train(7), 0);     // road
  EXPECT_EQ(cityscapes_label_to_train(24), 11);   // person
  EXPECT_EQ(cityscapes_label_to_train(33), 18);   // bicycle
  EXPECT_EQ(cityscapes_label_to_train(29), 255);  // caravan
}

TEST(Classes, CocoStuffFineToCoarseIsThePapersPickle) {
  const auto& g = golden()["coco-stuff"];
  ASSERT_EQ(g["fine_index_to_coarse_index"].size(), static_cast<size_t>(kCocoStuffFine));
  for (const auto& [k, v] : g["fine_index_to_coarse_index"].items())
    EXPECT_EQ(coco_stuff_fine_to_coarse(std::stoll(k)), v.get<int64_t>()) << k;
  EXPECT_EQ(coco_stuff_fine_to_coarse(-1), -1);
  EXPECT_EQ(coco_stuff_fine_to_coarse(182), -1);
  // The standard table's names are the pickle's coarse names, in coarse-index order: person (fine 0) is
  // person-things, sky-other (fine 156) sky-stuff.
  const auto& s = class_table(DatasetKind::CocoStuff, Protocol::standard);
  std::set<std::string> coarse_names;
  for (const auto& [fine, coarse] : g["fine_name_to_coarse_name"].items())
    coarse_names.insert(coarse.get<std::string>());
  const auto names_s = s.names();
  EXPECT_EQ(std::set<std::string>(names_s.begin(), names_s.end()), coarse_names);
  EXPECT_EQ(s.classes[coco_stuff_fine_to_coarse(0)].name, "person-things");
  EXPECT_EQ(s.classes[coco_stuff_fine_to_coarse(156)].name, "sky-stuff");
  EXPECT_EQ(s.classes[coco_stuff_fine_to_coarse(120)].name, "food-stuff");
  EXPECT_FALSE(s.background_is_class0);
  // Standard class c carries the synonyms of paper class c + 1; paper display names follow dataset.py.
  const auto& p = class_table(DatasetKind::CocoStuff, Protocol::paper);
  const auto names = g["dataset_py_names"].get<std::vector<std::vector<std::string>>>();
  for (int64_t c = 0; c < kCocoStuffCoarse; ++c) {
    EXPECT_EQ(s.classes[c].synonyms, p.classes[c + 1].synonyms);
    if (c + 1 != 15 && c + 1 != 16) {
      EXPECT_EQ(p.classes[c + 1].name, names[c + 1][0]);
    }
  }
  EXPECT_EQ(p.classes[15].name, "food-stuff");  // dataset.py: a second "food", merged into class 3
}

TEST(Classes, CocoStuffPaperClassIsMappingCocoThenTheMerge) {
  // encode_labels(label, mapping_coco), then label[label == 15] = 3, label[label == 16] = 4.
  std::map<int64_t, int64_t> mapping;
  for (const auto& [k, v] : golden()["coco-stuff"]["mapping_coco"].items()) mapping[std::stoll(k)] = v.get<int64_t>();
  for (int64_t fine = 0; fine < kCocoStuffFine; ++fine) {
    int64_t expected = mapping.at(fine + 1);
    if (expected == 15) expected = 3;
    if (expected == 16) expected = 4;
    EXPECT_EQ(coco_stuff_coarse_to_paper(coco_stuff_fine_to_coarse(fine)), expected) << fine;
  }
  EXPECT_EQ(mapping.at(0), 0);
  EXPECT_EQ(mapping.at(255), 0);
  EXPECT_THROW(coco_stuff_coarse_to_paper(27), gb::UserError);
}
