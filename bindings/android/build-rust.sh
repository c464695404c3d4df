#!/usr/bin/env bash
# Build libllmedge_jni.so for Android with cargo-ndk, one folder per ABI:
#
#   bindings/android/build-rust.sh [OUT_DIR]     (default OUT_DIR: bindings/android/build/rustJniLibs)
#
#   OUT_DIR/arm64-v8a/libllmedge_jni.so    <- aarch64-linux-android
#   OUT_DIR/x86_64/libllmedge_jni.so       <- x86_64-linux-android
#
# Needs: the Android NDK (ANDROID_NDK_HOME, or ANDROID_HOME/ndk/<version>), cargo-ndk
# (`cargo install cargo-ndk`), the Rust targets (`rustup target add aarch64-linux-android
# x86_64-linux-android`), and cmake + clang for llama.cpp. Gradle runs this before packaging.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$here/build/rustJniLibs}"
api="${ANDROID_PLATFORM:-26}"          # = minSdk in build.gradle.kts

# Android ABI -> Rust target; keep in sync with `abis` in build.gradle.kts.
abis=(arm64-v8a x86_64)
targets=(aarch64-linux-android x86_64-linux-android)

command -v cargo-ndk >/dev/null || { echo "build-rust.sh: cargo-ndk not found: cargo install cargo-ndk" >&2; exit 1; }
if [ -z "${ANDROID_NDK_HOME:-}" ] && [ -z "${ANDROID_NDK_ROOT:-}" ] && [ -z "${ANDROID_HOME:-}" ]; then
  echo "build-rust.sh: set ANDROID_NDK_HOME (or ANDROID_HOME with an ndk/ folder)" >&2
  exit 1
fi
installed="$(rustup target list --installed 2>/dev/null || true)"
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$installed" || { echo "build-rust.sh: missing Rust target $t: rustup target add $t" >&2; exit 1; }
done

# The workspace's .cargo/config.toml builds with -C target-cpu=native for the host; that is wrong
# for a phone. Per-target flags override build.rustflags, so each Android target gets its own
# baseline (armv8-a with NEON; x86-64 with the SSE4.2/POPCNT that Android x86_64 guarantees).
export CARGO_TARGET_AARCH64_LINUX_ANDROID_RUSTFLAGS="${CARGO_TARGET_AARCH64_LINUX_ANDROID_RUSTFLAGS:--C target-feature=+neon}"
export CARGO_TARGET_X86_64_LINUX_ANDROID_RUSTFLAGS="${CARGO_TARGET_X86_64_LINUX_ANDROID_RUSTFLAGS:--C target-feature=+sse4.2,+popcnt}"
# Cross builds get their own target dir so they never disturb the host's llama.cpp build.
export CARGO_TARGET_DIR="${ANDROID_CARGO_TARGET_DIR:-$root/target/android}"

target_args=()
for abi in "${abis[@]}"; do target_args+=(-t "$abi"); done

mkdir -p "$out"
(cd "$root" && cargo ndk "${target_args[@]}" --platform "$api" -o "$out" build --release -p llmedge-jni)

for abi in "${abis[@]}"; do
  test -f "$out/$abi/libllmedge_jni.so" || { echo "build-rust.sh: $out/$abi/libllmedge_jni.so was not produced" >&2; exit 1; }
done
echo "built: $(cd "$out" && ls -1 ./*/libllmedge_jni.so | tr '\n' ' ')"
