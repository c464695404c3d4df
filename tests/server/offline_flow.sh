#!/usr/bin/env bash
# The whole CLI and server flow, run by test_offline.py inside `unshare -n` (a network
# namespace with loopback only) under `strace -f`: run, serve, a client request, audit verify.
set -euo pipefail
LLMEDGE="$1"; MODEL="$2"; WORK="$3"; PY="$4"
ip link set lo up
"$LLMEDGE" run --model "$MODEL" --greedy -n 8 --audit-dir "$WORK/audit" "Hello" > "$WORK/run.txt"
cat > "$WORK/serve.toml" <<TOML
[[models]]
id = "m"
path = "$MODEL"
slots = 2
n_ctx = 512
[audit]
dir = "$WORK/audit"
TOML
"$LLMEDGE" serve --config "$WORK/serve.toml" --port 18931 > "$WORK/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 300); do
  "$PY" - <<'PYEOF' && break || sleep 0.2
import urllib.request, sys
try:
    sys.exit(0 if urllib.request.urlopen("http://127.0.0.1:18931/ready", timeout=1).status == 200 else 1)
except Exception:
    sys.exit(1)
PYEOF
done
"$PY" - <<'PYEOF'
import openai
c = openai.OpenAI(base_url="http://127.0.0.1:18931/v1", api_key="none", max_retries=0)
r = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}], max_tokens=8, temperature=0)
assert r.choices[0].message.content
PYEOF
kill -TERM "$SERVER"; wait "$SERVER"
"$LLMEDGE" audit verify "$WORK/audit" > "$WORK/verify.txt"
echo OFFLINE-FLOW-OK
