"""Fixtures for the `llmedge serve` tests: a real server process on a free loopback port,
driven with the official `openai` client (and plain HTTP where the client hides status codes).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
LLMEDGE = TARGET / "release" / "llmedge"
MODEL = ROOT / "models" / "cache" / "SmolLM2-135M-Instruct.Q4_1.gguf"
LORA = ROOT / "models" / "cache" / "fixtures" / "lora"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None, timeout=120):
    """(status, parsed JSON or text) of one request; never raises for HTTP errors."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def request_head(path: str, payload: bytes, headers: dict) -> bytes:
    """The head of a one-shot JSON POST (`connection: close`), for tests that drive the socket
    themselves."""
    head = f"POST {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n"
    head += "content-type: application/json\r\n" f"content-length: {len(payload)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n"


def post_after_continue(port: int, path: str, payload: bytes, headers: dict) -> socket.socket:
    """POST with `Expect: 100-continue`: the head first, the body once the server asks for it,
    which it does when a handler starts reading the body. Returns the open socket: a client
    that closes it now is known to have gone after its request reached a handler (a request
    whose connection ends as its head arrives is never handed to one)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(request_head(path, payload, {"expect": "100-continue", **headers}))
    interim = b""
    while b"\r\n\r\n" not in interim:
        chunk = sock.recv(4096)
        if not chunk:
            break
        interim += chunk
    if not interim.startswith(b"HTTP/1.1 100"):
        sock.close()
        raise AssertionError(f"expected 100 Continue, got {interim[:200]!r}")
    sock.sendall(payload)
    return sock


class Server:
    """One `llmedge serve` process."""

    def __init__(self, tmp: Path, config: str, name: str = "server"):
        self.tmp = tmp
        self.port = free_port()
        self.config_path = tmp / f"{name}.toml"
        self.config_path.write_text(config.replace("@PORT@", str(self.port)))
        self.log_path = tmp / f"{name}.log"
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> "Server":
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(LLMEDGE), "serve", "--config", str(self.config_path)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.log_text()}")
            try:
                status, _ = http("GET", self.url + "/ready", timeout=2)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metrics(self) -> dict:
        """Metric samples by `name{labels}`."""
        _, text = http("GET", self.url + "/metrics")
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def stop(self, sig=signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def client(self, key="sk-test-1", **kw):
        import openai

        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0, **kw)


def base_config(
    extra: str = "", slots: int = 4, max_queue: int = 64, audit_dir=None, max_prompt_tokens=None
) -> str:
    audit = f'[audit]\ndir = "{audit_dir}"\nfsync = "always"\n' if audit_dir else ""
    limit = f"max_prompt_tokens = {max_prompt_tokens}" if max_prompt_tokens else ""
    return f"""
[server]
bind = "127.0.0.1:@PORT@"
max_body_bytes = 65536
request_timeout_secs = 120
shutdown_grace_secs = 30

[[api_keys]]
key = "sk-test-1"
tenant = "ward-7"

[[api_keys]]
key = "sk-limited"
tenant = "lab"
requests_per_minute = 3

[[models]]
id = "smollm2"
path = "{MODEL}"
slots = {slots}
n_ctx = 1024
threads = 2
max_queue = {max_queue}
{limit}

{audit}
{extra}
"""


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    if not LLMEDGE.exists():
        pytest.fail(f"{LLMEDGE} missing: run `cargo build --release --workspace` first")
    tmp = tmp_path_factory.mktemp("serve")
    audit = tmp / "audit"
    # No response cache here: answers must come from the model every time.
    s = Server(tmp, base_config('[cache]\nbackend = "none"\n', slots=8, audit_dir=audit, max_prompt_tokens=512)).start()
    s.audit_dir = audit
    yield s
    assert s.stop() == 0, s.log_text()


def audit_records(directory: Path) -> list:
    records = []
    for f in sorted(directory.glob("audit-*.jsonl")):
        records += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return records


def verify_audit(directory: Path) -> dict:
    out = subprocess.run(
        [str(LLMEDGE), "--json", "audit", "verify", str(directory)],
        capture_output=True,
        text=True,
    )
    report = json.loads(out.stdout)
    assert out.returncode == 0 and report["ok"], out.stdout + out.stderr
    return report


sys.path.insert(0, str(Path(__file__).parent))
