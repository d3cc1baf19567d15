// Caption files ({"<image file>": {"caption": "..."}}).
#include "datasets/captions.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  return gb::fuzz::expect_user_errors([&] {
    const auto c = gb::datasets::CaptionFile::parse(text, "captions.json");
    for (const auto& id : c.ids())
      if (c.caption(id).empty()) std::abort();
  });
}
