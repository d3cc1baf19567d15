#pragma once
// Result tables in the paper's layouts, rendered as Markdown, CSV or LaTeX.
//   main table (Table 1): rows Type / Method / Backbone, one column per dataset, mIoU (%) at the selected
//                         background threshold
//   ablation tables:      one per ablation group and backbone: rows the ablated values, columns datasets
//   per-class tables:     one per (dataset, backbone): rows classes, columns variants (IoU %)
//   generation table:     rows backbone × guidance, columns FID ↓ and CLIP ↑ per guidance scale
#include "reports/results.h"

#include <string>
#include <vector>

namespace gb::reports {

struct Table {
  std::string id;  // file stem: "table1", "ablation_head", "per_class_voc_sd15"
  std::string title;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  size_t label_columns = 1;  // leading columns that are labels (left-aligned)
};

Table main_table(const Results& r);
std::vector<Table> ablation_tables(const Results& r);
std::vector<Table> per_class_tables(const Results& r);
// Threshold sweep: rows variants, columns thresholds (mIoU %), one per (dataset, backbone).
std::vector<Table> threshold_tables(const Results& r);
// Generation experiments (the paper's S-CFG table): rows backbone × guidance, columns FID ↓ at each guidance scale,
// then CLIP score ↑ at each scale (two decimals, "–" where missing); the title says SYNTHETIC for random weights.
Table generation_table(const Results& r);
std::vector<Table> all_tables(const Results& r);

std::string to_markdown(const Table& t);
std::string to_csv(const Table& t);
std::string to_latex(const Table& t);

// Writes <dir>/<id>.{md,csv,tex} for every table, plus <dir>/README.md listing them.
void write_tables(const Results& r, const std::string& dir);

std::string percent(double fraction, int decimals = 1);  // "63.4", "–" for NaN

}  // namespace gb::reports
