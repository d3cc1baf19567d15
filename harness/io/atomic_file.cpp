#include "harness/io/atomic_file.h"

#include "harness/core/errors.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <unistd.h>

namespace gb {

namespace fs = std::filesystem;

std::string write_error_text(int err) {
  std::string s = std::strerror(err);
  if (err == ENOSPC || err == EFBIG || err == EDQUOT)
    s += " (disk full or file-size limit: free space, then rerun; `run --resume` continues an interrupted run)";
  return s;
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  tmp_ = path_ + ".tmp" + std::to_string(::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail_file(path_, "cannot write: {}", write_error_text(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicFile::fail_errno(const char* what) {
  const int err = errno;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
  fail_file(path_, "{}: {}", what, write_error_text(err));
}

void AtomicFile::write(const void* data, size_t size) {
  if (fd_ < 0) fail_file(path_, "internal: write after commit");
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_errno("write failed");
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  if (fd_ < 0) fail_file(path_, "internal: commit twice");
  if (::fsync(fd_) != 0) fail_errno("write failed (fsync)");
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp_.c_str());
    fail_file(path_, "write failed (close): {}", write_error_text(err));
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp_.c_str());
    fail_file(path_, "cannot rename the temporary file into place: {}", write_error_text(err));
  }
  // The rename itself is durable once the folder is synced.
  const fs::path parent = fs::path(path_).has_parent_path() ? fs::path(path_).parent_path() : fs::path(".");
  const int dfd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const std::string& path, const void* data, size_t size) {
  AtomicFile f(path);
  f.write(data, size);
  f.commit();
}

void write_file_atomic(const std::string& path, std::string_view data) {
  write_file_atomic(path, data.data(), data.size());
}

}  // namespace gb
