#pragma once
// A timeline of the work, not only sums: Span marks one stage of one image (or batch) on the thread that runs it.
// While collecting is on (a run turns it on), spans become Chrome trace events ("X" complete events, microseconds,
// one track per thread) that `write_chrome_trace` saves as profile.trace.json (opens in Perfetto and
// chrome://tracing); on CUDA builds every span is also an NVTX range for Nsight Systems. A span an exception
// unwinds is remembered per thread (`failed_stage`), so an allocation failure can name the stage it happened in.
#include <cstdint>
#include <string>
#include <vector>

namespace gb::trace {

struct Event {
  std::string name;    // "decode", "vae", "aggregation", ...
  std::string detail;  // the image ids or the variant ("args.detail" in the trace)
  int64_t start_us = 0;
  int64_t duration_us = 0;
  uint64_t thread = 0;  // a small per-process thread number
};

void set_collecting(bool on);
bool collecting();

class Span {
 public:
  explicit Span(const char* name, std::string detail = "");
  ~Span();
  void end();  // ends the span now (the destructor then does nothing)
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;

 private:
  const char* name_;
  std::string detail_;
  int64_t start_us_;
  int uncaught_;
  bool ended_ = false;
};

// Every event collected so far (and clears them).
std::vector<Event> take_events();
// The Chrome trace event format (JSON object with "traceEvents"), thread names included.
void write_chrome_trace(const std::string& path, const std::vector<Event>& events);
// The innermost span an exception unwound on this thread since the last call ("" if none); clears it.
std::string failed_stage();

}  // namespace gb::trace
