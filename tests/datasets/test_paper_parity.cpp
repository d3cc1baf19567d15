// The readers under the paper protocol against the paper's own loaders (components/dataset.py for the label the
// evaluation sees, caption_dataset.py for existent_objects_gt), run on the same fixtures by
// tools/parity/datasets_labels.py (golden: tests/datasets/data/paper_labels.json).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "datasets/dataset.h"
#include "datasets/fixtures.h"
#include "fixture_util.h"

using namespace gb::datasets;
using namespace gbtest;

TEST(PaperParity, LabelsAndGtClassesMatchThePapersLoaders) {
  std::ifstream in(std::string(GB_SOURCE_DIR) + "/tests/datasets/data/paper_labels.json");
  ASSERT_TRUE(in.good());
  const auto golden = nlohmann::json::parse(in);
  size_t compared = 0;
  for (const char* variant : {"normal", "quirks"}) {
    for (DatasetKind k : all_dataset_kinds()) {
      if (k == DatasetKind::Context && !kFixtureWritesMat) continue;  // the paper reads .mat files
      const auto& rows = golden.at(variant).at(to_string(k));
      TempDir tmp;
      FixtureOptions o;
      o.paper_quirks = std::string(variant) == "quirks";
      Fixture fx = write_fixture(k, tmp.str(), o);
      auto ds = Dataset::open(config_for(fx, Protocol::paper));
      ASSERT_EQ(ds->size(), rows.size()) << variant << " " << to_string(k);
      for (size_t i = 0; i < ds->size(); ++i) {
        const auto& row = rows[i];
        const std::string where = std::string(variant) + " " + to_string(k) + " " + ds->id(i);
        auto s = ds->load(i);
        ASSERT_TRUE(s) << where;
        EXPECT_EQ(s->id, row["id"].get<std::string>()) << where;
        EXPECT_EQ(s->height, row["height"].get<int64_t>()) << where;
        EXPECT_EQ(s->width, row["width"].get<int64_t>()) << where;
        std::map<std::string, int64_t> hist;
        for (const auto& [v, c] : label_stats(s->label).pixels) hist[std::to_string(v)] = c;
        const auto expected_hist = row["label"].get<std::map<std::string, int64_t>>();
        EXPECT_EQ(hist, expected_hist) << where;
        EXPECT_EQ(s->gt_classes, row["gt"].get<std::vector<int64_t>>()) << where;
        ++compared;
      }
    }
  }
  EXPECT_GE(compared, 32u);
}
