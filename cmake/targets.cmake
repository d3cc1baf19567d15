# Helpers that give every target the same flags, the shared precompiled header and the common links.
#
#   gb_add_library(NAME DIRS dir... [LINKS lib...])   one static library from every *.cpp in DIRS
#   gb_add_test(NAME DIRS dir... [LINKS lib...])      one GoogleTest executable, registered with CTest
#   gb_add_benchmark(NAME DIRS dir... [LINKS lib...]) one Google Benchmark executable
#
# Sources are globbed (CONFIGURE_DEPENDS), so adding a file needs no CMake edit.

set(GB_COMMON_LINKS ${TORCH_LIBRARIES} Threads::Threads)
# fmt is LibTorch's bundled copy, used header-only (cmake/dependencies.cmake).
set(GB_COMMON_DEFINES FMT_HEADER_ONLY=1)

# One precompiled header (ATen + STL + fmt, see harness/core/pch.h), built once and reused by every target.
add_library(gb_pch STATIC ${CMAKE_SOURCE_DIR}/cmake/pch.cpp)
target_compile_options(gb_pch PRIVATE ${GB_TORCH_CXX_FLAGS})
target_compile_definitions(gb_pch PRIVATE ${GB_COMMON_DEFINES})
target_include_directories(gb_pch PRIVATE ${CMAKE_SOURCE_DIR} ${TORCH_INCLUDE_DIRS})
target_link_libraries(gb_pch PRIVATE ${GB_COMMON_LINKS})
target_precompile_headers(gb_pch PRIVATE ${CMAKE_SOURCE_DIR}/harness/core/pch.h)

function(_gb_common target)
  # PyTorch's wheels export copies of newer libstdc++ symbols (std::filesystem among them) from libtorch.so, which
  # does not itself depend on libstdc++.so.6; an executable that reaches libtorch before libstdc++ binds its own
  # std::filesystem calls to those copies, and they crash here (remove_all jumps to a null pointer). Naming
  # libstdc++ first puts it ahead of LibTorch in the lookup order, so every std:: symbol resolves to the
  # toolchain's own library.
  target_link_options(${target} BEFORE PRIVATE "LINKER:--push-state,--no-as-needed" "-lstdc++" "LINKER:--pop-state")
  target_compile_options(${target} PRIVATE ${GB_TORCH_CXX_FLAGS} -Wall -Wextra -Wno-unused-parameter)
  target_compile_definitions(${target} PRIVATE ${GB_COMMON_DEFINES})
  target_include_directories(${target} PUBLIC ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR}/generated)
  target_include_directories(${target} SYSTEM PUBLIC ${TORCH_INCLUDE_DIRS})
  target_precompile_headers(${target} REUSE_FROM gb_pch)
endfunction()

function(_gb_glob out)
  set(files)
  foreach(d ${ARGN})
    file(GLOB f CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/${d}/*.cpp)
    list(APPEND files ${f})
  endforeach()
  set(${out} ${files} PARENT_SCOPE)
endfunction()

function(gb_add_library name)
  cmake_parse_arguments(A "" "" "DIRS;LINKS;EXCLUDE" ${ARGN})
  _gb_glob(srcs ${A_DIRS})
  foreach(x ${A_EXCLUDE})
    list(FILTER srcs EXCLUDE REGEX "${x}$")
  endforeach()
  if(NOT srcs)
    # A folder whose sources have not landed yet still yields a (empty) library, so dependents link.
    set(empty ${CMAKE_BINARY_DIR}/generated/empty_${name}.cpp)
    file(WRITE ${empty} "// ${name} has no sources yet\n")
    set(srcs ${empty})
  endif()
  add_library(${name} STATIC ${srcs})
  _gb_common(${name})
  target_link_libraries(${name} PUBLIC ${A_LINKS} ${GB_COMMON_LINKS})
endfunction()

# An executable of the sources in DIRS, linked with LINKS; ${made} is FALSE (and nothing is added) when DIRS hold no
# sources yet.
function(_gb_executable name made)
  cmake_parse_arguments(A "" "" "DIRS;LINKS" ${ARGN})
  _gb_glob(srcs ${A_DIRS})
  set(${made} FALSE PARENT_SCOPE)
  if(NOT srcs)
    return()
  endif()
  add_executable(${name} ${srcs})
  _gb_common(${name})
  target_link_libraries(${name} PRIVATE ${A_LINKS} ${GB_COMMON_LINKS})
  set(${made} TRUE PARENT_SCOPE)
endfunction()

function(gb_add_test name)
  cmake_parse_arguments(A "" "" "DIRS;LINKS" ${ARGN})
  _gb_executable(${name} made DIRS ${A_DIRS} LINKS ${A_LINKS} GTest::gtest GTest::gtest_main)
  if(NOT made)
    return()
  endif()
  target_compile_definitions(${name} PRIVATE
    GB_SOURCE_DIR="${CMAKE_SOURCE_DIR}" GB_SHARED_DIR="${CMAKE_SOURCE_DIR}/../shared"
    GB_BINARY_DIR="${CMAKE_BINARY_DIR}")
  add_test(NAME ${name} COMMAND ${name} --gtest_brief=1 WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  # A private TMPDIR per suite and build tree: suites that use fixed temp-folder names never collide with
  # the same suite running from another checkout or build.
  file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/tmp/${name})
  # OMP_WAIT_POLICY=PASSIVE: suites run side by side (ctest -j) and the runner's TBB threads each open OpenMP
  # teams, so more threads than cores; LibTorch's libgomp then spins in its barriers by default and a loaded
  # 2-core machine crawls (seen: a runner suite that takes 30 s idle did not finish in 10 minutes at load 20).
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "TMPDIR=${CMAKE_BINARY_DIR}/tmp/${name};OMP_WAIT_POLICY=PASSIVE")
endfunction()

function(gb_add_benchmark name)
  cmake_parse_arguments(A "" "" "DIRS;LINKS" ${ARGN})
  _gb_executable(${name} made DIRS ${A_DIRS} LINKS ${A_LINKS} benchmark::benchmark benchmark::benchmark_main)
  if(NOT made)
    return()
  endif()
  target_compile_definitions(${name} PRIVATE GB_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
endfunction()
