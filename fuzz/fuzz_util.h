#pragma once
// Shared by the libFuzzer targets (docs/robustness.md). A target feeds one parser of user
// files with the fuzzer's bytes and lets only gb::UserError pass (the tool's exit 2): any other exception,
// a crash, a sanitizer report, a hang (-timeout) or an allocation above -rss_limit_mb is a finding.
#include "harness/core/errors.h"
#include "harness/core/log.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

#include <unistd.h>

namespace gb::fuzz {

// A private scratch folder for this fuzzing process (files that the parsers read by path).
inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    const std::filesystem::path d = std::filesystem::temp_directory_path() / ("gb-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

// Writes `data` to scratch()/name and returns the path.
inline std::string put(const std::string& name, const uint8_t* data, size_t size) {
  const std::string p = (scratch() / name).string();
  std::FILE* f = std::fopen(p.c_str(), "wb");
  if (!f) std::abort();
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  return p;
}
inline std::string put(const std::string& name, std::string_view text) {
  return put(name, reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

// Runs `f`; a UserError is the expected outcome for bad input. Its message must be one short line.
template <typename F>
int expect_user_errors(F&& f) {
  try {
    f();
  } catch (const gb::UserError& e) {
    const std::string_view m = e.what();
    if (m.empty() || m.size() > 2048) {
      std::fprintf(stderr, "fuzz: a UserError message of %zu bytes (must be a short line)\n", m.size());
      std::abort();
    }
  }
  return 0;
}

inline void quiet() { gb::log::set_level(gb::log::Level::Off); }

}  // namespace gb::fuzz

// A target that needs files beside its input defines this; fuzz/init.cpp calls it once before the first input.
extern "C" void gb_fuzz_setup();
