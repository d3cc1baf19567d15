// Prompt files (`generate`, `clip-score`, generation experiments): .txt and .csv. The first input byte picks
// the format; the rest is the file. Every accepted file gives non-empty, unique ids that are usable as one
// file name each, and prompts that are not blank.
#include "fuzz/fuzz_util.h"
#include "harness/io/prompt_file.h"

#include <set>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const char* name = (data[0] & 1) ? "prompts.csv" : "prompts.txt";
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  return gb::fuzz::expect_user_errors([&] {
    const auto entries = gb::parse_prompt_file(text, name);
    if (entries.empty()) std::abort();
    std::set<std::string> ids;
    for (const auto& e : entries) {
      if (e.id.empty() || e.id == "." || e.id == ".." || e.id.find('/') != std::string::npos) std::abort();
      if (e.text.find_first_not_of(" \t\r\n\v\f") == std::string::npos) std::abort();
      if (!ids.insert(e.id).second) std::abort();
    }
  });
}
