#!/usr/bin/env bash
# Install libllmedge (shared + static), its headers, llmedge.pc and the CMake package config.
# Usage: scripts/install-c.sh PREFIX   (after `cargo build --release -p llmedge-ffi`)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
prefix="${1:?usage: install-c.sh PREFIX}"
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}/release"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)"
major="${version%%.*}"
abi="$(sed -n 's/^pub const LLMEDGE_ABI_VERSION: u32 = \([0-9]*\);/\1/p' "$root/ffi/src/lib.rs")"
# System libraries the static archive needs (llama.cpp is C++ with OpenMP).
static_libs="-lstdc++ -lgomp -lpthread -ldl -lm -lgcc_s -lc"
mkdir -p "$prefix/lib/pkgconfig" "$prefix/lib/cmake/llmedge" "$prefix/include"
install -m 755 "$target/libllmedge.so" "$prefix/lib/libllmedge.so.$version"
ln -sf "libllmedge.so.$version" "$prefix/lib/libllmedge.so.$abi"
ln -sf "libllmedge.so.$abi" "$prefix/lib/libllmedge.so"
install -m 644 "$target/libllmedge.a" "$prefix/lib/libllmedge.a"
install -m 644 "$root/include/llmedge.h" "$root/include/llmedge.hpp" "$prefix/include/"
subst() {
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" -e "s|@MAJOR@|$major|g" -e "s|@ABI@|$abi|g" \
      -e "s|@STATIC_LIBS@|$static_libs|g" \
      -e "s|@STATIC_LIBS_CMAKE@|$(echo "$static_libs" | sed 's/-l//g; s/ /;/g')|g" "$1" > "$2"
}
subst "$root/ffi/packaging/llmedge.pc.in" "$prefix/lib/pkgconfig/llmedge.pc"
subst "$root/ffi/packaging/llmedgeConfig.cmake.in" "$prefix/lib/cmake/llmedge/llmedgeConfig.cmake"
subst "$root/ffi/packaging/llmedgeConfigVersion.cmake.in" "$prefix/lib/cmake/llmedge/llmedgeConfigVersion.cmake"
echo "installed llmedge $version (ABI $abi) into $prefix"
