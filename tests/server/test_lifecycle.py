"""Server lifecycle: a full queue answers 503, SIGTERM drains requests in flight, and a
server killed with SIGKILL restarts with its audit chain intact and continued."""

import signal
import threading
import time

import openai
import pytest

from conftest import Server, audit_records, base_config, http, verify_audit


def long_request(server, results, key="sk-test-1", tokens=150):
    try:
        r = server.client(key=key, timeout=300).chat.completions.create(
            model="smollm2",
            messages=[{"role": "user", "content": "Tell me a long story."}],
            max_tokens=tokens,
            temperature=0,
            extra_body={"ignore_eos": True},
        )
        results.append(r)
    except Exception as e:  # noqa: BLE001 - the test inspects it
        results.append(e)


def test_a_full_queue_is_503_and_ready_says_so(tmp_path):
    s = Server(tmp_path, base_config('[cache]\nbackend = "none"\n', slots=1, max_queue=1)).start()
    try:
        results = []
        threads = [threading.Thread(target=long_request, args=(s, results)) for _ in range(2)]
        for t in threads:
            t.start()
            time.sleep(0.5)
        # One runs, one waits: the queue is full.
        status, body = http("POST", s.url + "/v1/chat/completions",
                            {"model": "smollm2", "messages": [{"role": "user", "content": "hi"}]},
                            {"authorization": "Bearer sk-test-1"})
        assert status == 503 and body["error"]["code"] == "busy", body
        assert http("GET", s.url + "/ready")[0] == 503
        with pytest.raises(openai.APIStatusError) as e:
            s.client().chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "hi"}])
        assert e.value.status_code == 503
        for t in threads:
            t.join()
        assert all(not isinstance(r, Exception) for r in results), results
    finally:
        assert s.stop() == 0


def test_sigterm_drains_requests_in_flight(tmp_path):
    audit = tmp_path / "audit"
    s = Server(tmp_path, base_config(slots=2, audit_dir=audit)).start()
    results = []
    t = threading.Thread(target=long_request, args=(s, results, "sk-test-1", 60))
    t.start()
    time.sleep(1.0)
    s.proc.send_signal(signal.SIGTERM)
    t.join(timeout=120)
    assert s.proc.wait(timeout=120) == 0, s.log_text()
    r = results[0]
    assert not isinstance(r, Exception), r
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 60
    verify_audit(audit)


def test_kill_and_restart_keeps_the_audit_chain(tmp_path):
    audit = tmp_path / "audit"
    config = base_config(slots=2, audit_dir=audit)
    s = Server(tmp_path, config, name="first").start()
    s.client().chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "one"}], max_tokens=4)
    results = []
    t = threading.Thread(target=long_request, args=(s, results))
    t.start()
    time.sleep(1.0)
    s.proc.send_signal(signal.SIGKILL)
    s.proc.wait()
    t.join()
    before = len(audit_records(audit))
    again = Server(tmp_path, config, name="second").start()
    try:
        again.client().chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "two"}], max_tokens=4
        )
        time.sleep(0.3)
        records = audit_records(audit)
        assert len(records) == before + 1
        assert records[-1]["seq"] == records[-2]["seq"] + 1
        assert records[-1]["prev"] == records[-2]["hash"]
        verify_audit(audit)
    finally:
        assert again.stop() == 0
