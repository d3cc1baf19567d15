#pragma once
// Progress reporting: an in-place bar with rate and ETA on a terminal, plain periodic lines otherwise
// (CI logs, files). Thread-safe `advance`.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

namespace gb {

class Progress {
 public:
  // total <= 0: unknown total (no ETA). `unit` is what is counted ("img").
  Progress(std::string label, int64_t total, std::string unit = "img", std::FILE* out = stderr);
  ~Progress();
  void advance(int64_t n = 1);
  void finish();
  int64_t done() const { return done_; }
  // Rendering used by both modes; exposed for tests. `elapsed_s` since start.
  static std::string render(const std::string& label, int64_t done, int64_t total, double elapsed_s,
                            const std::string& unit, int width);
  // Force a mode (tests); default detects isatty(out).
  void set_interactive(bool on) { interactive_ = on; }

 private:
  void draw(bool final_line);
  std::string label_;
  int64_t total_;
  std::string unit_;
  std::FILE* out_;
  bool interactive_;
  bool finished_ = false;
  int64_t done_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  std::mutex mu_;
};

std::string format_duration(double seconds);  // "1h02m", "3m05s", "12.3s"

}  // namespace gb
