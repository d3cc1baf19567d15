#pragma once
// Prompt files, as `generate` and `clip-score` read them (docs/metrics.md, "Prompt files"):
//  - `.txt`: one prompt per line (LF or CRLF, UTF-8, an optional BOM). Ids are the prompt's zero-based
//    position, six digits at least: "000000", "000001", ... Blank lines are errors, except at the end.
//  - `.csv`: a header row, then one record per prompt (RFC 4180: comma separated, fields in double quotes
//    may hold commas, doubled quotes and line breaks; LF or CRLF). The id column is the first present of
//    `id`, `image_id`, `file_name` (a file name gives its stem: "COCO_1.jpg" -> "COCO_1"); the text column
//    the first of `caption`, `text`, `prompt`. Text is kept exactly as the field holds it (pandas and
//    Python's csv do the same), e.g. the trailing "\n" some MS-COCO 30k captions carry.
// Entries come back in file order. Every problem (missing or empty file, other extension, a CSV without
// those columns, a record with the wrong number of fields, an empty id or prompt, a duplicate id, an
// unterminated quote) is a gb::UserError "<file>: line N: ...".
#include <string>
#include <vector>

namespace gb {

struct PromptEntry {
  std::string id;
  std::string text;
};

std::vector<PromptEntry> read_prompt_file(const std::string& path);

// The same from the file's contents; `source` names the file in errors and its extension picks the format.
std::vector<PromptEntry> parse_prompt_file(const std::string& contents, const std::string& source);

}  // namespace gb
