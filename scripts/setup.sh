#!/usr/bin/env bash
# Install what building and testing cnet needs, from Debian packages only, and
# only what is missing. As root: apt-get update once, then apt-get install.
# Otherwise: print the apt-get line to run as root and exit 1.
# Nothing is ever downloaded from anywhere but the Debian archive.
set -euo pipefail

# True if the Debian package is installed (not merely known to dpkg).
deb_installed() {
  command -v dpkg-query >/dev/null 2>&1 &&
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

have() { command -v "$1" >/dev/null 2>&1; }

missing=()
need() { missing+=("$1"); }

have gcc || have cc || need gcc
have make || need make
have cmake || need cmake
have pkg-config || need pkg-config
deb_installed libuv1-dev || { have pkg-config && pkg-config --exists libuv; } ||
  need libuv1-dev
have node || need nodejs
deb_installed netcat-openbsd || { ! have dpkg-query && have nc; } ||
  need netcat-openbsd
have valgrind || need valgrind
# test/test-netns.sh: network namespaces, veth and tc (it skips without them).
{ have ip && have tc; } || need iproute2
# make fuzz and the fuzz-smoke test: clang, and its runtimes (libFuzzer and
# the sanitizers), which Debian packages apart from the compiler.
have clang || need clang
deb_installed libclang-rt-dev || { ! have dpkg-query && have clang; } ||
  need libclang-rt-dev

if ((${#missing[@]} == 0)); then
  exit 0
fi

if ((EUID != 0)); then
  echo "setup: missing: ${missing[*]}" >&2
  echo "run as root: apt-get install -y ${missing[*]}"
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "setup: installing ${missing[*]}"
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
