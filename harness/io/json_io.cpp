#include "harness/io/json_io.h"

#include "harness/core/errors.h"
#include "harness/core/excerpt.h"
#include "harness/io/read_file.h"

#include <array>

namespace gb {

void check_json_depth(std::string_view text, const std::string& file, int max_depth) {
  int depth = 0;
  bool in_string = false, escape = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        fail_file(file, "JSON nested deeper than {} levels (at byte {}); refusing to parse it", max_depth, i);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

std::string json_error_text(const std::exception& e) {
  std::string s = e.what();
  if (s.rfind("[json.exception.", 0) == 0) {
    const size_t close = s.find("] ");
    if (close != std::string::npos) s = s.substr(close + 2);
  }
  // "...; last read: '<token>'": the token can be kilobytes of the input.
  const std::string marker = "last read: '";
  const size_t at = s.find(marker);
  if (at != std::string::npos) {
    const size_t start = at + marker.size();
    const size_t end = s.rfind('\'');
    const std::string token = end != std::string::npos && end >= start ? s.substr(start, end - start) : s.substr(start);
    s = s.substr(0, at) + "last read: " + excerpt(token);
  }
  if (s.size() > 300) s = s.substr(0, 300) + "...";
  return s;
}

namespace {
template <typename Json>
Json parse_impl(std::string_view text, const std::string& file) {
  check_json_depth(text, file);
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    fail_file(file, "not valid JSON: {}", json_error_text(e));
  }
}
}  // namespace

nlohmann::json parse_json(std::string_view text, const std::string& file) {
  return parse_impl<nlohmann::json>(text, file);
}

nlohmann::ordered_json parse_ordered_json(std::string_view text, const std::string& file) {
  return parse_impl<nlohmann::ordered_json>(text, file);
}

nlohmann::json read_json_file(const std::string& path) { return parse_json(read_whole_file(path, "JSON file"), path); }

uint32_t crc32(std::string_view data) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) c = table[(c ^ b) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

}  // namespace gb
