// Generation cells in results.json, the paper's generation table layout (Markdown, CSV, LaTeX), merge and compare.
#include "harness/core/errors.h"
#include "reports/compare.h"
#include "reports/html.h"
#include "reports/merge.h"
#include "reports/results.h"
#include "reports/tables.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace gb::reports;

namespace {

Results generation_results(int64_t shard_index = 0, int64_t shard_count = 1) {
  Results r;
  r.name = "gen";
  r.device = "cpu";
  r.config_hash = "h";
  r.protocol = "generation";
  r.shard_index = shard_index;
  r.shard_count = shard_count;
  r.generation_info = GenerationInfo{"prompts.txt", 4, "lh", "ref.npz", "rh", true};
  double fid = 10;
  for (const std::string b : {"sd15", "pixart-sigma"})
    for (const std::string g : {"CFG", "S-CFG (GoCA)"})
      for (double s : {2.0, 7.5}) {
        GenerationCell c;
        c.backbone = b;
        c.guidance = g;
        c.guidance_type = g == "CFG" ? "cfg" : "scfg";
        c.scale = s;
        c.images = 2;
        c.clip_sum = 2 * (20 + s);  // CLIP score 20 + s
        c.fid = fid++;
        c.sums_file = "fid-sums/x.safetensors";
        c.samples.push_back({"00000" + std::to_string(shard_index), shard_index, "AAAA"});
        r.generation.push_back(c);
      }
  return r;
}

TEST(GenerationTable, PapersLayoutInEveryFormat) {
  const Results r = generation_results();
  const Table t = generation_table(r);
  EXPECT_EQ(t.id, "generation");
  EXPECT_NE(t.title.find("SYNTHETIC"), std::string::npos) << t.title;
  const std::vector<std::string> header = {"Backbone",    "Guidance",   "FID ↓ G=2",
                                           "FID ↓ G=7.5", "CLIP ↑ G=2", "CLIP ↑ G=7.5"};
  EXPECT_EQ(t.header, header);
  ASSERT_EQ(t.rows.size(), 4u);  // backbone x guidance, in config order
  EXPECT_EQ(t.rows[0], (std::vector<std::string>{"sd15", "CFG", "10.00", "11.00", "22.00", "27.50"}));
  EXPECT_EQ(t.rows[1], (std::vector<std::string>{"sd15", "S-CFG (GoCA)", "12.00", "13.00", "22.00", "27.50"}));
  EXPECT_EQ(t.rows[3][0], "pixart-sigma");
  EXPECT_EQ(t.rows[3][1], "S-CFG (GoCA)");
  const std::string md = to_markdown(t);
  EXPECT_NE(md.find("| Backbone | Guidance | FID ↓ G=2 | FID ↓ G=7.5 | CLIP ↑ G=2 | CLIP ↑ G=7.5 "
                    "|\n|---|---|---:|---:|---:|---:|"),
            std::string::npos)
      << md;
  EXPECT_EQ(to_csv(t).substr(0, to_csv(t).find('\n')),
            "Backbone,Guidance,FID ↓ G=2,FID ↓ G=7.5,CLIP ↑ G=2,CLIP ↑ G=7.5");
  const std::string tex = to_latex(t);
  EXPECT_NE(tex.find("\\begin{tabular}{llrrrr}"), std::string::npos) << tex;
  EXPECT_NE(tex.find("FID $\\downarrow$ G=2 & FID $\\downarrow$ G=7.5 & CLIP $\\uparrow$ G=2"), std::string::npos)
      << tex;
  EXPECT_NE(tex.find("sd15 & S-CFG (GoCA) & 12.00 & 13.00 & 22.00 & 27.50 \\\\"), std::string::npos) << tex;
  // A missing FID (fewer than 2 images) and a missing setting print "–".
  Results m = r;
  m.generation[0].fid = NAN;
  m.generation.pop_back();
  const Table tm = generation_table(m);
  EXPECT_EQ(tm.rows[0][2], "–");
  EXPECT_EQ(tm.rows[3][3], "–");
  EXPECT_EQ(tm.rows[3][5], "–");
  // The table comes first among all tables, and report.html shows it and the samples.
  EXPECT_EQ(all_tables(r).front().id, "generation");
  const std::string html = report_html(r);
  EXPECT_NE(html.find("FID ↓ G=2"), std::string::npos);
  EXPECT_NE(html.find("data:image/png;base64,AAAA"), std::string::npos);
  EXPECT_EQ(html.find("mIoU vs background threshold"), std::string::npos);
}

TEST(GenerationResults, JsonRoundTrip) {
  const Results r = generation_results();
  const Results back = results_from_json(to_json(r), "mem");
  ASSERT_TRUE(back.generation_info);
  EXPECT_EQ(back.generation_info->list_hash, "lh");
  EXPECT_TRUE(back.generation_info->synthetic);
  ASSERT_EQ(back.generation.size(), r.generation.size());
  for (size_t k = 0; k < r.generation.size(); ++k) {
    EXPECT_EQ(back.generation[k].key(), r.generation[k].key());
    EXPECT_EQ(back.generation[k].fid, r.generation[k].fid);
    EXPECT_EQ(back.generation[k].clip_sum, r.generation[k].clip_sum);
    EXPECT_EQ(back.generation[k].samples.size(), 1u);
  }
  EXPECT_EQ(to_json(back), to_json(r));
}

TEST(GenerationResults, MergeAddsCountsAndClipSumsAndLeavesFidToTheSums) {
  const Results a = generation_results(0, 2), b = generation_results(1, 2);
  const Results m = merge_results({b, a}, {"b/results.json", "a/results.json"});
  EXPECT_EQ(m.shard_count, 1);
  for (const auto& c : m.generation) {
    EXPECT_EQ(c.images, 4);
    EXPECT_DOUBLE_EQ(c.clip_score(), 20 + c.scale);
    EXPECT_TRUE(std::isnan(c.fid));  // gb::runner::merge_generation_sums fills it
    ASSERT_EQ(c.samples.size(), 2u);
    EXPECT_EQ(c.samples[0].index, 0);  // sorted by prompt index
  }
  Results other = generation_results(1, 2);
  other.generation_info->list_hash = "different";
  EXPECT_THROW(merge_results({a, other}, {"a", "other"}), gb::UserError);
}

TEST(GenerationResults, CompareFlagsChangedFidOrClip) {
  const Results a = generation_results();
  EXPECT_EQ(compare_results(a, a, {}).verdict, Verdict::Same);
  Results b = a;
  b.generation[2].fid += 1e-9;
  EXPECT_EQ(compare_results(b, a, {}).verdict, Verdict::AccuracyChanged);
  CompareOptions tol;
  tol.gen_tol = 1e-6;
  EXPECT_EQ(compare_results(b, a, tol).verdict, Verdict::WithinTolerance);
  Results c = a;
  c.generation[1].clip_sum += 1;
  const auto rep = compare_results(c, a, tol);
  EXPECT_EQ(rep.verdict, Verdict::AccuracyChanged);
  EXPECT_NE(rep.to_text().find("CHANGED"), std::string::npos) << rep.to_text();
  Results d = a;
  d.generation_info->list_hash = "other prompts";
  EXPECT_EQ(compare_results(d, a, {}).verdict, Verdict::NotComparable);
}

}  // namespace
