// The runner's pieces alone (no backbone, no dataset on disk): shards, the --stop-after exit, the journal record
// codec, cells and the example threshold, the evaluation config of a dataset, diagnostics and the overlays.
#include "harness/runner/evaluate_item.h"
#include "harness/runner/journal.h"
#include "harness/runner/open_datasets.h"
#include "harness/runner/record_codec.h"
#include "harness/runner/run_support.h"
#include "harness/runner/variant_run.h"
#include "reports/overlay.h"
#include "reports/png_memory.h"
#include "../test_support.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

using namespace gb::runner;
using nlohmann::json;

namespace {

std::vector<gb::reports::Cell*> pointers(std::vector<gb::reports::Cell>& cells) {
  std::vector<gb::reports::Cell*> out;
  for (auto& c : cells) out.push_back(&c);
  return out;
}

gb::eval::EvalConfig small_eval(std::vector<double> thresholds, const std::string& select = "best") {
  gb::datasets::DatasetConfig dc;
  dc.background_thresholds = std::move(thresholds);
  return eval_config(dc, 3, select);
}

std::vector<Variant> two_variants() {
  Variant a;
  a.name = "GoCA";
  a.method = "GoCA";
  a.type = "Training-free";
  Variant b = a;
  b.name = "GoCA/head_method=average";
  b.type = "ablation";
  b.group = "head";
  b.axes = {{"head_method", "average"}};
  return {a, b};
}

}  // namespace

TEST(RunSupport, ShardIndicesAreDisjointAndCovering) {
  EXPECT_EQ(shard_indices(10, 1, 3), (std::vector<int64_t>{1, 4, 7}));
  EXPECT_EQ(shard_indices(3, 0, 1), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_TRUE(shard_indices(2, 3, 4).empty());
  size_t total = 0;
  for (int64_t s = 0; s < 4; ++s) total += shard_indices(11, s, 4).size();
  EXPECT_EQ(total, 11u);
}

TEST(RunSupport, StopAfterExitsOnceTheLimitIsJournalled) {
  StopAfter never(-1);
  never.journalled(1000);  // returns
  StopAfter three(3);
  three.journalled(2);  // not yet
  EXPECT_EXIT(three.journalled(1), testing::ExitedWithCode(75), "--stop-after 3: stopping abruptly after 3");
}

TEST(RecordCodec, DeltaRecordAccumulatesIntoCells) {
  const auto eval = small_eval({-0.1, 0.1});
  auto cells = new_cells("voc", "sd15", two_variants(), eval);
  auto ptrs = pointers(cells);
  VariantDelta d;
  d.sparse = {{{0, 0, 5}, {3, 1, 2}}, {{1, 1, 7}}};
  d.layer_weights = {{"up.0", 0.25}};
  d.head_weights = {{"up.0", {0.5, 1.5}}};
  VariantDelta none;
  none.sparse.resize(2);
  json rec = {{"i", 4}, {"id", "img4"}, {"v", {delta_to_json(d), delta_to_json(none)}}};
  rec["ex"] = json::array({{{"variant", "GoCA"}, {"png", "AAAA"}}});
  // What the codec writes is what the journal accepts on replay.
  json copy = rec;
  EXPECT_NO_THROW(Journal::validate(copy, journal_schema(10, 0, 2, ptrs), "j.jsonl", 2));
  accumulate(rec, ptrs);
  accumulate(rec, ptrs);
  EXPECT_EQ(cells[0].images, 2);
  EXPECT_EQ(cells[0].thresholds[0].confusion.at(0, 0), 10);
  EXPECT_EQ(cells[0].thresholds[0].confusion.at(3, 1), 4);  // row C: labels outside the classes
  EXPECT_EQ(cells[0].thresholds[1].confusion.at(1, 1), 14);
  EXPECT_DOUBLE_EQ(cells[0].layer_weight_sum.at("up.0"), 0.5);
  EXPECT_EQ(cells[0].head_weight_sum.at("up.0"), (std::vector<double>{1.0, 3.0}));
  EXPECT_EQ(cells[1].thresholds[0].confusion.total(), 0);
  std::vector<gb::reports::Example> examples;
  collect_examples(rec, "voc", "sd15", examples);
  ASSERT_EQ(examples.size(), 1u);
  EXPECT_EQ(examples[0].id, "img4");
  EXPECT_EQ(examples[0].index, 4);
  EXPECT_EQ(examples[0].variant, "GoCA");
  EXPECT_EQ(skip_record(7), (json{{"i", 7}, {"skip", true}}));
  // A record of another experiment shape is refused.
  ptrs.pop_back();
  EXPECT_EQ(gb::test::user_error_message([&] { accumulate(rec, ptrs); }),
            "journal record of image img4 has 2 variants, expected 1");
}

TEST(RecordCodec, SchemaAndHeaderDescribeTheCells) {
  const auto eval = small_eval({-0.2, 0.0, 0.2});
  auto cells = new_cells("voc", "sd15", two_variants(), eval);
  const JournalSchema s = journal_schema(9, 1, 2, pointers(cells));
  EXPECT_EQ(s.num_images, 9);
  EXPECT_EQ(s.variants, (std::vector<std::string>{"GoCA", "GoCA/head_method=average"}));
  EXPECT_EQ(s.thresholds, (std::vector<size_t>{3, 3}));
  EXPECT_EQ(s.num_classes, (std::vector<int64_t>{3, 3}));
  EXPECT_TRUE(s.wanted(3));
  EXPECT_FALSE(s.wanted(4));
  EXPECT_EQ(journal_header("abc", "voc", "sd15", 1, 2).dump(),
            R"({"backbone":"sd15","config_hash":"abc","dataset":"voc","journal":1,"shard":[1,2]})");
}

TEST(RecordCodec, SparseCountsListTheNonzeroCells) {
  gb::eval::ConfusionMatrix m(2);
  m.add(at::tensor({0, 1, 1, 0}, at::kLong), at::tensor({0, 1, 0, 0}, at::kLong), gb::eval::Protocol::paper);
  const auto sp = sparse_counts(m);
  ASSERT_EQ(sp.size(), 3u);
  EXPECT_EQ(sp[0], (std::array<int64_t, 3>{0, 0, 2}));
  EXPECT_EQ(sp[1], (std::array<int64_t, 3>{0, 1, 1}));
  EXPECT_EQ(sp[2], (std::array<int64_t, 3>{1, 1, 1}));
}

TEST(VariantRun, CellsCarryTheVariantAndTheDatasetRule) {
  const auto eval = small_eval({-0.1, 0.1}, "fixed:0.1");
  const auto cells = new_cells("voc", "sd15", two_variants(), eval);
  ASSERT_EQ(cells.size(), 2u);
  EXPECT_EQ(cells[1].key(), "voc|sd15|GoCA/head_method=average");
  EXPECT_EQ(cells[1].group, "head");
  EXPECT_EQ(cells[1].axes.at("head_method"), "average");
  EXPECT_EQ(cells[0].select_rule, "fixed");
  EXPECT_DOUBLE_EQ(cells[0].fixed_threshold, 0.1);
  EXPECT_EQ(cells[0].background, "offset");
  ASSERT_EQ(cells[0].thresholds.size(), 2u);
  EXPECT_EQ(cells[0].thresholds[1].confusion.num_classes(), 3);
  EXPECT_EQ(cells[0].images, 0);
}

TEST(VariantRun, ExampleThresholdIsTheFixedOneOrTheOneNearestZero) {
  EXPECT_DOUBLE_EQ(example_threshold(small_eval({-0.4, -0.1, 0.2})), -0.1);
  EXPECT_DOUBLE_EQ(example_threshold(small_eval({-0.1, 0.1})), -0.1);  // the first of a tie
  EXPECT_DOUBLE_EQ(example_threshold(small_eval({-0.4, 0.4}, "fixed:0.3")), 0.3);
}

TEST(OpenDatasets, EvalConfigFollowsTheDatasetConfig) {
  gb::datasets::DatasetConfig dc;
  dc.protocol = gb::datasets::Protocol::standard;
  dc.ignore_index = -1;
  gb::eval::EvalConfig ev = eval_config(dc, 21, "best");
  EXPECT_EQ(ev.protocol, gb::eval::Protocol::standard);
  EXPECT_EQ(ev.num_classes, 21);
  EXPECT_EQ(ev.ignore_index, 255);
  EXPECT_EQ(ev.thresholds.size(), 9u);  // the default sweep
  dc.protocol = gb::datasets::Protocol::paper;
  dc.ignore_index = 0;
  dc.background_thresholds = {0.5};
  ev = eval_config(dc, 21, "fixed:0.5");
  EXPECT_EQ(ev.protocol, gb::eval::Protocol::paper);
  EXPECT_EQ(ev.ignore_index, 0);
  EXPECT_EQ(ev.thresholds, std::vector<double>{0.5});
  EXPECT_EQ(ev.rule.kind, gb::eval::ThresholdRule::Kind::fixed);
}

TEST(OpenDatasets, CanonicalDatasetNamesTheSplitFileOnly) {
  gb::datasets::DatasetConfig a, b;
  a.root = "/data/one";
  a.split = "/data/one/ImageSets/val.txt";
  b.root = "/elsewhere";
  b.split = "lists/val.txt";
  EXPECT_EQ(canonical_dataset(a), canonical_dataset(b));
  EXPECT_EQ(canonical_dataset(a).at("split"), "val.txt");
  b.limit = 5;
  EXPECT_NE(canonical_dataset(a), canonical_dataset(b));
}

TEST(EvaluateItem, DiagnosticsAverageLayerAndHeadWeights) {
  gb::goca::SegmentOutput out;
  out.layer_weights = at::stack({at::full({2, 2}, 0.25, at::kFloat), at::full({2, 2}, 0.75, at::kFloat)});
  out.head_weights["up.0"] = at::tensor({1.0, NAN, 3.0, 4.0}, at::kFloat).reshape({2, 2});
  const VariantDelta d = diagnostics(out, {"down.0", "up.0", "unused"});
  EXPECT_DOUBLE_EQ(d.layer_weights.at("down.0"), 0.25);
  EXPECT_DOUBLE_EQ(d.layer_weights.at("up.0"), 0.75);
  EXPECT_EQ(d.layer_weights.size(), 2u);
  EXPECT_EQ(d.head_weights.at("up.0"), (std::vector<double>{2.0, 2.0}));  // NaN counted as 0
}

TEST(Overlay, ThreePanelsAtTheLabelsAspect) {
  const at::Tensor image = at::full({20, 10, 3}, 200, at::kByte);
  const at::Tensor label = at::zeros({40, 20}, at::kLong);
  const at::Tensor pred = at::ones({40, 20}, at::kLong);
  const auto png = gb::reports::base64_decode(gb::reports::overlay_png_base64(image, label, pred));
  ASSERT_GT(png.size(), 24u);
  EXPECT_EQ(png[1], 'P');
  auto be32 = [&](size_t o) { return (png[o] << 24) | (png[o + 1] << 16) | (png[o + 2] << 8) | png[o + 3]; };
  EXPECT_EQ(be32(16), 3 * 20 + 2 * 4);  // width: three panels, two 4-pixel gaps
  EXPECT_EQ(be32(20), 40);              // height: the label's, at most 128
}
