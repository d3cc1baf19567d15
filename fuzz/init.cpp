// The one LLVMFuzzerInitialize of every fuzz target (linked into each by fuzz/CMakeLists.txt): silences the log,
// then runs the target's own gb_fuzz_setup() where it defines one (files the parser reads beside its input).
#include "fuzz/fuzz_util.h"

extern "C" __attribute__((weak)) void gb_fuzz_setup() {}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  gb::fuzz::quiet();
  gb_fuzz_setup();
  return 0;
}
