// results.json (the `report`, `compare` and `merge` input): parsing, metric recomputation and every table.
#include "fuzz/fuzz_util.h"
#include "harness/io/json_io.h"
#include "reports/results.h"
#include "reports/tables.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  return gb::fuzz::expect_user_errors([&] {
    const gb::reports::Results r = gb::reports::results_from_json(gb::parse_json(text, "results.json"), "results.json");
    for (const auto& t : gb::reports::all_tables(r)) (void)gb::reports::to_markdown(t);
    // What was accepted round-trips.
    (void)gb::reports::results_from_json(gb::reports::to_json(r), "round-trip");
  });
}
