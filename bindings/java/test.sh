#!/usr/bin/env bash
# Build and test the JVM bindings: the JNI library (Rust), the Java API and the Kotlin layer.
#
#   bindings/java/test.sh            # from anywhere; `make test` calls it
#
# 1. cargo builds libllmedge_jni (and the llmedge CLI the tests compare against) in the shared
#    target dir, so llama.cpp is not compiled again;
# 2. the library is copied to llmedge/native/<os>-<arch>/, which Maven packs into the jar as
#    /native/<os>-<arch>/libllmedge_jni.so;
# 3. Maven runs the JUnit 5 tests of both modules against the real default model and packages
#    the jars (llmedge/target/llmedge-0.1.0.jar, llmedge-kotlin/target/llmedge-kotlin-0.1.0.jar);
# 4. the Java example runs from the packaged jar in a fresh JVM (the jar loads its own library).
#
# Environment: CARGO_TARGET_DIR (default: <repo>/target), LLMEDGE_TEST_MODEL (default: the
# default model, fetched on first use), MVN_ARGS (extra Maven flags, e.g. "-o" offline; Maven
# needs the network only once, to fill ~/.m2).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
case "$CARGO_TARGET_DIR" in /*) ;; *) CARGO_TARGET_DIR="$root/$CARGO_TARGET_DIR" ;; esac

for tool in cargo java mvn; do
  command -v "$tool" >/dev/null || { echo "test.sh: $tool not found (needs Rust, JDK 11+ and Maven 3.8+)" >&2; exit 1; }
done

echo "==> cargo build --release -p llmedge-jni -p llmedge-cli"
(cd "$root" && cargo build --release -p llmedge-jni -p llmedge-cli)

os="$(uname -s)"; arch="$(uname -m)"
case "$os" in
  Linux) os=linux; lib=libllmedge_jni.so ;;
  Darwin) os=macos; lib=libllmedge_jni.dylib ;;
  *) echo "test.sh: unsupported OS $os" >&2; exit 1 ;;
esac
case "$arch" in x86_64|amd64) arch=x86_64 ;; aarch64|arm64) arch=aarch64 ;; esac
native="$here/llmedge/native/$os-$arch"
mkdir -p "$native"
cp "$CARGO_TARGET_DIR/release/$lib" "$native/$lib"
echo "==> packed $CARGO_TARGET_DIR/release/$lib as /native/$os-$arch/$lib"

cli="$CARGO_TARGET_DIR/release/llmedge"
# Fetch the default model once up front, so no test pays for the download.
if [ -z "${LLMEDGE_TEST_MODEL:-}" ]; then
  "$cli" fetch >/dev/null
fi

echo "==> mvn test + package (Java and Kotlin)"
rm -rf "$here"/llmedge/target/surefire-reports "$here"/llmedge-kotlin/target/surefire-reports
status=0
# shellcheck disable=SC2086  # MVN_ARGS is a list of flags
(cd "$here" && mvn -q -B -Dstyle.color=never ${MVN_ARGS:-} -Dllmedge.cli="$cli" package) || status=$?
# Maven is quiet (-q) when tests pass: count them from Surefire's reports.
cat "$here"/llmedge/target/surefire-reports/TEST-*.xml "$here"/llmedge-kotlin/target/surefire-reports/TEST-*.xml 2>/dev/null \
  | grep -o '<testsuite [^>]*>' \
  | awk 'function n(key) { return match($0, " " key "=\"[0-9]+\"") ? substr($0, RSTART + length(key) + 3, RLENGTH - length(key) - 4) + 0 : 0 }
         { t += n("tests"); f += n("failures"); e += n("errors"); s += n("skipped") }
         END { printf "==> JUnit (Java + Kotlin): %d tests, %d failures, %d errors, %d skipped\n", t, f, e, s }' || true
[ "$status" -eq 0 ] || { echo "test.sh: mvn failed (status $status)" >&2; exit "$status"; }

echo "==> examples/java from the packaged jar"
jar="$here/llmedge/target/llmedge-0.1.0.jar"
out="$(java -cp "$jar" "$root/examples/java/src/main/java/io/llmedge/example/Example.java" \
  --max-tokens 8 --greedy --threads 1 "The capital of France is")"
printf '%s\n' "$out"
grep -q "finish=" <<<"$out" || { echo "test.sh: the example produced no completion" >&2; exit 1; }

echo "==> JVM bindings: all tests passed"
