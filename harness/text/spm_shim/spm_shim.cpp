#include "harness/text/spm_shim/spm_shim.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace sentencepiece::logging {
void SetMinLogLevel(int v);  // exported by libsentencepiece, not declared in its public headers
}

namespace {
// The library's LOG() writes to std::cerr. Under RTLD_DEEPBIND the stream it binds to is libstdc++'s own,
// not the executable's copy-relocated (initialised) one, so logging must stay off; errors come back as Status.
struct QuietLogs {
  QuietLogs() { sentencepiece::logging::SetMinLogLevel(4); }
} quiet_logs;

void set_err(char* err, size_t errlen, const std::string& msg) {
  if (!err || errlen == 0) return;
  const size_t n = std::min(errlen - 1, msg.size());
  std::memcpy(err, msg.data(), n);
  err[n] = '\0';
}
}  // namespace

extern "C" {

void* gb_spm_load(const char* path, char* err, size_t errlen) {
  auto* sp = new sentencepiece::SentencePieceProcessor();
  const auto status = sp->Load(path);
  if (!status.ok()) {
    set_err(err, errlen, status.ToString());
    delete sp;
    return nullptr;
  }
  return sp;
}

void gb_spm_free(void* handle) { delete static_cast<sentencepiece::SentencePieceProcessor*>(handle); }

long gb_spm_encode(void* handle, const char* text, size_t len, char** out, size_t* out_len, char* err, size_t errlen) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
  std::vector<std::string> pieces;
  const auto status = sp->Encode(std::string(text, len), &pieces);
  if (!status.ok()) {
    set_err(err, errlen, status.ToString());
    return -1;
  }
  size_t total = 0;
  for (const auto& p : pieces) total += 8 + p.size();
  char* buf = static_cast<char*>(std::malloc(total ? total : 1));
  size_t o = 0;
  for (const auto& p : pieces) {
    const uint32_t n = static_cast<uint32_t>(p.size());
    const int32_t id = sp->PieceToId(p);
    std::memcpy(buf + o, &n, 4);
    std::memcpy(buf + o + 4, p.data(), n);
    std::memcpy(buf + o + 4 + n, &id, 4);
    o += 8 + n;
  }
  *out = buf;
  *out_len = total;
  return static_cast<long>(pieces.size());
}

void gb_spm_free_buffer(char* buffer) { std::free(buffer); }

int gb_spm_piece_to_id(void* handle, const char* piece, size_t len) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(handle)->PieceToId(std::string(piece, len));
}

long gb_spm_id_to_piece(void* handle, int id, char* buf, size_t cap) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
  if (id < 0 || id >= sp->GetPieceSize()) return -1;
  const std::string p = sp->IdToPiece(id);
  if (p.size() <= cap) std::memcpy(buf, p.data(), p.size());
  return static_cast<long>(p.size());
}

int gb_spm_piece_size(void* handle) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(handle)->GetPieceSize();
}

int gb_spm_unk_id(void* handle) { return static_cast<sentencepiece::SentencePieceProcessor*>(handle)->unk_id(); }

int gb_spm_train(const char* args, char* err, size_t errlen) {
  const auto status = sentencepiece::SentencePieceTrainer::Train(args);
  if (!status.ok()) {
    set_err(err, errlen, status.ToString());
    return 1;
  }
  return 0;
}
}
