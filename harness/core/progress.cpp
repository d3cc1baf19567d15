#include "harness/core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>

namespace gb {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  if (s < 60) return fmt::format("{:.1f}s", s);
  auto total = static_cast<int64_t>(std::llround(s));
  if (total < 3600) return fmt::format("{}m{:02d}s", total / 60, static_cast<int>(total % 60));
  return fmt::format("{}h{:02d}m", total / 3600, static_cast<int>((total % 3600) / 60));
}

Progress::Progress(std::string label, int64_t total, std::string unit, std::FILE* out)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      out_(out),
      interactive_(out && isatty(fileno(out))),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { finish(); }

std::string Progress::render(const std::string& label, int64_t done, int64_t total, double elapsed,
                             const std::string& unit, int width) {
  double rate = elapsed > 0 ? done / elapsed : 0.0;
  std::string counts = total > 0 ? fmt::format("{}/{}", done, total) : fmt::format("{}", done);
  std::string tail = fmt::format("{} {} | {:.2f} {}/s | {}", counts, unit, rate, unit, format_duration(elapsed));
  if (total > 0 && done < total) {
    double eta = rate > 0 ? (total - done) / rate : NAN;
    tail += " | ETA " + format_duration(eta);
  }
  if (width <= 0 || total <= 0) return label + " " + tail;
  double frac = std::min(1.0, static_cast<double>(done) / total);
  int filled = static_cast<int>(frac * width);
  return fmt::format("{} [{}{}] {:3.0f}% {}", label, std::string(filled, '#'), std::string(width - filled, '.'),
                     frac * 100, tail);
}

void Progress::draw(bool final_line) {
  if (!out_) return;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (interactive_) {
    std::fprintf(out_, "\r\033[2K%s%s", render(label_, done_, total_, elapsed, unit_, 30).c_str(),
                 final_line ? "\n" : "");
  } else {
    std::fprintf(out_, "%s\n", render(label_, done_, total_, elapsed, unit_, 0).c_str());
  }
  std::fflush(out_);
}

void Progress::advance(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  done_ += n;
  auto now = std::chrono::steady_clock::now();
  // Terminal: redraw at most 10 times a second. Plain output: a line every 10 s (and at the end).
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if ((interactive_ && since >= 0.1) || (!interactive_ && since >= 10.0)) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  finished_ = true;
  draw(true);
}

}  // namespace gb
