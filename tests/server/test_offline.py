"""The offline guarantee: the full CLI and server flow works in a network namespace with
loopback only, and, traced with strace, never tries to reach anything but loopback."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import LLMEDGE, MODEL

HERE = Path(__file__).parent


def test_no_outbound_connection_is_ever_attempted(tmp_path):
    for tool in ("unshare", "strace", "ip"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing (scripts/install-deps.sh installs it)")
    trace = tmp_path / "trace"
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    out = subprocess.run(
        [
            "unshare", "-n", "strace", "-f", "-qq", "-o", str(trace), "-e",
            "trace=connect,sendto,sendmsg,bind",
            "bash", str(HERE / "offline_flow.sh"), str(LLMEDGE), str(MODEL), str(tmp_path), sys.executable,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert out.returncode == 0 and "OFFLINE-FLOW-OK" in out.stdout, out.stdout + out.stderr + (
        (tmp_path / "serve.log").read_text() if (tmp_path / "serve.log").exists() else ""
    )
    calls = trace.read_text().splitlines()
    inet = [c for c in calls if "AF_INET" in c]
    assert inet, "the trace saw no socket calls at all: it cannot prove anything"
    outside = [
        c for c in inet
        if not re.search(r'inet_addr\("127\.0\.0\.1"\)|inet_pton\(AF_INET6, "::1"|sin_addr=inet_addr\("0\.0\.0\.0"\)', c)
    ]
    assert not outside, "\n".join(outside[:10])
    # The requests really were served and audited.
    verified = (tmp_path / "verify.txt").read_text()
    assert verified.startswith("OK: 2 records"), verified
