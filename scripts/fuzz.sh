#!/usr/bin/env bash
# Bounded, deterministic cargo-fuzz runs of fuzz/ (make test-fuzz): gguf_parse (llmedge's
# GGUF parser on arbitrary bytes) and model_load (Model::load, i.e. that parser and then
# llama.cpp's loader, on mutated small GGUFs). Each target starts from a scratch copy of its
# committed corpus (fuzz/corpus/<target>), so the tree stays clean; new inputs end up in
# fuzz/target/corpus-run/<target> and crashes in fuzz/artifacts/<target>. Exits non-zero on any
# crash, panic, abort, leak, timeout or out-of-memory.
#
#   scripts/fuzz.sh                    # CI: fixed seed and run count per target (~2 min after the build)
#   FUZZ_TIME=600 scripts/fuzz.sh      # the long run: 600 s per target, no run limit
#   FUZZ_RUNS=100000 scripts/fuzz.sh   # a fixed number of runs per target
#   FUZZ_SEED=7 FUZZ_TARGETS=gguf_parse scripts/fuzz.sh
#
# There is no nightly toolchain: RUSTC_BOOTSTRAP=1 lets stable rustc take cargo-fuzz's -Z
# sanitizer flags. The first build compiles llama.cpp again (with cmake) into fuzz/target.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

CARGO_FUZZ_VERSION=0.13.2
export RUSTC_BOOTSTRAP=1
# Never the shared workspace target dir (the Makefile exports one): the fuzz build uses other flags.
export CARGO_TARGET_DIR="$root/fuzz/target"

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

read -r -a targets <<<"${FUZZ_TARGETS:-gguf_parse model_load}"
seed=${FUZZ_SEED:-1}
# Default run counts, sized so both targets together take under 3 minutes on 2 cores.
declare -A default_runs=([gguf_parse]=400000 [model_load]=60000)

# Release build with debug assertions and overflow checks, so an arithmetic overflow in the
# parser is a crash instead of a silently wrapped number.
build_flags=(--release --debug-assertions)
cargo fuzz build "${build_flags[@]}"

for target in "${targets[@]}"; do
  corpus="$root/fuzz/target/corpus-run/$target"
  rm -rf "$corpus"
  mkdir -p "$corpus"
  cp "$root/fuzz/corpus/$target"/* "$corpus"/
  limit=(-runs="${FUZZ_RUNS:-${default_runs[$target]:-10000}}")
  if [ -n "${FUZZ_TIME:-}" ]; then
    limit=(-max_total_time="$FUZZ_TIME")
  fi
  echo "== fuzz $target: seed $seed, ${limit[*]}"
  start=$SECONDS
  cargo fuzz run "${build_flags[@]}" "$target" "$corpus" -- \
    -seed="$seed" "${limit[@]}" -max_len=24576 -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1
  echo "== fuzz $target: ok in $((SECONDS - start)) s"
done
