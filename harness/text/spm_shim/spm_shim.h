#pragma once
// A C interface over SentencePiece, built as its own module (gb_spm_shim) and loaded with
// dlopen(RTLD_LOCAL | RTLD_DEEPBIND). Debian's libsentencepiece embeds and exports its own protobuf-lite, whose
// symbols would otherwise interpose on the libprotobuf that LibTorch loads (a crash in static initialisation).
#include <cstddef>

extern "C" {
// Returns a handle or nullptr (the reason in err).
void* gb_spm_load(const char* path, char* err, size_t errlen);
void gb_spm_free(void* handle);
// Encodes text; the pieces are written to *out as records [uint32 byte length][bytes][int32 id]; free with
// gb_spm_free_buffer. Returns the number of pieces, or -1 (the reason in err).
long gb_spm_encode(void* handle, const char* text, size_t len, char** out, size_t* out_len, char* err, size_t errlen);
void gb_spm_free_buffer(char* buffer);
int gb_spm_piece_to_id(void* handle, const char* piece, size_t len);
// Writes the piece (not NUL-terminated) if it fits; returns its byte length, or -1 for a bad id.
long gb_spm_id_to_piece(void* handle, int id, char* buf, size_t cap);
int gb_spm_piece_size(void* handle);
int gb_spm_unk_id(void* handle);
// SentencePieceTrainer::Train(args); 0 on success.
int gb_spm_train(const char* args, char* err, size_t errlen);
}
