#pragma once
// The resume journal of one (dataset, backbone, shard): an append-only JSON-lines file. Line 1 is a header
// naming the run (config hash, dataset, backbone, shard); every later line is one evaluated image with its
// confusion-matrix deltas per (variant, threshold), its diagnostics and, for the first images, its example
// overlays. Each line is {"r":<record>,"crc32":"<8 hex>"}, the CRC-32 taken over the record's bytes as
// written. Lines are written whole and fsync'd per batch (a failed write is cut back off the file), so a
// killed run leaves at most one partial last line (no newline), which replay drops with a warning and
// truncates away before appending. Any complete line that fails its checksum or the record schema (types,
// index range and shard, variant and threshold counts, class ids, counts >= 0, no image twice) is a UserError
// naming the journal line: it is never counted. docs/robustness.md has the format.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace gb::runner {

// What a valid image record of this journal looks like.
struct JournalSchema {
  int64_t num_images = 0;               // "i" in [0, num_images)
  std::function<bool(int64_t)> wanted;  // and in this shard (empty: every index)
  std::vector<std::string> variants;    // "v" has one entry per variant; "ex" names one of them
  std::vector<size_t> thresholds;       // per variant: entries of "t"
  std::vector<int64_t> num_classes;     // per variant C: row in [0, C], column in [0, C)
  // Generation journals (harness/runner/generation_run.h): checks a record's keys other than "i" (which is
  // checked as above) instead of the segmentation schema; throws UserError "<file>: line <n>: ...".
  std::function<void(nlohmann::json& record, const std::string& file, int64_t line)> record;
};

class Journal {
 public:
  // Opens `path` for appending. `fresh` truncates it (a new run); otherwise the header must match `header`
  // (UserError: the journal belongs to another config or shard) and every record must satisfy `schema`.
  Journal(std::string path, const nlohmann::json& header, bool fresh, JournalSchema schema);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Complete image records already in the file (resume), in file order, validated; a partial last line is
  // dropped. A null layer or head weight (NaN as JSON writes it) is replayed as NaN.
  const std::vector<nlohmann::json>& replayed() const { return replayed_; }
  // Appends one record per image (one line each) and makes them durable (write + fsync). On failure (disk
  // full) the partial write is cut off again and a UserError names the journal.
  void append(const std::vector<nlohmann::json>& records);
  const std::string& path() const { return path_; }

  // The line format, exposed for tests and the fuzz target: encode one record as a line (with '\n'), and
  // decode one line (without '\n'); decode throws UserError "<file>: line <n>: ..." on a bad checksum or
  // framing.
  static std::string encode_line(const nlohmann::json& record);
  static nlohmann::json decode_line(std::string_view line, const std::string& file, int64_t line_no);
  // Checks one image record against `schema` (UserError "<file>: line <n>: ..."); normalises null weights
  // to NaN.
  static void validate(nlohmann::json& record, const JournalSchema& schema, const std::string& file, int64_t line_no);

 private:
  std::string path_;
  int fd_ = -1;
  JournalSchema schema_;
  std::vector<nlohmann::json> replayed_;
};

}  // namespace gb::runner
