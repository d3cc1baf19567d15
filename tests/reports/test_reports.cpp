#include "harness/core/errors.h"
#include "reports/compare.h"
#include "reports/html.h"
#include "reports/merge.h"
#include "reports/png_memory.h"
#include "reports/profile.h"
#include "reports/results.h"
#include "reports/tables.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace gb::reports;
namespace fs = std::filesystem;

namespace {

ConfusionMatrix cm3(const std::vector<int64_t>& v) {
  ConfusionMatrix c(3);
  for (size_t i = 0; i < v.size(); ++i) c.at(static_cast<int64_t>(i) / 3, static_cast<int64_t>(i) % 3) = v[i];
  return c;
}

// A small, hand-checkable run: one dataset (3 classes), two variants, two thresholds.
Results sample_results() {
  Results r;
  r.name = "unit";
  r.device = "cpu";
  r.config_hash = "abc";
  r.protocol = "paper";
  r.datasets.push_back({"toy", "synthetic", "paper", 3, {"background", "cat", "dog"}, 10, "h1"});
  for (int v = 0; v < 2; ++v) {
    Cell c;
    c.dataset = "toy";
    c.backbone = "synthetic";
    c.variant = v == 0 ? "Vanilla" : "GoCA";
    c.method = c.variant;
    c.type = "training-free";
    c.select_rule = "best";
    c.images = 10;
    for (int t = 0; t < 2; ++t) {
      ThresholdResult th;
      th.threshold = t == 0 ? -0.1 : 0.1;
      //            pred: 0  1  2     (rows gt 0,1,2 and the out-of-range row)
      th.confusion = cm3({5 + t + v, 1, 0,  //
                          2, 6 + v, 0,      //
                          0, 1, 3,          //
                          1, 0, 0});
      c.thresholds.push_back(th);
    }
    c.layer_weight_sum = {{"layer-a", 4.0 + v}, {"layer-b", 6.0 - v}};
    c.head_weight_sum = {{"layer-a", {2.5, 7.5}}};
    r.cells.push_back(c);
  }
  r.timings["toy|synthetic"] = {{{"decode", 0.5}, {"denoiser", 2.0}}, 3.0, 10};
  r.peak_host_bytes = 1 << 20;
  r.peak_device_bytes = 3 << 20;
  r.planned_peak_device_bytes = 4 << 20;
  r.recompute_metrics();
  return r;
}

}  // namespace

TEST(Results, JsonRoundTripKeepsEverything) {
  const Results r = sample_results();
  const Results back = results_from_json(nlohmann::json::parse(to_json(r).dump()), "mem");
  ASSERT_EQ(back.cells.size(), 2u);
  EXPECT_EQ(back.cells[1].thresholds[1].confusion, r.cells[1].thresholds[1].confusion);
  EXPECT_EQ(back.cells[1].selected_index(), r.cells[1].selected_index());
  EXPECT_EQ(back.cells[0].head_weight_sum, r.cells[0].head_weight_sum);
  EXPECT_EQ(back.timings.at("toy|synthetic").seconds, r.timings.at("toy|synthetic").seconds);
  EXPECT_EQ(to_json(back).dump(), to_json(r).dump());
  EXPECT_EQ(back.planned_peak_device_bytes, 4 << 20);
  const std::string md = profile_markdown(r);
  EXPECT_NE(md.find("peak device memory: 3.0 MiB (planned by `goca-bench memory`: 4.0 MiB)"), std::string::npos) << md;
  EXPECT_EQ(profile_json(r)["planned_peak_device_bytes"], 4 << 20);
}

TEST(Results, MalformedFilesAreUserErrors) {
  EXPECT_THROW(results_from_json(nlohmann::json::parse("{\"x\": 1}"), "f.json"), gb::UserError);
  auto j = to_json(sample_results());
  j["cells"][0]["thresholds"][0]["confusion"].erase(0);
  EXPECT_THROW(results_from_json(j, "f.json"), gb::UserError);
  j = to_json(sample_results());
  j["schema_version"] = 99;
  EXPECT_THROW(results_from_json(j, "f.json"), gb::UserError);
}

TEST(Results, SelectionRules) {
  Results r = sample_results();
  Cell& c = r.cells[0];
  // threshold 0.1 has one more correct background pixel, so it is the best
  EXPECT_EQ(c.selected_index(), 1);
  c.select_rule = "fixed";
  c.fixed_threshold = -0.1;
  EXPECT_EQ(c.selected_index(), 0);
}

TEST(Tables, MainTableLayoutAndFormats) {
  const Results r = sample_results();
  const Table t = main_table(r);
  ASSERT_EQ(t.header, (std::vector<std::string>{"Type", "Method", "Backbone", "toy"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0][1], "Vanilla");
  EXPECT_EQ(t.rows[0][3], percent(r.cells[0].selected()->metrics.miou));
  EXPECT_NE(to_markdown(t).find("| training-free | GoCA | synthetic |"), std::string::npos);
  EXPECT_NE(to_csv(t).find("Type,Method,Backbone,toy\n"), std::string::npos);
  EXPECT_NE(to_latex(t).find("\\begin{tabular}{lllr}"), std::string::npos);
  const auto pc = per_class_tables(r);
  ASSERT_EQ(pc.size(), 1u);
  EXPECT_EQ(pc[0].rows.size(), 4u);  // 3 classes + mean
  EXPECT_EQ(pc[0].rows[1][0], "cat");
}

TEST(Tables, AblationTableUsesAxes) {
  Results r = sample_results();
  r.cells[1].group = "head";
  r.cells[1].axes = {{"head_method", "average"}};
  const auto ab = ablation_tables(r);
  ASSERT_EQ(ab.size(), 1u);
  EXPECT_EQ(ab[0].header[0], "head_method");
  EXPECT_EQ(ab[0].rows[0][0], "average");
  EXPECT_EQ(main_table(r).rows.size(), 1u);
}

TEST(Compare, Verdicts) {
  const Results a = sample_results();
  Results b = a;
  EXPECT_EQ(compare_results(a, b, {}).verdict, Verdict::Same);
  EXPECT_EQ(compare_results(a, b, {}).exit_code(), 0);

  b.cells[1].thresholds[1].confusion.at(1, 1) += 1;  // one pixel moved
  b.recompute_metrics();
  auto rep = compare_results(a, b, {});
  EXPECT_EQ(rep.verdict, Verdict::AccuracyChanged);
  EXPECT_EQ(rep.exit_code(), 1);
  EXPECT_NE(rep.to_text().find("CHANGED"), std::string::npos);
  CompareOptions loose;
  loose.miou_tol = 5.0;
  EXPECT_EQ(compare_results(a, b, loose).verdict, Verdict::WithinTolerance);

  Results c = a;
  c.config_hash = "other";
  EXPECT_EQ(compare_results(a, c, {}).verdict, Verdict::NotComparable);
  EXPECT_EQ(compare_results(a, c, {}).exit_code(), 3);
  Results d = a;
  d.datasets[0].list_hash = "h2";
  EXPECT_EQ(compare_results(a, d, {}).verdict, Verdict::NotComparable);
  Results p = a;
  p.protocol = "standard";
  EXPECT_EQ(compare_results(a, p, {}).verdict, Verdict::NotComparable);

  Results slow = a;
  slow.timings["toy|synthetic"].wall_seconds = 9.0;
  CompareOptions speed;
  speed.time_ratio = 1.5;
  EXPECT_EQ(compare_results(slow, a, speed).verdict, Verdict::SpeedRegressed);
  EXPECT_EQ(compare_results(a, slow, speed).verdict, Verdict::Same);  // faster is fine
  EXPECT_EQ(compare_results(slow, a, {}).verdict, Verdict::Same);     // speed not checked by default
  slow.device = "cuda:0 H100";
  EXPECT_EQ(compare_results(slow, a, speed).verdict, Verdict::Same);  // different devices: not judged
}

TEST(Merge, SumsShardsExactly) {
  Results whole = sample_results();
  Results s0 = whole, s1 = whole;
  s0.shard_count = s1.shard_count = 2;
  s1.shard_index = 1;
  for (size_t k = 0; k < whole.cells.size(); ++k)
    for (size_t t = 0; t < whole.cells[k].thresholds.size(); ++t) {
      auto& a = s0.cells[k].thresholds[t].confusion;
      auto& b = s1.cells[k].thresholds[t].confusion;
      const auto& w = whole.cells[k].thresholds[t].confusion;
      for (int64_t r = 0; r <= w.num_classes(); ++r)
        for (int64_t c = 0; c < w.num_classes(); ++c) {
          a.at(r, c) = w.at(r, c) / 2;
          b.at(r, c) = w.at(r, c) - a.at(r, c);
        }
      s0.cells[k].images = 4;
      s1.cells[k].images = 6;
    }
  const Results m = merge_results({s1, s0}, {"s1", "s0"});
  EXPECT_EQ(m.shard_count, 1);
  for (size_t k = 0; k < whole.cells.size(); ++k) {
    EXPECT_EQ(m.cells[k].images, 10);
    for (size_t t = 0; t < whole.cells[k].thresholds.size(); ++t)
      EXPECT_EQ(m.cells[k].thresholds[t].confusion, whole.cells[k].thresholds[t].confusion);
    EXPECT_EQ(m.cells[k].selected_index(), whole.cells[k].selected_index());
  }
  EXPECT_THROW(merge_results({s0}, {"s0"}), gb::UserError);          // shard 1 missing
  EXPECT_THROW(merge_results({s0, s0}, {"a", "b"}), gb::UserError);  // given twice
  Results other = s1;
  other.config_hash = "zzz";
  EXPECT_THROW(merge_results({s0, other}, {"a", "b"}), gb::UserError);  // different runs
}

TEST(Png, EncodesValidPngAndBase64RoundTrips) {
  std::vector<uint8_t> rgb(4 * 3 * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 7);
  const auto png = encode_png_rgb(rgb, 4, 3);
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png[1], 'P');
  EXPECT_EQ(png[2], 'N');
  EXPECT_EQ(base64_decode(base64_encode(png)), png);
  EXPECT_EQ(base64_encode({'M', 'a'}), "TWE=");
  EXPECT_THROW(base64_decode("abc"), gb::UserError);
}

TEST(Report, GeneratedFromAStoredResultsFile) {
  const fs::path dir = fs::temp_directory_path() / "gb_test_report_run";
  fs::remove_all(dir);
  Results r = sample_results();
  std::vector<uint8_t> rgb(2 * 2 * 3, 200);
  r.examples.push_back({"toy", "synthetic", "GoCA", "img0", 0, base64_encode(encode_png_rgb(rgb, 2, 2))});
  save_results(r, (dir / "results.json").string());
  const Results loaded = load_results((dir / "results.json").string());
  write_report(loaded, dir.string());
  for (const char* f : {"report.html", "profile.json", "profile.md", "tables/table1.md", "tables/table1.csv",
                        "tables/table1.tex", "tables/per_class_toy_synthetic.md"})
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  std::ifstream in(dir / "report.html");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string html = ss.str();
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("mIoU vs background threshold"), std::string::npos);
  EXPECT_NE(html.find("data:image/png;base64,"), std::string::npos);
  EXPECT_NE(html.find("layer-a"), std::string::npos);
  EXPECT_EQ(html.find("src='http"), std::string::npos);  // self-contained
  const auto prof = profile_json(loaded);
  EXPECT_NEAR(prof["per_dataset_backbone"]["toy|synthetic"]["images_per_second"].get<double>(), 10 / 3.0, 1e-7);
  fs::remove_all(dir);
}
