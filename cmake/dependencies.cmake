# Every third-party dependency is found here, once.
# LibTorch: the one bundled with PyTorch 2.11.0 from PyPI, in the project's virtual environment
# (scripts/setup-venv.sh, run by `make`). GB_PYTHON names the Python whose torch provides it; an explicit
# Torch_DIR or CMAKE_PREFIX_PATH entry wins.
set(GB_PYTHON "${CMAKE_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH "Python whose torch provides LibTorch")
if(NOT Torch_DIR AND EXISTS "${GB_PYTHON}")
  execute_process(COMMAND "${GB_PYTHON}" -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
                  OUTPUT_VARIABLE GB_TORCH_PREFIX OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
  if(rc EQUAL 0 AND GB_TORCH_PREFIX)
    list(PREPEND CMAKE_PREFIX_PATH "${GB_TORCH_PREFIX}")
  endif()
endif()
# CUDA: a CUDA build of torch needs the CUDA toolkit (nvcc) to be found; no .cu file is compiled here, so the
# architecture list only silences torch's GPU auto-detection on machines without a GPU.
if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST} AND NOT TORCH_CUDA_ARCH_LIST)
  set(TORCH_CUDA_ARCH_LIST "8.0;9.0")
endif()
find_package(Torch REQUIRED)
if(Torch_VERSION VERSION_LESS 2.1)
  message(FATAL_ERROR "goca-bench needs LibTorch >= 2.1 (found ${Torch_VERSION}); run `make venv` for PyTorch 2.11.0")
endif()
set(GB_WITH_CUDA OFF)
if(TARGET torch_cuda)
  set(GB_WITH_CUDA ON)
endif()
message(STATUS "goca-bench: LibTorch ${Torch_VERSION}, CUDA compiled in: ${GB_WITH_CUDA}")
find_package(Threads REQUIRED)
# fmt: LibTorch ships fmt 12's headers in its include folder, ahead of any system fmt on the include path, so
# goca-bench uses exactly those, header-only (FMT_HEADER_ONLY in cmake/targets.cmake); no fmt library is linked.
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json 3.9 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(TBB REQUIRED)
find_package(ZLIB REQUIRED)
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
