#include "harness/text/t5_tokenizer.h"

#include "harness/core/errors.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

namespace gb::text {

namespace {

// The SentencePiece shim module, loaded once with RTLD_LOCAL | RTLD_DEEPBIND so that the protobuf-lite copy
// inside libsentencepiece stays private (see spm_shim/spm_shim.h).
struct Spm {
  void* (*load)(const char*, char*, size_t) = nullptr;
  void (*free_handle)(void*) = nullptr;
  long (*encode)(void*, const char*, size_t, char**, size_t*, char*, size_t) = nullptr;
  void (*free_buffer)(char*) = nullptr;
  int (*piece_to_id)(void*, const char*, size_t) = nullptr;
  long (*id_to_piece)(void*, int, char*, size_t) = nullptr;
  int (*piece_size)(void*) = nullptr;
  int (*unk_id)(void*) = nullptr;
  int (*train)(const char*, char*, size_t) = nullptr;
};

std::string exe_dir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : p.parent_path().string();
}

const Spm& spm() {
  static std::once_flag once;
  static Spm s;
  static std::string error;
  std::call_once(once, [] {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("GB_SPM_SHIM")) candidates.push_back(env);
#ifdef GB_SPM_SHIM_PATH
    candidates.push_back(GB_SPM_SHIM_PATH);
#endif
    const std::string dir = exe_dir();
    if (!dir.empty()) {
      candidates.push_back(dir + "/libgb_spm_shim.so");
      candidates.push_back(dir + "/../lib/libgb_spm_shim.so");
    }
    // The sanitizer runtimes refuse RTLD_DEEPBIND (it would bypass their malloc/free interposition); the
    // instrumented builds load the shim without it, which the tokenizer tests pass with.
#ifdef GB_SANITIZED
    constexpr int kFlags = RTLD_NOW | RTLD_LOCAL;
#else
    constexpr int kFlags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#endif
    void* lib = nullptr;
    for (const auto& c : candidates) {
      lib = dlopen(c.c_str(), kFlags);
      if (lib) break;
      const char* e = dlerror();
      error += (error.empty() ? "" : "; ") + c + ": " + (e ? e : "?");
    }
    if (!lib) return;
    auto sym = [&](const char* name) {
      void* f = dlsym(lib, name);
      if (!f) error += std::string("missing symbol ") + name;
      return f;
    };
    s.load = reinterpret_cast<decltype(s.load)>(sym("gb_spm_load"));
    s.free_handle = reinterpret_cast<decltype(s.free_handle)>(sym("gb_spm_free"));
    s.encode = reinterpret_cast<decltype(s.encode)>(sym("gb_spm_encode"));
    s.free_buffer = reinterpret_cast<decltype(s.free_buffer)>(sym("gb_spm_free_buffer"));
    s.piece_to_id = reinterpret_cast<decltype(s.piece_to_id)>(sym("gb_spm_piece_to_id"));
    s.id_to_piece = reinterpret_cast<decltype(s.id_to_piece)>(sym("gb_spm_id_to_piece"));
    s.piece_size = reinterpret_cast<decltype(s.piece_size)>(sym("gb_spm_piece_size"));
    s.unk_id = reinterpret_cast<decltype(s.unk_id)>(sym("gb_spm_unk_id"));
    s.train = reinterpret_cast<decltype(s.train)>(sym("gb_spm_train"));
  });
  if (!s.load || !s.free_handle || !s.encode || !s.free_buffer || !s.piece_to_id || !s.id_to_piece || !s.piece_size ||
      !s.unk_id || !s.train) {
    fail("SentencePiece is not available (cannot load the gb_spm_shim module: {}); set GB_SPM_SHIM to its path", error);
  }
  return s;
}

}  // namespace

T5Tokenizer::~T5Tokenizer() {
  if (sp_) spm().free_handle(sp_);
}

void T5Tokenizer::train(const std::string& args) {
  char err[1024] = {0};
  if (spm().train(args.c_str(), err, sizeof(err)) != 0) fail("SentencePiece training failed: {}", err);
}

std::unique_ptr<T5Tokenizer> T5Tokenizer::from_file(const std::string& path, int64_t max_length) {
  if (max_length < 1) fail_file(path, "max_length must be positive, got {}", max_length);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail_file(path, "SentencePiece model file does not exist");
  std::unique_ptr<T5Tokenizer> t(new T5Tokenizer());
  char err[1024] = {0};
  t->sp_ = spm().load(path.c_str(), err, sizeof(err));
  if (!t->sp_) fail_file(path, "cannot load SentencePiece model: {}", err);
  t->path_ = path;
  t->unk_id_ = spm().unk_id(t->sp_);
  t->vocab_size_ = spm().piece_size(t->sp_);
  t->eos_id_ = t->piece_to_id("</s>");
  t->pad_id_ = t->piece_to_id("<pad>");
  if (t->eos_id_ == t->unk_id_ || t->id_to_piece(t->eos_id_) != "</s>")
    fail_file(path, "the model has no '</s>' piece");
  if (t->pad_id_ == t->unk_id_ || t->id_to_piece(t->pad_id_) != "<pad>")
    fail_file(path, "the model has no '<pad>' piece");
  t->max_length_ = max_length;
  return t;
}

int64_t T5Tokenizer::piece_to_id(const std::string& piece) const {
  return spm().piece_to_id(sp_, piece.data(), piece.size());
}

std::string T5Tokenizer::id_to_piece(int64_t id) const {
  if (id < 0 || id >= vocab_size_) fail_file(path_, "token id {} is outside the vocabulary", id);
  std::string buf(64, '\0');
  long n = spm().id_to_piece(sp_, static_cast<int>(id), buf.data(), buf.size());
  if (n > static_cast<long>(buf.size())) {
    buf.resize(n);
    n = spm().id_to_piece(sp_, static_cast<int>(id), buf.data(), buf.size());
  }
  buf.resize(n < 0 ? 0 : n);
  return buf;
}

void T5Tokenizer::pieces_of(const std::string& text, std::vector<std::string>& pieces,
                            std::vector<int64_t>& ids) const {
  auto encode_segment = [&](const std::string& seg) {
    if (seg.empty()) return;
    char* buf = nullptr;
    size_t len = 0;
    char err[1024] = {0};
    const long n = spm().encode(sp_, seg.data(), seg.size(), &buf, &len, err, sizeof(err));
    if (n < 0) fail("SentencePiece could not encode the text: {}", err);
    size_t o = 0;
    for (long k = 0; k < n; ++k) {
      uint32_t plen;
      int32_t id;
      std::memcpy(&plen, buf + o, 4);
      pieces.emplace_back(buf + o + 4, plen);
      std::memcpy(&id, buf + o + 4 + plen, 4);
      ids.push_back(id);
      o += 8 + plen;
    }
    spm().free_buffer(buf);
  };
  // special tokens in the text are split out (Hugging Face's added-token trie)
  auto special_at = [&](size_t i) -> size_t {
    for (const char* s : {"</s>", "<pad>", "<unk>"}) {
      const std::string sv(s);
      if (text.compare(i, sv.size(), sv) == 0) return sv.size();
    }
    if (text.compare(i, 10, "<extra_id_") == 0) {
      size_t j = i + 10;
      while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
      if (j > i + 10 && j < text.size() && text[j] == '>') {
        const std::string tok = text.substr(i, j + 1 - i);
        if (piece_to_id(tok) != unk_id_) return tok.size();
      }
    }
    return 0;
  };
  size_t start = 0, i = 0;
  while (i < text.size()) {
    const size_t n = special_at(i);
    if (n) {
      encode_segment(text.substr(start, i - start));
      const std::string tok = text.substr(i, n);
      pieces.push_back(tok);
      ids.push_back(piece_to_id(tok));
      i += n;
      start = i;
    } else {
      ++i;
    }
  }
  encode_segment(text.substr(start));
}

std::vector<std::string> T5Tokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> pieces;
  std::vector<int64_t> ids;
  pieces_of(text, pieces, ids);
  return pieces;
}

std::vector<int64_t> T5Tokenizer::encode_ids(const std::string& text) const {
  std::vector<std::string> pieces;
  std::vector<int64_t> ids;
  pieces_of(text, pieces, ids);
  return ids;
}

std::vector<int64_t> T5Tokenizer::encode_padded_ids(const std::string& text) const {
  std::vector<int64_t> ids = encode_ids(text);
  if (static_cast<int64_t>(ids.size()) > max_length_ - 1) ids.resize(max_length_ - 1);
  ids.push_back(eos_id_);
  while (static_cast<int64_t>(ids.size()) < max_length_) ids.push_back(pad_id_);
  return ids;
}

std::vector<TextToken> T5Tokenizer::encode(const std::string& text) const {
  std::vector<TextToken> out;
  for (int64_t id : encode_padded_ids(text)) {
    TextToken t;
    t.id = id;
    std::string piece = id_to_piece(id);
    if (piece == "\xE2\x96\x81") {  // "▁" alone
      t.text = "<insert>";
      t.special = true;
    } else if (piece == "</s>") {
      t.text = "<eos>";
      t.special = true;
    } else if (piece == "<pad>") {
      t.text = "<pad>";
      t.special = true;
    } else {
      for (size_t p; (p = piece.find("\xE2\x96\x81")) != std::string::npos;) piece.erase(p, 3);
      t.text = piece;
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace gb::text
