#include "harness/runner/run_support.h"

#include "harness/core/errors.h"
#include "harness/core/log.h"

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace gb::runner {

void parse_shard(const std::string& text, int64_t& index, int64_t& count) {
  const auto slash = text.find('/');
  try {
    if (slash == std::string::npos) throw std::invalid_argument("no slash");
    size_t a = 0, b = 0;
    index = std::stoll(text.substr(0, slash), &a);
    count = std::stoll(text.substr(slash + 1), &b);
    if (a != slash || b != text.size() - slash - 1) throw std::invalid_argument("trailing characters");
  } catch (const std::exception&) {
    fail("--shard '{}': expected i/n, e.g. 0/4", text);
  }
  if (count < 1 || index < 0 || index >= count) fail("--shard '{}': need 0 <= i < n", text);
}

bool in_shard(int64_t index, int64_t shard_index, int64_t shard_count) { return index % shard_count == shard_index; }

std::vector<int64_t> shard_indices(int64_t total, int64_t shard_index, int64_t shard_count) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < total; ++i)
    if (in_shard(i, shard_index, shard_count)) out.push_back(i);
  return out;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int64_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;
}

void StopAfter::journalled(int64_t n) {
  journalled_ += n;
  if (limit_ >= 0 && journalled_ >= limit_) {
    log::warn("--stop-after {}: stopping abruptly after {} journalled images", limit_, journalled_);
    std::fflush(stderr);
    std::_Exit(75);
  }
}

}  // namespace gb::runner
