#pragma once
// Helpers every test suite may use (one copy): the message of the gb::UserError a call throws.
#include "harness/core/errors.h"

#include <functional>
#include <string>

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

}  // namespace gb::test
