#!/usr/bin/env bash
# Build build/CLlmedge.xcframework: libllmedge (the llmedge-ffi crate, Rust + llama.cpp with
# Metal) as static libraries for iOS devices, the iOS simulator and macOS, with include/llmedge.h
# and a module map naming the module CLlmedge. Package.swift uses the XCFramework by itself
# once it exists.
#
#   bindings/swift/build-xcframework.sh
#
# Needs macOS with Xcode (xcodebuild, lipo), Rust with the Apple targets:
#   rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios \
#                     aarch64-apple-darwin x86_64-apple-darwin
# and cmake. LLMEDGE_METAL=0 builds CPU-only libraries.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$here/build"
header="$root/include/llmedge.h"
export CARGO_TARGET_DIR="${APPLE_CARGO_TARGET_DIR:-$root/target/apple}"
export IPHONEOS_DEPLOYMENT_TARGET="${IPHONEOS_DEPLOYMENT_TARGET:-15.0}"
export MACOSX_DEPLOYMENT_TARGET="${MACOSX_DEPLOYMENT_TARGET:-12.0}"

[ "$(uname -s)" = Darwin ] || { echo "build-xcframework.sh: needs macOS with Xcode" >&2; exit 1; }
command -v xcodebuild >/dev/null || { echo "build-xcframework.sh: xcodebuild not found" >&2; exit 1; }
[ -f "$header" ] || { echo "build-xcframework.sh: $header missing (run make header)" >&2; exit 1; }

features=()
[ "${LLMEDGE_METAL:-1}" = 1 ] && features=(--features llmedge-core/metal)

targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
for t in "${targets[@]}"; do
  # The workspace's .cargo/config.toml asks for -C target-cpu=native (right for the build
  # machine only); a per-target RUSTFLAGS takes precedence, so every slice gets its baseline.
  var="CARGO_TARGET_$(echo "$t" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"
  export "$var=${!var:--C debuginfo=0}"
  echo "==> cargo build --release -p llmedge-ffi --target $t ${features[*]}"
  (cd "$root" && cargo build --release -p llmedge-ffi --target "$t" ${features[@]+"${features[@]}"})
done

lib() { echo "$CARGO_TARGET_DIR/$1/release/libllmedge.a"; }
rm -rf "$out/CLlmedge.xcframework" "$out/slices" "$out/headers"
mkdir -p "$out/slices/ios-sim" "$out/slices/macos" "$out/headers"
lipo -create "$(lib aarch64-apple-ios-sim)" "$(lib x86_64-apple-ios)" -output "$out/slices/ios-sim/libllmedge.a"
lipo -create "$(lib aarch64-apple-darwin)" "$(lib x86_64-apple-darwin)" -output "$out/slices/macos/libllmedge.a"

# Headers for the framework: the generated header as it is, and a module map for Swift.
cp "$header" "$out/headers/llmedge.h"
cat > "$out/headers/module.modulemap" <<'MAP'
module CLlmedge {
    header "llmedge.h"
    export *
}
MAP

xcodebuild -create-xcframework \
  -library "$(lib aarch64-apple-ios)" -headers "$out/headers" \
  -library "$out/slices/ios-sim/libllmedge.a" -headers "$out/headers" \
  -library "$out/slices/macos/libllmedge.a" -headers "$out/headers" \
  -output "$out/CLlmedge.xcframework"
rm -rf "$out/slices" "$out/headers"
echo "built $out/CLlmedge.xcframework"
