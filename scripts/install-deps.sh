#!/usr/bin/env bash
# Installs every build and test dependency of goca-bench through apt (Debian 12).
# Idempotent: packages already present are skipped. Uses sudo when not root.
set -euo pipefail

PKGS=(
  cmake ninja-build g++ make pkg-config ccache git
  python3 python3-venv               # the venv that holds PyTorch 2.11.0 (scripts/setup-venv.sh)
  libopencv-core-dev libopencv-imgproc-dev
  libtbb-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev
  libspng-dev libturbojpeg0-dev libjpeg62-turbo-dev
  libmatio-dev libsentencepiece-dev
  clang libclang-rt-14-dev           # make fuzz, make test-asan-fast (libFuzzer, ASan, UBSan runtimes)
  clang-format-14                    # make format, CTest lint_format (.clang-format)
)
want=("${PKGS[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#want[@]} packages already installed"
  exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
