#!/usr/bin/env bash
# The `llmedge serve` tests: the official openai client, a real redis-server, real processes.
# From the repository root, after `cargo build --release --workspace` and `make fixtures`:
#     tests/server/run.sh [pytest args...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${LLMEDGE_VENV:-$ROOT/.venv}"
test -x "$VENV/bin/python" || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "openai==3.57.0" "redis==8.1.0" "pytest>=7"
cd "$ROOT/tests/server"
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider "${@:-.}"
