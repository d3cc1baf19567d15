#include "datasets/fixtures.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "harness/core/errors.h"
#include "harness/io/image_io.h"

#ifdef GB_WITH_MATIO
#include <matio.h>
#endif

namespace gb::datasets {
namespace fs = std::filesystem;

namespace {

constexpr int kSamples = 4;

// Label layout of sample i: `bg` everywhere, class `a` in a top-left block, class `b` in a bottom-right block, and
// (when `ring` >= 0) a one-pixel ring of value `ring` around block a (VOC's 255 boundary, Cityscapes void, ...).
at::Tensor blocks(int64_t h, int64_t w, int64_t bg, int64_t a, int64_t b, int64_t ring) {
  at::Tensor l = at::full({h, w}, bg, at::kLong);
  auto* p = l.data_ptr<int64_t>();
  const int64_t ay1 = h / 2, ax1 = w / 2;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      if (y >= 1 && y < ay1 && x >= 1 && x < ax1) p[y * w + x] = a;
      else if (ring >= 0 && y <= ay1 && x <= ax1) p[y * w + x] = ring;
      if (y >= h - h / 3 && x >= w - w / 3) p[y * w + x] = b;
    }
  return l;
}

at::Tensor image_for(int64_t h, int64_t w, int i) {
  at::Tensor img = at::empty({h, w, 3}, at::kByte);
  auto* p = img.data_ptr<uint8_t>();
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      p[(y * w + x) * 3 + 0] = static_cast<uint8_t>((x * 12 + i * 40) % 256);
      p[(y * w + x) * 3 + 1] = static_cast<uint8_t>((y * 17 + i * 25) % 256);
      p[(y * w + x) * 3 + 2] = static_cast<uint8_t>(((x + y) * 5 + i * 60) % 256);
    }
  return img;
}

void mkdirs(const fs::path& p) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec) fail_file(p.string(), "cannot create folder ({})", ec.message());
}

void write_text(const fs::path& p, const std::string& text) {
  mkdirs(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  if (!out) fail_file(p.string(), "cannot write");
  out << text;
}

// The image writers expect the folder to exist.
std::string in_dir(const fs::path& p) {
  mkdirs(p.parent_path());
  return p.string();
}

at::Tensor to_u8(const at::Tensor& t) { return t.to(at::kByte).contiguous(); }

// Applies f to every value of an int64 label.
template <typename F>
at::Tensor remap(const at::Tensor& label, F f) {
  at::Tensor out = label.clone();
  auto* p = out.data_ptr<int64_t>();
  for (int64_t i = 0; i < out.numel(); ++i) p[i] = f(p[i]);
  return out;
}

std::string caption_for(const ClassTable& t, const std::vector<int64_t>& classes) {
  std::string c;
  for (int64_t k : classes) {
    if (k <= 0 || k >= t.num_classes()) continue;
    if (!c.empty()) c += ", ";
    c += t.classes[k].synonyms.empty() ? t.classes[k].name : t.classes[k].synonyms[0];
  }
  return (c.empty() ? std::string("scene") : c) + ", sky.";
}

void write_captions(const fs::path& path, const std::vector<std::pair<std::string, std::string>>& entries) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [id, cap] : entries) j[id] = {{"caption", cap}};
  write_text(path, j.dump(1) + "\n");
}

std::string voc_xml(const std::string& stem, const std::vector<std::string>& names) {
  std::string x = "<annotation>\n  <folder>VOC2012</folder>\n  <filename>" + stem + ".jpg</filename>\n";
  for (const auto& n : names)
    x += "  <object>\n    <name>" + n +
         "</name>\n    <pose>Unspecified</pose>\n    <truncated>0</truncated>\n"
         "    <difficult>0</difficult>\n    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox>\n"
         "    <part><name>head</name></part>\n  </object>\n";
  return x + "</annotation>\n";
}

}  // namespace

void write_mat_label(const std::string& path, const std::string& variable, const at::Tensor& label) {
#ifdef GB_WITH_MATIO
  at::Tensor l = label.to(at::kLong).contiguous();
  const int64_t rows = l.size(0), cols = l.size(1);
  std::vector<uint16_t> col_major(static_cast<size_t>(rows * cols));
  const auto* p = l.data_ptr<int64_t>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      col_major[static_cast<size_t>(r + c * rows)] = static_cast<uint16_t>(p[r * cols + c]);
  mkdirs(fs::path(path).parent_path());
  mat_t* mat = Mat_CreateVer(path.c_str(), nullptr, MAT_FT_MAT5);
  if (!mat) fail_file(path, "cannot create MAT file");
  size_t dims[2] = {static_cast<size_t>(rows), static_cast<size_t>(cols)};
  matvar_t* var = Mat_VarCreate(variable.c_str(), MAT_C_UINT16, MAT_T_UINT16, 2, dims, col_major.data(), 0);
  if (!var || Mat_VarWrite(mat, var, MAT_COMPRESSION_NONE) != 0) {
    if (var) Mat_VarFree(var);
    Mat_Close(mat);
    fail_file(path, "cannot write MAT variable '{}'", variable);
  }
  Mat_VarFree(var);
  Mat_Close(mat);
#else
  (void)variable;
  (void)label;
  fail_file(path, "this build has no libmatio; cannot write .mat files");
#endif
}

namespace {

// The samples of one dataset kind; `caps`: (image file, caption) per sample.
using CaptionList = std::vector<std::pair<std::string, std::string>>;

// VOC2012: JPEGs, palette PNG labels with a 255 ring, XML annotations, train/val lists.
void write_voc(const fs::path& base, const FixtureOptions& o, const ClassTable& paper, Fixture& f, CaptionList& caps) {
  const int64_t H = o.height, W = o.width;
  const fs::path root = base / "VOC2012";
  f.root = root.string();
  const std::vector<std::string> stems = {"2007_000032", "2007_000039", "2008_000008", "2009_000123"};
  // (a, b) classes per sample; 255 boundary ring around a; sample 2 has no second class (b = 0).
  const int64_t ab[kSamples][2] = {{15, 9}, {12, 18}, {1, 0}, {20, 11}};
  std::string train, val;
  for (int i = 0; i < kSamples; ++i) {
    write_jpeg(in_dir(root / "JPEGImages" / (stems[i] + ".jpg")), image_for(H, W, i));
    mkdirs(root / "SegmentationClass");
    write_png_palette(in_dir(root / "SegmentationClass" / (stems[i] + ".png")),
                      to_u8(blocks(H, W, 0, ab[i][0], ab[i][1], 255)));
    std::vector<std::string> names;
    for (int64_t k : {ab[i][0], ab[i][1]})
      if (k > 0) names.push_back(paper.classes[k].name);
    if (i == 0) names.push_back("person");  // a second person instance: xml names repeat
    if (i == 3) names.push_back("bottle");  // annotated object not visible in the segmentation
    write_text(root / "Annotations" / (stems[i] + ".xml"), voc_xml(stems[i], names));
    train += stems[i] + "\n";
    caps.emplace_back(stems[i] + ".jpg", caption_for(paper, {ab[i][0], ab[i][1]}));
  }
  val = stems[3] + "\n" + stems[1] + "\n";
  write_text(root / "ImageSets/Segmentation/train.txt", train);
  write_text(root / "ImageSets/Segmentation/val.txt", val);
  for (int i = kSamples - 1; i >= 0; --i) f.paper_ids.push_back(stems[i] + ".jpg");
  f.standard_ids = {stems[3] + ".jpg", stems[1] + ".jpg"};
}

// PASCAL-Context: VOC JPEGs, 459-class .mat label maps (with libmatio), mmseg 59-class PNGs, lists.
void write_context(const fs::path& base, const FixtureOptions& o, const ClassTable& paper, Fixture& f,
                   CaptionList& caps) {
  const int64_t H = o.height, W = o.width;
  const fs::path root = base / "pascal-context";
  const fs::path images = base / "VOC2012" / "JPEGImages";
  f.root = root.string();
  f.images = images.string();
  const std::vector<std::string> stems = {"2008_000002", "2008_000003", "2008_000007", "2009_000012"};
  // raw 459-class ids: (a, b, ring, background); 1 accordion, 3 air conditioner, 459 wool are outside the 59.
  const int64_t raw[kSamples][4] = {{284, 72, 1, 0}, {113, 368, 3, 360}, {2, 360, -1, 0}, {427, 397, 459, 440}};
  std::string train;
  for (int i = 0; i < kSamples; ++i) {
    write_jpeg(in_dir(images / (stems[i] + ".jpg")), image_for(H, W, i));
    const at::Tensor lm = blocks(H, W, raw[i][3], raw[i][0], raw[i][1], raw[i][2]);
    if (o.write_mat) write_mat_label((root / "trainval" / (stems[i] + ".mat")).string(), "LabelMap", lm);
    mkdirs(root / "SegmentationClassContext");
    write_png_gray(in_dir(root / "SegmentationClassContext" / (stems[i] + ".png")),
                   to_u8(remap(lm, [](int64_t v) { return context_raw_to_mmseg(v); })));
    train += stems[i] + "\n";
    caps.emplace_back(stems[i] + ".jpg",
                      caption_for(paper, {context_raw_to_paper(raw[i][0]), context_raw_to_paper(raw[i][1])}));
  }
  // A train id with an image but no label file: the paper's loader drops it.
  write_jpeg(in_dir(images / "2010_000001.jpg"), image_for(H, W, 9));
  train += "2010_000001\n";
  write_text(root / "ImageSets/Segmentation/train.txt", train);
  write_text(root / "ImageSets/SegmentationContext/val.txt", stems[2] + "\n" + stems[0] + "\n");
  for (int i = kSamples - 1; i >= 0; --i) f.paper_ids.push_back(stems[i] + ".jpg");
  f.standard_ids = {stems[2] + ".jpg", stems[0] + ".jpg"};
}

// COCO-Object: panoptic PNGs and json, the 80-things + background maps.
void write_coco_object(const fs::path& base, const FixtureOptions& o, const ClassTable& paper, Fixture& f,
                       CaptionList& caps) {
  const int64_t H = o.height, W = o.width;
  const fs::path root = base / "coco-object";
  f.root = root.string();
  const std::vector<std::string> stems = {"000000000139", "000000000285", "000000000632", "000000000724"};
  // Per sample: segments (segment id, category_id) painted as block a, block b and the ring; 0 = void.
  // Sample 1 exercises Q14: segment 70000 (car -> class 3) is rewritten again by segment 3 (dog -> 17).
  // With paper_quirks, sample 2 is missing from the json: the paper reuses the last annotation (sample 3's), so
  // its segment 6000 becomes a bottle (class 40) instead of a toothbrush (80) and 8000 a person (1) instead of stuff.
  struct Seg {
    int64_t id, cat;
  };
  const std::vector<std::vector<Seg>> segs = {{{1000, 1}, {2000, 62}, {3000, 92}},
                                              {{70000, 3}, {3, 18}, {4000, 200}},
                                              {{6000, 90}, {8000, 184}},
                                              {{6000, 44}, {7000, 51}, {8000, 1}}};
  nlohmann::ordered_json annos = nlohmann::ordered_json::array();
  for (int i = 0; i < kSamples; ++i) {
    write_jpeg(in_dir(root / "images/val2017" / (stems[i] + ".jpg")), image_for(H, W, i));
    const auto& s = segs[i];
    const at::Tensor ids = blocks(H, W, 0, s[0].id, s[1].id, s.size() > 2 ? s[2].id : -1);
    at::Tensor rgb =
        at::stack({ids.remainder(256), (ids.floor_divide(256)).remainder(256), ids.floor_divide(65536)}, 2);
    mkdirs(root / "annotations/panoptic_val2017");
    write_png_rgb(in_dir(root / "annotations/panoptic_val2017" / (stems[i] + ".png")), to_u8(rgb));
    // 80-things + background form (clean map, void -> 255).
    std::map<int64_t, int64_t> clean = {{0, 255}};
    for (const auto& sg : s) clean[sg.id] = coco_category_to_class(sg.cat);
    mkdirs(root / "annotations/object_val2017");
    write_png_gray(in_dir(root / "annotations/object_val2017" / (stems[i] + ".png")),
                   to_u8(remap(ids, [&](int64_t v) { return clean.at(v); })));
    if (!(o.paper_quirks && i == 2)) {
      nlohmann::ordered_json info = nlohmann::ordered_json::array();
      for (const auto& sg : s) info.push_back({{"id", sg.id}, {"category_id", sg.cat}, {"iscrowd", 0}});
      annos.push_back({{"image_id", std::stoll(stems[i])}, {"file_name", stems[i] + ".png"}, {"segments_info", info}});
    }
    caps.emplace_back(stems[i] + ".jpg",
                      caption_for(paper, {coco_category_to_class(s[0].cat), coco_category_to_class(s[1].cat)}));
    f.paper_ids.push_back(stems[i] + ".jpg");
  }
  nlohmann::ordered_json cats = nlohmann::ordered_json::array();
  for (const auto& c : coco_panoptic_categories())
    cats.push_back({{"id", c.id}, {"isthing", c.isthing ? 1 : 0}, {"name", c.name}});
  write_text(root / "annotations/panoptic_val2017.json",
             nlohmann::ordered_json{{"annotations", annos}, {"categories", cats}}.dump() + "\n");
  f.standard_ids = f.paper_ids;
}

// Cityscapes: leftImg8bit PNGs, gtFine labelIds and labelTrainIds.
void write_cityscapes(const fs::path& base, const FixtureOptions& o, const ClassTable& paper, Fixture& f,
                      CaptionList& caps) {
  const int64_t H = o.height, W = o.width;
  const fs::path root = base / "cityscapes";
  f.root = root.string();
  const std::vector<std::pair<std::string, std::string>> names = {{"frankfurt", "frankfurt_000000_000294"},
                                                                  {"frankfurt", "frankfurt_000001_007973"},
                                                                  {"lindau", "lindau_000000_000019"},
                                                                  {"munster", "munster_000012_000019"}};
  // labelIds: (background, a, b, ring): 7 road, 26 car, 24 person, 33 bicycle, 11 building, 23 sky; void ids
  // 0 unlabeled, 4 static, 29 caravan, 1 ego vehicle.
  const int64_t ids[kSamples][4] = {{7, 26, 24, 0}, {11, 33, 23, 4}, {23, 29, 7, 1}, {21, 19, 20, -1}};
  for (int i = 0; i < kSamples; ++i) {
    const auto& [city, stem] = names[i];
    write_png_rgb(in_dir(root / "leftImg8bit/val" / city / (stem + "_leftImg8bit.png")), image_for(H, W, i));
    const at::Tensor lid = blocks(H, W, ids[i][0], ids[i][1], ids[i][2], ids[i][3]);
    mkdirs(root / "gtFine/val" / city);
    write_png_gray(in_dir(root / "gtFine/val" / city / (stem + "_gtFine_labelIds.png")), to_u8(lid));
    write_png_gray(in_dir(root / "gtFine/val" / city / (stem + "_gtFine_labelTrainIds.png")),
                   to_u8(remap(lid, [](int64_t v) { return cityscapes_label_to_train(v); })));
    caps.emplace_back(stem + "_leftImg8bit.png",
                      caption_for(paper, {cityscapes_label_to_paper(ids[i][1]), cityscapes_label_to_paper(ids[i][2])}));
    f.paper_ids.push_back(stem + "_leftImg8bit.png");
  }
  f.standard_ids = f.paper_ids;
}

// ADE20K: JPEGs and 150-class annotation PNGs.
void write_ade20k(const fs::path& base, const FixtureOptions& o, const ClassTable& paper, Fixture& f,
                  CaptionList& caps) {
  const int64_t H = o.height, W = o.width;
  const fs::path root = base / "ADEChallengeData2016";
  f.root = root.string();
  // (background, a, b, ring): 0 is "other" (a class under the paper protocol).
  const int64_t v[kSamples][4] = {{0, 1, 13, -1}, {3, 150, 2, 0}, {0, 26, 84, 5}, {4, 20, 0, 24}};
  for (int i = 0; i < kSamples; ++i) {
    const std::string stem = "ADE_val_0000000" + std::to_string(i + 1);
    write_jpeg(in_dir(root / "images/validation" / (stem + ".jpg")), image_for(H, W, i));
    at::Tensor l = blocks(H, W, v[i][0], v[i][1], v[i][2], v[i][3]);
    if (o.paper_quirks && i == 1) l.index_put_({0, 0}, 200);  // > 150: 0 under the paper, bad input under standard
    mkdirs(root / "annotations/validation");
    write_png_gray(in_dir(root / "annotations/validation" / (stem + ".png")), to_u8(l));
    caps.emplace_back(stem + ".jpg", caption_for(paper, {v[i][1], v[i][2]}));
    f.paper_ids.push_back(stem + ".jpg");
  }
  f.standard_ids = f.paper_ids;
}

// COCO-Stuff: JPEGs, category-id PNGs and the stuffthingmaps.
void write_coco_stuff(const fs::path& base, const FixtureOptions& o, const ClassTable& paper, Fixture& f,
                      CaptionList& caps) {
  const int64_t H = o.height, W = o.width;
  const fs::path root = base / "coco-stuff";
  f.root = root.string();
  const std::vector<std::string> stems = {"000000000139", "000000000285", "000000000632", "000000000724"};
  // Fine classes (0-based, -1 unlabeled) per sample: (background, a, b, ring). 0 person, 2 car, 17 dog,
  // 120 food-other (food-stuff: merged into food by the paper), 122 furniture-other (furniture-stuff: merged into
  // furniture), 156 sky-other, 168 tree, 148 road, 51 banana (food-things), 61 chair (furniture-things).
  // With paper_quirks, sample 3 also holds stored value 200 (not a category id): background under the paper's
  // loader, bad input under the standard protocol.
  const int64_t fine[kSamples][4] = {{156, 0, 120, -1}, {168, 17, 2, -1}, {148, 51, 122, 61}, {-1, 0, 156, 120}};
  const fs::path labels_dir = root / "stuffthingmaps_trainval2017" / "val2017";
  for (int i = 0; i < kSamples; ++i) {
    write_jpeg(in_dir(root / "val2017" / (stems[i] + ".jpg")), image_for(H, W, i));
    at::Tensor l = blocks(H, W, fine[i][0], fine[i][1], fine[i][2], fine[i][3]);
    at::Tensor ids = remap(l, [](int64_t v) { return v + 1; });  // category ids, 0 unlabeled
    at::Tensor maps = remap(l, [](int64_t v) { return v < 0 ? int64_t{255} : v; });
    if (o.paper_quirks && i == 3) {
      ids.index_put_({0, 0}, 200);
      maps.index_put_({0, 0}, 200);
    }
    write_png_gray(in_dir(root / "val2017" / (stems[i] + ".png")), to_u8(ids));
    mkdirs(labels_dir);
    write_png_gray(in_dir(labels_dir / (stems[i] + ".png")), to_u8(maps));
    std::vector<int64_t> cls;
    for (int k : {1, 2})
      if (fine[i][k] >= 0) cls.push_back(coco_stuff_coarse_to_paper(coco_stuff_fine_to_coarse(fine[i][k])));
    caps.emplace_back(stems[i] + ".jpg", caption_for(paper, cls));
    f.paper_ids.push_back(stems[i] + ".jpg");
  }
  f.standard_ids = f.paper_ids;
}

}  // namespace

Fixture write_fixture(DatasetKind kind, const std::string& dir, const FixtureOptions& o) {
  Fixture f;
  f.kind = kind;
  const fs::path base(dir);
  CaptionList caps;
  const ClassTable& paper = class_table(kind, Protocol::paper);
  switch (kind) {
    case DatasetKind::Voc: write_voc(base, o, paper, f, caps); break;
    case DatasetKind::Context: write_context(base, o, paper, f, caps); break;
    case DatasetKind::CocoObject: write_coco_object(base, o, paper, f, caps); break;
    case DatasetKind::Cityscapes: write_cityscapes(base, o, paper, f, caps); break;
    case DatasetKind::Ade20k: write_ade20k(base, o, paper, f, caps); break;
    case DatasetKind::CocoStuff: write_coco_stuff(base, o, paper, f, caps); break;
  }
  if (o.write_captions) {
    f.captions = (base / (std::string(to_string(kind)) + "-captions.json")).string();
    write_captions(f.captions, caps);
  }
  return f;
}

}  // namespace gb::datasets
