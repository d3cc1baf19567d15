#include "harness/text/clip_tokenizer.h"

#include "harness/core/errors.h"
#include "harness/io/json_io.h"
#include "harness/io/read_file.h"
#include "harness/text/unicode.h"

#include <nlohmann/json.hpp>
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <fstream>
#include <sstream>

namespace gb::text {

namespace {

// gzread reads gzip files and, transparently, plain text.
std::string read_maybe_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) fail_file(path, "cannot open file");
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) out.append(buf, n);
  int err = 0;
  const char* msg = gzerror(f, &err);
  const std::string message = msg ? msg : "";
  gzclose(f);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) fail_file(path, "cannot read: {}", message);
  return out;
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> lines;
  std::string cur;
  for (char c : s) {
    if (c == '\n') {
      lines.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  lines.push_back(cur);
  return lines;
}

std::string strip_py(const std::string& s) {
  auto u = utf8_to_u32(s);
  size_t b = 0, e = u.size();
  while (b < e && is_py_space(u[b])) ++b;
  while (e > b && is_py_space(u[e - 1])) --e;
  return u32_to_utf8(u.substr(b, e - b));
}

// openai's merges: lines [1, 49152-256-2+1) of the file, each "first second".
std::vector<std::pair<std::string, std::string>> parse_merges(const std::string& text, const std::string& source,
                                                              bool strip_first) {
  auto lines = split_lines(strip_first ? strip_py(text) : text);
  const size_t want = 49152 - 256 - 2;
  if (lines.size() < want + 1) fail_file(source, "expected at least {} merges, found {}", want, lines.size() - 1);
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(want);
  for (size_t i = 1; i <= want; ++i) {
    const std::string& l = lines[i];
    const size_t sp = l.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 >= l.size() || l.find(' ', sp + 1) != std::string::npos) {
      fail_file(source, "line {}: expected two space-separated symbols, found '{}'", i + 1, l);
    }
    merges.emplace_back(l.substr(0, sp), l.substr(sp + 1));
  }
  return merges;
}

// GPT-2/CLIP bytes_to_unicode: printable bytes map to themselves, the rest to 256+n, in this order.
std::vector<std::pair<int, char32_t>> bytes_to_unicode() {
  std::vector<int> bs;
  for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
  std::vector<std::pair<int, char32_t>> out;
  for (int b : bs) out.emplace_back(b, static_cast<char32_t>(b));
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    if (std::find(bs.begin(), bs.end(), b) == bs.end()) out.emplace_back(b, static_cast<char32_t>(256 + n++));
  }
  return out;
}

bool istarts_with(const std::u32string& s, size_t i, const char* lit) {
  for (size_t k = 0; lit[k]; ++k) {
    if (i + k >= s.size()) return false;
    char32_t c = s[i + k];
    if (c >= 'A' && c <= 'Z') c += 32;
    char32_t l = static_cast<unsigned char>(lit[k]);
    if (l >= 'A' && l <= 'Z') l += 32;
    if (c != l) return false;
  }
  return true;
}

}  // namespace

std::unique_ptr<ClipTokenizer> ClipTokenizer::from_merges(const std::string& merges_path, const std::string& pad,
                                                          int64_t max_length) {
  auto merges = parse_merges(read_maybe_gz(merges_path), merges_path, false);
  std::vector<std::string> vocab;
  for (const auto& [b, c] : bytes_to_unicode()) vocab.push_back(u32_to_utf8(c));
  const size_t n = vocab.size();
  for (size_t i = 0; i < n; ++i) vocab.push_back(vocab[i] + "</w>");
  for (const auto& m : merges) vocab.push_back(m.first + m.second);
  vocab.push_back(kStart);
  vocab.push_back(kEnd);
  std::unique_ptr<ClipTokenizer> t(new ClipTokenizer());
  t->build(std::move(merges), std::move(vocab), pad, max_length, merges_path);
  return t;
}

std::unique_ptr<ClipTokenizer> ClipTokenizer::from_files(const std::string& vocab_json, const std::string& merges_txt,
                                                         const std::string& pad, int64_t max_length) {
  const nlohmann::json j = parse_json(read_whole_file(vocab_json, "vocabulary"), vocab_json);
  if (!j.is_object()) fail_file(vocab_json, "expected an object {{token: id}}");
  std::vector<std::string> vocab(j.size());
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_number_integer()) fail_file(vocab_json, "id of '{}' is not an integer", it.key());
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id >= static_cast<int64_t>(vocab.size()) || !vocab[id].empty()) {
      fail_file(vocab_json, "ids must be a permutation of 0..{}; bad id {} for '{}'", vocab.size() - 1, id, it.key());
    }
    vocab[id] = it.key();
  }
  auto merges = parse_merges(read_maybe_gz(merges_txt), merges_txt, true);
  std::unique_ptr<ClipTokenizer> t(new ClipTokenizer());
  t->build(std::move(merges), std::move(vocab), pad, max_length, vocab_json);
  return t;
}

void ClipTokenizer::build(std::vector<std::pair<std::string, std::string>> merges, std::vector<std::string> vocab,
                          const std::string& pad, int64_t max_length, const std::string& source) {
  if (max_length < 2) fail_file(source, "max_length must be at least 2, got {}", max_length);
  max_length_ = max_length;
  id_to_token_ = std::move(vocab);
  for (size_t i = 0; i < id_to_token_.size(); ++i) token_to_id_[id_to_token_[i]] = static_cast<int64_t>(i);
  for (size_t i = 0; i < merges.size(); ++i) ranks_.emplace(merges[i].first + " " + merges[i].second, i);
  for (const auto& [b, c] : bytes_to_unicode()) byte_encoder_[b] = u32_to_utf8(c);
  auto id_of = [&](const std::string& t) {
    auto it = token_to_id_.find(t);
    if (it == token_to_id_.end()) fail_file(source, "the vocabulary has no token '{}'", t);
    return it->second;
  };
  bos_id_ = id_of(kStart);
  eos_id_ = id_of(kEnd);
  pad_id_ = id_of(pad);
  pad_token_ = pad;
  cache_[kStart] = kStart;
  cache_[kEnd] = kEnd;
}

int64_t ClipTokenizer::token_to_id(const std::string& token) const {
  auto it = token_to_id_.find(token);
  return it == token_to_id_.end() ? -1 : it->second;
}

const std::string& ClipTokenizer::id_to_token(int64_t id) const {
  if (id < 0 || id >= vocab_size()) fail("token id {} is outside the vocabulary (size {})", id, vocab_size());
  return id_to_token_[id];
}

std::string ClipTokenizer::basic_clean(const std::string& text) {
  const std::u32string in = utf8_to_u32(text);
  // _clean_text and _tokenize_chinese_chars
  std::u32string cleaned;
  cleaned.reserve(in.size());
  for (char32_t c : in) {
    const bool ws = c == ' ' || c == '\t' || c == '\n' || c == '\r' || is_space_separator(c);
    const bool control = !(c == '\t' || c == '\n' || c == '\r') && is_other(c);
    if (c == 0 || c == 0xFFFD || control) continue;
    if (ws) {
      cleaned.push_back(' ');
    } else if (is_cjk(c)) {
      cleaned.push_back(' ');
      cleaned.push_back(c);
      cleaned.push_back(' ');
    } else {
      cleaned.push_back(c);
    }
  }
  // whitespace_tokenize (str.split()), lower-case each token, join with single spaces
  std::u32string out, word;
  auto flush = [&] {
    if (word.empty()) return;
    if (!out.empty()) out.push_back(' ');
    out += py_lower(word);
    word.clear();
  };
  for (char32_t c : cleaned) {
    if (is_py_space(c)) {
      flush();
    } else {
      word.push_back(c);
    }
  }
  flush();
  return u32_to_utf8(out);
}

std::string ClipTokenizer::bpe(const std::string& token) const {
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(token);
    if (it != cache_.end()) return it->second;
  }
  // symbols: the UTF-8 characters of the byte-encoded token, the last one with </w>
  std::vector<std::string> word;
  for (size_t i = 0; i < token.size();) {
    const auto b = static_cast<unsigned char>(token[i]);
    const size_t len = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : 4;
    word.push_back(token.substr(i, len));
    i += len;
  }
  std::string result;
  if (word.empty()) return result;
  word.back() += "</w>";
  while (word.size() > 1) {
    int64_t best = INT64_MAX;
    size_t best_i = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = ranks_.find(word[i] + " " + word[i + 1]);
      if (it != ranks_.end() && it->second < best) {
        best = it->second;
        best_i = i;
      }
    }
    if (best == INT64_MAX) break;
    const std::string first = word[best_i], second = word[best_i + 1];
    std::vector<std::string> merged;
    merged.reserve(word.size());
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        merged.push_back(first + second);
        i += 2;
      } else {
        merged.push_back(word[i]);
        ++i;
      }
    }
    word.swap(merged);
  }
  for (size_t i = 0; i < word.size(); ++i) {
    if (i) result += ' ';
    result += word[i];
  }
  std::lock_guard<std::mutex> lock(cache_mutex_);
  cache_.emplace(token, result);
  return result;
}

void ClipTokenizer::tokenize_segment(const std::string& text, std::vector<std::string>& out) const {
  const std::u32string s = utf8_to_u32(basic_clean(text));
  static const char* const kContractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
  auto emit = [&](size_t b, size_t e) {
    std::string bytes = u32_to_utf8(s.substr(b, e - b));
    std::string encoded;
    if (bytes == kStart || bytes == kEnd) {
      encoded = bytes;
    } else {
      for (unsigned char c : bytes) encoded += byte_encoder_[c];
    }
    const std::string pieces = bpe(encoded);
    size_t p = 0;
    while (p <= pieces.size()) {
      size_t q = pieces.find(' ', p);
      if (q == std::string::npos) q = pieces.size();
      out.push_back(pieces.substr(p, q - p));
      p = q + 1;
    }
  };
  // re.findall(<CLIP pattern>, text, re.IGNORECASE), alternatives tried in order at each position
  size_t i = 0;
  while (i < s.size()) {
    if (istarts_with(s, i, kStart)) {
      emit(i, i + 15);
      i += 15;
      continue;
    }
    if (istarts_with(s, i, kEnd)) {
      emit(i, i + 13);
      i += 13;
      continue;
    }
    bool matched = false;
    for (const char* c : kContractions) {
      if (istarts_with(s, i, c)) {
        const size_t len = std::char_traits<char>::length(c);
        emit(i, i + len);
        i += len;
        matched = true;
        break;
      }
    }
    if (matched) continue;
    if (is_letter(s[i])) {
      size_t j = i;
      while (j < s.size() && is_letter(s[j])) ++j;
      emit(i, j);
      i = j;
    } else if (is_number(s[i])) {
      emit(i, i + 1);
      ++i;
    } else if (!is_py_space(s[i])) {
      size_t j = i;
      while (j < s.size() && !is_py_space(s[j]) && !is_letter(s[j]) && !is_number(s[j])) ++j;
      emit(i, j);
      i = j;
    } else {
      ++i;
    }
  }
}

std::vector<std::string> ClipTokenizer::tokenize(const std::string& text) const {
  // Added/special tokens are split out of the text first (HF's tokens trie), the rest goes through _tokenize.
  std::vector<std::string> specials = {kStart, kEnd};
  if (pad_token_ != kEnd && pad_token_ != kStart) specials.push_back(pad_token_);
  std::vector<std::string> out;
  size_t start = 0, i = 0;
  while (i < text.size()) {
    size_t best = 0;
    for (const auto& sp : specials) {
      if (sp.size() > best && text.compare(i, sp.size(), sp) == 0) best = sp.size();
    }
    if (best) {
      if (i > start) tokenize_segment(text.substr(start, i - start), out);
      out.push_back(text.substr(i, best));
      i += best;
      start = i;
    } else {
      ++i;
    }
  }
  if (start < text.size()) tokenize_segment(text.substr(start), out);
  return out;
}

std::vector<int64_t> ClipTokenizer::encode_ids(const std::string& text) const {
  std::vector<int64_t> ids;
  const int64_t unk = eos_id_;  // CLIP's unk token is <|endoftext|>
  for (const auto& t : tokenize(text)) {
    auto it = token_to_id_.find(t);
    ids.push_back(it == token_to_id_.end() ? unk : it->second);
  }
  return ids;
}

std::vector<int64_t> ClipTokenizer::encode_padded_ids(const std::string& text) const {
  std::vector<int64_t> body = encode_ids(text);
  if (static_cast<int64_t>(body.size()) > max_length_ - 2) body.resize(max_length_ - 2);
  std::vector<int64_t> ids;
  ids.reserve(max_length_);
  ids.push_back(bos_id_);
  ids.insert(ids.end(), body.begin(), body.end());
  ids.push_back(eos_id_);
  while (static_cast<int64_t>(ids.size()) < max_length_) ids.push_back(pad_id_);
  return ids;
}

std::vector<TextToken> ClipTokenizer::encode(const std::string& text) const {
  std::vector<TextToken> out;
  const auto ids = encode_padded_ids(text);
  const size_t body_end = ids.size() - 1;  // position of EOS or later pads
  size_t eos_pos = 0;
  for (size_t i = 1; i < ids.size(); ++i) {
    if (ids[i] == eos_id_) {
      eos_pos = i;
      break;
    }
  }
  (void)body_end;
  for (size_t i = 0; i < ids.size(); ++i) {
    TextToken t;
    t.id = ids[i];
    const std::string& tok = id_to_token_[ids[i]];
    if (tok == kStart) {
      t.text = "<sos>";
      t.special = true;
    } else if (tok == kEnd) {
      t.text = "<pad>";
      t.special = true;
    } else {
      std::string s = tok;
      for (size_t p; (p = s.find("</w>")) != std::string::npos;) s.erase(p, 4);
      t.text = s;
      t.special = eos_pos > 0 && i > eos_pos;  // padding with a regular token ("!" for SDXL's tokenizer_2)
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace gb::text
