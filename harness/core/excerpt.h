#pragma once
// The one way an error message quotes bad input (docs/robustness.md): at most `max_bytes` of it, quoted,
// control and non-ASCII bytes escaped, with the total length when it was cut ("'abc'... (5000 bytes)").
// Messages never echo kilobytes of a user's file.
#include <fmt/format.h>

#include <string>
#include <string_view>

namespace gb {

inline std::string excerpt(std::string_view text, size_t max_bytes = 40) {
  std::string s = "'";
  for (size_t i = 0; i < text.size() && i < max_bytes; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      s += static_cast<char>(c);
    } else {
      s += fmt::format("\\x{:02x}", c);
    }
  }
  s += "'";
  if (text.size() > max_bytes) s += fmt::format("... ({} bytes)", text.size());
  return s;
}

}  // namespace gb
