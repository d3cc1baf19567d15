#!/usr/bin/env bash
# Downloads (here, with network) the Debian packages the GPU build needs into .debs/ (ignored by git), so
# that scripts/gpu/build-cuda.sh can unpack them on a machine without network. See docs/gpu-build.md.
#
# The set is: the -dev packages of the C++ dependencies (headers, CMake/pkg-config files, .so links), and
# the closure of the shared libraries they need, computed from the ELF NEEDED entries of the libraries
# installed here (not from apt's Depends, which would drag in GL drivers and compilers). Libraries every
# glibc system has (libc, libm, libstdc++, libgcc_s, libz, ...) are left out. Versions are the ones
# installed here, so the GPU build compiles against exactly what the CPU build does.
#
#   bash scripts/gpu/fetch-debs.sh            # -> .debs/*.deb and .debs/MANIFEST
#   GB_DEBS=/elsewhere bash scripts/gpu/fetch-debs.sh
#   GB_GPU_MATIO=1 bash scripts/gpu/fetch-debs.sh   # also libmatio (Pascal-Context .mat labels): adds HDF5
#                                                   # and its libcurl/OpenSSL/Kerberos closure (~40 packages)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEBS=${GB_DEBS:-$ROOT/.debs}

# What the build links or includes (see cmake/dependencies.cmake). GoogleTest/Benchmark are static or
# header-only for us but come along so the test suites build there too.
DEV_PKGS=(
  libyaml-cpp-dev libspng-dev libturbojpeg0-dev libtbb-dev libcli11-dev nlohmann-json3-dev
  libsentencepiece-dev libopencv-core-dev libopencv-imgproc-dev libgtest-dev googletest
  libgmock-dev libbenchmark-dev zlib1g-dev
  pkgconf-bin libpkgconf3 pkgconf   # pkg-config, in case the GPU image has none
)
[[ "${GB_GPU_MATIO:-0}" == 1 ]] && DEV_PKGS+=(libmatio-dev libhdf5-dev)
# Sonames assumed present on any glibc machine (the GPU image is a CUDA/PyTorch image).
BASE_SONAMES='^(libc|libm|libdl|librt|libpthread|libresolv|libutil|ld-linux-x86-64|libstdc\+\+|libgcc_s|libz)\.so'

missing=()
for p in "${DEV_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "fetch-debs: not installed here: ${missing[*]} (run scripts/install-deps.sh first)" >&2
  exit 2
fi

declare -A want=()
for p in "${DEV_PKGS[@]}"; do want[$p]=1; done

LDCACHE=$(ldconfig -p)
declare -A owner_cache=()
owner_of() {  # package owning a file; merged /usr: dpkg may know it under /lib or /usr/lib, as link or target
  local path=$1 real hit
  if [[ -n "${owner_cache[$path]:-}" ]]; then echo "${owner_cache[$path]}"; return; fi
  real=$(readlink -f "$path")
  hit=$(grep -lxF -e "$path" -e "$real" -e "${path#/usr}" -e "/usr$path" -e "${real#/usr}" -e "/usr$real" \
        /var/lib/dpkg/info/*.list 2>/dev/null | head -1 || true)
  hit=$(basename "${hit%.list}")
  hit=${hit%%:*}
  owner_cache[$path]=$hit
  echo "$hit"
}
add() {
  # Packages of the base system (the links of zlib1g-dev point into zlib1g) stay out.
  [[ "$1" =~ ^(zlib1g|libc6|libstdc\+\+6|libgcc-s1)$ ]] && return 0
  if [[ -z "${want[$1]:-}" ]]; then
    want[$1]=1
    changed=1
  fi
}
# Fixed point: every shared object shipped by a wanted package -> its NEEDED sonames -> owning packages.
declare -A seen_so=() soname_owner=()
changed=1
while ((changed)); do
  changed=0
  for p in "${!want[@]}"; do
    while IFS= read -r f; do
      # A -dev package's libfoo.so is a link into the runtime package: take that package too.
      if [[ -L "$f" && ( "$f" == *.so || "$f" == *.so.* ) ]]; then
        target_owner=$(owner_of "$(readlink -f "$f")")
        [[ -n "$target_owner" ]] && add "$target_owner"
        continue
      fi
      [[ -f "$f" ]] || continue
      [[ "$f" == *.so || "$f" == *.so.* || "$f" == */bin/* ]] || continue
      [[ -n "${seen_so[$f]:-}" ]] && continue
      seen_so[$f]=1
      while IFS= read -r soname; do
        [[ -z "$soname" ]] && continue
        [[ "$soname" =~ $BASE_SONAMES ]] && continue
        if [[ -z "${soname_owner[$soname]:-}" ]]; then
          path=$(awk -v s="$soname" '$1 == s && /x86-64/ {print $NF; exit}' <<<"$LDCACHE")
          if [[ -z "$path" ]]; then
            echo "fetch-debs: $f needs $soname, which is not installed here" >&2
            exit 1
          fi
          soname_owner[$soname]=$(owner_of "$path")
          if [[ -z "${soname_owner[$soname]}" ]]; then
            echo "fetch-debs: no package owns $path (needed by $f)" >&2
            exit 1
          fi
        fi
        owner=${soname_owner[$soname]}
        add "$owner"
      done < <(objdump -p "$f" 2>/dev/null | awk '/^  NEEDED/ {print $2}')
    done < <(dpkg -L "$p")
  done
done

mkdir -p "$DEBS"
rm -f "$DEBS"/*.deb
specs=()
for p in $(printf '%s\n' "${!want[@]}" | sort); do
  v=$(dpkg-query -W -f='${Version}' "$p")
  if apt-cache madison "$p" | awk -F'|' '{gsub(/ /, "", $2); print $2}' | grep -qxF -- "$v"; then
    specs+=("$p=$v")
  else
    # Installed from a list apt no longer has (run apt-get update); the current candidate is ABI-compatible.
    echo "fetch-debs: $p $v is not downloadable, taking apt's candidate" >&2
    specs+=("$p")
  fi
done
echo "fetch-debs: downloading ${#specs[@]} packages into $DEBS: ${specs[*]}"
sandbox=(); [[ $(id -u) -eq 0 ]] && sandbox=(-o APT::Sandbox::User=root)
(cd "$DEBS" && apt-get download -q "${sandbox[@]}" "${specs[@]}")
printf '%s\n' "${specs[@]}" > "$DEBS/MANIFEST"
echo "fetch-debs: $(ls "$DEBS"/*.deb | wc -l) files, $(du -sh "$DEBS" | cut -f1) (list in $DEBS/MANIFEST)"
