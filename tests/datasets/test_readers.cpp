// Each reader on a fixture in its real on-disk layout: order, split, limit, mapping, GT classes, and the quirks
// under the paper protocol vs the standard one.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "datasets/dataset.h"
#include "datasets/fixtures.h"
#include "fixture_util.h"
#include "harness/core/errors.h"
#include "harness/io/image_io.h"

using namespace gb::datasets;
using namespace gbtest;
namespace fs = std::filesystem;

using V = std::vector<int64_t>;

TEST(VocReader, PaperOrderMappingAndXmlClasses) {
  TempDir tmp;
  Fixture fx = write_fixture(DatasetKind::Voc, tmp.str());
  auto ds = Dataset::open(config_for(fx, Protocol::paper));
  EXPECT_EQ(ids_of(*ds), fx.paper_ids);  // train.txt reversed
  EXPECT_EQ(ds->id(0), "2009_000123.jpg");
  EXPECT_EQ(ds->classes().num_classes(), 21);
  auto s = ds->load(3);  // 2007_000032: person block, chair block, 255 ring
  ASSERT_TRUE(s);
  EXPECT_EQ(s->id, "2007_000032.jpg");
  EXPECT_EQ(s->width, 20);
  EXPECT_EQ(s->height, 14);
  EXPECT_EQ(s->image.sizes(), (at::IntArrayRef{14, 20, 3}));
  EXPECT_EQ(s->image.scalar_type(), at::kByte);
  EXPECT_EQ(s->label.scalar_type(), at::kLong);
  EXPECT_EQ(at_a(s->label), 15);
  EXPECT_EQ(at_b(s->label), 9);
  EXPECT_EQ(at_ring(s->label), 0);  // label[label > 20] = 0
  EXPECT_EQ(s->gt_classes, (V{9, 15}));
  EXPECT_EQ(s->gt_first_seen, (V{15, 9}));  // xml object order, repeated names once
  // The xml lists a bottle that the segmentation does not show: the paper's GT classes come from the xml.
  auto s0 = ds->load(0);
  EXPECT_EQ(s0->gt_classes, (V{5, 11, 20}));
  EXPECT_TRUE(ds->report().notes().empty());
}

TEST(VocReader, StandardSplitIgnoreAndLabelClasses) {
  TempDir tmp;
  Fixture fx = write_fixture(DatasetKind::Voc, tmp.str());
  auto ds = Dataset::open(config_for(fx, Protocol::standard));
  EXPECT_EQ(ids_of(*ds), fx.standard_ids);  // val.txt as listed
  auto s = ds->load(1);                     // 2007_000039: dog, sofa
  EXPECT_EQ(s->id, "2007_000039.jpg");
  EXPECT_EQ(at_ring(s->label), 255);
  EXPECT_EQ(at_a(s->label), 12);
  EXPECT_EQ(s->gt_classes, (V{12, 18}));  // from the label: no background, no ignore
  auto s0 = ds->load(0);
  EXPECT_EQ(s0->gt_classes, (V{11, 20}));  // the xml-only bottle is not there
}

TEST(VocReader, LimitSlicesBeforeAnything) {
  TempDir tmp;
  Fixture fx = write_fixture(DatasetKind::Voc, tmp.str());
  auto c = config_for(fx, Protocol::paper);
  c.limit = 2;
  auto ds = Dataset::open(c);
  EXPECT_EQ(ids_of(*ds), (std::vector<std::string>{fx.paper_ids[0], fx.paper_ids[1]}));
}

TEST(VocReader, WorksWithoutAnnotationsFolder) {
  TempDir tmp;
  Fixture fx = write_fixture(DatasetKind::Voc, tmp.str());
  fs::remove_all(fs::path(fx.root) / "Annotations");
  auto ds = Dataset::open(config_for(fx, Protocol::paper));
  ASSERT_EQ(ds->size(), 4u);
  EXPECT_EQ(ds->report().notes().count(kNoteVocGtFromLabel), 1u);
  auto s0 = ds->load(0);
  EXPECT_EQ(s0->gt_classes, (V{11, 20}));  // from the label
  EXPECT_NE(ds->report().summary().find("Annotations"), std::string::npos);
}

TEST(ContextReader, PaperMatDropsIdsWithoutLabelAndMapsRawIds) {
  if (!kFixtureWritesMat) GTEST_SKIP() << "built without libmatio";
  TempDir tmp;
  Fixture fx = write_fixture(DatasetKind::Context, tmp.str());
  auto c = config_for(fx, Protocol::paper);
  auto ds = Dataset::open(c);
  EXPECT_EQ(ds->label_source(), LabelSource::Mat);
  EXPECT_EQ(ids_of(*ds), fx.paper_ids);  // reversed; 2010_000001 (no .mat, listed last -> first) dropped
  ASSERT_EQ(ds->report().notes().count(kNoteContextNoMat), 1u);
  EXPECT_EQ(ds->report().notes().at(kNoteContextNoMat)[0].id, "2010_000001.jpg");
  auto s = ds->load(3);  // 2008_000002: person (284) block, chair (72) block, accordion (1) ring, 0 background
  EXPECT_EQ(s->id, "2008_000002.jpg");
  EXPECT_EQ(at_a(s->label), 15);
  EXPECT_EQ(at_b(s->label), 40);
  EXPECT_EQ(at_ring(s->label), 0);
  EXPECT_EQ(s->gt_classes, (V{15, 40}));
  auto s0 = ds->load(0);  // 2009_000012: tvmonitor 427 -> 25, table 397 -> 13, wool 459 -> 0, wall 440 -> 31
  EXPECT_EQ(at_a(s0->label), 25);
  EXPECT_EQ(at_b(s0->label), 13);
  EXPECT_EQ(at_ring(s0->label), 0);
  EXPECT_EQ(at_bg(s0->label), 31);
  EXPECT_EQ(s0->gt_first_seen, (V{31, 25, 13}));  // raster order: wall first (row 0 col 11), ...
  // The limit applies before the filter: limit 1 keeps only the dropped id.
  c.limit = 1;
  auto ds1 = Dataset::open(c);
  EXPECT_EQ(ds1->size(), 0u);
}

TEST(ContextReader, MmsegPngGivesTheSameLabelsAsMat) {
  TempDir tmp;
  Fixture fx = write_fixture(DatasetKind::Context, tmp.str());
  for (Protocol p : {Protocol::paper, Protocol::standard}) {
    auto cp = config_for(fx, p);
    cp.label_source = LabelSource::Png;
    auto png = Dataset::open(cp);
    EXPECT_EQ(png->label_source(), LabelSource::Png);
    if (!kFixtureWritesMat) continue;
    auto cm = config_for(fx, p);
    cm.label_source = LabelSource::Mat;
    cm.split = p == Protocol::paper ? cm.split : "ImageSets/SegmentationContext/val.txt";
    auto mat = Dataset::open(cm);
    ASSERT_EQ(png->size(), mat->size());
    for (size_t i = 0; i < png->size(); ++i) {
      auto a = png->load(i), b = mat->load(i);
      EXPECT_TRUE(at::equal(a->label, b->label)) << to_string(p) << " " << a->id;
      EXPECT_EQ(a->gt_classes, b->gt_classes);
    }
  }
}

TEST(ContextReader, StandardIsMmsegContext59) {
  TempDir tmp;
  Fixture fx = write_fixture(DatasetKind::Context, tmp.str());
  auto c = config_for(fx, Protocol::standard);
  c.label_source = LabelSource::Png;
  auto ds = Dataset::open(c);
  EXPECT_EQ(ids_of(*ds), fx.standard_ids);
  EXPECT_EQ(ds->classes().num_classes(), 59);
  auto s = ds->load(1);  // 2008_000002: person, chair, accordion ring, background
  EXPECT_EQ(s->id, "2008_000002.jpg");
  const auto& t = ds->classes();
  EXPECT_EQ(t.classes[at_a(s->label)].name, "person");
  EXPECT_EQ(t.classes[at_b(s->label)].name, "chair");
  EXPECT_EQ(at_ring(s->label), 255);  // reduce_zero_label
  EXPECT_EQ(at_bg(s->label), 255);
  EXPECT_EQ(s->gt_classes, (V{context_raw_to_mmseg(72) - 1, context_raw_to_mmseg(284) - 1}));
}

TEST(CocoObjectReader, PanopticPaperKeepsTheInPlaceRemap) {
  TempDir tmp;
  Fixture fx = write_fixture(DatasetKind::CocoObject, tmp.str());
  auto paper = Dataset::open(config_for(fx, Protocol::paper));
  auto standard = Dataset::open(config_for(fx, Protocol::standard));
  EXPECT_EQ(paper->label_source(), LabelSource::Panoptic);
  EXPECT_EQ(ids_of(*paper), fx.paper_ids);
  EXPECT_EQ(ids_of(*standard), fx.standard_ids);
  auto p0 = paper->load(0), s0 = standard->load(0);  // person, chair (62 -> 57), banner ring (stuff -> 0), void
  EXPECT_EQ(at_a(p0->label), 1);
  EXPECT_EQ(at_b(p0->label), 57);
  EXPECT_EQ(at_ring(p0->label), 0);
  EXPECT_EQ(at_bg(p0->label), 0);
  EXPECT_EQ(at_ring(s0->label), 0);  // stuff is background in both
  EXPECT_EQ(at_bg(s0->label), 255);  // void is ignored under standard
  EXPECT_EQ(p0->gt_classes, (V{1, 57}));
  // Q14: segment 70000 (car -> 3) is rewritten again by segment 3 (dog -> 17) under the paper protocol.
  auto p1 = paper->load(1), s1 = standard->load(1);
  EXPECT_EQ(at_a(p1->label), 17);
  EXPECT_EQ(at_b(p1->label), 17);
  EXPECT_EQ(p1->gt_classes, (V{17}));
  EXPECT_EQ(at_a(s1->label), 3);
  EXPECT_EQ(at_b(s1->label), 17);
  EXPECT_EQ(s1->gt_classes, (V{3, 17}));
}

TEST(CocoObjectReader, PngFormMatchesTheCleanPanopticMap) {
  TempDir tmp;
  Fixture fx = write_fixture(DatasetKind::CocoObject, tmp.str());
  auto c = config_for(fx, Protocol::standard);
  auto pan = Dataset::open(c);
  c.label_source = LabelSource::Png;
  expect_same_labels(*Dataset::open(c), *pan);
  // Paper protocol on the PNG form: 255 -> 0 (no Q14: the PNG already holds classes).
  auto cp = config_for(fx, Protocol::paper);
  cp.label_source = LabelSource::Png;
  auto pp = Dataset::open(cp);
  auto s = pp->load(1);
  EXPECT_EQ(at_a(s->label), 3);
  EXPECT_EQ(at_bg(s->label), 0);
}

TEST(CocoObjectReader, MissingAnnotationReusesTheLastUnderPaperOnly) {
  TempDir tmp;
  FixtureOptions o;
  o.paper_quirks = true;
  Fixture fx = write_fixture(DatasetKind::CocoObject, tmp.str(), o);
  auto paper = Dataset::open(config_for(fx, Protocol::paper));
  auto s = paper->load(2);  // 000000000632: not in the json; the last annotation (000000000724's) is used
  ASSERT_TRUE(s);
  EXPECT_EQ(at_a(s->label), 40);  // segment 6000 read as a bottle (category 44), not a toothbrush
  EXPECT_EQ(at_b(s->label), 1);   // segment 8000 read as a person, not stuff
  ASSERT_EQ(paper->report().notes().count(kNoteCocoAnnotationReused), 1u);
  auto standard = Dataset::open(config_for(fx, Protocol::standard));
  expect_sample_error([&] { standard->load(2); }, IssueKind::MissingFile, {"no annotation for '000000000632.png'"});
}

TEST(CityscapesReader, PaperMapping20AndStandardTrainIds) {
  TempDir tmp;
  Fixture fx = write_fixture(DatasetKind::Cityscapes, tmp.str());
  auto paper = Dataset::open(config_for(fx, Protocol::paper));
  auto standard = Dataset::open(config_for(fx, Protocol::standard));
  EXPECT_EQ(ids_of(*paper), fx.paper_ids);  // sorted by city folder, then file
  EXPECT_EQ(paper->label_source(), LabelSource::LabelIds);
  EXPECT_EQ(standard->label_source(), LabelSource::LabelTrainIds);
  auto p = paper->load(0), s = standard->load(0);  // road bg, car block, person block, unlabeled ring
  EXPECT_EQ(p->id, "frankfurt_000000_000294_leftImg8bit.png");
  EXPECT_EQ(at_bg(p->label), 1);
  EXPECT_EQ(at_a(p->label), 14);
  EXPECT_EQ(at_b(p->label), 12);
  EXPECT_EQ(at_ring(p->label), 0);
  EXPECT_EQ(p->gt_classes, (V{1, 12, 14}));
  EXPECT_EQ(at_bg(s->label), 0);
  EXPECT_EQ(at_a(s->label), 13);
  EXPECT_EQ(at_b(s->label), 11);
  EXPECT_EQ(at_ring(s->label), 255);
  EXPECT_EQ(s->gt_classes, (V{0, 11, 13}));  // road is class 0 and not background under standard
  auto p2 = paper->load(2);                  // sky bg, caravan block (void -> 0), road block, ego-vehicle ring
  EXPECT_EQ(at_a(p2->label), 0);
  EXPECT_EQ(p2->gt_classes, (V{1, 11}));
  // The other label file gives the same classes under each protocol.
  for (Protocol pr : {Protocol::paper, Protocol::standard}) {
    auto c = config_for(fx, pr);
    c.label_source = pr == Protocol::paper ? LabelSource::LabelTrainIds : LabelSource::LabelIds;
    expect_same_labels(*Dataset::open(c), pr == Protocol::paper ? *paper : *standard);
  }
}

TEST(Ade20kReader, PaperKeepsZeroStandardReducesIt) {
  TempDir tmp;
  Fixture fx = write_fixture(DatasetKind::Ade20k, tmp.str());
  auto paper = Dataset::open(config_for(fx, Protocol::paper));
  auto standard = Dataset::open(config_for(fx, Protocol::standard));
  EXPECT_EQ(ids_of(*paper), fx.paper_ids);
  auto p = paper->load(1), s = standard->load(1);  // sky bg, flag block, building block, 0 ring
  EXPECT_EQ(at_bg(p->label), 3);
  EXPECT_EQ(at_a(p->label), 150);
  EXPECT_EQ(at_ring(p->label), 0);
  EXPECT_EQ(p->gt_classes, (V{2, 3, 150}));  // remove(0)
  EXPECT_EQ(at_bg(s->label), 2);
  EXPECT_EQ(at_a(s->label), 149);
  EXPECT_EQ(at_ring(s->label), 255);
  EXPECT_EQ(s->gt_classes, (V{1, 2, 149}));
  EXPECT_EQ(standard->classes().classes[149].name, "flag");
}

TEST(Ade20kReader, ValuesAbove150AreZeroUnderPaperAndBadInputUnderStandard) {
  TempDir tmp;
  FixtureOptions o;
  o.paper_quirks = true;
  Fixture fx = write_fixture(DatasetKind::Ade20k, tmp.str(), o);
  auto paper = Dataset::open(config_for(fx, Protocol::paper));
  EXPECT_EQ(at_ring(paper->load(1)->label), 0);  // 200 at (0, 0) -> 0
  auto c = config_for(fx, Protocol::standard);
  auto standard = Dataset::open(c);
  expect_sample_error([&] { standard->load(1); }, IssueKind::OutOfRange, {"label value 200 at row 0, column 0"});
}

TEST(Ade20kReader, Q13NoZeroPixelFailsUnderPaper) {
  TempDir tmp;
  Fixture fx = write_fixture(DatasetKind::Ade20k, tmp.str());
  // Sample 0 without any 0 pixel.
  const std::string label = fx.root + "/annotations/validation/ADE_val_00000001.png";
  gb::write_png_gray(label, at::full({14, 20}, 7, at::kByte));
  auto paper = Dataset::open(config_for(fx, Protocol::paper));
  expect_sample_error([&] { paper->load(0); }, IssueKind::PaperQuirk, {"Q13"});
  auto standard = Dataset::open(config_for(fx, Protocol::standard));
  EXPECT_EQ(standard->load(0)->gt_classes, (V{6}));
}

TEST(Readers, EveryFixtureLoadsUnderBothProtocols) {
  for (DatasetKind k : all_dataset_kinds()) {
    TempDir tmp;
    Fixture fx = write_fixture(k, tmp.str());
    for (Protocol p : {Protocol::paper, Protocol::standard}) {
      auto c = config_for(fx, p);
      c.captions = fx.captions;
      auto ds = Dataset::open(c);
      ASSERT_GT(ds->size(), 0u) << to_string(k);
      for (size_t i = 0; i < ds->size(); ++i) {
        auto s = ds->load(i);
        ASSERT_TRUE(s) << to_string(k) << " " << to_string(p) << " " << ds->id(i);
        EXPECT_EQ(s->label.sizes(), (at::IntArrayRef{s->height, s->width}));
        const int64_t lo = s->label.min().item<int64_t>(), hi = s->label.max().item<int64_t>();
        EXPECT_GE(lo, 0);
        EXPECT_TRUE(hi < ds->classes().num_classes() || hi == ds->classes().ignore_index) << hi;
        EXPECT_NE(ds->captions()->find(s->id), nullptr);
      }
      EXPECT_EQ(ds->report().skipped_count(), 0u);
    }
  }
}

TEST(Readers, ParallelLoadsMatchSequentialOnes) {
  TempDir tmp;
  FixtureOptions o;
  o.paper_quirks = true;  // includes the Q14 note (report written from several threads)
  Fixture fx = write_fixture(DatasetKind::CocoObject, tmp.str(), o);
  auto ds = Dataset::open(config_for(fx, Protocol::paper));
  std::vector<at::Tensor> seq;
  for (size_t i = 0; i < ds->size(); ++i) seq.push_back(ds->load(i)->label);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(8, 0);
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 5; ++rep)
        for (size_t i = 0; i < ds->size(); ++i)
          if (!at::equal(ds->load((i + t) % ds->size())->label, seq[(i + t) % ds->size()])) ++mismatches[t];
    });
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
  EXPECT_EQ(ds->report().notes().at(kNoteCocoAnnotationReused).size(), 1u);  // one image, however often loaded
}

TEST(Readers, LimitTakesTheFirstInSortedOrder) {
  for (DatasetKind k : {DatasetKind::CocoObject, DatasetKind::Cityscapes, DatasetKind::Ade20k}) {
    TempDir tmp;
    Fixture fx = write_fixture(k, tmp.str());
    auto c = config_for(fx, Protocol::paper);
    c.limit = 3;
    auto ds = Dataset::open(c);
    EXPECT_EQ(ids_of(*ds), (std::vector<std::string>(fx.paper_ids.begin(), fx.paper_ids.begin() + 3))) << to_string(k);
  }
  // Hidden files are not part of a glob listing; sorting is by full path (city folder first).
  TempDir tmp;
  Fixture fx = write_fixture(DatasetKind::Ade20k, tmp.str());
  { std::ofstream(fx.root + "/images/validation/.DS_Store") << "x"; }
  EXPECT_EQ(ids_of(*Dataset::open(config_for(fx, Protocol::paper))), fx.paper_ids);
}

TEST(CocoStuffReader, PaperMappingMergesFoodAndFurniture) {
  TempDir tmp;
  Fixture fx = write_fixture(DatasetKind::CocoStuff, tmp.str());
  auto c = config_for(fx, Protocol::paper);
  c.captions = fx.captions;
  auto ds = Dataset::open(c);
  EXPECT_EQ(ids_of(*ds), fx.paper_ids);  // sorted val2017/*.jpg; the PNGs beside them are not listed
  EXPECT_EQ(ds->label_source(), LabelSource::Png);
  EXPECT_EQ(ds->classes().num_classes(), 28);
  auto s = ds->load(2);  // road background, banana block, furniture-other block, chair ring
  ASSERT_TRUE(s);
  EXPECT_EQ(at_bg(s->label), 22);   // ground
  EXPECT_EQ(at_a(s->label), 3);     // food (things)
  EXPECT_EQ(at_b(s->label), 4);     // furniture-stuff (16) merged into furniture (4)
  EXPECT_EQ(at_ring(s->label), 4);  // furniture (things)
  EXPECT_EQ(s->gt_classes, (V{3, 4, 22}));
  auto s3 = ds->load(3);  // unlabeled background, person, sky, food-other ring
  EXPECT_EQ(at_bg(s3->label), 0);
  EXPECT_EQ(at_a(s3->label), 10);
  EXPECT_EQ(at_b(s3->label), 24);
  EXPECT_EQ(at_ring(s3->label), 3);  // food-stuff (15) merged into food (3)
  EXPECT_EQ(s3->gt_classes, (V{3, 10, 24}));
  // The official 0-based stuffthingmaps give the same classes once read as what they are.
  auto m = c;
  m.label_source = LabelSource::StuffThingMaps;
  expect_same_labels(*Dataset::open(m), *ds);
}

TEST(CocoStuffReader, StandardIsTheCoarse27WithUnlabeledIgnored) {
  TempDir tmp;
  Fixture fx = write_fixture(DatasetKind::CocoStuff, tmp.str());
  auto c = config_for(fx, Protocol::standard);
  auto ds = Dataset::open(c);
  EXPECT_EQ(ds->label_source(), LabelSource::StuffThingMaps);
  EXPECT_EQ(ds->classes().num_classes(), 27);
  auto s = ds->load(2);
  EXPECT_EQ(at_bg(s->label), 21);   // ground-stuff
  EXPECT_EQ(at_a(s->label), 2);     // food-things
  EXPECT_EQ(at_b(s->label), 15);    // furniture-stuff stays apart
  EXPECT_EQ(at_ring(s->label), 3);  // furniture-things
  auto s3 = ds->load(3);
  EXPECT_EQ(at_bg(s3->label), 255);
  EXPECT_EQ(s3->gt_classes, (V{9, 14, 23}));
  // The category-id PNGs read under the standard protocol: 0 (unlabeled) -> 255.
  auto p = c;
  p.label_source = LabelSource::Png;
  expect_same_labels(*Dataset::open(p), *ds);
}

TEST(CocoStuffReader, ValueOutsideTheCategoriesIsBackgroundForThePaperAndBadInputOtherwise) {
  TempDir tmp;
  FixtureOptions o;
  o.paper_quirks = true;
  Fixture fx = write_fixture(DatasetKind::CocoStuff, tmp.str(), o);
  auto paper = Dataset::open(config_for(fx, Protocol::paper));
  EXPECT_EQ(at_ring(paper->load(3)->label), 0);  // stored 200: encode_labels leaves 0
  auto standard = Dataset::open(config_for(fx, Protocol::standard));
  expect_sample_error([&] { standard->load_or_throw(3); }, IssueKind::OutOfRange,
                      {"label value 200 at row 0, column 0", "stuffthingmaps_trainval2017"});
}
