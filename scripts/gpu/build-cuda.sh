#!/usr/bin/env bash
# Builds and tests goca-bench on the GPU machine: no network, PyTorch 2.x (CUDA) at `python3`, the C++
# dependencies carried as Debian packages in .debs/ (made here by scripts/gpu/fetch-debs.sh).
#
#   bash scripts/gpu/build-cuda.sh                      # unpack .debs, configure, build all, run ctest
#   GB_TARGETS="test_core goca-bench" bash scripts/gpu/build-cuda.sh    # only these targets, then their tests
#
# Environment (all optional):
#   GB_DEBS          folder of .deb files                  (default: <repo>/.debs)
#   GB_DEPS_PREFIX   where they are unpacked with dpkg -x  (default: <repo>/.deps-prefix; reused if unchanged)
#   BUILD            build folder                          (default: <repo>/build-cuda)
#   GB_PYTHON        the Python whose torch provides LibTorch (default: python3)
#   GB_TORCH_PREFIX  CMake prefix of LibTorch, instead of asking GB_PYTHON
#   GB_TARGETS       targets to build (default: all); tests run are those whose executables were built
#   GB_JOBS          parallel jobs (default: nproc)
#   GB_CMAKE_ARGS    extra CMake arguments
#   GB_CHECK_PREFIX  1: fail unless every carried dependency was found inside the prefix (used to test this
#                    script on a machine that also has them installed system-wide)
# After it, run the binaries with:  source <BUILD>/gpu-env.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEBS=${GB_DEBS:-$ROOT/.debs}
PREFIX=${GB_DEPS_PREFIX:-$ROOT/.deps-prefix}
BUILD=${BUILD:-$ROOT/build-cuda}
PYTHON=${GB_PYTHON:-python3}
JOBS=${GB_JOBS:-$(nproc)}
ARCH=x86_64-linux-gnu
say() { echo "build-cuda: $*"; }

shopt -s nullglob
debs=("$DEBS"/*.deb)
((${#debs[@]})) || { say "no .deb files in $DEBS (run scripts/gpu/fetch-debs.sh where there is network)" >&2; exit 2; }

# 1. Unpack (again only when the set of .debs changed).
stamp=$(ls -l "${debs[@]}" | md5sum | cut -d' ' -f1)
if [[ "$(cat "$PREFIX/.stamp" 2>/dev/null)" != "$stamp" ]]; then
  say "unpacking ${#debs[@]} packages into $PREFIX"
  rm -rf "$PREFIX"
  mkdir -p "$PREFIX"
  for d in "${debs[@]}"; do dpkg -x "$d" "$PREFIX"; done
  # Absolute symlinks (rare in Debian's library packages) would point at the host's /usr: re-point them.
  while IFS= read -r l; do
    t=$(readlink "$l")
    ln -sfn "$PREFIX$t" "$l"
  done < <(find "$PREFIX" -type l -lname '/*')
  echo "$stamp" > "$PREFIX/.stamp"
fi
LIBDIRS="$PREFIX/usr/lib/$ARCH:$PREFIX/lib/$ARCH:$PREFIX/usr/lib"
# Appended: the machine's own copy of a library, if it has one, wins; the carried ones fill the gaps.
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$LIBDIRS"

# 2. pkg-config: only the carried .pc files, their /usr paths re-rooted into the prefix by the sysroot.
PKG_CONFIG=$(command -v pkg-config || command -v pkgconf || true)
if [[ -x "$PREFIX/usr/bin/pkgconf" ]]; then PKG_CONFIG="$PREFIX/usr/bin/pkgconf"; fi
[[ -n "$PKG_CONFIG" ]] || { say "no pkg-config (carry pkgconf-bin in .debs)" >&2; exit 2; }
export PKG_CONFIG_LIBDIR="$PREFIX/usr/lib/$ARCH/pkgconfig:$PREFIX/usr/share/pkgconfig:$PREFIX/usr/lib/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$PREFIX"
unset PKG_CONFIG_PATH

# 3. LibTorch from the Python that holds PyTorch (pip layout: torch/share/cmake/Torch, headers in
#    torch/include and torch/include/torch/csrc/api/include, which TorchConfig.cmake reports itself).
TORCH_PREFIX=${GB_TORCH_PREFIX:-$("$PYTHON" -c 'import torch; print(torch.utils.cmake_prefix_path)')}
say "LibTorch from $TORCH_PREFIX"

MATIO=ON
[[ -f "$PREFIX/usr/lib/$ARCH/pkgconfig/matio.pc" ]] || { MATIO=OFF; say "libmatio not carried: Pascal-Context .mat labels off (PNG labels work)"; }

GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
# shellcheck disable=SC2086
cmake -S "$ROOT" -B "$BUILD" "${GEN[@]}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DGB_PYTHON="$(command -v "$PYTHON")" \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$PREFIX/usr" \
  -DCMAKE_LIBRARY_PATH="$PREFIX/usr/lib/$ARCH" \
  -DCMAKE_INCLUDE_PATH="$PREFIX/usr/include" \
  -DCMAKE_BUILD_RPATH="$PREFIX/usr/lib/$ARCH;$PREFIX/lib/$ARCH" \
  -DPKG_CONFIG_EXECUTABLE="$PKG_CONFIG" \
  -DGB_WITH_MATIO="$MATIO" \
  ${GB_CMAKE_ARGS:-}

# 4. Where each dependency was found (and, when asked, proof that it was the carried one).
cache="$BUILD/CMakeCache.txt"
found=$(grep -E '^(yaml-cpp_DIR|nlohmann_json_DIR|CLI11_DIR|TBB_DIR|GTest_DIR|benchmark_DIR|GB_OPENCV_INCLUDE|GB_OPENCV_CORE|GB_OPENCV_IMGPROC|Torch_DIR)[:=]' "$cache" | sed 's/:[A-Z]*=/=/')
found+=$'\n'"spng=$("$PKG_CONFIG" --variable=includedir spng)"
found+=$'\n'"turbojpeg=$("$PKG_CONFIG" --libs-only-L libturbojpeg)"
found+=$'\n'"sentencepiece=$("$PKG_CONFIG" --libs-only-L sentencepiece)"
echo "$found" | sed 's/^/build-cuda:   /'
if [[ "${GB_CHECK_PREFIX:-0}" == 1 ]]; then
  bad=$(echo "$found" | grep -v '^Torch_DIR=' | grep -v "$PREFIX" || true)
  if [[ -n "$bad" ]]; then
    say "found outside $PREFIX:" >&2
    echo "$bad" >&2
    exit 1
  fi
  say "every carried dependency resolved inside $PREFIX"
fi

# 5. Build and test.
cat > "$BUILD/gpu-env.sh" <<ENV
# source this to run goca-bench built by scripts/gpu/build-cuda.sh
export LD_LIBRARY_PATH="\${LD_LIBRARY_PATH:+\$LD_LIBRARY_PATH:}$LIBDIRS"
ENV
if [[ -n "${GB_TARGETS:-}" ]]; then
  # shellcheck disable=SC2086
  cmake --build "$BUILD" -j "$JOBS" --target $GB_TARGETS
  tests=()
  for t in $GB_TARGETS; do [[ "$t" == test_* ]] && tests+=("$t"); done
  if ((${#tests[@]})); then
    (cd "$BUILD" && ctest --output-on-failure -R "^($(IFS='|'; echo "${tests[*]}"))\$")
  fi
else
  cmake --build "$BUILD" -j "$JOBS"
  (cd "$BUILD" && ctest --output-on-failure -j "$JOBS")
fi
say "done; binaries in $BUILD/bin (source $BUILD/gpu-env.sh first)"
