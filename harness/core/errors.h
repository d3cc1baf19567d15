#pragma once
// Error policy: a UserError is bad input (missing file, corrupt image, wrong tensor shape, bad YAML,
// unknown key). It carries one line that names the file and what is wrong; the CLI prints it and exits 2.
// Anything else that escapes is an internal error (exit 1).
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace gb {

class UserError : public std::runtime_error {
 public:
  explicit UserError(const std::string& message) : std::runtime_error(message) {}
};

// UserError whose message is "<file>: <what>".
template <typename... Args>
[[noreturn]] void fail_file(const std::string& file, fmt::format_string<Args...> what, Args&&... args) {
  throw UserError(file + ": " + fmt::format(what, std::forward<Args>(args)...));
}

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> what, Args&&... args) {
  throw UserError(fmt::format(what, std::forward<Args>(args)...));
}

inline constexpr int kExitOk = 0;
inline constexpr int kExitInternal = 1;
inline constexpr int kExitUser = 2;

}  // namespace gb
