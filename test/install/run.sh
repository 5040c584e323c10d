#!/usr/bin/env bash
# Install test: install the build in $CNET_BUILD_DIR into a temporary prefix,
# then build test/install/main.c against that prefix twice -- with pkg-config
# and as a CMake project using find_package(cnet) -- and run the binaries.
# Registered in CTest as `install`; runs without network access.
#
#   CNET_BUILD_DIR=build bash test/install/run.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${CNET_BUILD_DIR:?set CNET_BUILD_DIR to a built cnet build directory}
build=$(cd "$build" && pwd)
cache="$build/CMakeCache.txt"
[[ -f $cache ]] || { echo "install: $build is not a CMake build dir" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnet-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"

fail() { echo "install: FAIL: $*" >&2; exit 1; }

# Run a command quietly; show its output only if it fails.
quiet() {
  local log="$tmp/step.log"
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    fail "$*"
  fi
}

cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$cache" | head -n 1; }

# Build the consumers the way the library was built: same compiler, and the
# sanitizer flags when the build is a CNET_SANITIZE one (an ASan libcnet.so
# cannot be loaded by a program without the ASan runtime).
cc=$(cache_value CMAKE_C_COMPILER)
cc=${cc:-cc}
san=()
if [[ $(cache_value CNET_SANITIZE) =~ ^(ON|TRUE|1|YES)$ ]]; then
  san=(-fsanitize=address,undefined -fno-omit-frame-pointer
       -fno-sanitize-recover=undefined)
fi

# 1. Install.
quiet cmake --install "$build" --prefix "$prefix"
pc=$(find "$prefix" -name cnet.pc -print -quit)
so=$(find "$prefix" -name 'libcnet.so' -print -quit)
[[ -n $pc ]] || fail "cnet.pc not installed"
[[ -n $so ]] || fail "libcnet.so not installed"
[[ -f $prefix/include/cnet.h ]] || fail "cnet.h not installed"
[[ -n $(find "$prefix" -name 'libcnet.a' -print -quit) ]] ||
  fail "libcnet.a not installed"
[[ -n $(find "$prefix" -name cnetConfig.cmake -print -quit) ]] ||
  fail "cnetConfig.cmake not installed"
libdir=$(dirname "$so")
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# Hidden visibility: the shared library exports cnet_* and nothing else of
# ours (toolchain symbols start with '_').
if command -v nm >/dev/null; then
  extra=$(nm -D --defined-only "$so" | awk '{print $NF}' |
          grep -v -e '^cnet_' -e '^_' || true)
  [[ -z $extra ]] || fail "libcnet.so exports non-API symbols: $extra"
fi

run() {
  local out
  out=$("$@") || fail "$* exited $?"
  [[ $out == *"install ok"* ]] || fail "$* printed: $out"
  echo "install: $* -> $out"
}

# 2. pkg-config consumer, compiled as strict C11 (the documented recipe:
#    -std=c11 needs _POSIX_C_SOURCE for <uv.h>).
export PKG_CONFIG_PATH="$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pcflags=$(pkg-config --cflags --libs cnet) || fail "pkg-config --cflags --libs cnet"
[[ $pcflags == *"-I$prefix/"* ]] ||
  fail "pkg-config did not point into $prefix: $pcflags"
read -r -a flags <<<"$pcflags"
quiet "$cc" -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror \
  "${san[@]}" "$here/main.c" -o "$tmp/main-pkgconfig" "${flags[@]}"
run "$tmp/main-pkgconfig"

# 3. CMake consumer: find_package(cnet) from the prefix, shared and static.
quiet cmake -S "$here" -B "$tmp/consumer" \
  -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON \
  -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS="-Wall -Wextra -Werror ${san[*]}" \
  -DCMAKE_EXE_LINKER_FLAGS="${san[*]}"
found=$(sed -n 's/^cnet_DIR:PATH=//p' "$tmp/consumer/CMakeCache.txt")
[[ $found == "$prefix"/* ]] || fail "find_package(cnet) found $found, not $prefix"
quiet cmake --build "$tmp/consumer"
run "$tmp/consumer/main-shared"
run "$tmp/consumer/main-static"
