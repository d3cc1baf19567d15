#pragma once
// Streaming readers for the six benchmarks in their real on-disk layouts, in the paper's order, split and limit
// (or the standard protocol's). Listing happens once in open(); load(i) decodes one sample and is thread-safe,
// so a runner can load in parallel:
//
//   auto ds = Dataset::open(cfg);                // UserError if the layout is unusable
//   for (size_t i = 0; i < ds->size(); ++i)
//     if (auto s = ds->load(i)) use(*s);         // nullopt = skipped (on_error: skip), recorded in report()
//   fmt::print("{}", ds->report().summary());
//
// Bad input (missing file, corrupt image, label/image size mismatch, id without caption, class id out of range)
// is a UserError naming the file under `on_error: fail`, or a counted, reported skip under `on_error: skip`.
// Paper-protocol behaviours that drop or alter data on purpose (Context ids without a .mat are dropped; a COCO
// label without an annotation reuses the last one, Q14) are recorded as notes in the report, never silent.
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "datasets/captions.h"
#include "datasets/classes.h"
#include "datasets/dataset_config.h"
#include "datasets/sample.h"
#include "harness/core/errors.h"

namespace gb::datasets {

// What kind of bad input a sample has (for skip reports and `datasets verify`).
enum class IssueKind { MissingFile, Unreadable, SizeMismatch, OutOfRange, MissingCaption, PaperQuirk, Other };
const char* to_string(IssueKind kind);

// A bad-input UserError about one sample, with its kind.
class SampleError : public UserError {
 public:
  SampleError(IssueKind kind, const std::string& message) : UserError(message), kind_(kind) {}
  IssueKind kind() const { return kind_; }

 private:
  IssueKind kind_;
};

struct DatasetIssue {
  std::string id;       // sample id ("" when not tied to one)
  std::string file;     // offending file ("" when none)
  std::string message;  // what is wrong and what to fix
  IssueKind kind = IssueKind::Other;
  std::string line() const;  // "<file>: <message>" (or "<id>: <message>")
};

// Thread-safe record of skips (bad input under on_error: skip) and notes (deliberate paper-protocol behaviours).
// Each sample counts once per kind, however often it is loaded.
class DatasetReport {
 public:
  void skip(DatasetIssue issue);
  void note(const std::string& kind, DatasetIssue issue);
  std::vector<DatasetIssue> skipped() const;
  size_t skipped_count() const;
  std::map<std::string, std::vector<DatasetIssue>> notes() const;  // kind -> occurrences
  // Multi-line human summary ("" when nothing happened): counts per kind, then the first few lines of each.
  std::string summary(size_t max_lines_per_kind = 5) const;

 private:
  mutable std::mutex mutex_;
  std::vector<DatasetIssue> skipped_;
  std::map<std::string, std::vector<DatasetIssue>> notes_;
  std::set<std::string> seen_;
};

// Note kinds.
inline constexpr const char* kNoteContextNoMat = "paper: ids without a label file dropped (Context, after the limit)";
inline constexpr const char* kNoteCocoAnnotationReused =
    "paper quirk Q14: label without annotation reuses the last one";
inline constexpr const char* kNoteVocGtFromLabel = "VOC: no Annotations/ folder, GT classes taken from the label";

// One listed sample: what load() will read.
struct SampleEntry {
  std::string id;  // image file name (caption key)
  std::string image_path;
  std::string label_path;
  std::string xml_path;  // VOC gt_from_xml only
};

class Dataset {
 public:
  // Lists the split. `captions` (optional, must outlive the Dataset) enables the id-without-caption check; when
  // null and the config names a caption file, that file is loaded and owned.
  static std::unique_ptr<Dataset> open(const DatasetConfig& config, const CaptionFile* captions = nullptr);

  size_t size() const { return entries_.size(); }
  const std::string& id(size_t i) const { return entries_.at(i).id; }
  const SampleEntry& entry(size_t i) const { return entries_.at(i); }
  const DatasetConfig& config() const { return config_; }
  const ClassTable& classes() const { return *classes_; }
  LabelSource label_source() const { return source_; }
  const CaptionFile* captions() const { return captions_; }

  // Decodes sample i. on_error fail: bad input throws UserError; skip: returns nullopt and records the skip.
  std::optional<Sample> load(size_t i) const;
  // Decodes sample i and throws UserError on bad input regardless of the policy.
  Sample load_or_throw(size_t i) const;

  DatasetReport& report() const { return report_; }

  ~Dataset();

 private:
  Dataset() = default;
  struct Impl;
  DatasetConfig config_;
  const ClassTable* classes_ = nullptr;
  LabelSource source_ = LabelSource::Png;
  std::vector<SampleEntry> entries_;
  const CaptionFile* captions_ = nullptr;
  std::unique_ptr<CaptionFile> owned_captions_;
  std::unique_ptr<Impl> impl_;
  mutable DatasetReport report_;
};

// ---- label decoding (exposed for tests and `datasets inspect`) ---------------------------------------------
// Maps a raw label as read from disk to class ids under the config's protocol; throws UserError naming `file` for
// values outside the protocol's range. Raw inputs: VOC/ADE/Context-png/COCO-png/Cityscapes the PNG values;
// Context-mat the LabelMap raw ids.
at::Tensor map_label(const DatasetConfig& config, LabelSource source, const at::Tensor& raw, const std::string& file);

// COCO panoptic: segment ids (R + 256 G + 65536 B) -> classes. `segments` = (segment id, category_id) in
// segments_info order. Paper: the in-place sequential remap (Q14); standard: a map built from the original ids,
// void (0 and ids not listed) -> 255.
at::Tensor map_panoptic(const at::Tensor& segment_ids, const std::vector<std::pair<int64_t, int64_t>>& segments,
                        Protocol protocol, const std::string& file);

#ifdef GB_WITH_MATIO
inline constexpr bool kHaveMatio = true;
#else
inline constexpr bool kHaveMatio = false;
#endif
// Reads a 2-D numeric variable of a MAT file as int64 [rows, cols] (row-major, as scipy.io.loadmat shows it).
at::Tensor read_mat_variable(const std::string& path, const std::string& variable);

// Distinct label values in ascending order and in raster order of first appearance, with pixel counts.
struct LabelStats {
  std::vector<int64_t> ascending;
  std::vector<int64_t> first_seen;
  std::map<int64_t, int64_t> pixels;
};
LabelStats label_stats(const at::Tensor& label);

}  // namespace gb::datasets
