// The resume journal: checksummed lines, schema validation with the journal line named, torn last records
// dropped with a warning (every truncation point), failed appends cut back off (RLIMIT_FSIZE).
#include "harness/core/errors.h"
#include "harness/io/json_io.h"
#include "harness/runner/journal.h"
#include "tests/test_support.h"

#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

using gb::runner::Journal;
using gb::runner::JournalSchema;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const json kHeader = {{"journal", 1}, {"config_hash", "abc"}};

JournalSchema schema() {
  JournalSchema s;
  s.num_images = 10;
  s.wanted = [](int64_t i) { return i % 2 == 0; };  // shard 0 of 2
  s.variants = {"Vanilla", "GoCA"};
  s.thresholds = {2, 2};
  s.num_classes = {3, 3};
  return s;
}

json record(int64_t i) {
  const json v = {{"t", json::array({json::array({json::array({0, 1, 5}), json::array({3, 2, 7})}), json::array()})},
                  {"lw", {{"up.0", 0.5}}},
                  {"hw", {{"up.0", {0.25, 0.75}}}}};
  return {{"i", i}, {"id", "img" + std::to_string(i)}, {"v", json::array({v, v})}};
}

using gb::test::read_bytes;
using gb::test::ScratchDir;
using gb::test::write_bytes;

// Writes header + records 0, 2, 4 and returns the file's text.
std::string three_records(const fs::path& p) {
  Journal j(p.string(), kHeader, true, schema());
  j.append({record(0), record(2)});
  j.append({record(4)});
  return read_bytes(p);
}

std::string error_of(const fs::path& p) {
  return gb::test::user_error_message([&] { Journal j(p.string(), kHeader, false, schema()); });
}

}  // namespace

TEST(Journal, ReplaysWhatWasAppendedAndRefusesAnotherRun) {
  const ScratchDir scratch;
  const fs::path p = scratch.path() / "j.jsonl";
  three_records(p);
  {
    Journal j(p.string(), kHeader, false, schema());
    ASSERT_EQ(j.replayed().size(), 3u);
    EXPECT_EQ(j.replayed()[1], record(2));
    j.append({{{"i", 6}, {"skip", true}}});
  }
  Journal j(p.string(), kHeader, false, schema());
  ASSERT_EQ(j.replayed().size(), 4u);
  EXPECT_EQ(j.replayed()[3]["skip"], true);
  EXPECT_THROW(Journal(p.string(), {{"journal", 1}, {"config_hash", "other"}}, false, schema()), gb::UserError);
  Journal fresh(p.string(), kHeader, true, schema());
  EXPECT_TRUE(fresh.replayed().empty());
}

TEST(Journal, EveryTruncationOfTheLastRecordIsDroppedNeverMisread) {
  const ScratchDir scratch;
  const fs::path dir = scratch.path();
  const fs::path p = dir / "j.jsonl";
  const std::string full = three_records(p);
  const size_t last_start = full.rfind('\n', full.size() - 2) + 1;
  for (size_t cut = last_start; cut < full.size(); ++cut) {  // a kill -9 at every byte of the last write
    write_bytes(p, full.substr(0, cut));
    Journal j(p.string(), kHeader, false, schema());
    ASSERT_EQ(j.replayed().size(), 2u) << "cut at byte " << cut;
    EXPECT_EQ(fs::file_size(p), last_start) << "the torn tail is truncated away before appending";
  }
  // A torn header (killed while creating the journal) starts the journal afresh.
  write_bytes(p, full.substr(0, 7));
  {
    Journal j(p.string(), kHeader, false, schema());
    EXPECT_TRUE(j.replayed().empty());
  }
  EXPECT_EQ(read_bytes(p), Journal::encode_line(kHeader));
}

TEST(Journal, ADamagedOrInvalidRecordIsAnErrorNamingItsLine) {
  const ScratchDir scratch;
  const fs::path p = scratch.path() / "j.jsonl";
  const std::string good = three_records(p);
  const std::string head = good.substr(0, good.find('\n') + 1);
  auto with_line2 = [&](const std::string& line) { write_bytes(p, head + line + Journal::encode_line(record(2))); };
  auto expect_error = [&](const json& rec, const std::string& what, const std::string& line = "line 2: ") {
    with_line2(Journal::encode_line(rec));
    const std::string e = error_of(p);
    EXPECT_NE(e.find(line), std::string::npos) << e;
    EXPECT_NE(e.find(what), std::string::npos) << e;
    EXPECT_LT(e.size(), 400u) << e;
  };
  json r = record(0);
  r["i"] = 12;
  expect_error(r, "out of range");
  r["i"] = -2;
  expect_error(r, "out of range");
  r["i"] = 1;
  expect_error(r, "does not belong to this shard");
  r["i"] = "0";
  expect_error(r, "\"i\" must be an integer");
  r = record(0);
  r["v"][1]["t"][0][0][2] = -5;
  expect_error(r, "confusion count -5");
  r = record(0);
  r["v"][0]["t"][0][0][0] = 4;  // rows 0..3 exist (row 3 = out-of-range ground truth), columns 0..2
  expect_error(r, "outside the 4x3 matrix");
  r = record(0);
  r["v"][0]["t"][0][0][1] = 3;
  expect_error(r, "outside the 4x3 matrix");
  r = record(0);
  r["v"].erase(1);
  expect_error(r, "has 1 variants, this run has 2");
  r = record(0);
  r["v"][0]["t"].push_back(json::array());
  expect_error(r, "3 thresholds, this run has 2");
  r = record(0);
  r["v"][0]["lw"]["up.0"] = "x";
  expect_error(r, "must be a number");
  r = record(0);
  r["v"][0]["t"][0][0] = json::array({0, 1});
  expect_error(r, "[row, col, count]");
  r = record(0);
  r["ex"] = json::array({{{"variant", "Other"}, {"png", ""}}});
  expect_error(r, "unknown variant");
  r = record(0);
  r["extra"] = 1;
  expect_error(r, "unknown key");
  expect_error(json::array({1, 2}), "must be an object");
  expect_error(record(2), "image 2 is journalled twice", "line 3: ");  // line 3 repeats it
  // A record edited by hand (still valid JSON, still in range) fails its checksum.
  std::string edited = Journal::encode_line(record(0));
  edited.replace(edited.find("[0,1,5]"), 7, "[0,1,9]");
  with_line2(edited);
  EXPECT_NE(error_of(p).find("line 2: checksum mismatch"), std::string::npos) << error_of(p);
  // A line from an older journal format, and a long garbage line: short messages.
  with_line2("{\"i\":0}\n");
  EXPECT_NE(error_of(p).find("line 2: not a goca-bench journal record"), std::string::npos) << error_of(p);
  with_line2(std::string(100000, 'x') + "\n");
  EXPECT_LT(error_of(p).size(), 400u);
  // A deeply nested record with a valid checksum: refused before parsing, no stack overflow.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  with_line2("{\"r\":" + deep + ",\"crc32\":\"" + fmt::format("{:08x}", gb::crc32(deep)) + "\"}\n");
  EXPECT_NE(error_of(p).find("line 2: JSON nested deeper than"), std::string::npos) << error_of(p);
}

TEST(Journal, NullWeightsReplayAsNaN) {
  const ScratchDir scratch;
  const fs::path p = scratch.path() / "j.jsonl";
  json r = record(0);
  r["v"][0]["lw"]["up.0"] = std::nan("");
  r["v"][1]["hw"]["up.0"][1] = std::nan("");
  {
    Journal j(p.string(), kHeader, true, schema());
    j.append({r});
  }
  Journal j(p.string(), kHeader, false, schema());
  ASSERT_EQ(j.replayed().size(), 1u);
  EXPECT_TRUE(std::isnan(j.replayed()[0]["v"][0]["lw"]["up.0"].get<double>()));
  EXPECT_TRUE(std::isnan(j.replayed()[0]["v"][1]["hw"]["up.0"][1].get<double>()));
}

TEST(Journal, AFailedAppendIsCutBackAndNamed) {
  const ScratchDir scratch;
  const fs::path p = scratch.path() / "j.jsonl";
  const std::string before = three_records(p);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // a file-size limit just above the current journal: the next batch cannot fit
    std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl {};
    rl.rlim_cur = rl.rlim_max = before.size() + 100;
    setrlimit(RLIMIT_FSIZE, &rl);
    try {
      Journal j(p.string(), kHeader, false, schema());
      j.append({record(6), record(8)});
    } catch (const gb::UserError& e) {
      const std::string m = e.what();
      std::_Exit(m.find("cannot append to the run journal") != std::string::npos &&
                         m.find("--resume") != std::string::npos
                     ? 2
                     : 3);
    }
    std::_Exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_EQ(read_bytes(p), before);  // the partial write was cut back off
  Journal j(p.string(), kHeader, false, schema());
  EXPECT_EQ(j.replayed().size(), 3u);
}
