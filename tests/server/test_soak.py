"""The shortened soak (200 requests) of `soak.py`; `make soak` runs the full 10,000."""

import json
import subprocess
import sys
from pathlib import Path


def test_soak_keeps_the_server_alive_bounded_and_every_request_audited_once():
    out = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("soak.py")), "--requests", "200"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    assert lines, out.stdout + out.stderr
    summary = json.loads(lines[-1])
    assert summary["ok"], json.dumps(summary, indent=1) + out.stderr[-3000:]
    assert summary["ids_audited"] == summary["requests_with_id"]
