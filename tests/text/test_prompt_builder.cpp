// The prompt builder against the paper's captioner run verbatim on every caption of the five caption files
// (tools/parity/captioner_goldens.py), CPython set order (Q12), the quirks and their standard fixes.
#include "datasets/captions.h"
#include "datasets/classes.h"
#include "harness/core/errors.h"
#include "harness/core/hash.h"
#include "harness/text/clip_tokenizer.h"
#include "harness/text/prompt_builder.h"
#include "harness/text/pyset.h"
#include "tests/text/gz_json.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

using namespace gb::text;
namespace ds = gb::datasets;
using gb::test::read_gz_json;

namespace {

const std::string kGolden = std::string(GB_SOURCE_DIR) + "/tests/text/golden/";
const std::string kCaptions = std::string(GB_SHARED_DIR) + "/data/goca-captions/";

const ClipTokenizer& clip() {
  static auto t = ClipTokenizer::from_merges(std::string(GB_SHARED_DIR) + "/data/clip/bpe_simple_vocab_16e6.txt.gz");
  return *t;
}

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + std::to_string(v[i]);
  return s;
}

// FNV-1a with the published offset basis, as tools/parity/captioner_goldens.py writes it.
std::string fnv1a64(const std::string& s) { return fmt::format("{:016x}", gb::fnv1a(s, gb::kFnvStandardOffset)); }

std::string canonical(const PromptResult& r) {
  std::vector<int64_t> ids;
  for (const auto& t : r.tokens) ids.push_back(t.id);
  std::string objects, bg;
  for (size_t i = 0; i < r.groups.objects.size(); ++i) {
    objects += (i ? ";" : "") + std::to_string(r.groups.objects[i].class_id) + ":" + join(r.groups.objects[i].tokens);
  }
  for (size_t i = 0; i < r.groups.background_objects.size(); ++i)
    bg += (i ? ";" : "") + join(r.groups.background_objects[i]);
  return r.caption + "\n" + join(ids) + "\n" + objects + "\n" + bg + "\n" + join(r.groups.rescaling_token_ids);
}

ds::DatasetKind kind_of(const std::string& name) { return ds::parse_dataset_kind(name); }

// One dataset entry `d` of captioner_clip.json.gz: the builder with the paper's class table and the entry's options,
// and the caption file it was made from.
PromptBuilder golden_builder(const nlohmann::json& d) {
  PromptOptions opt;
  opt.add_background_token = d["add_background_token"];
  opt.add_missing_class = d["add_missing_class"];
  return PromptBuilder(ds::class_table(kind_of(d["name"]), ds::Protocol::paper).synonym_lists(), clip(), opt);
}
ds::CaptionFile golden_captions(const nlohmann::json& d) {
  return ds::CaptionFile::load(kCaptions + d["captions"].get<std::string>());
}

}  // namespace

TEST(PromptBuilder, MatchesPaperCaptionerOnEveryCaptionOfTheFiveFiles) {
  const auto g = read_gz_json(kGolden + "captioner_clip.json.gz");
  int64_t total = 0;
  for (const auto& d : g["datasets"]) {
    const std::string name = d["name"];
    const PromptBuilder builder = golden_builder(d);
    const auto captions = golden_captions(d);
    int64_t mismatches = 0;
    for (const auto& img : d["images"]) {
      const std::string id = img[0];
      const auto r = builder.build(captions.caption(id), img[1].get<std::vector<int64_t>>());
      if (fnv1a64(canonical(r)) != img[2].get<std::string>()) {
        if (++mismatches <= 3) ADD_FAILURE() << name << " " << id << ":\n" << canonical(r);
      }
      ++total;
    }
    EXPECT_EQ(mismatches, 0) << name;
    for (const auto& e : d["examples"]) {
      const auto r = builder.build(captions.caption(e["id"]), e["gt"].get<std::vector<int64_t>>());
      EXPECT_EQ(r.caption, e["caption"].get<std::string>());
      EXPECT_EQ(r.groups.rescaling_token_ids, e["rescaling_token_id"].get<std::vector<int64_t>>());
      EXPECT_EQ(r.groups.background_objects, e["background_objects"].get<std::vector<std::vector<int64_t>>>());
      EXPECT_EQ(r.global_token_ids, e["global_token_id"].get<std::vector<int64_t>>());
      ASSERT_EQ(r.groups.objects.size(), e["objects"].size());
      for (size_t k = 0; k < r.groups.objects.size(); ++k) {
        EXPECT_EQ(r.groups.objects[k].class_id, e["objects"][k][0].get<int64_t>());
        EXPECT_EQ(r.groups.objects[k].tokens, e["objects"][k][1].get<std::vector<int64_t>>());
      }
    }
  }
  EXPECT_EQ(total, 1464 + 964 + 5000 + 500 + 2000);
}

TEST(PySet, IterationOrderMatchesCPython) {
  std::ifstream in(kGolden + "pyset.json");
  std::stringstream ss;
  ss << in.rdbuf();
  const auto g = nlohmann::json::parse(ss.str());
  int n = 0;
  for (const auto& c : g["cases"]) {
    const auto a = c["a"].get<std::vector<int64_t>>();
    PySet b;
    for (int64_t x : c["b"].get<std::vector<int64_t>>()) b.add(x);
    EXPECT_EQ(PySet::from_list(a).items(), c["set_a"].get<std::vector<int64_t>>()) << c.dump();
    EXPECT_EQ(PySet::from_list(a).difference(b).items(), c["diff"].get<std::vector<int64_t>>()) << c.dump();
    std::vector<int64_t> with_zero = {0};
    with_zero.insert(with_zero.end(), a.begin(), a.end());
    EXPECT_EQ(py_set_order(with_zero, {0}), c["minus0"].get<std::vector<int64_t>>()) << c.dump();
    ++n;
  }
  EXPECT_EQ(n, 600);
  // small ints in a table of 8 collide: 9 lands after 1's slot
  EXPECT_EQ(PySet::from_list({9, 1}).items(), (std::vector<int64_t>{9, 1}));
  EXPECT_EQ(PySet::from_list({1, 9}).items(), (std::vector<int64_t>{1, 9}));
}

TEST(PromptBuilder, PaperSplitQuirkQ5AndBracketParser) {
  int64_t lost = 0;
  EXPECT_EQ(PromptBuilder::paper_split("(cat), (cat), sofa", &lost), (std::vector<std::string>{"(cat)"}));
  EXPECT_EQ(lost, 2);
  EXPECT_EQ(PromptBuilder::paper_split("aeroplane, (person, clothes), chair", &lost),
            (std::vector<std::string>{"aeroplane", "(person, clothes)", "chair"}));
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(PromptBuilder::bracket_split("(cat), (cat), sofa"), (std::vector<std::string>{"(cat)", "(cat)", "sofa"}));
  EXPECT_EQ(PromptBuilder::bracket_split("a,(b ,c),  d"), (std::vector<std::string>{"a", "(b, c)", "d"}));
}

TEST(PromptBuilder, ClosuresMissingClassesAndStandardFixes) {
  const auto& voc = ds::class_table(ds::DatasetKind::Voc, ds::Protocol::paper);
  PromptOptions opt;
  opt.add_background_token = true;
  opt.add_missing_class = true;
  PromptBuilder paper(voc.synonym_lists(), clip(), opt);
  // person(15) and chair(9) are GT-present; the closure (person, clothes) keeps "clothes" as supporting text
  auto r = paper.build("Aeroplane, (person, clothes), chair.", {15, 9, 16});
  EXPECT_EQ(r.caption, "aeroplane, person, clothes, chair, background, pottedplant");
  ASSERT_EQ(r.groups.objects.size(), 3u);
  EXPECT_EQ(r.groups.objects[0].class_id, 15);
  EXPECT_EQ(r.groups.objects[0].tokens, (std::vector<int64_t>{4, 6}));  // person, clothes ("aerop" "lane" are 1, 2)
  EXPECT_EQ(r.groups.objects[1].class_id, 9);
  EXPECT_EQ(r.groups.objects[2].class_id, 16);
  // aeroplane is not GT-present: a background object; so is "background"
  EXPECT_EQ(r.groups.background_objects.size(), 2u);
  // two hits in one closure: the closure is replaced by its hit members
  r = paper.build("(person, dog), sofa.", {15, 12});
  EXPECT_EQ(r.caption, "person, dog, sofa, background");
  // Q4: "chair" after "armchair"-like containment: "plant" inside "pottedplant" is found first
  r = paper.build("pottedplant, plant.", {16});
  EXPECT_EQ(r.caption, "pottedplant, plant, background");
  ASSERT_EQ(r.groups.objects.size(), 1u);
  EXPECT_EQ(r.quirks.q4_shadowed_entities, 1);
  // Q12: with 9 and 1 missing, CPython iterates 9 first (both hash to slot 1 of 8); standard sorts
  PromptOptions std_opt = opt;
  std_opt.protocol = PromptProtocol::standard;
  PromptBuilder standard(voc.synonym_lists(), clip(), std_opt);
  r = paper.build("sofa.", {18, 9, 1});
  EXPECT_EQ(r.caption, "sofa, background, chair, aeroplane");
  EXPECT_TRUE(r.quirks.q12_order_differs);
  r = standard.build("sofa.", {18, 9, 1});
  EXPECT_EQ(r.caption, "sofa, background, aeroplane, chair");
  // Q5 fixed by the bracket parser
  r = standard.build("(cat), (dog), sofa.", {8, 12, 18});
  EXPECT_EQ(r.caption, "cat, dog, sofa, background");
  EXPECT_EQ(r.groups.objects.size(), 3u);
  r = paper.build("(cat), (dog), sofa.", {8, 12, 18});
  EXPECT_EQ(r.quirks.q5_lost_entities, 3);
}

TEST(PromptBuilder, QuirkCountsOnTheFiveCaptionFiles) {
  const auto g = read_gz_json(kGolden + "captioner_clip.json.gz");
  for (const auto& d : g["datasets"]) {
    const std::string name = d["name"];
    const PromptBuilder builder = golden_builder(d);
    const auto captions = golden_captions(d);
    QuirkCounts counts;
    for (const auto& img : d["images"])
      counts.add(builder.build(captions.caption(img[0]), img[1].get<std::vector<int64_t>>()).quirks);
    std::cout << name << " " << counts.to_json() << "\n";
    EXPECT_EQ(counts.images, static_cast<int64_t>(captions.size()));
    // {q5 images, q5 entities, q4 images, q4 entities, q4 empty-class images (synthetic GT), q12 images (synthetic GT)}
    const std::map<std::string, std::vector<int64_t>> expected = {{"voc", {62, 320, 74, 77, 9, 352}},
                                                                  {"context", {9, 30, 37, 39, 16, 262}},
                                                                  {"coco-object", {76, 373, 266, 279, 24, 0}},
                                                                  {"cityscapes", {32, 168, 9, 9, 4, 0}},
                                                                  {"ade20k", {71, 397, 152, 165, 57, 0}}};
    EXPECT_EQ((std::vector<int64_t>{counts.q5_images, counts.q5_entities, counts.q4_images, counts.q4_entities,
                                    counts.q4_empty_class_images, counts.q12_images}),
              expected.at(name))
        << name;
  }
}

TEST(PromptBuilder, PaperFlagsPerDatasetMatchTheGoldens) {
  const auto g = read_gz_json(kGolden + "captioner_clip.json.gz");
  for (const auto& d : g["datasets"]) {
    const auto o = paper_prompt_options(d["name"]);
    EXPECT_EQ(o.add_background_token, d["add_background_token"].get<bool>()) << d["name"];
    EXPECT_EQ(o.add_missing_class, d["add_missing_class"].get<bool>()) << d["name"];
  }
  // COCO-Stuff (config_dataset_coco_stuff.py): no background token, missing classes added.
  EXPECT_FALSE(paper_prompt_options("coco-stuff").add_background_token);
  EXPECT_TRUE(paper_prompt_options("coco-stuff").add_missing_class);
  EXPECT_THROW(paper_prompt_options("coco-stuff-27"), gb::UserError);
}

TEST(PromptBuilder, BadInput) {
  const auto& voc = ds::class_table(ds::DatasetKind::Voc, ds::Protocol::paper);
  PromptOptions opt;
  opt.add_missing_class = true;
  PromptBuilder b(voc.synonym_lists(), clip(), opt);
  EXPECT_THROW(b.build("", {1}), gb::UserError);
  EXPECT_THROW(b.build("cat", {0}), gb::UserError);   // background has no name to add
  EXPECT_THROW(b.build("cat", {99}), gb::UserError);  // out of range
}
