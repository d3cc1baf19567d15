#pragma once
// The one way user JSON files are parsed (docs/robustness.md): nesting deeper than kMaxJsonDepth is refused
// before parsing (nothing recursive -- dump, compare, copy, error messages -- ever sees such a document),
// and every failure is a UserError "<file>: <what>" that quotes at most a short excerpt of the input.
// Wrong-typed values: parsers read through json_at/json_get below, which name the file and the key path.
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace gb {

inline constexpr int kMaxJsonDepth = 64;

nlohmann::json parse_json(std::string_view text, const std::string& file);
nlohmann::ordered_json parse_ordered_json(std::string_view text, const std::string& file);
// Reads and parses a file (UserError when it cannot be read).
nlohmann::json read_json_file(const std::string& path);

// Throws UserError when `text` nests arrays/objects deeper than `max_depth` (strings are skipped).
void check_json_depth(std::string_view text, const std::string& file, int max_depth = kMaxJsonDepth);

// nlohmann's message without its "[json.exception...]" prefix, any quoted input cut to a short excerpt.
std::string json_error_text(const std::exception& e);

// CRC-32 (IEEE 802.3, as zlib's crc32) of `data`.
uint32_t crc32(std::string_view data);

}  // namespace gb
