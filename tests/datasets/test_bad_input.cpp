// Bad input: missing file, corrupt image, label/image size mismatch, id without caption, class id out of range.
// Each is a SampleError (a UserError naming the file) under on_error: fail, or a counted, reported skip.
#include "../test_support.h"
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "datasets/dataset.h"
#include "datasets/fixtures.h"
#include "fixture_util.h"
#include "harness/io/image_io.h"

using namespace gb::datasets;
using namespace gbtest;
namespace fs = std::filesystem;

namespace {

struct Case {
  TempDir tmp;
  Fixture fx;
  Case() { fx = write_fixture(DatasetKind::Voc, tmp.str()); }
  std::string image(const std::string& stem) const { return fx.root + "/JPEGImages/" + stem + ".jpg"; }
  std::string label(const std::string& stem) const { return fx.root + "/SegmentationClass/" + stem + ".png"; }
};

// Loads every sample under both policies: fail must throw a SampleError of `kind` mentioning `needle` at sample
// `bad`; skip must yield nullopt there, load the others, and count one skip.
void expect_bad(const DatasetConfig& base, size_t bad, IssueKind kind, const std::string& needle) {
  auto c = base;
  c.on_error = OnError::Fail;
  auto ds = Dataset::open(c);
  SCOPED_TRACE("sample " + std::to_string(bad));
  expect_sample_error([&] { ds->load(bad); }, kind, {needle});
  c.on_error = OnError::Skip;
  auto sk = Dataset::open(c);
  size_t loaded = 0;
  for (size_t i = 0; i < sk->size(); ++i) {
    auto s = sk->load(i);
    EXPECT_EQ(s.has_value(), i != bad);
    loaded += s ? 1 : 0;
  }
  EXPECT_EQ(loaded, sk->size() - 1);
  ASSERT_EQ(sk->report().skipped_count(), 1u);
  EXPECT_EQ(sk->report().skipped()[0].kind, kind);
  EXPECT_EQ(sk->report().skipped()[0].id, sk->id(bad));
  EXPECT_NE(sk->report().summary().find("skipped (bad input, on_error: skip): 1"), std::string::npos);
}

}  // namespace

TEST(BadInput, MissingImage) {
  Case k;
  fs::remove(k.image("2008_000008"));  // paper order index 1
  expect_bad(config_for(k.fx, Protocol::paper), 1, IssueKind::MissingFile, "2008_000008.jpg: image file missing");
}

TEST(BadInput, MissingLabel) {
  Case k;
  fs::remove(k.label("2009_000123"));
  expect_bad(config_for(k.fx, Protocol::paper), 0, IssueKind::MissingFile, "2009_000123.png: label file missing");
}

TEST(BadInput, MissingXml) {
  Case k;
  fs::remove(k.fx.root + "/Annotations/2007_000039.xml");
  expect_bad(config_for(k.fx, Protocol::paper), 2, IssueKind::MissingFile, "2007_000039.xml: annotation file missing");
}

TEST(BadInput, CorruptImage) {
  Case k;
  {
    std::ofstream out(k.image("2007_000032"), std::ios::binary | std::ios::trunc);
    out << "\xff\xd8\xff\xe0 this is not a jpeg";
  }
  expect_bad(config_for(k.fx, Protocol::paper), 3, IssueKind::Unreadable, "2007_000032.jpg");
}

TEST(BadInput, CorruptLabel) {
  Case k;
  {
    std::ofstream out(k.label("2007_000032"), std::ios::binary | std::ios::trunc);
    out << "\x89PNG\r\n\x1a\n truncated";
  }
  expect_bad(config_for(k.fx, Protocol::paper), 3, IssueKind::Unreadable, "2007_000032.png");
}

TEST(BadInput, SizeMismatch) {
  Case k;
  gb::write_png_palette(k.label("2007_000039"), at::zeros({14, 21}, at::kByte));
  expect_bad(config_for(k.fx, Protocol::paper), 2, IssueKind::SizeMismatch,
             "2007_000039.png: label is 21x14 (WxH) but image");
}

TEST(BadInput, ClassIdOutOfRangeUnderStandard) {
  Case k;
  at::Tensor l = at::zeros({14, 20}, at::kByte);
  l.index_put_({5, 7}, 37);
  gb::write_png_palette(k.label("2009_000123"), l);
  auto c = config_for(k.fx, Protocol::standard);
  expect_bad(c, 0, IssueKind::OutOfRange, "label value 37 at row 5, column 7 is outside [0, 20] and 255");
  // The paper protocol maps it to background (label[label > 20] = 0).
  auto p = Dataset::open(config_for(k.fx, Protocol::paper));
  EXPECT_EQ(p->load(0)->label[5][7].item<int64_t>(), 0);
}

TEST(BadInput, IdWithoutCaption) {
  Case k;
  auto caps = CaptionFile::parse(R"({"2009_000123.jpg": {"caption": "tv"}, "2008_000008.jpg": {"caption": "plane"},
                                     "2007_000032.jpg": {"caption": "person"}})",
                                 "caps.json");
  auto c = config_for(k.fx, Protocol::paper);
  expect_sample_error([&] { Dataset::open(c, &caps); }, IssueKind::MissingCaption,
                      {"caps.json: no caption for image '2007_000039.jpg'"});
  c.missing_caption = MissingCaption::Skip;
  auto ds = Dataset::open(c, &caps);
  EXPECT_EQ(ds->size(), 3u);
  ASSERT_EQ(ds->report().skipped_count(), 1u);
  EXPECT_EQ(ds->report().skipped()[0].kind, IssueKind::MissingCaption);
  c.missing_caption = MissingCaption::Ignore;
  EXPECT_EQ(Dataset::open(c, &caps)->size(), 4u);
}

TEST(BadInput, LayoutProblemsAreUserErrors) {
  Case k;
  auto c = config_for(k.fx, Protocol::paper);
  c.root = k.fx.root + "/nope";
  EXPECT_THROW(Dataset::open(c), gb::UserError);
  c = config_for(k.fx, Protocol::paper);
  c.root.clear();
  EXPECT_THROW(Dataset::open(c), gb::UserError);
  c = config_for(k.fx, Protocol::paper);
  c.split = "ImageSets/Segmentation/missing.txt";
  try {
    Dataset::open(c);
    FAIL();
  } catch (const gb::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.txt: cannot open split file"), std::string::npos);
  }
  TempDir ctx;
  Fixture cf = write_fixture(DatasetKind::Context, ctx.str());
  auto cc = default_dataset_config(DatasetKind::Context, Protocol::paper);
  cc.root = cf.root;  // no --images: pascal-context has no JPEGImages
  try {
    Dataset::open(cc);
    FAIL();
  } catch (const gb::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("pass the VOC2012 JPEGImages folder with --images"), std::string::npos);
  }
}

TEST(BadInput, MatFileProblems) {
  if (!kHaveMatio) {
    EXPECT_THROW(read_mat_variable("/tmp/x.mat", "LabelMap"), gb::UserError);
    return;
  }
  TempDir tmp;
  const std::string path = tmp.str() + "/a.mat";
  EXPECT_THROW(read_mat_variable(path, "LabelMap"), gb::UserError);  // missing
  {
    std::ofstream out(path, std::ios::binary);
    out << "not a mat file at all";
  }
  EXPECT_THROW(read_mat_variable(path, "LabelMap"), gb::UserError);
  at::Tensor l = at::arange(6, at::kLong).reshape({2, 3});
  write_mat_label(path, "Other", l);
  try {
    read_mat_variable(path, "LabelMap");
    FAIL();
  } catch (const gb::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("has no readable variable 'LabelMap'"), std::string::npos);
  }
  EXPECT_TRUE(at::equal(read_mat_variable(path, "Other"), l));  // row-major round trip of a column-major file
}

TEST(BadInput, MatValuesThatAreNotIntegerLabels) {
  if (!kHaveMatio) GTEST_SKIP() << "built without libmatio";
  // Found by fuzz/fuzz_mat: a double LabelMap holding 1.1e248 was cast to int64 (undefined behaviour).
  const std::string e = gb::test::user_error_message(
      [] { read_mat_variable(std::string(GB_SOURCE_DIR) + "/tests/datasets/data/mat_huge_double.mat", "LabelMap"); });
  EXPECT_NE(e.find("which is not an integer label"), std::string::npos) << e;
}

TEST(BadInput, MatSizesBeyondTheFileAreRefusedBeforeLibmatioAllocates) {
  if (!kHaveMatio) GTEST_SKIP() << "built without libmatio";
  // Found by fuzz/fuzz_mat: 360 bytes whose array-flags element claims 788 MB; libmatio allocated 4 GB.
  const std::string e = gb::test::user_error_message([] {
    read_mat_variable(std::string(GB_SOURCE_DIR) + "/tests/datasets/data/mat_element_too_large.mat", "LabelMap");
  });
  EXPECT_NE(e.find("corrupt MAT file: an element of the matrix at offset 128 claims 788529160 bytes"),
            std::string::npos)
      << e;
  // A valid file whose top-level element is cut short.
  TempDir tmp;
  const std::string path = tmp.str() + "/cut.mat";
  write_mat_label(path, "LabelMap", at::arange(64, at::kLong).reshape({8, 8}));
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 16);
  const std::string cut = gb::test::user_error_message([&] { read_mat_variable(path, "LabelMap"); });
  EXPECT_NE(cut.find("corrupt MAT file: the element at offset 128 claims"), std::string::npos) << cut;
}

TEST(BadInput, PanopticIdMinusOneInTheFirstPixel) {
  // Found by fuzz/fuzz_label_map: the distinct-id scan started from -1, so an image whose first pixel is -1 had no
  // entry for it and map_panoptic threw std::out_of_range (an internal error).
  const at::Tensor ids = at::tensor({-1, -1, 5, 5}, at::kLong).reshape({2, 2});
  for (Protocol p : {Protocol::paper, Protocol::standard}) {
    const std::string e = gb::test::user_error_message([&] { map_panoptic(ids, {{5, 1}}, p, "pan.png"); });
    EXPECT_NE(e.find("segment id -1 (at row 0, column 0)"), std::string::npos) << e;
  }
  // Listed ids still map; 0 is ignore under the standard protocol.
  const at::Tensor ok = map_panoptic(at::tensor({0, 5, 5, 7}, at::kLong).reshape({2, 2}), {{5, 1}, {7, 2}},
                                     Protocol::standard, "pan.png");
  EXPECT_EQ(ok[0][1].item<int64_t>(), ok[1][0].item<int64_t>());
}

TEST(MatFiles, ReadsFilesWrittenByScipy) {
  if (!kHaveMatio) GTEST_SKIP() << "built without libmatio";
  // tools/parity/datasets_mat.py: the same 3x5 LabelMap as compressed uint16 and as double.
  const at::Tensor expected =
      at::tensor({0, 2, 259, 260, 415, 324, 9, 1, 3, 459, 440, 445, 0, 0, 284}, at::kLong).reshape({3, 5});
  for (const char* name : {"labelmap_uint16_zlib.mat", "labelmap_double.mat"}) {
    const at::Tensor got = read_mat_variable(std::string(GB_SOURCE_DIR) + "/tests/datasets/data/" + name, "LabelMap");
    EXPECT_TRUE(at::equal(got, expected)) << name << "\n" << got;
  }
  // Through the paper's raw -> 60 mapping.
  DatasetConfig c = default_dataset_config(DatasetKind::Context, Protocol::paper);
  const at::Tensor mapped = map_label(c, LabelSource::Mat, expected, "x.mat");
  EXPECT_TRUE(at::equal(mapped[0], at::tensor({0, 1, 2, 3, 4}, at::kLong)));
  EXPECT_TRUE(at::equal(mapped[1], at::tensor({5, 6, 0, 0, 0}, at::kLong)));
  EXPECT_TRUE(at::equal(mapped[2], at::tensor({31, 32, 0, 0, 15}, at::kLong)));
}
