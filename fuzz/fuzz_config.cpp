// The YAML config reader: includes (_base_), --set overrides, anchors and aliases, then a strict typed reader
// (the dataset config) over the result. Input: the first line is one --set assignment ("a.b=value", may be
// empty), the rest is the top-level YAML file. Beside it: base.yaml (includable), cycle.yaml (includes itself).
#include "datasets/dataset_config.h"
#include "fuzz/fuzz_util.h"
#include "harness/config/config.h"

extern "C" void gb_fuzz_setup() {
  gb::fuzz::put("base.yaml", "dataset: voc\nprotocol: paper\nlimit: 5\nlabels: {source: png}\nlist: [1, 2, {a: b}]\n");
  gb::fuzz::put("cycle.yaml", "_base_: cycle.yaml\nx: 1\n");
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const size_t nl = text.find('\n');
  const std::string set = nl == std::string::npos ? "" : text.substr(0, nl);
  const std::string path = gb::fuzz::put("config.yaml", nl == std::string::npos ? text : text.substr(nl + 1));
  return gb::fuzz::expect_user_errors([&] {
    std::vector<std::string> overrides;
    if (!set.empty()) overrides.push_back(set);
    const gb::Config c = gb::Config::load(path, overrides);
    (void)c.hash();
    const std::string yaml = c.to_yaml();
    // The resolved form is itself a config, and printing it again gives the same text. (Its hash can differ
    // from the original's in one known way: a plain value that the YAML emitter must quote, such as one with
    // tabs, comes back as a quoted string; docs/robustness.md.)
    const gb::Config again = gb::Config::from_string(yaml, "resolved");
    if (again.to_yaml() != yaml) std::abort();
    (void)gb::datasets::read_dataset_config(gb::ConfigReader(c));
  });
}
