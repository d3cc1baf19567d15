#pragma once
// Small string helpers shared by every library (one copy each).
#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace gb {

inline bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Every whitespace character of the C locale (isspace): space, \t, \n, \v, \f, \r.
inline constexpr std::string_view kCWhitespace = " \t\n\v\f\r";

// Without leading and trailing characters of `chars` (by default ASCII space, tab, CR and LF).
inline std::string trim(std::string_view s, std::string_view chars = " \t\r\n") {
  const auto b = s.find_first_not_of(chars), e = s.find_last_not_of(chars);
  return b == std::string_view::npos ? std::string() : std::string(s.substr(b, e - b + 1));
}

// "a, b, c" (error messages, logs).
inline std::string join(const std::vector<std::string>& items, const std::string& sep = ", ") {
  std::string out;
  for (const auto& x : items) out += (out.empty() ? "" : sep) + x;
  return out;
}

// ASCII lower case.
inline std::string to_lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Byte offset of the first byte that makes `s` unfit as text (YAML 1.2's printable set, section 5.1, without
// its extra line breaks): invalid UTF-8 (truncated or stray continuation bytes, overlong forms, surrogates,
// above U+10FFFF), a C0 control character other than tab, LF and CR (NUL included), DEL, a C1 control
// character (NEL included) or U+2028/U+2029. std::string_view::npos when there is none.
inline size_t find_non_text_byte(std::string_view s) {
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = b[i];
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return i;
      ++i;
      continue;
    }
    size_t len;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    else return i;  // a continuation byte, or a lead byte of an overlong or too-large form
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((b[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (b[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
      return i;
    if ((cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029) return i;  // C1 controls, line separators
    i += len;
  }
  return std::string_view::npos;
}

}  // namespace gb
