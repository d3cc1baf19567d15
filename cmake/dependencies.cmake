# Every third-party dependency is found here, once.
# CPU build: Debian's libtorch-dev (1.13). GPU build: PyTorch 2.x's bundled LibTorch, found through
#   cmake -DCMAKE_PREFIX_PATH=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
find_package(Torch REQUIRED)
find_package(Threads REQUIRED)
find_package(fmt REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json 3.9 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(TBB REQUIRED)
# OpenCV core+imgproc only. Debian ships OpenCVConfig.cmake in libopencv-dev, which drags imgcodecs and GDAL
# (see docs/image-io.md), so the two libraries are located directly.
find_path(GB_OPENCV_INCLUDE opencv2/core.hpp PATH_SUFFIXES opencv4 REQUIRED)
find_library(GB_OPENCV_CORE opencv_core REQUIRED)
find_library(GB_OPENCV_IMGPROC opencv_imgproc REQUIRED)
add_library(gb_opencv INTERFACE)
target_include_directories(gb_opencv SYSTEM INTERFACE ${GB_OPENCV_INCLUDE})
target_link_libraries(gb_opencv INTERFACE ${GB_OPENCV_IMGPROC} ${GB_OPENCV_CORE})
find_package(PkgConfig REQUIRED)
pkg_check_modules(SPNG REQUIRED IMPORTED_TARGET spng)
pkg_check_modules(TURBOJPEG REQUIRED IMPORTED_TARGET libturbojpeg)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
# SentencePiece is only linked into the dlopen'd shim (harness/text/CMakeLists.txt): Debian's libsentencepiece
# bundles a protobuf-lite that would interpose LibTorch's libprotobuf if it were linked into the executables.
if(GB_WITH_MATIO)
  pkg_check_modules(MATIO IMPORTED_TARGET matio)
  if(NOT MATIO_FOUND)
    message(WARNING "goca-bench: libmatio not found; Pascal-Context .mat labels disabled (PNG labels still work)")
    set(GB_WITH_MATIO OFF)
  endif()
endif()
if(GB_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(GB_BUILD_BENCHMARKS)
  find_package(benchmark REQUIRED)
endif()
# Torch's exported flags carry the C++ ABI define that every target must share.
separate_arguments(GB_TORCH_CXX_FLAGS UNIX_COMMAND "${TORCH_CXX_FLAGS}")
