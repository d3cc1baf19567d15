#pragma once
// Caption -> prompt text and TokenGroups, as the paper's captioner does (spec goca-method.md §G), with its
// quirks under `paper` and fixed under `standard` (docs/prompts.md):
//   Q5 (paper) the regex/buffer entity split loses the rest of a caption after a mid-caption "(x)"
//      (standard: a bracket parser);
//   Q4 (paper) entity span = first occurrence of its prompt in the caption, so a prompt contained in an earlier
//      entity gets that entity's characters and usually no tokens (standard: spans of the joined prompts in
//      sequence; classes left without tokens are dropped and reported);
//   Q12 (paper) missing classes are appended in CPython set iteration order (standard: ascending id);
//   class id 0 is falsy in the paper and its tokens go to the background objects (standard: an object).
#include "harness/core/protocol.h"
#include "harness/core/token_groups.h"
#include "harness/core/tokenizer.h"

#include <cstdint>
#include <string>
#include <vector>

namespace gb::text {

using PromptProtocol = gb::Protocol;  // harness/core/protocol.h
PromptProtocol parse_prompt_protocol(const std::string& s);

struct PromptOptions {
  bool add_background_token = false;  // VOC, COCO-Object, ADE20K
  bool add_missing_class = false;     // VOC, Context, COCO-Stuff
  PromptProtocol protocol = PromptProtocol::paper;
};

// The paper's per-dataset flags (spec §H): "voc" T/T, "context" F/T, "coco-object" T/F, "cityscapes" F/F,
// "ade20k" T/F, "coco-stuff" F/T (add_background_token / add_missing_class). UserError for another name.
PromptOptions paper_prompt_options(const std::string& dataset, PromptProtocol protocol = PromptProtocol::paper);

struct Entity {
  std::string prompt;  // text without parentheses
  bool is_closure = false;
  int64_t aligned_class = -1;  // -1: not aligned (a background object)
  int64_t span_begin = 0;      // code-point span in the caption
  int64_t span_end = 0;
};

// What the quirks did to one image.
struct QuirkHits {
  int64_t q5_lost_entities = 0;           // caption parts swallowed by an unclosed "(x)" buffer
  int64_t q4_shadowed_entities = 0;       // entities whose first-occurrence span is not their own position
  std::vector<int64_t> q4_empty_classes;  // aligned classes that got no token (a NaN map in the paper)
  bool q12_order_differs = false;         // missing classes not in ascending order
};

struct PromptResult {
  std::string caption;            // the prompt the model gets
  std::vector<TextToken> tokens;  // padded, as the tokenizer gave them
  std::vector<Entity> entities;
  TokenGroups groups;
  std::vector<int64_t> global_token_ids;  // <sos> (CLIP) or <eos> (T5) positions, every part's for a joint
                                          // tokenizer (joint_tokenizer.h); unused by the method
  QuirkHits quirks;
};

class PromptBuilder {
 public:
  // synonyms[c]: the captioner's exact-match names of class c (index = class id; background has none).
  PromptBuilder(std::vector<std::vector<std::string>> synonyms, const TextTokenizer& tokenizer, PromptOptions options);

  // `gt_classes`: the GT-present classes as the dataset lists them (order matters only for Q12; the paper's
  // label-based datasets give list(set(label values)) minus 0, see py_set_order in pyset.h).
  PromptResult build(const std::string& raw_caption, const std::vector<int64_t>& gt_classes) const;

  const PromptOptions& options() const { return options_; }

  // The paper's split_with_parentheses (regex + buffer), exposed for tests; `lost` counts swallowed parts.
  static std::vector<std::string> paper_split(const std::string& caption, int64_t* lost = nullptr);
  // The standard bracket parser.
  static std::vector<std::string> bracket_split(const std::string& caption);

 private:
  int64_t first_hit(const std::string& member, const std::vector<int64_t>& gt) const;
  int64_t entity_class(const Entity& e, const std::vector<int64_t>& gt) const;  // first hitting member's class
  void split_entities(const std::string& caption, const std::vector<int64_t>& gt, PromptResult& r) const;
  void add_missing_classes(const std::vector<int64_t>& gt, PromptResult& r) const;

  std::vector<std::vector<std::string>> synonyms_;
  const TextTokenizer& tokenizer_;
  PromptOptions options_;
};

// Per-quirk totals over many images.
struct QuirkCounts {
  int64_t images = 0;
  int64_t q5_images = 0, q5_entities = 0;
  int64_t q4_images = 0, q4_entities = 0;
  int64_t q4_empty_class_images = 0, q4_empty_classes = 0;
  int64_t q12_images = 0;
  void add(const QuirkHits& h);
  std::string to_json() const;
};

}  // namespace gb::text
