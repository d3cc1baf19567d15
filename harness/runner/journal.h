#pragma once
// The resume journal of one (dataset, backbone, shard): an append-only JSON-lines file. Line 1 is a header
// naming the run (config hash, dataset, backbone, shard); every later line is one evaluated image with its
// confusion-matrix deltas per (variant, threshold), its diagnostics and, for the first images, its example
// overlays. Lines are written whole and fsync'd per batch, so a killed run leaves at most one partial last
// line, which replay() drops (and truncates away before appending). Replaying sums every image exactly once.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

namespace gb::runner {

class Journal {
 public:
  // Opens `path` for appending. `fresh` truncates it (a new run); otherwise the header must match `header`
  // (UserError: the journal belongs to another config or shard).
  Journal(std::string path, const nlohmann::json& header, bool fresh);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Complete image records already in the file (resume), in file order; a partial last line is dropped.
  const std::vector<nlohmann::json>& replayed() const { return replayed_; }
  // Appends one record per image (one line each) and makes them durable (fflush + fsync).
  void append(const std::vector<nlohmann::json>& records);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  std::vector<nlohmann::json> replayed_;
};

}  // namespace gb::runner
