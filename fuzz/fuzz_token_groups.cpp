// The `segment --tokens` file (TokenGroups JSON).
#include "fuzz/fuzz_util.h"
#include "harness/core/token_groups.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  return gb::fuzz::expect_user_errors([&] {
    const gb::TokenGroups g = gb::TokenGroups::from_json(text, "tokens.json");
    // What was accepted round-trips.
    if (!(gb::TokenGroups::from_json(g.to_json(), "round-trip") == g)) std::abort();
  });
}
