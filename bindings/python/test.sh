#!/usr/bin/env bash
# Build and test the llmedge Python package (real model, no mocks).
#
# From the repository root, after `cargo build --release --workspace`:
#     bindings/python/test.sh [pytest args...]
# Creates or reuses the venv $ROOT/.venv (override with LLMEDGE_VENV), installs the test
# dependencies, installs the package with `pip install ./bindings/python` (maturin reuses the
# shared CARGO_TARGET_DIR, so llama.cpp is not compiled again) and runs pytest.
# Exits non-zero when anything fails. It does not run the benchmark (bench/python_bench.py).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="${LLMEDGE_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$CARGO_TARGET_DIR/release/llmedge" ]; then
  echo "test.sh: $CARGO_TARGET_DIR/release/llmedge is missing; run 'cargo build --release --workspace' first" >&2
  exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "test.sh: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install -q --disable-pip-version-check "pytest>=7" numpy tqdm mypy jsonschema
echo "test.sh: pip install ./bindings/python (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
(cd "$ROOT" && "$PY" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps ./bindings/python)
cd "$HERE"
exec "$PY" -m pytest -q -p no:cacheprovider tests "$@"
