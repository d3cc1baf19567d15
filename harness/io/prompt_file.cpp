#include "harness/io/prompt_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <unordered_map>

#include "harness/core/errors.h"
#include "harness/core/excerpt.h"
#include "harness/core/strings.h"
#include "harness/io/read_file.h"

namespace gb {
namespace {

std::string_view strip_bom(std::string_view s) {
  if (s.size() >= 3 && static_cast<unsigned char>(s[0]) == 0xEF && static_cast<unsigned char>(s[1]) == 0xBB &&
      static_cast<unsigned char>(s[2]) == 0xBF)
    s.remove_prefix(3);
  return s;
}

// Prompt files treat every C whitespace character as blank, \v and \f included: a prompt of form feeds is empty,
// and ids and header names lose them at both ends.
std::string trim(std::string_view s) { return gb::trim(s, kCWhitespace); }

std::string default_id(size_t index) { return fmt::format("{:06d}", index); }

// Ids name files (`<out>/<id>.png`): one path component, printable, not "." or "..", at most 200 bytes.
void check_id_is_a_file_name(const std::string& id, const std::string& source, size_t line) {
  bool printable = true;
  for (const unsigned char c : id) printable = printable && c >= 0x20 && c != 0x7f && c != '/' && c != '\\';
  if (!printable || id == "." || id == ".." || id.size() > 200)
    fail_file(source,
              "line {}: id {} cannot be a file name (one path component of printable characters, no '/' or "
              "'\\', not '.' or '..', at most 200 bytes)",
              line, excerpt(id));
}

std::vector<PromptEntry> parse_txt(std::string_view text, const std::string& source) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.emplace_back(line);
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  while (!lines.empty() && trim(lines.back()).empty()) lines.pop_back();
  if (lines.empty()) fail_file(source, "no prompts (the file is empty)");
  std::vector<PromptEntry> out;
  out.reserve(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    if (trim(lines[i]).empty())
      fail_file(source, "line {}: empty prompt (one prompt per line; the id is the line's position)", i + 1);
    out.push_back({default_id(i), std::move(lines[i])});
  }
  return out;
}

struct CsvRecord {
  size_t line = 0;  // 1-based physical line where the record starts
  std::vector<std::string> fields;
};

// RFC 4180 with Python csv's leniency: a quote inside an unquoted field is literal, characters after a
// closing quote are appended to the field.
std::vector<CsvRecord> parse_csv_records(std::string_view s, const std::string& source) {
  std::vector<CsvRecord> records;
  size_t line = 1;
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    CsvRecord rec;
    rec.line = line;
    std::string field;
    bool record_done = false;
    while (!record_done) {
      // One field starting at i.
      field.clear();
      if (i < n && s[i] == '"') {
        const size_t open_line = line;
        ++i;
        for (;;) {
          if (i >= n) fail_file(source, "line {}: unterminated quoted field", open_line);
          char c = s[i];
          if (c == '"') {
            if (i + 1 < n && s[i + 1] == '"') {
              field.push_back('"');
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (c == '\n') ++line;
          field.push_back(c);
          ++i;
        }
      }
      // Unquoted part (or what follows a closing quote) up to the separator or end of record.
      while (i < n && s[i] != ',' && s[i] != '\n' && !(s[i] == '\r' && (i + 1 >= n || s[i + 1] == '\n'))) {
        field.push_back(s[i]);
        ++i;
      }
      rec.fields.push_back(field);
      if (i >= n) {
        record_done = true;
      } else if (s[i] == ',') {
        ++i;
      } else {
        if (s[i] == '\r') ++i;
        if (i < n && s[i] == '\n') ++i;
        ++line;
        record_done = true;
      }
    }
    // Blank lines (a record with one empty field) carry nothing.
    if (rec.fields.size() == 1 && trim(rec.fields[0]).empty()) continue;
    records.push_back(std::move(rec));
  }
  return records;
}

std::vector<PromptEntry> parse_csv(std::string_view text, const std::string& source) {
  auto records = parse_csv_records(text, source);
  if (records.empty()) fail_file(source, "no prompts (the file is empty)");
  const CsvRecord& header = records.front();
  auto find_column = [&](std::initializer_list<const char*> names, int& which) -> int {
    int k = 0;
    for (const char* name : names) {
      for (size_t c = 0; c < header.fields.size(); ++c)
        if (trim(header.fields[c]) == name) {
          which = k;
          return static_cast<int>(c);
        }
      ++k;
    }
    return -1;
  };
  std::string columns;  // for the message: the first 8 column names, each excerpted
  for (size_t c = 0; c < header.fields.size() && c < 8; ++c)
    columns += (c ? ", " : "") + excerpt(trim(header.fields[c]), 24);
  if (header.fields.size() > 8) columns += fmt::format(", ... ({} columns)", header.fields.size());
  int id_kind = -1, text_kind = -1;
  const int id_col = find_column({"id", "image_id", "file_name"}, id_kind);
  const int text_col = find_column({"caption", "text", "prompt"}, text_kind);
  if (id_col < 0)
    fail_file(source, "line {}: no id column (expected one of id, image_id, file_name; the header has: {})",
              header.line, columns);
  if (text_col < 0)
    fail_file(source, "line {}: no text column (expected one of caption, text, prompt; the header has: {})",
              header.line, columns);
  if (records.size() == 1) fail_file(source, "no prompts (only a header)");

  std::vector<PromptEntry> out;
  out.reserve(records.size() - 1);
  std::unordered_map<std::string, size_t> seen;  // id -> line
  for (size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& rec = records[r];
    if (rec.fields.size() != header.fields.size())
      fail_file(source, "line {}: {} fields, the header has {}", rec.line, rec.fields.size(), header.fields.size());
    std::string id = trim(rec.fields[id_col]);
    if (id_kind == 2) id = std::filesystem::path(id).stem().string();  // file_name: "<id>.<ext>"
    if (id.empty()) fail_file(source, "line {}: empty id", rec.line);
    check_id_is_a_file_name(id, source, rec.line);
    if (trim(rec.fields[text_col]).empty()) fail_file(source, "line {}: empty prompt for id {}", rec.line, excerpt(id));
    auto [it, inserted] = seen.emplace(id, rec.line);
    if (!inserted) fail_file(source, "line {}: duplicate id {} (first on line {})", rec.line, excerpt(id), it->second);
    out.push_back({std::move(id), rec.fields[text_col]});
  }
  return out;
}

}  // namespace

std::vector<PromptEntry> parse_prompt_file(const std::string& contents, const std::string& source) {
  const std::string ext = to_lower(std::filesystem::path(source).extension().string());
  std::string_view text = strip_bom(contents);
  if (ext == ".txt") return parse_txt(text, source);
  if (ext == ".csv") return parse_csv(text, source);
  fail_file(source, "unknown prompt file type '{}' (expected .txt, one prompt per line, or .csv with a header)", ext);
}

std::vector<PromptEntry> read_prompt_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail_file(path, "prompt file not found");
  return parse_prompt_file(read_whole_file(path, "prompt file"), path);
}

}  // namespace gb
