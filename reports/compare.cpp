#include "reports/compare.h"

#include "reports/tables.h"

#include <fmt/format.h>

#include <cmath>
#include <set>

namespace gb::reports {

std::string to_string(Verdict v) {
  switch (v) {
    case Verdict::Same: return "same";
    case Verdict::WithinTolerance: return "within tolerance";
    case Verdict::AccuracyChanged: return "accuracy changed";
    case Verdict::SpeedRegressed: return "speed regressed";
    case Verdict::NotComparable: return "not comparable";
  }
  return "?";
}

int CompareReport::exit_code() const {
  switch (verdict) {
    case Verdict::Same:
    case Verdict::WithinTolerance: return 0;
    case Verdict::AccuracyChanged:
    case Verdict::SpeedRegressed: return 1;
    case Verdict::NotComparable: return 3;
  }
  return 1;
}

std::string CompareReport::to_text() const {
  std::string s;
  if (!accuracy.empty()) {
    Table t;
    t.header = {"dataset|backbone|variant", "new mIoU", "old mIoU", "Δ", "status"};
    for (const auto& r : accuracy)
      t.rows.push_back({r.key, fmt::format("{:.2f}", r.new_value), fmt::format("{:.2f}", r.old_value),
                        fmt::format("{:+.2f}", r.new_value - r.old_value), r.status});
    s += to_markdown(t) + "\n";
  }
  if (!generation_fid.empty()) {
    Table t;
    t.header = {"backbone|guidance|scale", "new FID", "old FID", "new CLIP", "old CLIP", "status"};
    for (size_t i = 0; i < generation_fid.size(); ++i) {
      const auto& f = generation_fid[i];
      const auto& c = generation_clip[i];
      t.rows.push_back({f.key, fmt::format("{:.4f}", f.new_value), fmt::format("{:.4f}", f.old_value),
                        fmt::format("{:.4f}", c.new_value), fmt::format("{:.4f}", c.old_value), f.status});
    }
    s += to_markdown(t) + "\n";
  }
  if (!speed.empty()) {
    Table t;
    t.header = {"dataset|backbone", "new s/img", "old s/img", "ratio", "status"};
    for (const auto& r : speed)
      t.rows.push_back({r.key, fmt::format("{:.4f}", r.new_value), fmt::format("{:.4f}", r.old_value),
                        r.old_value > 0 ? fmt::format("{:.2f}", r.new_value / r.old_value) : "–", r.status});
    s += to_markdown(t) + "\n";
  }
  s += "verdict: " + to_string(verdict) + "\n";
  for (const auto& r : reasons) s += "  - " + r + "\n";
  return s;
}

namespace {

// What the comparisons found besides the report's rows.
struct Findings {
  bool changed = false, tolerated = false, slower = false;
};

// Why two runs cannot be compared (config, protocol, datasets and their image lists, shards); empty if they can.
std::vector<std::string> comparability_reasons(const Results& now, const Results& old) {
  std::vector<std::string> reasons;
  if (now.config_hash != old.config_hash)
    reasons.push_back(fmt::format("config differs (hash {} vs {})", now.config_hash, old.config_hash));
  if (now.protocol != old.protocol)
    reasons.push_back(fmt::format("protocol differs ({} vs {})", now.protocol, old.protocol));
  std::set<std::string> names;
  for (const auto& d : now.datasets) names.insert(d.name);
  for (const auto& d : old.datasets) names.insert(d.name);
  for (const auto& n : names) {
    const DatasetInfo* a = now.dataset(n);
    const DatasetInfo* b = old.dataset(n);
    if (!a || !b) {
      reasons.push_back(fmt::format("dataset '{}' is only in the {} run", n, a ? "new" : "old"));
    } else if (a->list_hash != b->list_hash || a->num_images != b->num_images) {
      reasons.push_back(fmt::format("dataset '{}': image lists differ ({} images, hash {} vs {} images, hash {})", n,
                                    a->num_images, a->list_hash, b->num_images, b->list_hash));
    } else if (a->protocol != b->protocol) {
      reasons.push_back(fmt::format("dataset '{}': protocol differs ({} vs {})", n, a->protocol, b->protocol));
    }
  }
  if (now.shard_count != 1 || old.shard_count != 1)
    reasons.push_back("a shard's partial results are not a whole run (merge the shards first)");
  return reasons;
}

// The segmentation cells: identical confusion matrices, within --miou-tol, changed or missing.
void compare_cells(const Results& now, const Results& old, const CompareOptions& opt, CompareReport& rep,
                   Findings& found) {
  std::set<std::string> seen;
  auto add_missing = [&](const Cell& c, bool in_new) {
    rep.accuracy.push_back({c.key(), in_new && c.selected() ? 100 * c.selected()->metrics.miou : NAN,
                            !in_new && c.selected() ? 100 * c.selected()->metrics.miou : NAN, "missing"});
    found.changed = true;
    rep.reasons.push_back(c.key() + " is only in the " + (in_new ? "new" : "old") + " run");
  };
  for (const auto& c : now.cells) {
    seen.insert(c.key());
    const Cell* o = old.find(c.dataset, c.backbone, c.variant);
    if (!o) {
      add_missing(c, true);
      continue;
    }
    CompareRow row{c.key(), c.selected() ? 100 * c.selected()->metrics.miou : NAN,
                   o->selected() ? 100 * o->selected()->metrics.miou : NAN, "same"};
    bool identical = c.thresholds.size() == o->thresholds.size() && c.images == o->images;
    for (size_t i = 0; identical && i < c.thresholds.size(); ++i)
      identical = c.thresholds[i].threshold == o->thresholds[i].threshold &&
                  c.thresholds[i].confusion == o->thresholds[i].confusion;
    if (!identical) {
      const double delta = std::fabs(row.new_value - row.old_value);
      if (opt.miou_tol > 0 && delta <= opt.miou_tol) {
        row.status = "within tol";
        found.tolerated = true;
      } else {
        row.status = "CHANGED";
        found.changed = true;
        rep.reasons.push_back(fmt::format("{}: mIoU {:.4f} -> {:.4f} ({})", c.key(), row.old_value, row.new_value,
                                          opt.miou_tol > 0 ? fmt::format("beyond {:g} points", opt.miou_tol)
                                                           : std::string("confusion matrices differ")));
      }
    }
    rep.accuracy.push_back(row);
  }
  for (const auto& c : old.cells)
    if (!seen.count(c.key())) add_missing(c, false);
}

// The generation cells: FID and CLIP score identical, within --gen-tol, changed or missing.
void compare_generation(const Results& now, const Results& old, const CompareOptions& opt, CompareReport& rep,
                        Findings& found) {
  std::set<std::string> gen_seen;
  auto same_value = [](double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); };
  for (const auto& c : now.generation) {
    gen_seen.insert(c.key());
    const GenerationCell* o = old.find_generation(c.backbone, c.guidance, c.scale);
    CompareRow f{c.key(), c.fid, o ? o->fid : NAN, "same"};
    CompareRow k{c.key(), c.clip_score(), o ? o->clip_score() : NAN, "same"};
    if (!o) {
      f.status = k.status = "missing";
      found.changed = true;
      rep.reasons.push_back(c.key() + " is only in the new run");
    } else if (!(c.images == o->images && same_value(c.fid, o->fid) && same_value(c.clip_sum, o->clip_sum))) {
      const double dfid = std::fabs(c.fid - o->fid), dclip = std::fabs(c.clip_score() - o->clip_score());
      if (opt.gen_tol > 0 && c.images == o->images && dfid <= opt.gen_tol && dclip <= opt.gen_tol) {
        f.status = k.status = "within tol";
        found.tolerated = true;
      } else {
        f.status = k.status = "CHANGED";
        found.changed = true;
        rep.reasons.push_back(fmt::format("{}: FID {:.6g} -> {:.6g}, CLIP score {:.6g} -> {:.6g}, images {} -> {}",
                                          c.key(), o->fid, c.fid, o->clip_score(), c.clip_score(), o->images,
                                          c.images));
      }
    }
    rep.generation_fid.push_back(f);
    rep.generation_clip.push_back(k);
  }
  for (const auto& c : old.generation)
    if (!gen_seen.count(c.key())) {
      rep.generation_fid.push_back({c.key(), NAN, c.fid, "missing"});
      rep.generation_clip.push_back({c.key(), NAN, c.clip_score(), "missing"});
      found.changed = true;
      rep.reasons.push_back(c.key() + " is only in the old run");
    }
}

// Seconds per image per timing key, on the same device only (--time-ratio).
void compare_speed(const Results& now, const Results& old, const CompareOptions& opt, CompareReport& rep,
                   Findings& found) {
  if (opt.time_ratio && now.device == old.device) {
    rep.speed_checked = true;
    for (const auto& [k, t] : now.timings) {
      auto it = old.timings.find(k);
      if (it == old.timings.end() || t.images == 0 || it->second.images == 0) continue;
      const double a = t.wall_seconds / static_cast<double>(t.images);
      const double b = it->second.wall_seconds / static_cast<double>(it->second.images);
      CompareRow row{k, a, b, "ok"};
      if (b > 0 && a > *opt.time_ratio * b) {
        row.status = "SLOWER";
        found.slower = true;
        rep.reasons.push_back(
            fmt::format("{}: {:.4f} s/img vs {:.4f} s/img (ratio {:.2f} > {:g})", k, a, b, a / b, *opt.time_ratio));
      }
      rep.speed.push_back(row);
    }
  } else if (opt.time_ratio) {
    rep.reasons.push_back(fmt::format("speed not compared: devices differ ('{}' vs '{}')", now.device, old.device));
  }
}

}  // namespace

CompareReport compare_results(const Results& now, const Results& old, const CompareOptions& opt) {
  CompareReport rep;
  // Comparability first.
  rep.reasons = comparability_reasons(now, old);
  if (!rep.reasons.empty()) {
    rep.verdict = Verdict::NotComparable;
    return rep;
  }
  Findings found;
  compare_cells(now, old, opt, rep, found);
  if (now.generation_info.has_value() != old.generation_info.has_value() ||
      (now.generation_info && now.generation_info->list_hash != old.generation_info->list_hash)) {
    rep.reasons.push_back("generation prompt lists differ");
    rep.verdict = Verdict::NotComparable;
    return rep;
  }
  compare_generation(now, old, opt, rep, found);
  compare_speed(now, old, opt, rep, found);
  if (found.changed) rep.verdict = Verdict::AccuracyChanged;
  else if (found.slower) rep.verdict = Verdict::SpeedRegressed;
  else if (found.tolerated) rep.verdict = Verdict::WithinTolerance;
  else rep.verdict = Verdict::Same;
  return rep;
}

}  // namespace gb::reports
