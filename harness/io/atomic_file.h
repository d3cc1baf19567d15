#pragma once
// Crash-consistent output files (docs/robustness.md). Every file a run writes (results.json, tables,
// profile, report, PNGs, safetensors, saved configs) goes through here: the bytes are written to a temporary
// file beside the target, fsync'd, renamed over the target and the folder is fsync'd. A kill, a crash or a
// full disk therefore leaves either the old file or the new one, never a torn one. A failed write (ENOSPC,
// EFBIG from RLIMIT_FSIZE, EIO) removes the temporary file and throws a UserError naming the target file.
// The append-only run journal is the one exception (harness/runner/journal.h: checksummed, fsync'd lines).
#include <cstddef>
#include <string>
#include <string_view>

namespace gb {

// A file being written; commit() makes it appear at `path` atomically. Destroying an uncommitted
// AtomicFile removes the temporary file (the target is left as it was).
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // creates the temporary file (the folder must exist)
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }
  void commit();  // fsync, close, rename over the target, fsync the folder
  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail_errno(const char* what);
  std::string path_, tmp_;
  int fd_ = -1;
};

// The whole file in one call.
void write_file_atomic(const std::string& path, std::string_view data);
void write_file_atomic(const std::string& path, const void* data, size_t size);

// strerror(errno) with a hint for the errors a full disk or a file-size limit gives.
std::string write_error_text(int err);

}  // namespace gb
