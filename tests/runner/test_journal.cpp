#include "harness/core/errors.h"
#include "harness/runner/journal.h"


#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using gb::runner::Journal;
namespace fs = std::filesystem;

TEST(Journal, ReplaysCompleteRecordsAndDropsATornLine) {
  const fs::path p = fs::temp_directory_path() / "gb_test_journal" / "j.jsonl";
  fs::remove_all(p.parent_path());
  const nlohmann::json header = {{"journal", 1}, {"config_hash", "abc"}};
  {
    Journal j(p.string(), header, true);
    j.append({{{"i", 0}}, {{"i", 1}}});
  }
  {  // a kill in the middle of a write leaves a partial line
    std::ofstream out(p, std::ios::app);
    out << "{\"i\": 2, \"v\": [";
  }
  {
    Journal j(p.string(), header, false);
    ASSERT_EQ(j.replayed().size(), 2u);
    EXPECT_EQ(j.replayed()[1]["i"], 1);
    j.append({{{"i", 2}}});
  }
  Journal j(p.string(), header, false);
  ASSERT_EQ(j.replayed().size(), 3u);
  EXPECT_EQ(j.replayed()[2]["i"], 2);
  // Another run's journal is refused, a fresh start truncates.
  EXPECT_THROW(Journal(p.string(), {{"journal", 1}, {"config_hash", "other"}}, false), gb::UserError);
  Journal fresh(p.string(), header, true);
  EXPECT_TRUE(fresh.replayed().empty());
  fs::remove_all(p.parent_path());
}
