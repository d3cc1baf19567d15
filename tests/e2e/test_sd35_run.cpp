// SD3.5 end to end on structure-complete tiny checkpoints (tests/backbones/tiny_checkpoints.h, real CLIP and T5
// tokenizer files): the token groups of a caption land on the joint key axis (77 CLIP positions, then 256 T5
// positions) where the test finds each word with the two tokenizers alone, and `goca-bench run` with the Vanilla
// and GoCA presets of configs/methods/sd35-*/ completes on the VOC fixture with finite mIoU.
#include "e2e_util.h"

#include "datasets/classes.h"
#include "datasets/dataset.h"
#include "harness/backbones/registry.h"
#include "harness/runner/integration.h"
#include "harness/text/clip_tokenizer.h"
#include "harness/text/prompt_builder.h"
#include "harness/text/t5_tokenizer.h"

#include <cmath>

namespace {

using namespace gb::e2e;

constexpr int64_t kClip = 77, kT5 = 256;

const std::string& sd35_folder(bool large) {
  static const std::string medium =
      gb::bb::tiny::write_structural_sd35(work_dir() / "sd35" / "medium", /*large=*/false);
  static const std::string lg = gb::bb::tiny::write_structural_sd35(work_dir() / "sd35" / "large", /*large=*/true);
  return large ? lg : medium;
}

// Where a word's tokens sit on the joint axis, from the folder's tokenizers alone: its CLIP BPE piece ("word</w>")
// in the padded CLIP ids, and its T5 pieces in the padded T5 ids (a lone "▁" piece is the captioner's <insert>,
// which no word owns), offset by the CLIP length. Only the first occurrence of the word in each part.
struct Positions {
  gb::text::ClipTokenizer* clip;
  gb::text::T5Tokenizer* t5;
  std::vector<int64_t> of(const std::string& prompt, const std::string& word) const {
    std::vector<int64_t> out;
    const auto ids = clip->encode_padded_ids(prompt);
    const int64_t want = clip->token_to_id(word + "</w>");
    for (size_t i = 0; i < ids.size(); ++i)
      if (ids[i] == want) {
        out.push_back(static_cast<int64_t>(i));
        break;
      }
    const auto pieces = t5->tokenize(prompt);
    auto word_pieces = t5->tokenize(word);
    if (!word_pieces.empty() && word_pieces[0] == "\xE2\x96\x81") word_pieces.erase(word_pieces.begin());
    for (size_t i = 0; i + word_pieces.size() <= pieces.size() && i < static_cast<size_t>(kT5 - 1); ++i) {
      if (std::equal(word_pieces.begin(), word_pieces.end(), pieces.begin() + static_cast<std::ptrdiff_t>(i))) {
        for (size_t k = 0; k < word_pieces.size(); ++k) out.push_back(kClip + static_cast<int64_t>(i + k));
        break;
      }
    }
    return out;
  }
};

TEST(Sd35, TokenGroupsLandOnTheJointClipThenT5Axis) {
  const fs::path folder = sd35_folder(false);
  gb::bb::BackboneOptions o;
  o.image_size = kImageSize;
  const auto bb = gb::bb::open_backbone(folder.string(), o, "sd35-medium");
  ASSERT_EQ(bb->tokenizer().max_length(), kClip + kT5);
  auto clip = gb::text::ClipTokenizer::from_files((folder / "tokenizer" / "vocab.json").string(),
                                                  (folder / "tokenizer" / "merges.txt").string());
  auto t5 = gb::text::T5Tokenizer::from_file((folder / "tokenizer_3" / "spiece.model").string(), kT5);
  const Positions pos{clip.get(), t5.get()};

  const auto& classes = gb::datasets::class_table(gb::datasets::DatasetKind::Voc, gb::datasets::Protocol::paper);
  const int64_t cat = 8, person = 15, sofa = 18, dog = 12;
  for (auto protocol : {gb::text::PromptProtocol::paper, gb::text::PromptProtocol::standard}) {
    gb::text::PromptBuilder builder(classes.synonym_lists(), bb->tokenizer(),
                                    gb::text::paper_prompt_options("voc", protocol));
    const auto r = builder.build("cat, sofa, a person on a sofa, person.", {cat, sofa, person});
    ASSERT_EQ(r.caption, "cat, sofa, a person on a sofa, person, background");
    ASSERT_EQ(r.groups.objects.size(), 3u);
    EXPECT_EQ(r.groups.objects[0], (gb::ObjectTokens{cat, pos.of(r.caption, "cat")}));
    EXPECT_EQ(r.groups.objects[1], (gb::ObjectTokens{sofa, pos.of(r.caption, "sofa")}));
    // "person" first occurs inside "a person on a sofa" (quirk Q4 under paper): its own entity, under standard,
    // is the last "person".
    EXPECT_EQ(r.groups.objects[0].tokens.size(), 2u);  // one CLIP piece and one T5 piece
    EXPECT_LT(r.groups.objects[0].tokens[0], kClip);
    EXPECT_GE(r.groups.objects[0].tokens[1], kClip);
    ASSERT_EQ(r.groups.background_objects.size(), 2u);  // "a person on a sofa" and "background"
    EXPECT_EQ(r.groups.background_objects[1], pos.of(r.caption, "background"));
    // Both parts' global tokens: CLIP's <sos> at 0 and T5's </s> after the caption's pieces.
    ASSERT_EQ(r.global_token_ids.size(), 2u);
    EXPECT_EQ(r.global_token_ids[0], 0);
    EXPECT_EQ(r.global_token_ids[1], kClip + static_cast<int64_t>(t5->tokenize(r.caption).size()));
    // Every rescaling token is in one of the groups, and both halves are used.
    std::set<int64_t> grouped;
    for (const auto& g : r.groups.objects) grouped.insert(g.tokens.begin(), g.tokens.end());
    for (const auto& g : r.groups.background_objects) grouped.insert(g.begin(), g.end());
    EXPECT_EQ(std::set<int64_t>(r.groups.rescaling_token_ids.begin(), r.groups.rescaling_token_ids.end()), grouped);
  }

  // A caption longer than CLIP's 77 tokens: CLIP truncates it before "dog", T5 keeps it. Standard scans the T5 part
  // from the caption's start, so "dog" gets exactly its T5 pieces and "cat" both parts' tokens.
  std::string filler;
  for (int i = 0; i < 90; ++i) filler += "grass ";
  filler.pop_back();
  gb::text::PromptBuilder standard(classes.synonym_lists(), bb->tokenizer(),
                                   gb::text::paper_prompt_options("cityscapes", gb::text::PromptProtocol::standard));
  const auto r = standard.build("cat, " + filler + ", dog", {cat, dog});
  ASSERT_EQ(r.groups.objects.size(), 2u);
  EXPECT_EQ(r.groups.objects[0], (gb::ObjectTokens{cat, pos.of(r.caption, "cat")}));
  const auto dog_pos = pos.of(r.caption, "dog");
  ASSERT_FALSE(dog_pos.empty());
  EXPECT_GE(dog_pos[0], kClip);  // no CLIP piece: truncated
  EXPECT_EQ(r.groups.objects[1], (gb::ObjectTokens{dog, dog_pos}));
}

// The runner's prompt path (integration.h) on the VOC fixture with the backbone's own tokenizer, then `goca-bench
// run` with both presets of both SD3.5 kinds on its first image: every cell evaluated, with a finite mIoU.
TEST(Sd35, RunWithTheVanillaAndGocaPresetsCompletes) {
  const World& w = world();
  const FixtureData& voc = w.data.at("voc");
  const auto dc = voc_fixture_config(w, 2);
  const auto ds = gb::datasets::Dataset::open(dc);
  gb::bb::BackboneOptions o;
  o.image_size = kImageSize;
  const auto bb = gb::bb::open_backbone(sd35_folder(false), o, "sd35-medium");
  const auto builder = gb::runner::make_prompt_builder(dc, ds->classes(), bb->tokenizer());
  for (size_t i = 0; i < 2; ++i) {
    const auto sample = ds->load(i);
    ASSERT_TRUE(sample.has_value());
    const auto p = gb::runner::build_prompt(*builder, *sample, ds->captions()->caption(sample->id), dc);
    ASSERT_FALSE(p.groups.objects.empty()) << sample->id;
    for (const auto& obj : p.groups.objects) {
      // Each class's words have tokens in the CLIP part and in the T5 part (the fixture's captions are short).
      const bool in_clip = std::any_of(obj.tokens.begin(), obj.tokens.end(), [](int64_t t) { return t < kClip; });
      const bool in_t5 = std::any_of(obj.tokens.begin(), obj.tokens.end(), [](int64_t t) { return t >= kClip; });
      EXPECT_TRUE(in_clip && in_t5) << sample->id << " class " << obj.class_id;
      for (int64_t t : obj.tokens) EXPECT_LT(t, kClip + kT5);
    }
  }

  const fs::path dir = work_dir() / "sd35-run";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path cfg = dir / "sd35.yaml";
  std::ofstream(cfg) << "name: sd35-tiny\nseed: 0\nbatch_size: 2\nworkers: 1\ndevice: cpu\nexamples: 0\n"
                        "evaluation: {select: best}\n"
                        "datasets:\n"
                        "  - {name: VOC, config: configs/datasets/voc.yaml, set: {root: '"
                     << voc.root << "', captions: '" << voc.captions
                     << "', limit: 1}}\n"
                        "backbones:\n"
                        "  - {name: sd35-medium, kind: sd35-medium, weights: '"
                     << sd35_folder(false)
                     << "', options: {image_size: 64}}\n"
                        "  - {name: sd35-large, kind: sd35-large, weights: '"
                     << sd35_folder(true)
                     << "', options: {image_size: 64}}\n"
                        "methods:\n"
                        "  - {name: Vanilla, type: Training-free, method: 'configs/methods/{backbone}/vanilla.yaml'}\n"
                        "  - {name: GoCA, type: Training-free, method: 'configs/methods/{backbone}/goca.yaml'}\n";
  const auto r = run_config(cfg.string(), {}, dir / "out");
  ASSERT_EQ(r.cells.size(), 4u);
  for (const auto& cell : r.cells) {
    EXPECT_EQ(cell.images, 1) << cell.key();
    ASSERT_NE(cell.selected(), nullptr) << cell.key();
    EXPECT_GT(cell.selected()->confusion.total(), 0) << cell.key();
    EXPECT_TRUE(std::isfinite(cell.selected()->metrics.miou)) << cell.key();
  }
}

}  // namespace
