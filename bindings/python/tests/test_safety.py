"""The safety layer and the audit log through Python, on the real model."""

import json

import pytest

import llmedge

BLOCKED_INPUT = "Explain how to make a bomb at home."
BLOCKED_OUTPUT = "Sure. Here is a pipe bomb recipe: step one"
MOBILE = "13812345678"


def test_blocked_input_is_refused(model):
    refusal = llmedge.Safety().refusal_message
    c = model.complete(BLOCKED_INPUT, max_tokens=16, request_id="blocked-1")
    assert c.finish_reason == "content_filter"
    assert c.text == refusal
    assert c.tokens == [] and c.usage.completion_tokens == 0
    assert c.request_id == "blocked-1"
    assert c.safety["input_verdict"]["verdict"] == "block"
    assert "weapons" in c.safety["categories"]
    assert model.generate(BLOCKED_INPUT) == refusal
    reply = model.chat_complete([{"role": "user", "content": BLOCKED_INPUT}])
    assert reply.finish_reason == "content_filter" and reply.text == refusal
    assert "".join(model.chat([{"role": "user", "content": BLOCKED_INPUT}], stream=True)) == refusal
    # The structured flows surface it as an error.
    with pytest.raises(llmedge.SafetyBlockedError) as e:
        model.generate_json(BLOCKED_INPUT, {"type": "string"})
    assert e.value.code == 40


def test_allowed_request_reports_safety(model):
    c = model.complete("The capital of France is", max_tokens=4, greedy=True)
    assert c.finish_reason in ("stop", "length")
    assert c.request_id.startswith("req-")
    assert c.safety["input_verdict"] == {"verdict": "allow"}
    assert c.to_dict()["safety"] == c.safety
    assert c.to_dict()["request_id"] == c.request_id


def test_blocked_output_is_never_streamed(model):
    # The grammar forces the model to write a blocked phrase; the output filter stops it.
    stream = model.generate("Say something.", choices=[BLOCKED_OUTPUT], stream=True)
    pieces = list(stream)
    streamed = "".join(pieces)
    assert "pipe bomb" not in streamed and "bomb" not in streamed
    done = stream.completion
    assert done.finish_reason == "content_filter"
    assert "pipe bomb" not in done.text
    assert done.safety["output_verdict"]["verdict"] == "block"
    c = model.complete("Say something.", choices=[BLOCKED_OUTPUT])
    assert c.finish_reason == "content_filter" and "pipe bomb" not in c.text


def test_safety_off_passes_it(model_path):
    with llmedge.Model(model_path, safety_policy=False) as m:
        c = m.complete("Say something.", choices=[BLOCKED_OUTPUT])
        assert c.text == BLOCKED_OUTPUT and c.finish_reason == "stop"
        assert c.safety is None
        assert "".join(m.generate("Say something.", choices=[BLOCKED_OUTPUT], stream=True)) == BLOCKED_OUTPUT
        # A session inherits the model's policy; it may choose its own.
        with m.session() as s:
            assert s.complete("Say something.", choices=[BLOCKED_OUTPUT]).safety is None
        with m.session(safety_policy=None) as s:
            c = s.complete("Say something.", choices=[BLOCKED_OUTPUT])
            assert c.finish_reason == "content_filter"


def test_check_input_redacts_chinese_mobile():
    safety = llmedge.Safety()
    assert safety.enabled
    check = safety.check_input(f"请联系我，我的手机号是{MOBILE}，谢谢。")
    assert MOBILE not in check["text"]
    assert check["verdict"] == {"verdict": "allow"} or check["verdict"]["verdict"] == "flag"
    assert check["redactions"].get("mobile") == 1
    assert any(p["kind"] == "mobile" for p in check["pii"])
    out = safety.check_output(f"Call {MOBILE}.")
    assert MOBILE not in out["text"] and out["redactions"].get("mobile") == 1
    blocked = safety.check_input(BLOCKED_INPUT)
    assert blocked["verdict"]["verdict"] == "block" and blocked["verdict"]["category"] == "weapons"
    assert llmedge.Safety(False).check_input(MOBILE)["text"] == MOBILE


def test_bad_policy_file_names_the_line(tmp_path, model_path):
    policy = tmp_path / "policy.toml"
    policy.write_text('enabled = true\nrefusal_message = "no"\n\n[lexicon]\nbuiltin = ["zh", "xx"]\n', encoding="utf-8")
    with pytest.raises(llmedge.PolicyError) as e:
        llmedge.Safety(policy)
    assert e.value.code == 41
    assert f"{policy}:5" in str(e.value)
    policy.write_text('enabled = true\nunknown_key = 1\n', encoding="utf-8")
    with pytest.raises(llmedge.PolicyError) as e:
        llmedge.Model(model_path, safety_policy=str(policy))
    assert f"{policy}:2" in str(e.value)
    with pytest.raises(llmedge.IoError):
        llmedge.Safety(tmp_path / "missing.toml")
    with pytest.raises(llmedge.ArgumentTypeError):
        llmedge.Safety(42)


def test_custom_policy_file(tmp_path, model_path):
    policy = tmp_path / "policy.toml"
    policy.write_text('refusal_message = "Refused."\n\n[pii]\nenabled = false\n', encoding="utf-8")
    safety = llmedge.Safety(str(policy))
    assert safety.refusal_message == "Refused."
    assert safety.check_input(MOBILE)["text"] == MOBILE
    with llmedge.Model(model_path, safety_policy=safety, n_ctx=512) as m:
        assert m.generate(BLOCKED_INPUT) == "Refused."
    with llmedge.Model(model_path, safety_policy=policy, n_ctx=512) as m:
        assert m.generate(BLOCKED_INPUT) == "Refused."


def read_records(directory):
    lines = []
    for segment in sorted(directory.glob("audit-*.jsonl")):
        lines.extend(segment.read_text(encoding="utf-8").splitlines())
    return [json.loads(line) for line in lines]


def test_audit_log_records_every_request(tmp_path, model_path):
    audit_dir = tmp_path / "audit"
    ids = []
    with llmedge.Model(model_path, audit_dir=audit_dir, tenant="clinic-a", n_ctx=1024) as m:
        ids.append(m.complete("Hello", max_tokens=4, greedy=True, request_id="req-one").request_id)
        ids.append(m.chat_complete([{"role": "user", "content": "Hi"}], max_tokens=4, tenant="clinic-b").request_id)
        stream = m.generate("Count:", max_tokens=4, stream=True)
        list(stream)
        ids.append(stream.completion.request_id)
        ids.append(m.complete(BLOCKED_INPUT).request_id)
        ids.append(m.complete_json("A number:", {"type": "integer"}, max_tokens=8).completion.request_id)
        out = m.run_template("role_en", {"role": "poet", "query": "Say hi."}, max_tokens=4)
        ids.append(out.completion.request_id)
        with m.session(tenant="clinic-c") as s:
            ids.append(s.complete("Hi", max_tokens=2).request_id)
    assert ids[0] == "req-one"
    records = read_records(audit_dir)
    assert [r["request_id"] for r in records] == ids
    assert [r["seq"] for r in records] == list(range(1, len(ids) + 1))
    assert {r["surface"] for r in records} == {"python"}
    assert [r["tenant"] for r in records] == ["clinic-a", "clinic-b", "clinic-a", "clinic-a", "clinic-a", "clinic-a", "clinic-c"]
    assert records[3]["finish_reason"] == "content_filter"
    assert all(len(r["model"]["sha256"]) == 64 for r in records)

    report = llmedge.audit_verify(audit_dir)
    assert report["ok"] is True, report
    assert report["records"] == len(ids) and report["last_seq"] == len(ids)
    assert not any(f["kind"] == "modified" for f in report["findings"])

    # Tamper with one line: the chain no longer verifies.
    segment = sorted(audit_dir.glob("audit-*.jsonl"))[0]
    lines = segment.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = lines[1].replace('"clinic-b"', '"clinic-x"')
    segment.write_text("".join(lines), encoding="utf-8")
    tampered = llmedge.audit_verify(str(audit_dir))
    assert tampered["ok"] is False
    assert any(f["line"] == 2 and f["kind"] == "modified" for f in tampered["findings"]), tampered
    # A single segment file can be verified too.
    assert llmedge.audit_verify(segment)["ok"] is False
    # Closing the model released the log; a log whose last record fails its hash is refused.
    lines[-1] = lines[-1].replace('"clinic-c"', '"clinic-z"')
    segment.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(llmedge.AuditError) as e:
        llmedge.Model(model_path, audit_dir=audit_dir)
    assert e.value.code == 42


def test_audit_verify_errors(tmp_path):
    with pytest.raises(llmedge.Error):
        llmedge.audit_verify(tmp_path / "nothing-here")
    with pytest.raises(llmedge.NullArgumentError):
        llmedge.audit_verify(None)
