#include "harness/text/prompt_builder.h"

#include "harness/core/errors.h"
#include "harness/text/joint_tokenizer.h"
#include "harness/text/pyset.h"
#include "harness/text/unicode.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <unordered_set>

namespace gb::text {

PromptProtocol parse_prompt_protocol(const std::string& s) {
  if (s == "paper") return PromptProtocol::paper;
  if (s == "standard") return PromptProtocol::standard;
  fail("unknown protocol '{}' (expected paper or standard)", s);
}

PromptOptions paper_prompt_options(const std::string& dataset, PromptProtocol protocol) {
  PromptOptions o;
  o.protocol = protocol;
  if (dataset == "voc") {
    o.add_background_token = true;
    o.add_missing_class = true;
  } else if (dataset == "context" || dataset == "coco-stuff") {
    o.add_missing_class = true;
  } else if (dataset == "coco-object" || dataset == "ade20k") {
    o.add_background_token = true;
  } else if (dataset != "cityscapes") {
    fail("unknown dataset '{}' (expected voc, context, coco-object, cityscapes, ade20k or coco-stuff)", dataset);
  }
  return o;
}

namespace {

// Python str.strip() (Unicode whitespace).
std::string py_strip(const std::string& s) {
  const std::u32string u = utf8_to_u32(s);
  size_t b = 0, e = u.size();
  while (b < e && is_py_space(u[b])) ++b;
  while (e > b && is_py_space(u[e - 1])) --e;
  if (b == 0 && e == u.size()) return s;
  return u32_to_utf8(u.substr(b, e - b));
}

std::string remove_parens(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c != '(' && c != ')') out += c;
  }
  return out;
}

// Python str.split(", ")
std::vector<std::string> split_comma_space(const std::string& s) {
  std::vector<std::string> out;
  size_t p = 0;
  while (true) {
    size_t q = s.find(", ", p);
    if (q == std::string::npos) {
      out.push_back(s.substr(p));
      return out;
    }
    out.push_back(s.substr(p, q - p));
    p = q + 2;
  }
}

std::vector<std::string> dedupe(const std::vector<std::string>& v) {
  std::vector<std::string> out;
  std::unordered_set<std::string> seen;
  for (const auto& s : v) {
    if (seen.insert(s).second) out.push_back(s);
  }
  return out;
}

// Python str.find on code points; `from` may exceed the length (then only "" is found, at 0 of the slice).
int64_t py_find(const std::u32string& hay, int64_t from, const std::u32string& needle) {
  if (from > static_cast<int64_t>(hay.size())) return needle.empty() ? 0 : -1;
  const size_t pos = hay.find(needle, static_cast<size_t>(from));
  return pos == std::u32string::npos ? -1 : static_cast<int64_t>(pos) - from;
}

bool is_stop_token(const std::string& token) {
  const std::string t = py_lower(token);
  return t == "a" || t == "an" || t == "the" || t == "and" || t == "," || t == "." || t == "-";
}

}  // namespace

PromptBuilder::PromptBuilder(std::vector<std::vector<std::string>> synonyms, const TextTokenizer& tokenizer,
                             PromptOptions options)
    : synonyms_(std::move(synonyms)), tokenizer_(tokenizer), options_(options) {
  if (synonyms_.empty()) fail("the prompt builder needs the class synonym lists");
}

std::vector<std::string> PromptBuilder::paper_split(const std::string& s, int64_t* lost) {
  // re.findall(r'\([^)]*\)|[^,]+', s)
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '(') {
      const size_t close = s.find(')', i + 1);
      if (close != std::string::npos) {
        parts.push_back(s.substr(i, close - i + 1));
        i = close + 1;
        continue;
      }
    }
    if (s[i] == ',') {
      ++i;
      continue;
    }
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    parts.push_back(s.substr(i, j - i));
    i = j;
  }
  std::vector<std::string> result;
  std::string buffer;
  int64_t buffered = 0, swallowed = 0;
  for (const auto& part : parts) {
    const bool has_open = part.find('(') != std::string::npos;
    const bool has_close = part.find(')') != std::string::npos;
    if (!part.empty() && part.front() == '(' && part.back() == ')') {
      result.push_back(py_strip(part));
    } else if (has_open) {
      if (!buffer.empty()) swallowed += buffered;  // an unclosed buffer is overwritten
      buffer = py_strip(part);
      buffered = 1;
    } else if (has_close) {
      buffer += ", " + py_strip(part);
      result.push_back(buffer);
      buffer.clear();
      buffered = 0;
    } else if (!buffer.empty()) {
      buffer += ", " + py_strip(part);
      ++buffered;
    } else {
      result.push_back(py_strip(part));
    }
  }
  if (!buffer.empty()) swallowed += buffered;
  if (lost) *lost = swallowed;
  return result;
}

std::vector<std::string> PromptBuilder::bracket_split(const std::string& s) {
  std::vector<std::string> raw;
  std::string cur;
  int depth = 0;
  for (char c : s) {
    if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (depth == 0) continue;  // stray closing bracket: dropped
      --depth;
    } else if (c == ',' && depth == 0) {
      raw.push_back(cur);
      cur.clear();
      continue;
    }
    cur += c;
  }
  raw.push_back(cur);
  std::vector<std::string> out;
  for (const auto& r : raw) {
    std::string p = py_strip(r);
    if (depth > 0 && &r == &raw.back()) p += std::string(depth, ')');  // close an unclosed group at the end
    if (p.empty()) continue;
    if (p.front() == '(' && p.back() == ')' && p.find('(', 1) == std::string::npos) {
      std::vector<std::string> members;
      std::string inner = p.substr(1, p.size() - 2), m;
      for (size_t k = 0; k <= inner.size(); ++k) {
        if (k == inner.size() || inner[k] == ',') {
          m = py_strip(m);
          if (!m.empty()) members.push_back(m);
          m.clear();
        } else {
          m += inner[k];
        }
      }
      if (members.empty()) continue;
      std::string joined = "(";
      for (size_t k = 0; k < members.size(); ++k) joined += (k ? ", " : "") + members[k];
      out.push_back(joined + ")");
    } else {
      out.push_back(p);
    }
  }
  return out;
}

int64_t PromptBuilder::first_hit(const std::string& member, const std::vector<int64_t>& gt) const {
  for (size_t c = 0; c < synonyms_.size(); ++c) {
    const auto& names = synonyms_[c];
    if (std::find(names.begin(), names.end(), member) != names.end() &&
        std::find(gt.begin(), gt.end(), static_cast<int64_t>(c)) != gt.end()) {
      return static_cast<int64_t>(c);
    }
  }
  return -1;
}

int64_t PromptBuilder::entity_class(const Entity& e, const std::vector<int64_t>& gt) const {
  const auto members = e.is_closure ? split_comma_space(e.prompt) : std::vector<std::string>{e.prompt};
  for (const auto& m : members) {
    const int64_t c = first_hit(m, gt);
    if (c >= 0) return c;
  }
  return -1;
}

// Steps 2 and 3: the entity split (paper regex + buffer, or the bracket parser) and closure splitting.
void PromptBuilder::split_entities(const std::string& caption, const std::vector<int64_t>& gt, PromptResult& r) const {
  const bool paper = options_.protocol == PromptProtocol::paper;
  std::vector<std::string> entities_raw;
  if (paper) {
    entities_raw = paper_split(caption, &r.quirks.q5_lost_entities);
  } else {
    paper_split(caption, &r.quirks.q5_lost_entities);
    entities_raw = bracket_split(caption);
  }
  entities_raw = dedupe(entities_raw);
  std::vector<std::string> split;
  for (const auto& e : entities_raw) {
    if (e.find('(') == std::string::npos) {
      split.push_back(e);
      continue;
    }
    const auto members = split_comma_space(remove_parens(e));
    std::vector<size_t> hits;
    for (size_t k = 0; k < members.size(); ++k) {
      if (first_hit(members[k], gt) >= 0) hits.push_back(k);
    }
    if (hits.size() < 2) {
      split.push_back(e);
    } else {
      for (size_t k : hits) split.push_back(members[k]);
    }
  }
  split = dedupe(split);
  for (const auto& e : split) {
    Entity ent;
    ent.prompt = remove_parens(e);
    ent.is_closure = e.find('(') != std::string::npos;
    r.entities.push_back(ent);
  }
}

// Step 4: GT classes no entity hits, appended by their first synonym (CPython set order under paper, Q12).
void PromptBuilder::add_missing_classes(const std::vector<int64_t>& gt, PromptResult& r) const {
  PySet included;
  for (const auto& e : r.entities) {
    const int64_t c = entity_class(e, gt);
    if (c >= 0) included.add(c);
  }
  std::vector<int64_t> missing = PySet::from_list(gt).difference(included).items();
  std::vector<int64_t> sorted = missing;
  std::sort(sorted.begin(), sorted.end());
  r.quirks.q12_order_differs = missing != sorted;
  if (options_.protocol != PromptProtocol::paper) missing = sorted;
  for (int64_t c : missing) {
    if (c < 0 || c >= static_cast<int64_t>(synonyms_.size()) || synonyms_[c].empty()) {
      fail("ground-truth class {} has no name to add to the prompt as a missing class", c);
    }
    Entity ent;
    ent.prompt = synonyms_[c][0];
    r.entities.push_back(ent);
  }
}

namespace {

// Where each part of the token list starts, and its global token. A joint tokenizer (SD3.5: CLIP then T5 on one key
// axis) gives its parts' lists one after the other; another tokenizer is one part.
struct TokenPart {
  int64_t begin;
  std::string global;
};

std::vector<TokenPart> token_parts(const TextTokenizer& tokenizer) {
  auto global_of = [](const std::string& name) { return std::string(name == "t5" ? "<eos>" : "<sos>"); };
  std::vector<TokenPart> parts;
  if (const auto* joint = dynamic_cast<const JointTokenizer*>(&tokenizer)) {
    int64_t begin = 0;
    for (const auto& p : joint->parts()) {
      parts.push_back({begin, global_of(p->name())});
      begin += p->max_length();
    }
  } else {
    parts.push_back({0, global_of(tokenizer.name())});
  }
  return parts;
}

// Step 7: entity spans in code points (first occurrence under paper, Q4; own position under standard), then every
// token's entity (-1: none) by the paper's cursor; fills r.global_token_ids and the Q4 span count.
std::vector<int64_t> token_entities(PromptResult& r, const std::vector<TokenPart>& parts, bool paper) {
  const std::u32string cap = utf8_to_u32(r.caption);
  int64_t seq = 0;
  for (auto& e : r.entities) {
    const std::u32string p = utf8_to_u32(e.prompt);
    const int64_t first = py_find(cap, 0, p);
    if (first != seq) ++r.quirks.q4_shadowed_entities;
    e.span_begin = paper ? first : seq;
    e.span_end = e.span_begin + static_cast<int64_t>(p.size());
    seq += static_cast<int64_t>(p.size()) + 2;
  }
  const int64_t n_tok = static_cast<int64_t>(r.tokens.size());
  std::vector<int64_t> token_entity(n_tok, -1);
  int64_t cursor = 0;
  size_t part = 0;
  for (int64_t t = 0; t < n_tok; ++t) {
    if (part + 1 < parts.size() && t == parts[part + 1].begin) {
      ++part;
      // The paper's captioner scans a joint list (its Hunyuan BERT|T5 axis) with one cursor, which is back at 0
      // only when the first part reached the caption's end (not so when it was truncated); standard: every part
      // starts at the caption's start.
      if (!paper) cursor = 0;
    }
    const TextToken& tok = r.tokens[t];
    if (tok.text == parts[part].global) r.global_token_ids.push_back(t);
    if (!tok.special) {
      const std::u32string tu = utf8_to_u32(tok.text);
      const int64_t start = cursor + py_find(cap, cursor, tu);
      const int64_t end = start + static_cast<int64_t>(tu.size());
      cursor = end;
      if (!is_stop_token(tok.text)) {
        for (size_t k = 0; k < r.entities.size(); ++k) {
          if (start >= r.entities[k].span_begin && end <= r.entities[k].span_end) {
            token_entity[t] = static_cast<int64_t>(k);
            break;
          }
        }
      }
    }
    if (cursor == static_cast<int64_t>(cap.size())) cursor = 0;
  }
  return token_entity;
}

// Step 8: objects in alignment order, background objects in order of first token, the rescaling set.
void group_tokens(PromptResult& r, const std::vector<int64_t>& token_entity, const std::vector<int64_t>& object_order,
                  bool paper) {
  std::vector<std::vector<int64_t>> object_tokens(object_order.size());
  std::vector<int64_t> bg_entities;
  std::vector<std::vector<int64_t>> bg_tokens;
  for (int64_t t = 0; t < static_cast<int64_t>(token_entity.size()); ++t) {
    const int64_t k = token_entity[t];
    if (k < 0) continue;
    r.groups.rescaling_token_ids.push_back(t);
    const int64_t c = r.entities[k].aligned_class;
    const bool is_object = paper ? c > 0 : c >= 0;  // the paper tests `if class_id:` (0 is falsy)
    if (is_object) {
      const size_t pos = std::find(object_order.begin(), object_order.end(), c) - object_order.begin();
      object_tokens[pos].push_back(t);
    } else {
      auto it = std::find(bg_entities.begin(), bg_entities.end(), k);
      if (it == bg_entities.end()) {
        bg_entities.push_back(k);
        bg_tokens.emplace_back();
        it = bg_entities.end() - 1;
      }
      bg_tokens[it - bg_entities.begin()].push_back(t);
    }
  }
  for (size_t i = 0; i < object_order.size(); ++i) {
    if (object_tokens[i].empty()) {
      r.quirks.q4_empty_classes.push_back(object_order[i]);
      if (!paper) continue;  // standard: a class without tokens is dropped (reported in quirks)
    }
    r.groups.objects.push_back({object_order[i], object_tokens[i]});
  }
  r.groups.background_objects = bg_tokens;
}

}  // namespace

PromptResult PromptBuilder::build(const std::string& raw_caption, const std::vector<int64_t>& gt) const {
  const bool paper = options_.protocol == PromptProtocol::paper;
  PromptResult r;
  // 1. cleanup
  std::string caption = raw_caption;
  if (caption.empty()) fail("empty caption");
  if (caption.back() == '.') caption.pop_back();
  if (options_.add_background_token) caption += ", background";
  caption = py_lower(caption);
  // 2, 3. entities; 4. missing classes
  split_entities(caption, gt, r);
  if (options_.add_missing_class) add_missing_classes(gt, r);
  for (size_t i = 0; i < r.entities.size(); ++i) r.caption += (i ? ", " : "") + r.entities[i].prompt;
  // 5. alignment; objects keep the order of their first aligned entity
  std::vector<int64_t> object_order;
  for (auto& e : r.entities) {
    e.aligned_class = entity_class(e, gt);
    if (e.aligned_class >= 0 &&
        std::find(object_order.begin(), object_order.end(), e.aligned_class) == object_order.end()) {
      object_order.push_back(e.aligned_class);
    }
  }
  // 6. tokens (a joint tokenizer's parts one after the other), 7. spans and token entities, 8. outputs
  r.tokens = tokenizer_.encode(r.caption);
  group_tokens(r, token_entities(r, token_parts(tokenizer_), paper), object_order, paper);
  return r;
}

void QuirkCounts::add(const QuirkHits& h) {
  ++images;
  if (h.q5_lost_entities > 0) {
    ++q5_images;
    q5_entities += h.q5_lost_entities;
  }
  if (h.q4_shadowed_entities > 0) {
    ++q4_images;
    q4_entities += h.q4_shadowed_entities;
  }
  if (!h.q4_empty_classes.empty()) {
    ++q4_empty_class_images;
    q4_empty_classes += static_cast<int64_t>(h.q4_empty_classes.size());
  }
  if (h.q12_order_differs) ++q12_images;
}

std::string QuirkCounts::to_json() const {
  nlohmann::json j;
  j["images"] = images;
  j["q5_images"] = q5_images;
  j["q5_entities"] = q5_entities;
  j["q4_images"] = q4_images;
  j["q4_entities"] = q4_entities;
  j["q4_empty_class_images"] = q4_empty_class_images;
  j["q4_empty_classes"] = q4_empty_classes;
  j["q12_images"] = q12_images;
  return j.dump();
}

}  // namespace gb::text
