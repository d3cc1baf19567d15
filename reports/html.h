#pragma once
// report.html: one self-contained page (no external files, scripts or fonts): the tables, inline SVG plots
// drawn here (mIoU vs background threshold, per-class IoU, layer weights per layer, head weights per layer
// and head) and the example overlays stored in results.json as base64 PNG.
#include "reports/results.h"

#include <string>
#include <vector>

namespace gb::reports {

struct Series {
  std::string name;
  std::vector<double> x, y;
};

// Minimal SVG charts (exposed for tests).
std::string svg_line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const std::vector<Series>& series);
std::string svg_bar_chart(const std::string& title, const std::vector<std::string>& categories,
                          const std::vector<Series>& series,
                          const std::string& y_label);  // grouped bars, y per category
std::string svg_heatmap(const std::string& title, const std::vector<std::string>& rows,
                        const std::vector<std::vector<double>>& values, const std::string& col_label);

std::string report_html(const Results& r);

// Everything `goca-bench report RUN_DIR` writes: tables/, profile.json, profile.md, report.html.
void write_report(const Results& r, const std::string& run_dir);

}  // namespace gb::reports
