#!/usr/bin/env bash
# C/C++ consumer tests: install the package into build/c-install, build the tests and examples
# against it with plain CMake, and run them with ctest (each also under ASan + UBSan).
# Needs a prior `cargo build --release --workspace` (make build) and the LoRA fixtures
# (make fixtures).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}/release"
build="$root/build/c-tests"
prefix="$root/build/c-install"
for f in libllmedge.so libllmedge.a llmedge; do
  [ -e "$target/$f" ] || { echo "missing $target/$f: run make build first" >&2; exit 1; }
done
rm -rf "$prefix"
"$root/scripts/install-c.sh" "$prefix" >/dev/null
mkdir -p "$build"
model="$("$target/llmedge" fetch --json | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["path"])')"
"$target/llmedge" run --raw --greedy -n 32 --json "The capital of France is" \
  | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["text"])' > "$build/expected.txt"
head -c 1000000 "$model" > "$build/corrupt.gguf"
fixtures="$root/models/cache/fixtures/lora"
[ -e "$fixtures/lora_smollm2_a.gguf" ] || { echo "missing $fixtures: run make fixtures first" >&2; exit 1; }
vlm="$root/models/cache/fixtures/vlm"
[ -e "$vlm/tiny-vlm.gguf" ] || { echo "missing $vlm: run make fixtures first" >&2; exit 1; }
# The vision test's expectation: the mtmd reference loop (no llmedge code) on the same pixels.
"$target/examples/vlm_reference" "$vlm/tiny-vlm.gguf" "$vlm/tiny-vlm-mmproj.gguf" 16 \
  $'<|im_start|>user\n<__media__>Describe the image.<|im_end|>\n<|im_start|>assistant\n' \
  "48x40:$vlm/pattern.rgb" 2>/dev/null \
  | python3 -c 'import json,sys; print(" ".join(map(str, json.load(sys.stdin)["tokens"])))' > "$build/vlm_expected.txt"

# Every function the header declares must be exercised by the NULL-argument test.
missing=0
for fn in $(grep -oE '\bllmedge_[a-z0-9_]+\(' "$root/include/llmedge.h" | tr -d '(' | sort -u); do
  grep -q "\b$fn(" "$root/tests/c/test_null_args.c" || { echo "test_null_args.c does not call $fn" >&2; missing=1; }
done
[ "$missing" -eq 0 ]

cmake -S "$root/tests/c" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_PREFIX_PATH="$prefix" \
  -DMODEL="$model" -DEXPECTED="$build/expected.txt" -DCORRUPT="$build/corrupt.gguf" \
  -DLORA_FIXTURES="$fixtures" -DVLM_FIXTURES="$vlm" -DVLM_EXPECTED="$build/vlm_expected.txt" >/dev/null
cmake --build "$build"
ctest --test-dir "$build" --output-on-failure

# The examples build against the installed package the same way.
cmake -S "$root/examples" -B "$build/examples" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$build/examples"
LLMEDGE_MODEL="$model" EXAMPLES_BIN="$build/examples" "$root/examples/cpp/clinical_note/check.sh"
