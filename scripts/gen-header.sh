#!/usr/bin/env bash
# Generate include/llmedge.h from the ffi crate with the pinned cbindgen.
#   scripts/gen-header.sh          write include/llmedge.h
#   scripts/gen-header.sh --check  fail if the committed header differs from a fresh one
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cbindgen_version="0.29.4"
tools="$root/.tools"
cbindgen="$tools/bin/cbindgen"
if ! "$cbindgen" --version 2>/dev/null | grep -q "$cbindgen_version"; then
  # Built apart from the workspace so its dependencies never change llama.cpp's build.
  CARGO_TARGET_DIR="$tools/target" cargo install cbindgen --version "$cbindgen_version" --locked --root "$tools" -q
fi
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)"
IFS=. read -r major minor patch <<<"$version"
abi="$(sed -n 's/^pub const LLMEDGE_ABI_VERSION: u32 = \([0-9]*\);/\1/p' "$root/ffi/src/lib.rs")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$root/ffi/cbindgen.toml" "$tmp/cbindgen.toml"
cat >> "$tmp/cbindgen.toml" <<TOML
after_includes = """
#define LLMEDGE_VERSION_MAJOR $major
#define LLMEDGE_VERSION_MINOR $minor
#define LLMEDGE_VERSION_PATCH $patch
#define LLMEDGE_VERSION_STRING "$version"
"""
TOML
# `after_includes` must sit before the first table of the config.
python3 - "$tmp/cbindgen.toml" <<'PY'
import sys, re
p = sys.argv[1]
s = open(p).read()
i = s.index('after_includes = """')
tail = s[i:]
head = s[:i]
first_table = re.search(r'^\[', head, re.M).start()
open(p, "w").write(head[:first_table] + tail + "\n" + head[first_table:])
PY
"$cbindgen" --quiet --config "$tmp/cbindgen.toml" --crate llmedge-ffi --output "$tmp/llmedge.h" "$root/ffi"
if [ "${1:-}" = "--check" ]; then
  if ! diff -u "$root/include/llmedge.h" "$tmp/llmedge.h"; then
    echo "include/llmedge.h is out of date: run 'make header' and commit it" >&2
    exit 1
  fi
  echo "include/llmedge.h is up to date"
else
  cp "$tmp/llmedge.h" "$root/include/llmedge.h"
  echo "wrote include/llmedge.h"
fi
