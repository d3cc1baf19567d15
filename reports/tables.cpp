#include "reports/tables.h"

#include "harness/core/errors.h"
#include "harness/io/atomic_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

namespace gb::reports {

namespace {

template <typename T>
void push_unique(std::vector<T>& v, const T& x) {
  if (std::find(v.begin(), v.end(), x) == v.end()) v.push_back(x);
}

std::vector<std::string> dataset_order(const Results& r) {
  std::vector<std::string> out;
  for (const auto& d : r.datasets) push_unique(out, d.name);
  for (const auto& c : r.cells) push_unique(out, c.dataset);
  return out;
}

std::string cell_miou(const Cell* c) {
  if (!c || !c->selected()) return "–";
  return percent(c->selected()->metrics.miou);
}

std::string sanitize(std::string s) {
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_') ch = '_';
  return s;
}

std::string latex_escape(const std::string& in) {
  if (in == "–") return "--";
  std::string o;
  for (char ch : in) {
    switch (ch) {
      case '&':
      case '%':
      case '$':
      case '#':
      case '_':
      case '{':
      case '}':
        o += '\\';
        o += ch;
        break;
      case '~': o += "\\textasciitilde{}"; break;
      case '^': o += "\\textasciicircum{}"; break;
      case '\\': o += "\\textbackslash{}"; break;
      default: o += ch;
    }
  }
  for (const auto& [from, to] : {std::pair<std::string, std::string>{"↓", "$\\downarrow$"}, {"↑", "$\\uparrow$"}})
    for (size_t pos = o.find(from); pos != std::string::npos; pos = o.find(from, pos + to.size()))
      o.replace(pos, from.size(), to);
  return o;
}

}  // namespace

std::string percent(double f, int decimals) {
  if (!std::isfinite(f)) return "–";
  return fmt::format("{:.{}f}", 100.0 * f, decimals);
}

Table main_table(const Results& r) {
  Table t;
  t.id = "table1";
  t.title = "mIoU (%) at the selected background threshold";
  t.header = {"Type", "Method", "Backbone"};
  t.label_columns = 3;
  const auto datasets = dataset_order(r);
  for (const auto& d : datasets) t.header.push_back(d);
  std::vector<std::pair<std::string, std::string>> rows;  // (variant, backbone) in first-seen order
  for (const auto& c : r.cells)
    if (c.group.empty()) push_unique(rows, {c.variant, c.backbone});
  for (const auto& [variant, backbone] : rows) {
    const Cell* any = nullptr;
    for (const auto& c : r.cells)
      if (c.variant == variant && c.backbone == backbone) any = &c;
    std::vector<std::string> row = {any->type, any->method.empty() ? variant : any->method, backbone};
    for (const auto& d : datasets) row.push_back(cell_miou(r.find(d, backbone, variant)));
    t.rows.push_back(row);
  }
  return t;
}

std::vector<Table> ablation_tables(const Results& r) {
  std::vector<Table> out;
  std::vector<std::pair<std::string, std::string>> groups;  // (group, backbone)
  for (const auto& c : r.cells)
    if (!c.group.empty()) push_unique(groups, {c.group, c.backbone});
  const auto datasets = dataset_order(r);
  for (const auto& [group, backbone] : groups) {
    Table t;
    t.id = sanitize("ablation_" + group + "_" + backbone);
    t.title = fmt::format("Ablation '{}' on {}: mIoU (%)", group, backbone);
    std::vector<std::string> axes;
    std::vector<std::string> variants;
    for (const auto& c : r.cells)
      if (c.group == group && c.backbone == backbone) {
        push_unique(variants, c.variant);
        for (const auto& kv : c.axes) push_unique(axes, kv.first);
      }
    t.header = axes.empty() ? std::vector<std::string>{"Variant"} : axes;
    t.label_columns = t.header.size();
    for (const auto& d : datasets) t.header.push_back(d);
    for (const auto& v : variants) {
      std::vector<std::string> row;
      const Cell* first = nullptr;
      for (const auto& c : r.cells)
        if (c.group == group && c.backbone == backbone && c.variant == v) first = &c;
      if (axes.empty()) {
        row.push_back(v);
      } else {
        for (const auto& a : axes) {
          auto it = first->axes.find(a);
          row.push_back(it == first->axes.end() ? "" : it->second);
        }
      }
      for (const auto& d : datasets) row.push_back(cell_miou(r.find(d, backbone, v)));
      t.rows.push_back(row);
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<Table> per_class_tables(const Results& r) {
  std::vector<Table> out;
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto& c : r.cells) push_unique(pairs, {c.dataset, c.backbone});
  for (const auto& [ds, bb] : pairs) {
    const DatasetInfo* di = r.dataset(ds);
    Table t;
    t.id = sanitize("per_class_" + ds + "_" + bb);
    t.title = fmt::format("Per-class IoU (%) on {} with {}", ds, bb);
    t.header = {"Class"};
    std::vector<const Cell*> cols;
    for (const auto& c : r.cells)
      if (c.dataset == ds && c.backbone == bb && c.selected()) {
        cols.push_back(&c);
        t.header.push_back(c.variant);
      }
    if (cols.empty()) continue;
    const int64_t C = cols.front()->selected()->confusion.num_classes();
    for (int64_t k = 0; k < C; ++k) {
      std::string name =
          di && k < static_cast<int64_t>(di->class_names.size()) ? di->class_names[k] : std::to_string(k);
      std::vector<std::string> row = {name};
      for (const Cell* c : cols) row.push_back(percent(c->selected()->metrics.iou[k]));
      t.rows.push_back(row);
    }
    std::vector<std::string> mean = {"mean"};
    for (const Cell* c : cols) mean.push_back(percent(c->selected()->metrics.miou));
    t.rows.push_back(mean);
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<Table> threshold_tables(const Results& r) {
  std::vector<Table> out;
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto& c : r.cells) push_unique(pairs, {c.dataset, c.backbone});
  for (const auto& [ds, bb] : pairs) {
    Table t;
    t.id = sanitize("thresholds_" + ds + "_" + bb);
    t.title = fmt::format("mIoU (%) per background threshold on {} with {} (selected value marked *)", ds, bb);
    t.header = {"Variant"};
    std::vector<double> ths;
    for (const auto& c : r.cells)
      if (c.dataset == ds && c.backbone == bb)
        for (const auto& th : c.thresholds) push_unique(ths, th.threshold);
    for (double th : ths) t.header.push_back(fmt::format("{:g}", th));
    for (const auto& c : r.cells) {
      if (c.dataset != ds || c.backbone != bb) continue;
      std::vector<std::string> row = {c.variant};
      const int sel = c.selected_index();
      for (double th : ths) {
        std::string v = "–";
        for (size_t i = 0; i < c.thresholds.size(); ++i)
          if (c.thresholds[i].threshold == th)
            v = percent(c.thresholds[i].metrics.miou) + (static_cast<int>(i) == sel ? "*" : "");
        row.push_back(v);
      }
      t.rows.push_back(row);
    }
    out.push_back(std::move(t));
  }
  return out;
}

Table generation_table(const Results& r) {
  Table t;
  t.id = "generation";
  const bool synthetic = r.generation_info && r.generation_info->synthetic;
  t.title = std::string("FID ↓ and CLIP score ↑ per guidance scale G") +
            (synthetic ? " (SYNTHETIC: random-weight models, not the paper's numbers)" : "");
  t.header = {"Backbone", "Guidance"};
  t.label_columns = 2;
  std::vector<double> scales;
  std::vector<std::pair<std::string, std::string>> rows;  // (backbone, guidance) in first-seen order
  for (const auto& c : r.generation) {
    push_unique(scales, c.scale);
    push_unique(rows, {c.backbone, c.guidance});
  }
  for (const char* metric : {"FID ↓", "CLIP ↑"})
    for (double g : scales) t.header.push_back(fmt::format("{} G={:g}", metric, g));
  auto value = [](double v) { return std::isfinite(v) ? fmt::format("{:.2f}", v) : std::string("–"); };
  for (const auto& [backbone, guidance] : rows) {
    std::vector<std::string> row = {backbone, guidance};
    for (double g : scales) {
      const GenerationCell* c = r.find_generation(backbone, guidance, g);
      row.push_back(c ? value(c->fid) : "–");
    }
    for (double g : scales) {
      const GenerationCell* c = r.find_generation(backbone, guidance, g);
      row.push_back(c ? value(c->clip_score()) : "–");
    }
    t.rows.push_back(row);
  }
  return t;
}

std::vector<Table> all_tables(const Results& r) {
  std::vector<Table> out;
  if (!r.generation.empty()) out.push_back(generation_table(r));
  Table m = main_table(r);
  if (!m.rows.empty()) out.push_back(m);
  for (auto& t : ablation_tables(r)) out.push_back(std::move(t));
  for (auto& t : per_class_tables(r)) out.push_back(std::move(t));
  for (auto& t : threshold_tables(r)) out.push_back(std::move(t));
  return out;
}

std::string to_markdown(const Table& t) {
  std::string s = "| ";
  for (size_t i = 0; i < t.header.size(); ++i) s += t.header[i] + (i + 1 < t.header.size() ? " | " : " |\n");
  s += "|";
  for (size_t i = 0; i < t.header.size(); ++i) s += i < t.label_columns ? "---|" : "---:|";
  s += "\n";
  for (const auto& row : t.rows) {
    s += "| ";
    for (size_t i = 0; i < row.size(); ++i) s += row[i] + (i + 1 < row.size() ? " | " : " |\n");
  }
  return s;
}

std::string to_csv(const Table& t) {
  auto quote = [](const std::string& x) {
    std::string v = x == "–" ? "" : x;
    if (v.find_first_of(",\"\n") == std::string::npos) return v;
    std::string o = "\"";
    for (char ch : v) o += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return o + "\"";
  };
  std::string s;
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) s += quote(cells[i]) + (i + 1 < cells.size() ? "," : "\n");
  };
  line(t.header);
  for (const auto& row : t.rows) line(row);
  return s;
}

std::string to_latex(const Table& t) {
  std::string spec;
  for (size_t i = 0; i < t.header.size(); ++i) spec += i < t.label_columns ? "l" : "r";
  std::string s = "% " + t.title + "\n\\begin{tabular}{" + spec + "}\n\\toprule\n";
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) s += latex_escape(cells[i]) + (i + 1 < cells.size() ? " & " : " \\\\\n");
  };
  line(t.header);
  s += "\\midrule\n";
  for (const auto& row : t.rows) line(row);
  s += "\\bottomrule\n\\end{tabular}\n";
  return s;
}

void write_tables(const Results& r, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);  // a failure is reported by the first write below
  auto write = [](const fs::path& p, const std::string& text) { write_file_atomic(p.string(), text); };
  std::string index = "# Tables of run `" + r.name + "`\n\n";
  for (const auto& t : all_tables(r)) {
    write(fs::path(dir) / (t.id + ".md"), "### " + t.title + "\n\n" + to_markdown(t));
    write(fs::path(dir) / (t.id + ".csv"), to_csv(t));
    write(fs::path(dir) / (t.id + ".tex"), to_latex(t));
    index += "### " + t.title + "\n\n" + to_markdown(t) + "\n";
  }
  write(fs::path(dir) / "README.md", index);
}

}  // namespace gb::reports
