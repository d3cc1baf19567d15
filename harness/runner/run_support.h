#pragma once
// Small pieces both runs share (segmentation: runner.h, generation: generation_run.h): shards, stage clocks,
// the peak host memory and the `--stop-after` debug exit.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace gb::runner {

// Parses "i/n" (0 <= i < n). UserError otherwise.
void parse_shard(const std::string& text, int64_t& index, int64_t& count);

// Whether image `index` belongs to shard i of n: index % n == i (deterministic, disjoint, covering).
bool in_shard(int64_t index, int64_t shard_index, int64_t shard_count);
// The indices in [0, total) that shard i of n evaluates, ascending.
std::vector<int64_t> shard_indices(int64_t total, int64_t shard_index, int64_t shard_count);

using Clock = std::chrono::steady_clock;
// Seconds from t0 to now.
double seconds_since(Clock::time_point t0);

// The process's peak resident host memory (getrusage), bytes.
int64_t peak_rss_bytes();

// `run --stop-after N` (debug): counts the records this process journalled and, once N are durable, exits at
// once with status 75 as if killed (no results written), so tests can resume a broken run. N < 0: never.
class StopAfter {
 public:
  explicit StopAfter(int64_t limit) : limit_(limit) {}
  // Counts `n` more journalled records; exits the process when the limit is reached.
  void journalled(int64_t n);

 private:
  int64_t limit_;
  int64_t journalled_ = 0;
};

}  // namespace gb::runner
