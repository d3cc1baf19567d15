// configs/datasets/*.yaml: every file parses strictly and agrees with the protocol defaults; bad files are
// UserErrors naming the file and key.
#include <gtest/gtest.h>

#include "datasets/dataset_config.h"
#include "harness/config/config.h"
#include "harness/core/errors.h"
#include "tests/test_support.h"

using namespace gb::datasets;

namespace {

std::string config_dir() { return std::string(GB_SOURCE_DIR) + "/configs/datasets/"; }

std::string error_of(const std::string& yaml) {
  return gb::test::user_error_message([&] {
    gb::Config cfg = gb::Config::from_string(yaml, "test.yaml");
    gb::ConfigReader r(cfg);
    read_dataset_config(r);
    r.finish();
  });
}

void expect_same(const DatasetConfig& a, const DatasetConfig& b, const std::string& what) {
  EXPECT_EQ(a.kind, b.kind) << what;
  EXPECT_EQ(a.protocol, b.protocol) << what;
  EXPECT_EQ(a.split, b.split) << what;
  EXPECT_EQ(a.reverse_split, b.reverse_split) << what;
  EXPECT_EQ(a.limit, b.limit) << what;
  EXPECT_EQ(a.label_source, b.label_source) << what;
  EXPECT_EQ(a.num_classes, b.num_classes) << what;
  EXPECT_EQ(a.ignore_index, b.ignore_index) << what;
  EXPECT_EQ(a.void_to_background, b.void_to_background) << what;
  EXPECT_EQ(a.gt_from_xml, b.gt_from_xml) << what;
  EXPECT_EQ(a.add_background_token, b.add_background_token) << what;
  EXPECT_EQ(a.add_missing_class, b.add_missing_class) << what;
  EXPECT_EQ(a.background_method, b.background_method) << what;
  EXPECT_EQ(a.background_thresholds, b.background_thresholds) << what;
}

}  // namespace

TEST(DatasetConfig, ShippedFilesMatchTheProtocolDefaults) {
  for (DatasetKind k : all_dataset_kinds()) {
    const std::string name = to_string(k);
    const DatasetConfig paper = load_dataset_config(config_dir() + name + ".yaml");
    expect_same(paper, default_dataset_config(k, Protocol::paper), name);
    EXPECT_FALSE(paper.root.empty());
    EXPECT_FALSE(paper.captions.empty());
    const DatasetConfig standard = load_dataset_config(config_dir() + name + "-standard.yaml");
    DatasetConfig expected = default_dataset_config(k, Protocol::standard);
    if (k == DatasetKind::Context) expected.label_source = LabelSource::Png;  // mmseg's converted PNGs
    expect_same(standard, expected, name + "-standard");
  }
  // The paper's prompt settings (spec §H table).
  EXPECT_TRUE(load_dataset_config(config_dir() + "voc.yaml").add_missing_class);
  EXPECT_FALSE(load_dataset_config(config_dir() + "context.yaml").add_background_token);
  EXPECT_EQ(load_dataset_config(config_dir() + "context.yaml").missing_caption, MissingCaption::Skip);
  EXPECT_EQ(load_dataset_config(config_dir() + "cityscapes.yaml").limit, 1000);
  EXPECT_EQ(load_dataset_config(config_dir() + "coco-object.yaml").limit, 10000);
}

TEST(DatasetConfig, OverridesApply) {
  auto c = load_dataset_config(config_dir() + "voc.yaml", {"root=/data/VOC2012", "limit=10", "on_error=skip"});
  EXPECT_EQ(c.root, "/data/VOC2012");
  EXPECT_EQ(c.limit, 10);
  EXPECT_EQ(c.on_error, OnError::Skip);
  EXPECT_EQ(c.missing_caption, MissingCaption::Skip);  // follows on_error unless set
}

TEST(DatasetConfig, MinimalFileTakesDefaults) {
  gb::Config cfg = gb::Config::from_string("dataset: ade20k\nprotocol: standard\nroot: /x\n", "m.yaml");
  gb::ConfigReader r(cfg);
  auto c = read_dataset_config(r);
  r.finish();
  expect_same(c, default_dataset_config(DatasetKind::Ade20k, Protocol::standard), "minimal");
  EXPECT_EQ(c.root, "/x");
}

TEST(DatasetConfig, StrictErrors) {
  EXPECT_NE(error_of("dataset: voc\nlimt: 3\n").find("limt"), std::string::npos);
  EXPECT_NE(error_of("dataset: pascal\n").find("dataset"), std::string::npos);
  EXPECT_NE(error_of("dataset: voc\nnum_classes: 20\n").find("has 21 classes"), std::string::npos);
  EXPECT_NE(error_of("dataset: ade20k\nprotocol: standard\nnum_classes: 151\n").find("has 150 classes"),
            std::string::npos);
  EXPECT_NE(error_of("dataset: voc\nignore_index: 255\n").find("no ignore index"), std::string::npos);
  EXPECT_NE(error_of("dataset: voc\nprotocol: standard\nvoid: background\n").find("ignores void"), std::string::npos);
  EXPECT_NE(error_of("dataset: voc\nlabels: {source: mat}\n").find("does not apply to voc"), std::string::npos);
  EXPECT_NE(error_of("dataset: ade20k\ngt_classes: xml\n").find("only VOC"), std::string::npos);
  EXPECT_NE(error_of("dataset: voc\nlimit: 0\n").find("limit"), std::string::npos);
  EXPECT_NE(error_of("dataset: voc\nbackground: {method: median}\n").find("unknown background method"),
            std::string::npos);
  EXPECT_NE(error_of("dataset: voc\non_error: ignore\n").find("on_error"), std::string::npos);
  EXPECT_NE(error_of("dataset: voc\nlabels: {source: png, colour: 1}\n").find("colour"), std::string::npos);
  EXPECT_EQ(error_of("dataset: voc\nroot: /r\n"), "");
}
