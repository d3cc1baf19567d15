#include "harness/core/trace.h"

#include "harness/io/atomic_file.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <set>

#if defined(GB_WITH_CUDA) && __has_include(<nvtx3/nvToolsExt.h>)
#include <nvtx3/nvToolsExt.h>
#define GB_NVTX 1
#endif

namespace gb::trace {

namespace {

std::atomic<bool> g_collecting{false};
std::mutex g_mutex;
std::vector<Event> g_events;
std::atomic<uint64_t> g_next_thread{1};
thread_local uint64_t t_thread = 0;
thread_local std::string t_failed;

int64_t now_us() {
  using namespace std::chrono;
  static const auto t0 = steady_clock::now();
  return duration_cast<microseconds>(steady_clock::now() - t0).count();
}

uint64_t thread_number() {
  if (t_thread == 0) t_thread = g_next_thread.fetch_add(1);
  return t_thread;
}

}  // namespace

void set_collecting(bool on) { g_collecting.store(on); }
bool collecting() { return g_collecting.load(std::memory_order_relaxed); }

Span::Span(const char* name, std::string detail)
    : name_(name), detail_(std::move(detail)), start_us_(now_us()), uncaught_(std::uncaught_exceptions()) {
#ifdef GB_NVTX
  nvtxRangePushA(name_);
#endif
}

Span::~Span() {
  if (std::uncaught_exceptions() > uncaught_ && !ended_ && t_failed.empty()) t_failed = name_;
  end();
}

void Span::end() {
  if (ended_) return;
  ended_ = true;
#ifdef GB_NVTX
  nvtxRangePop();
#endif
  if (!collecting()) return;
  Event e{name_, std::move(detail_), start_us_, now_us() - start_us_, thread_number()};
  std::lock_guard<std::mutex> lock(g_mutex);
  g_events.push_back(std::move(e));
}

std::vector<Event> take_events() {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::vector<Event> out;
  out.swap(g_events);
  return out;
}

void write_chrome_trace(const std::string& path, const std::vector<Event>& events) {
  nlohmann::json list = nlohmann::json::array();
  std::set<uint64_t> threads;
  for (const auto& e : events) {
    nlohmann::json j = {{"name", e.name},   {"cat", "goca-bench"},  {"ph", "X"},
                        {"ts", e.start_us}, {"dur", e.duration_us}, {"pid", 1},
                        {"tid", e.thread}};
    if (!e.detail.empty()) j["args"] = {{"detail", e.detail}};
    list.push_back(std::move(j));
    threads.insert(e.thread);
  }
  for (uint64_t t : threads)
    list.push_back({{"name", "thread_name"},
                    {"ph", "M"},
                    {"pid", 1},
                    {"tid", t},
                    {"args", {{"name", "worker " + std::to_string(t)}}}});
  nlohmann::json doc = {{"traceEvents", list}, {"displayTimeUnit", "ms"}};
  gb::write_file_atomic(path, doc.dump() + "\n");
}

std::string failed_stage() {
  std::string s;
  s.swap(t_failed);
  return s;
}

}  // namespace gb::trace
