#include "harness/runner/journal.h"

#include "harness/core/errors.h"
#include "harness/core/log.h"

#include <filesystem>
#include <fstream>

#include <unistd.h>

namespace gb::runner {

namespace fs = std::filesystem;

Journal::Journal(std::string path, const nlohmann::json& header, bool fresh) : path_(std::move(path)) {
  fs::create_directories(fs::path(path_).parent_path());
  uint64_t keep = 0;  // bytes of complete lines
  bool have_header = false;
  if (!fresh && fs::exists(path_)) {
    std::ifstream in(path_, std::ios::binary);
    std::string line;
    uint64_t offset = 0;
    while (std::getline(in, line)) {
      const bool complete = !in.eof();  // getline hit a '\n'
      if (!complete) break;
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception&) {
        break;  // a torn line: everything from here on is dropped
      }
      if (!have_header) {
        if (j != header)
          fail_file(path_, "this journal belongs to another run (header {} differs from {}); "
                           "start afresh without --resume or use another run name",
                    j.dump(), header.dump());
        have_header = true;
      } else {
        replayed_.push_back(std::move(j));
      }
      offset += line.size() + 1;
      keep = offset;
    }
  }
  if (fresh || !have_header) {
    file_ = std::fopen(path_.c_str(), "wb");
    if (!file_) fail_file(path_, "cannot create the run journal");
    const std::string h = header.dump() + "\n";
    std::fwrite(h.data(), 1, h.size(), file_);
    std::fflush(file_);
    ::fsync(fileno(file_));
    return;
  }
  if (fs::file_size(path_) != keep) {
    log::warn("{}: dropping a partial last record (the run was interrupted mid-write)", path_);
    fs::resize_file(path_, keep);
  }
  file_ = std::fopen(path_.c_str(), "ab");
  if (!file_) fail_file(path_, "cannot append to the run journal");
}

Journal::~Journal() {
  if (file_) std::fclose(file_);
}

void Journal::append(const std::vector<nlohmann::json>& records) {
  std::string buf;
  for (const auto& r : records) buf += r.dump() + "\n";
  if (std::fwrite(buf.data(), 1, buf.size(), file_) != buf.size()) fail_file(path_, "write failed (disk full?)");
  std::fflush(file_);
  ::fsync(fileno(file_));
}

}  // namespace gb::runner
