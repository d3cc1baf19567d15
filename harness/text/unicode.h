#pragma once
// The few Unicode facilities the tokenizers and the captioner need: UTF-8 <-> code points, Python's
// str.lower(), and the categories used by the CLIP pre-tokenisation regex and Hugging Face's BasicTokenizer.
// Tables are generated from Python's unicodedata (tools/parity/gen_unicode_tables.py).
#include <string>

namespace gb::text {

// Invalid UTF-8 bytes decode to U+FFFD (as Python's errors="replace" would).
std::u32string utf8_to_u32(const std::string& s);
std::string u32_to_utf8(const std::u32string& s);
std::string u32_to_utf8(char32_t c);

bool is_letter(char32_t c);           // \p{L}
bool is_number(char32_t c);           // \p{N}
bool is_other(char32_t c);            // \p{C}: control, format, surrogate, private use, unassigned
bool is_space_separator(char32_t c);  // Zs
bool is_py_space(char32_t c);         // Python str.isspace()
bool is_cjk(char32_t c);              // the CJK blocks BasicTokenizer surrounds with spaces

// Python's str.lower(), with a simplified final-sigma rule (Σ after a letter and not before one -> ς).
std::u32string py_lower(const std::u32string& s);
std::string py_lower(const std::string& utf8);

}  // namespace gb::text
