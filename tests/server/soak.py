#!/usr/bin/env python3
"""Soak test of `llmedge serve`: many requests with random cancellations, client disconnects
and malformed bodies, then the invariants an appliance relies on.

    python3 tests/server/soak.py --requests 10000        # the full run (make soak)
    python3 tests/server/soak.py --requests 300          # what CI runs (test_soak.py)

Checks afterwards: the server is alive and answers; its RSS after the run is within the
stated bound of its RSS after warm-up; every request sent with an X-Request-Id has exactly one
audit record (matched by that id; none twice, none without a request), those whose clients
went away included; the audit chain verifies. Prints one JSON summary line; exits 1 when a check fails.
Only loopback is used.
"""

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from conftest import LLMEDGE, MODEL, Server, audit_records, http, post_after_continue, request_head  # noqa: E402

# RSS after the run may exceed RSS after warm-up by at most this much: caches are bounded
# (prefix cache 16 MiB here), so growth beyond it would be a leak.
RSS_BOUND_MIB = 48

CONFIG = f"""
[server]
bind = "127.0.0.1:@PORT@"
max_body_bytes = 65536
request_timeout_secs = 60

[[models]]
id = "m"
path = "{MODEL}"
slots = 4
n_ctx = 512
threads = 2
max_queue = 256
prefix_cache_mb = 16

[cache]
backend = "none"

[audit]
dir = "@AUDIT@"
fsync = "every:100"
"""

QUESTIONS = ["Name a colour.", "What is 2+2?", "Say hello.", "Name a fruit.", "What day follows Monday?"]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def body(rng: random.Random, stream: bool, long: bool = False) -> bytes:
    return json.dumps({
        "model": "m",
        "messages": [{"role": "user", "content": rng.choice(QUESTIONS)}],
        "max_tokens": 200 if long else rng.randint(2, 12),
        "temperature": rng.choice([0, 0.7]),
        "stream": stream,
    }).encode()


def raw_request(port: int, payload: bytes, request_id: str | None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    headers = {"x-request-id": request_id} if request_id else {}
    sock.sendall(request_head("/v1/chat/completions", payload, headers) + payload)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """The whole response (the server closes the connection after it: `connection: close`)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def one(kind: str, i: int, port: int, seed: int) -> tuple[str, str, int]:
    """Send request i of this kind; returns (kind, request id or '', HTTP status or 0)."""
    rng = random.Random(seed * 1_000_003 + i)
    rid = f"soak-{i}"
    if kind == "malformed":
        payload = rng.choice([b"{not json", b'{"messages": 3}', b'{"model": "m"}', b"[]",
                              json.dumps({"messages": [{"role": "user"}], "max_tokens": "x"}).encode()])
        sock = raw_request(port, payload, None)
        status = int(read_all(sock).split(b" ", 2)[1])
        sock.close()
        return kind, "", status
    if kind == "bad_param":
        payload = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                              "max_tokens": 10**7}).encode()
        sock = raw_request(port, payload, None)
        status = int(read_all(sock).split(b" ", 2)[1])
        sock.close()
        return kind, "", status
    if kind in ("chat", "stream"):
        sock = raw_request(port, body(rng, kind == "stream"), rid)
        data = read_all(sock)
        sock.close()
        return kind, rid, int(data.split(b" ", 2)[1])
    if kind == "stream_disconnect":
        sock = raw_request(port, body(rng, True, long=True), rid)
        data = b""
        wanted = rng.randint(1, 6)
        while data.count(b"data:") < wanted:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        sock.close()
        return kind, rid, int(data.split(b" ", 2)[1]) if data else 0
    # early_disconnect: a blocking request whose client goes away before the answer, at any
    # moment after its request reached a handler (from while the body is being read on).
    sock = post_after_continue(port, "/v1/chat/completions", body(rng, False, long=True), {"x-request-id": rid})
    time.sleep(rng.choice([0.0, rng.uniform(0.0, 0.3)]))
    sock.close()
    return kind, rid, 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if not LLMEDGE.exists():
        print(f"{LLMEDGE} missing: build first", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="llmedge-soak-"))
    audit = tmp / "audit"
    server = Server(tmp, CONFIG.replace("@AUDIT@", str(audit)), name="soak").start()
    rng = random.Random(args.seed)
    kinds = rng.choices(
        ["chat", "stream", "stream_disconnect", "early_disconnect", "malformed", "bad_param"],
        weights=[40, 20, 15, 10, 10, 5],
        k=args.requests,
    )
    warm_at = max(1, args.requests // 10)
    results, warm_rss = [], None
    started = time.time()
    lock = threading.Lock()
    with ThreadPoolExecutor(args.concurrency) as pool:
        futures = [pool.submit(one, k, i, server.port, args.seed) for i, k in enumerate(kinds)]
        for n, f in enumerate(futures, 1):
            with lock:
                results.append(f.result())
            if n == warm_at:
                warm_rss = rss_mib(server.proc.pid)
    elapsed = time.time() - started
    time.sleep(2.0)  # cancelled requests finish their audit record
    alive = server.proc.poll() is None and http("GET", server.url + "/health")[0] == 200
    end_rss = rss_mib(server.proc.pid) if alive else 0.0
    code = server.stop()
    records = audit_records(audit)
    by_id: dict[str, int] = {}
    for r in records:
        by_id[r["request_id"]] = by_id.get(r["request_id"], 0) + 1
    sent = {rid for _, rid, _ in results if rid}
    answered = {rid for kind, rid, status in results if rid and status == 200 and kind in ("chat", "stream")}
    duplicates = [rid for rid, n in by_id.items() if n > 1]
    unknown = [rid for rid in by_id if rid not in sent]
    missing = sorted(answered - set(by_id))
    kind_of = {rid: kind for kind, rid, _ in results if rid}
    not_audited = sorted(f"{rid} ({kind_of[rid]})" for rid in sent - set(by_id))
    verify = subprocess.run([str(LLMEDGE), "--json", "audit", "verify", str(audit)], capture_output=True, text=True)
    chain_ok = verify.returncode == 0 and json.loads(verify.stdout)["ok"]
    statuses: dict[str, dict[int, int]] = {}
    for kind, _, status in results:
        statuses.setdefault(kind, {}).setdefault(status, 0)
        statuses[kind][status] += 1
    bad_rejects = [k for k in ("malformed", "bad_param") for s in statuses.get(k, {}) if s != 400]
    summary = {
        "requests": args.requests,
        "seconds": round(elapsed, 1),
        "statuses": statuses,
        "alive": alive,
        "exit_code": code,
        "rss_after_warmup_mib": round(warm_rss or 0, 1),
        "rss_at_end_mib": round(end_rss, 1),
        "rss_bound_mib": RSS_BOUND_MIB,
        "audit_records": len(records),
        "requests_with_id": len(sent),
        "ids_audited": len(by_id),
        "duplicates": duplicates[:5],
        "records_without_a_request": unknown[:5],
        "answered_but_not_audited": missing[:5],
        "sent_but_not_audited": not_audited[:5],
        "chain_ok": chain_ok,
    }
    ok = (
        alive
        and code == 0
        and end_rss - (warm_rss or 0) <= RSS_BOUND_MIB
        and not duplicates
        and not unknown
        and not missing
        and chain_ok
        and not bad_rejects
        and statuses.get("chat", {}).get(200, 0) > 0
    )
    summary["ok"] = ok
    print(json.dumps(summary))
    if ok:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"kept {tmp} for inspection", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
