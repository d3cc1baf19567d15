# Instrumented builds (docs/robustness.md), each in its own build folder:
#   GB_SANITIZE=ON  AddressSanitizer + UndefinedBehaviorSanitizer with any compiler (a build folder of your own).
#   GB_FUZZ=ON      clang only: the same plus libFuzzer coverage, and the fuzz/ targets (`make fuzz`); the Makefile
#                   builds the test suites there too (`make test-asan`, `make test-asan-fast`), benchmarks not.
# LibTorch and the system libraries are not instrumented; the run-time options that this needs are in
# tools/sanitizers/ (ASAN_OPTIONS, LSan and UBSan suppressions) and are set by the Makefile targets.
option(GB_SANITIZE "Build with -fsanitize=address,undefined" OFF)
option(GB_FUZZ "Build the libFuzzer targets in fuzz/ (clang; make fuzz)" OFF)

if(GB_SANITIZE OR GB_FUZZ)
  set(_gb_san -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  if(GB_FUZZ)
    if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
      message(FATAL_ERROR "GB_FUZZ=ON needs clang (cmake -DCMAKE_CXX_COMPILER=clang++ ...); see docs/robustness.md")
    endif()
    list(APPEND _gb_san -fsanitize=fuzzer-no-link)
  endif()
  # vptr checks need RTTI-matched instrumentation on both sides of a call; LibTorch's classes are not.
  list(APPEND _gb_san -fno-sanitize=vptr)
  add_compile_options(${_gb_san})
  add_compile_definitions(GB_SANITIZED=1)  # code that must differ under the sanitizers (t5_tokenizer.cpp's dlopen)
  add_link_options(-fsanitize=address,undefined)
  # -O1 keeps the sanitizers' reports exact enough and the build affordable.
  set(CMAKE_CXX_FLAGS_RELWITHDEBINFO "-O1 -g1 -DNDEBUG")
endif()
