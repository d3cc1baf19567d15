// Prompt files (.txt and .csv) as generate and clip-score read them.
#include "harness/io/prompt_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "tests/test_support.h"

namespace {

using gb::parse_prompt_file;
using gb::PromptEntry;
using gb::read_prompt_file;
using gb::test::expect_user_error;

void expect_entries(const std::vector<PromptEntry>& got, const std::vector<PromptEntry>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].id, want[i].id) << i;
    EXPECT_EQ(got[i].text, want[i].text) << i;
  }
}

TEST(PromptFile, TxtOnePromptPerLineIdsInLineOrder) {
  expect_entries(parse_prompt_file("a cat\r\na dog, running\nthe \"sky\"\n\n\n", "p.txt"),
                 {{"000000", "a cat"}, {"000001", "a dog, running"}, {"000002", "the \"sky\""}});
  // No final newline, a BOM, upper-case extension.
  expect_entries(parse_prompt_file("\xEF\xBB\xBFone\ntwo", "P.TXT"), {{"000000", "one"}, {"000001", "two"}});
}

TEST(PromptFile, TxtIdsGrowPastSixDigits) {
  std::string text;
  for (int i = 0; i < 1000001; ++i) text += "p\n";
  auto e = parse_prompt_file(text, "big.txt");
  ASSERT_EQ(e.size(), 1000001u);
  EXPECT_EQ(e[999999].id, "999999");
  EXPECT_EQ(e[1000000].id, "1000000");
}

TEST(PromptFile, CsvColumnsByPriorityQuotedFieldsAndLineBreaks) {
  // image_id beats file_name, caption beats text; quoted commas, doubled quotes, a line break inside quotes.
  const std::string csv =
      "file_name,text,image_id,caption\r\n"
      "x.png,ignored,7,\"a, b\"\r\n"
      "y.png,ignored,12,\"say \"\"hi\"\"\nthere\n\"\r\n"
      "z.png,ignored,3,plain\r\n";
  expect_entries(parse_prompt_file(csv, "c.csv"), {{"7", "a, b"}, {"12", "say \"hi\"\nthere\n"}, {"3", "plain"}});
  // id column first; LF only; a file_name gives its stem; prompt column.
  expect_entries(parse_prompt_file("prompt,id\nfoo,a\nbar,b\n", "d.csv"), {{"a", "foo"}, {"b", "bar"}});
  expect_entries(parse_prompt_file("file_name,prompt\nimg_1.jpg,foo\ndir/img_2.png,bar", "e.csv"),
                 {{"img_1", "foo"}, {"img_2", "bar"}});
}

TEST(PromptFile, ErrorsNameFileAndLine) {
  expect_user_error([] { parse_prompt_file("", "empty.txt"); }, {"empty.txt", "no prompts"});
  expect_user_error([] { parse_prompt_file("\n\r\n", "blank.txt"); }, {"blank.txt", "no prompts"});
  expect_user_error([] { parse_prompt_file("a\n\nb\n", "gap.txt"); }, {"gap.txt", "line 2", "empty prompt"});
  // Every C whitespace character is blank, vertical tab and form feed included (found by fuzz_prompts).
  expect_user_error([] { parse_prompt_file("a\n\v\f\nb\n", "vt.txt"); }, {"vt.txt", "line 2", "empty prompt"});
  expect_user_error([] { parse_prompt_file("id,text\n1,\f\n", "ff.csv"); }, {"ff.csv", "line 2", "empty prompt"});
  expect_user_error([] { parse_prompt_file("", "empty.csv"); }, {"empty.csv", "no prompts"});
  expect_user_error([] { parse_prompt_file("image_id,text\n", "hdr.csv"); }, {"hdr.csv", "only a header"});
  expect_user_error([] { parse_prompt_file("name,text\n1,a\n", "noid.csv"); },
                    {"noid.csv", "line 1", "no id column", "'name', 'text'"});
  expect_user_error([] { parse_prompt_file("id,words\n1,a\n", "notext.csv"); }, {"notext.csv", "no text column"});
  expect_user_error([] { parse_prompt_file("id,text\n1,a\n2,b\n1,c\n", "dup.csv"); },
                    {"dup.csv", "line 4", "duplicate id '1'", "line 2"});
  expect_user_error([] { parse_prompt_file("id,text\n1,a\n2,\"b\nc\n3,d\n", "quote.csv"); },
                    {"quote.csv", "line 3", "unterminated"});
  expect_user_error([] { parse_prompt_file("id,text\n1,a,x\n", "fields.csv"); }, {"fields.csv", "line 2", "3 fields"});
  expect_user_error([] { parse_prompt_file("id,text\n,a\n", "noid2.csv"); }, {"noid2.csv", "line 2", "empty id"});
  expect_user_error([] { parse_prompt_file("id,text\n5,  \n", "notext2.csv"); },
                    {"notext2.csv", "line 2", "empty prompt"});
  // Ids name the output files (<out>/<id>.png): no path separators, no "..", no control bytes.
  expect_user_error([] { parse_prompt_file("id,text\n../x,a\n", "up.csv"); },
                    {"up.csv", "line 2", "id '../x' cannot be a file name"});
  expect_user_error([] { parse_prompt_file("file_name,text\nd/...jpg,a\n", "dots.csv"); },
                    {"dots.csv", "id '..' cannot be a file name"});
  expect_user_error(
      [] {
        parse_prompt_file(
            "id,text\n\"a\x01"
            "b\",a\n",
            "ctl.csv");
      },
      {"ctl.csv", "id 'a\\x01b'"});
  expect_user_error([] { parse_prompt_file("id,text\n" + std::string(300, 'k') + ",a\n", "long.csv"); },
                    {"long.csv", "... (300 bytes) cannot be a file name"});
  expect_user_error([] { parse_prompt_file(std::string(5000, 'h') + ",x\n1,a\n", "wide.csv"); },
                    {"wide.csv", "no id column", "... (5000 bytes)"});
  expect_user_error([] { parse_prompt_file("a", "p.json"); }, {"p.json", "unknown prompt file type"});
  expect_user_error([] { read_prompt_file("/nonexistent/prompts.txt"); }, {"/nonexistent/prompts.txt", "not found"});
}

TEST(PromptFile, ReadsFromDisk) {
  gb::test::ScratchDir dir;
  gb::test::write_bytes(dir / "p.csv", "id,caption\nq,\"x\"\n");
  expect_entries(read_prompt_file(dir / "p.csv"), {{"q", "x"}});
}

// The MS-COCO val2014 30k captions T2IBenchmark publishes: CRLF records, 60 quoted fields with doubled
// quotes, 97 captions that end in a line break inside quotes. Numbers from Python's csv module.
TEST(PromptFile, MsCoco30kCaptions) {
  const std::string path = std::string(GB_SHARED_DIR) + "/data/coco-captions/MS-COCO_val2014_30k_captions.csv";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not present";
  auto e = read_prompt_file(path);
  ASSERT_EQ(e.size(), 30000u);
  size_t bytes = 0, with_newline = 0, with_quote = 0;
  std::set<std::string> ids;
  for (const auto& p : e) {
    bytes += p.text.size();
    with_newline += p.text.find('\n') != std::string::npos;
    with_quote += p.text.find('"') != std::string::npos;
    ids.insert(p.id);
  }
  EXPECT_EQ(bytes, 1566532u);
  EXPECT_EQ(with_newline, 97u);
  EXPECT_EQ(with_quote, 60u);
  EXPECT_EQ(ids.size(), 30000u);
  EXPECT_EQ(e[0].id, "521669");
  EXPECT_EQ(e[0].text, "Someone is holding a phone while watching a video on it.");
  EXPECT_EQ(e[1585].id, "526459");
  EXPECT_EQ(e[1585].text, "That is a picture of an outside locale. \n");
  EXPECT_EQ(e.back().id, "111806");
  EXPECT_EQ(e.back().text, "Characters from Cat in the Hat in front of a man and child.");
}

}  // namespace
