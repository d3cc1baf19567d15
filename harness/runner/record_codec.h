#pragma once
// The journal record of one evaluated image of a segmentation run, and what it adds to the results. A record is
// {"i": index, "id": image id, "v": [one delta per variant], "ex": [{"variant", "png"}] (first images only)},
// or {"i": index, "skip": true} for an image the dataset could not load (on_error: skip). A variant's delta is
// {"t": [per threshold: [[row, col, count], ...] nonzero confusion cells], "lw": {layer: weight},
//  "hw": {layer: [mean weight per head]}}. journal.h has the line format and checks records on replay.
#include "harness/eval/confusion.h"
#include "harness/runner/journal.h"
#include "reports/results.h"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gb::runner {

// Per-image outcome of one variant, journalled and summed.
struct VariantDelta {
  std::vector<std::vector<std::array<int64_t, 3>>> sparse;  // per threshold: (row, col, count), count > 0
  std::map<std::string, double> layer_weights;
  std::map<std::string, std::vector<double>> head_weights;
};

// The nonzero cells of a confusion matrix as (row, col, count), row-major.
std::vector<std::array<int64_t, 3>> sparse_counts(const gb::eval::ConfusionMatrix& matrix);

nlohmann::json delta_to_json(const VariantDelta& delta);

// The record of an image the dataset skipped.
nlohmann::json skip_record(int64_t index);

// Adds an image record (replayed or fresh; not a skip record) into the cells of its (dataset, backbone), one cell
// per variant in record order: confusion counts, diagnostics sums, one more image. UserError when the record's
// variant or threshold counts differ from the cells'.
void accumulate(const nlohmann::json& record, const std::vector<gb::reports::Cell*>& cells);

// Appends the record's example overlays ("ex") to `examples`.
void collect_examples(const nlohmann::json& record, const std::string& dataset, const std::string& backbone,
                      std::vector<gb::reports::Example>& examples);

// Line 1 of a (dataset, backbone, shard) journal: the run it belongs to.
nlohmann::json journal_header(const std::string& config_hash, const std::string& dataset, const std::string& backbone,
                              int64_t shard_index, int64_t shard_count);
// What a valid record of that journal looks like: image count and shard, one variant per cell with the cell's
// threshold and class counts.
JournalSchema journal_schema(int64_t num_images, int64_t shard_index, int64_t shard_count,
                             const std::vector<gb::reports::Cell*>& cells);

}  // namespace gb::runner
