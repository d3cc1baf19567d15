#include "harness/core/log.h"

#include "harness/core/errors.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace gb::log {
namespace {

Level initial_level() {
  const char* env = std::getenv("GB_LOG_LEVEL");
  if (!env) return Level::Info;
  try {
    return parse_level(env);
  } catch (const UserError&) {
    return Level::Info;
  }
}

std::atomic<int>& level_storage() {
  static std::atomic<int> value{static_cast<int>(initial_level())};
  return value;
}

std::mutex& out_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

void set_level(Level l) { level_storage().store(static_cast<int>(l)); }
Level level() { return static_cast<Level>(level_storage().load()); }

Level parse_level(const std::string& name) {
  if (name == "debug") return Level::Debug;
  if (name == "info") return Level::Info;
  if (name == "warn" || name == "warning") return Level::Warn;
  if (name == "error") return Level::Error;
  if (name == "off") return Level::Off;
  fail("unknown log level '{}' (expected debug, info, warn, error or off)", name);
}

void write(Level l, const std::string& message) {
  static const char* names[] = {"debug", "info", "warn", "error", "off"};
  std::lock_guard<std::mutex> lock(out_mutex());
  std::fprintf(stderr, "[%s] %s\n", names[static_cast<int>(l)], message.c_str());
  std::fflush(stderr);
}

}  // namespace gb::log
