#pragma once
// Regression tracking between two runs (`goca-bench compare NEW OLD`).
//
// Two runs are comparable only when their accuracy-relevant config hash, their dataset lists and their
// protocols agree; otherwise the verdict is NotComparable, never a regression. Accuracy is exact by
// default: every confusion matrix at every threshold must be identical. With a tolerance, the selected
// mIoU may move by at most `miou_tol` points (percent). Generation cells (FID, CLIP score) must have identical
// values, or differ by at most `gen_tol`. Speed is checked only when `time_ratio` is set and
// both runs ran on the same device: new seconds per image > ratio × old is a regression.
#include "reports/results.h"

#include <optional>
#include <string>
#include <vector>

namespace gb::reports {

struct CompareOptions {
  double miou_tol = 0.0;             // mIoU points; 0 = exact confusion matrices
  std::optional<double> time_ratio;  // e.g. 1.25
  double gen_tol = 0.0;              // generation cells: allowed |ΔFID| and |ΔCLIP score| (0 = identical values)
};

enum class Verdict { Same, WithinTolerance, AccuracyChanged, SpeedRegressed, NotComparable };
std::string to_string(Verdict v);

struct CompareRow {
  std::string key;                      // dataset|backbone|variant, or timing key
  double new_value = 0, old_value = 0;  // selected mIoU (%), or seconds per image
  std::string status;                   // "same", "within tol", "CHANGED", "missing", "SLOWER", "ok"
};

struct CompareReport {
  Verdict verdict = Verdict::Same;
  std::vector<std::string> reasons;  // why not comparable / what moved
  std::vector<CompareRow> accuracy;
  std::vector<CompareRow> speed;
  std::vector<CompareRow> generation_fid, generation_clip;  // generation cells (backbone|guidance|scale)
  bool speed_checked = false;
  int exit_code() const;        // 0 same/within, 1 regression, 3 not comparable
  std::string to_text() const;  // the diff table
};

CompareReport compare_results(const Results& now, const Results& old, const CompareOptions& options);

}  // namespace gb::reports
