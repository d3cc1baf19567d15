#include "reports/html.h"

#include "harness/core/errors.h"
#include "harness/io/atomic_file.h"
#include "reports/profile.h"
#include "reports/tables.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

namespace gb::reports {

namespace {

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

struct Range {
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  void fix(bool include_zero) {
    if (!std::isfinite(lo)) lo = 0, hi = 1;
    if (include_zero) lo = std::min(lo, 0.0), hi = std::max(hi, 0.0);
    if (hi - lo < 1e-12) hi = lo + 1;
  }
};

std::string legend(const std::vector<Series>& series, double x, double y) {
  std::string s;
  for (size_t i = 0; i < series.size(); ++i) {
    const double yy = y + 14.0 * static_cast<double>(i);
    s += fmt::format("<rect x='{:.1f}' y='{:.1f}' width='10' height='10' fill='{}'/>", x, yy - 9, kColors[i % 10]);
    s += fmt::format("<text x='{:.1f}' y='{:.1f}' font-size='11'>{}</text>", x + 14, yy, esc(series[i].name));
  }
  return s;
}

constexpr double W = 640, H = 300, L = 55, R = 200, T = 30, B = 45;

std::string axes(const std::string& title, const std::string& xl, const std::string& yl, const Range& yr) {
  std::string s =
      fmt::format("<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' font-family='sans-serif'>", W, H);
  s += fmt::format("<text x='{}' y='18' font-size='13' font-weight='bold'>{}</text>", L, esc(title));
  s += fmt::format("<line x1='{0}' y1='{1}' x2='{0}' y2='{2}' stroke='black'/>", L, T, H - B);
  s += fmt::format("<line x1='{0}' y1='{1}' x2='{2}' y2='{1}' stroke='black'/>", L, H - B, W - R);
  for (int k = 0; k <= 4; ++k) {
    const double v = yr.lo + (yr.hi - yr.lo) * k / 4.0;
    const double y = H - B - (H - B - T) * k / 4.0;
    s += fmt::format("<line x1='{}' y1='{:.1f}' x2='{}' y2='{:.1f}' stroke='#ddd'/>", L, y, W - R, y);
    s += fmt::format("<text x='{}' y='{:.1f}' font-size='10' text-anchor='end'>{:.3g}</text>", L - 4, y + 3, v);
  }
  s +=
      fmt::format("<text x='{}' y='{}' font-size='11' text-anchor='middle'>{}</text>", (L + W - R) / 2, H - 8, esc(xl));
  s += fmt::format("<text x='12' y='{}' font-size='11' transform='rotate(-90 12 {})' text-anchor='middle'>{}</text>",
                   (T + H - B) / 2, (T + H - B) / 2, esc(yl));
  return s;
}

}  // namespace

std::string svg_line_chart(const std::string& title, const std::string& xl, const std::string& yl,
                           const std::vector<Series>& series) {
  Range xr, yr;
  for (const auto& s : series) {
    for (double v : s.x) xr.add(v);
    for (double v : s.y) yr.add(v);
  }
  xr.fix(false);
  yr.fix(false);
  auto px = [&](double x) { return L + (W - R - L) * (x - xr.lo) / (xr.hi - xr.lo); };
  auto py = [&](double y) { return H - B - (H - B - T) * (y - yr.lo) / (yr.hi - yr.lo); };
  std::string s = axes(title, xl, yl, yr);
  for (int k = 0; k <= 4; ++k) {
    const double v = xr.lo + (xr.hi - xr.lo) * k / 4.0;
    s += fmt::format("<text x='{:.1f}' y='{}' font-size='10' text-anchor='middle'>{:.3g}</text>", px(v), H - B + 14, v);
  }
  for (size_t i = 0; i < series.size(); ++i) {
    std::string pts;
    for (size_t k = 0; k < series[i].x.size() && k < series[i].y.size(); ++k)
      if (std::isfinite(series[i].y[k])) pts += fmt::format("{:.1f},{:.1f} ", px(series[i].x[k]), py(series[i].y[k]));
    s += fmt::format("<polyline fill='none' stroke='{}' stroke-width='2' points='{}'/>", kColors[i % 10], pts);
    for (size_t k = 0; k < series[i].x.size() && k < series[i].y.size(); ++k)
      if (std::isfinite(series[i].y[k]))
        s += fmt::format("<circle cx='{:.1f}' cy='{:.1f}' r='2.5' fill='{}'/>", px(series[i].x[k]), py(series[i].y[k]),
                         kColors[i % 10]);
  }
  s += legend(series, W - R + 10, T + 10);
  return s + "</svg>";
}

std::string svg_bar_chart(const std::string& title, const std::vector<std::string>& cats,
                          const std::vector<Series>& series, const std::string& yl) {
  Range yr;
  for (const auto& s : series)
    for (double v : s.y) yr.add(v);
  yr.fix(true);
  auto py = [&](double y) { return H - B - (H - B - T) * (y - yr.lo) / (yr.hi - yr.lo); };
  std::string s = axes(title, "", yl, yr);
  const double n = static_cast<double>(std::max<size_t>(cats.size(), 1));
  const double gw = (W - R - L) / n;
  const double bw = gw * 0.8 / static_cast<double>(std::max<size_t>(series.size(), 1));
  for (size_t c = 0; c < cats.size(); ++c) {
    const double gx = L + gw * static_cast<double>(c) + gw * 0.1;
    for (size_t i = 0; i < series.size(); ++i) {
      if (c >= series[i].y.size() || !std::isfinite(series[i].y[c])) continue;
      const double v = series[i].y[c];
      const double y0 = py(0), y1 = py(v);
      s += fmt::format(
          "<rect x='{:.1f}' y='{:.1f}' width='{:.1f}' height='{:.1f}' fill='{}'><title>{}: {:.4g}</title></rect>",
          gx + bw * static_cast<double>(i), std::min(y0, y1), std::max(bw - 1, 1.0), std::fabs(y1 - y0),
          kColors[i % 10], esc(cats[c] + " / " + series[i].name), v);
    }
    s += fmt::format(
        "<text x='{:.1f}' y='{}' font-size='9' text-anchor='end' transform='rotate(-45 {:.1f} {})'>{}</text>",
        gx + gw * 0.4, H - B + 10, gx + gw * 0.4, H - B + 10, esc(cats[c]));
  }
  s += legend(series, W - R + 10, T + 10);
  return s + "</svg>";
}

std::string svg_heatmap(const std::string& title, const std::vector<std::string>& rows,
                        const std::vector<std::vector<double>>& values, const std::string& col_label) {
  size_t cols = 0;
  Range vr;
  for (const auto& r : values) {
    cols = std::max(cols, r.size());
    for (double v : r) vr.add(v);
  }
  vr.fix(false);
  const double cell = 14, lw = 260;
  const double w = lw + cell * static_cast<double>(cols) + 20, h = 40 + cell * static_cast<double>(rows.size()) + 30;
  std::string s = fmt::format(
      "<svg xmlns='http://www.w3.org/2000/svg' width='{:.0f}' height='{:.0f}' font-family='sans-serif'>", w, h);
  s += fmt::format("<text x='4' y='18' font-size='13' font-weight='bold'>{}</text>", esc(title));
  for (size_t r = 0; r < rows.size(); ++r) {
    const double y = 30 + cell * static_cast<double>(r);
    s += fmt::format("<text x='{}' y='{:.1f}' font-size='9' text-anchor='end'>{}</text>", lw - 4, y + 10, esc(rows[r]));
    for (size_t c = 0; c < values[r].size(); ++c) {
      const double v = values[r][c];
      const double t = std::isfinite(v) ? (v - vr.lo) / (vr.hi - vr.lo) : 0;
      const int red = static_cast<int>(255 * t), blue = static_cast<int>(255 * (1 - t));
      s += fmt::format(
          "<rect x='{:.1f}' y='{:.1f}' width='{}' height='{}' fill='rgb({},{},{})'><title>{}: {:.4g}</title></rect>",
          lw + cell * static_cast<double>(c), y, cell - 1, cell - 1, red, 60, blue, esc(rows[r]), v);
    }
  }
  s += fmt::format("<text x='{}' y='{:.1f}' font-size='10'>{} (blue {:.3g} → red {:.3g})</text>", lw, h - 8,
                   esc(col_label), vr.lo, vr.hi);
  return s + "</svg>";
}

namespace {

std::string table_html(const Table& t) {
  std::string s = "<h3>" + esc(t.title) + "</h3>\n<table><tr>";
  for (const auto& h : t.header) s += "<th>" + esc(h) + "</th>";
  s += "</tr>\n";
  for (const auto& row : t.rows) {
    s += "<tr>";
    for (size_t i = 0; i < row.size(); ++i)
      s += (i < t.label_columns ? "<td class='l'>" : "<td>") + esc(row[i]) + "</td>";
    s += "</tr>\n";
  }
  return s + "</table>\n";
}

}  // namespace

namespace {

// One grid per backbone: a column per setting (guidance, scale), a row per sampled prompt.
std::string generation_samples_html(const Results& r) {
  std::string s = "<h2>Generated samples (the first prompts; a column per setting)</h2>\n";
  std::vector<std::string> backbones;
  for (const auto& c : r.generation)
    if (std::find(backbones.begin(), backbones.end(), c.backbone) == backbones.end()) backbones.push_back(c.backbone);
  for (const auto& b : backbones) {
    std::vector<const GenerationCell*> cols;
    std::vector<std::pair<int64_t, std::string>> prompts;  // (index, id), ascending
    for (const auto& c : r.generation) {
      if (c.backbone != b) continue;
      cols.push_back(&c);
      for (const auto& smp : c.samples)
        if (std::find(prompts.begin(), prompts.end(), std::make_pair(smp.index, smp.id)) == prompts.end())
          prompts.emplace_back(smp.index, smp.id);
    }
    std::sort(prompts.begin(), prompts.end());
    s += "<h3>" + esc(b) + "</h3>\n<table class='ex'><tr><th>prompt</th>";
    for (const auto* c : cols)
      s += fmt::format("<th>{}<br>G={}<br><span class='meta'>FID {} · CLIP {} · {} img</span></th>", esc(c->guidance),
                       esc(c->scale_text()), std::isfinite(c->fid) ? fmt::format("{:.2f}", c->fid) : "–",
                       std::isfinite(c->clip_score()) ? fmt::format("{:.2f}", c->clip_score()) : "–", c->images);
    s += "</tr>\n";
    for (const auto& [index, id] : prompts) {
      s += "<tr><td class='l'>" + esc(id) + "</td>";
      for (const auto* c : cols) {
        const GenerationSample* hit = nullptr;
        for (const auto& smp : c->samples)
          if (smp.index == index) hit = &smp;
        s += hit ? fmt::format("<td><img alt='{}' src='data:image/png;base64,{}'/></td>", esc(id), hit->png_base64)
                 : std::string("<td>–</td>");
      }
      s += "</tr>\n";
    }
    if (prompts.empty()) s += "<tr><td class='l'>No samples were recorded.</td></tr>\n";
    s += "</table>\n";
  }
  return s;
}

// mIoU against the background threshold, a line per variant, a chart per (dataset, backbone); then the per-class
// IoU at the selected threshold of the main-table variants.
std::string threshold_and_class_charts(const Results& r) {
  std::string s = "<h2>mIoU vs background threshold</h2>\n";
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto& c : r.cells)
    if (std::find(pairs.begin(), pairs.end(), std::make_pair(c.dataset, c.backbone)) == pairs.end())
      pairs.emplace_back(c.dataset, c.backbone);
  for (const auto& [ds, bb] : pairs) {
    std::vector<Series> series;
    for (const auto& c : r.cells) {
      if (c.dataset != ds || c.backbone != bb) continue;
      Series se{c.variant, {}, {}};
      for (const auto& t : c.thresholds) {
        se.x.push_back(t.threshold);
        se.y.push_back(100 * t.metrics.miou);
      }
      series.push_back(se);
    }
    s += svg_line_chart(ds + " / " + bb, "background threshold", "mIoU (%)", series) + "\n";
  }

  s += "<h2>Per-class IoU (selected threshold)</h2>\n";
  for (const auto& [ds, bb] : pairs) {
    const DatasetInfo* di = r.dataset(ds);
    std::vector<Series> series;
    std::vector<std::string> cats;
    for (const auto& c : r.cells) {
      if (c.dataset != ds || c.backbone != bb || !c.group.empty() || !c.selected()) continue;
      Series se{c.variant, {}, {}};
      for (double v : c.selected()->metrics.iou) se.y.push_back(100 * v);
      series.push_back(se);
    }
    if (series.empty()) continue;
    for (size_t k = 0; k < series.front().y.size(); ++k)
      cats.push_back(di && k < di->class_names.size() ? di->class_names[k] : std::to_string(k));
    s += svg_bar_chart(ds + " / " + bb, cats, series, "IoU (%)") + "\n";
  }
  return s;
}

// The diagnostics: mean layer weights (a bar chart per cell) and mean head weights (a heatmap per cell).
std::string weight_charts(const Results& r) {
  std::string s = "<h2>Layer weights (mean over images)</h2>\n";
  bool any_layer = false;
  for (const auto& c : r.cells) {
    if (c.layer_weight_sum.empty() || c.images == 0) continue;
    any_layer = true;
    std::vector<std::string> cats;
    Series se{c.variant, {}, {}};
    for (const auto& [l, w] : c.layer_weight_sum) {
      cats.push_back(l);
      se.y.push_back(w / static_cast<double>(c.images));
    }
    s += svg_bar_chart(c.key(), cats, {se}, "layer weight") + "\n";
  }
  if (!any_layer) s += "<p>No layer weights were recorded.</p>\n";

  s += "<h2>Head weights (mean over pixels and images)</h2>\n";
  bool any_head = false;
  for (const auto& c : r.cells) {
    if (c.head_weight_sum.empty() || c.images == 0) continue;
    any_head = true;
    std::vector<std::string> rows;
    std::vector<std::vector<double>> vals;
    for (const auto& [l, w] : c.head_weight_sum) {
      rows.push_back(l);
      std::vector<double> v;
      for (double x : w) v.push_back(x / static_cast<double>(c.images));
      vals.push_back(v);
    }
    s += svg_heatmap(c.key(), rows, vals, "head") + "\n";
  }
  if (!any_head) s += "<p>No head weights were recorded.</p>\n";
  return s;
}

}  // namespace

std::string report_html(const Results& r) {
  std::string s =
      "<!DOCTYPE html><html><head><meta charset='utf-8'><title>goca-bench: " + esc(r.name) +
      "</title><style>body{font-family:sans-serif;max-width:1100px;margin:20px auto;padding:0 10px}"
      "table{border-collapse:collapse;margin:8px 0 18px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;"
      "font-size:13px}td.l{text-align:left}th{background:#f2f2f2}.ex img{image-rendering:pixelated;margin:4px;"
      "border:1px solid #999}.meta{color:#555;font-size:13px}</style></head><body>\n";
  s += "<h1>Run " + esc(r.name) + "</h1>\n<p class='meta'>";
  s += fmt::format("created {} · git {} · goca-bench {} · device {} · protocol {} · config {}", esc(r.created_utc),
                   esc(r.git_commit), esc(r.goca_bench_version), esc(r.device), esc(r.protocol), esc(r.config_hash));
  s += "</p>\n<h2>Tables</h2>\n";
  for (const auto& t : all_tables(r)) s += table_html(t);
  if (!r.generation.empty()) s += generation_samples_html(r);
  if (r.cells.empty()) {
    s += "<h2>Resolved configuration</h2>\n<pre>" + esc(r.config_yaml) + "</pre>\n</body></html>\n";
    return s;
  }
  s += threshold_and_class_charts(r);
  s += weight_charts(r);
  s += "<h2>Examples (image · ground truth · prediction)</h2>\n<div class='ex'>\n";
  for (const auto& e : r.examples)
    s += fmt::format(
        "<figure><img alt='{0}' src='data:image/png;base64,{1}'/><figcaption>{2} / {3} / {4} · "
        "{0}</figcaption></figure>\n",
        esc(e.id), e.png_base64, esc(e.dataset), esc(e.backbone), esc(e.variant));
  if (r.examples.empty()) s += "<p>No examples were recorded.</p>\n";
  s += "</div>\n";
  s += "<h2>Resolved configuration</h2>\n<pre>" + esc(r.config_yaml) + "</pre>\n</body></html>\n";
  return s;
}

void write_report(const Results& r, const std::string& run_dir) {
  namespace fs = std::filesystem;
  write_tables(r, (fs::path(run_dir) / "tables").string());
  write_profile(r, run_dir);
  write_file_atomic((fs::path(run_dir) / "report.html").string(), report_html(r));
}

}  // namespace gb::reports
