#include "harness/core/protocol.h"

#include "harness/core/errors.h"

namespace gb {

const char* to_string(Protocol protocol) { return protocol == Protocol::paper ? "paper" : "standard"; }

Protocol parse_protocol(const std::string& name) {
  if (name == "paper") return Protocol::paper;
  if (name == "standard") return Protocol::standard;
  fail("unknown protocol '{}' (choices: paper, standard)", name);
}

}  // namespace gb
