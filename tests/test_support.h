#pragma once
// Helpers every test suite may use (one copy): the message of the gb::UserError a call throws, a scratch folder
// per test, raw file I/O.
#include "harness/core/errors.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

namespace gb::test {

// What `f` throws as a gb::UserError (its one-line message), or "" when it returns normally.
inline std::string user_error_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const gb::UserError& e) {
    return e.what();
  }
  return "";
}

// Runs `f`, expects a UserError whose message contains every one of `needles`; returns the message.
template <typename F>
std::string expect_user_error(F&& f, const std::vector<std::string>& needles = {}) {
  try {
    f();
  } catch (const gb::UserError& e) {
    std::string msg = e.what();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
    return msg;
  }
  ADD_FAILURE() << "expected a UserError";
  return "";
}

// A fresh folder under TMPDIR (CTest gives each suite its own), named after the running test and removed when
// the test ends.
class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "scratch";
    path_ = std::filesystem::temp_directory_path() / ("gb_test_" + std::to_string(::getpid()) + "_" + name);
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// `bytes` with 1 to `max_flips` positions overwritten by random bytes, all drawn from `rng` (the fuzz-style
// corruption tests).
inline std::string flip_random_bytes(std::string bytes, std::mt19937& rng, int max_flips) {
  const int flips = 1 + static_cast<int>(rng() % static_cast<unsigned>(max_flips));
  for (int k = 0; k < flips; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng() & 0xff);
  return bytes;
}

}  // namespace gb::test
