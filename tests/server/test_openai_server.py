"""`llmedge serve` driven by the official `openai` Python client: chat, streaming, JSON mode,
embeddings, errors, concurrency, disconnects, and the audit record of every request."""

import base64
import json
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from conftest import audit_records, http, post_after_continue, verify_audit

GREEDY = dict(temperature=0, max_tokens=24)
QUESTIONS = [f"Give one fact about the number {i}." for i in range(32)]


def ask(client, question, **kw):
    return client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": question}], **{**GREEDY, **kw}
    )


def test_chat_completion_has_usage_route_and_request_id(server):
    r = ask(server.client(), "What is the capital of France?")
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    extra = r.model_extra["llmedge"]
    assert extra["route"] == "smollm2"
    assert extra["request_ids"][0].startswith("req-")
    assert r.model == "smollm2"


def test_streaming_concatenation_equals_the_whole_answer(server):
    client = server.client()
    whole = ask(client, "Name three colours.", max_tokens=32)
    stream = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Name three colours."}],
        stream=True,
        stream_options={"include_usage": True},
        **{**GREEDY, "max_tokens": 32},
    )
    pieces, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.content:
                pieces.append(c.delta.content)
            finish = c.finish_reason or finish
    assert "".join(pieces) == whole.choices[0].message.content
    assert finish == whole.choices[0].finish_reason
    assert usage.completion_tokens == whole.usage.completion_tokens
    assert len(pieces) > 1, "the answer arrived in one piece: not streamed"


def test_legacy_completions_and_n_choices(server):
    client = server.client()
    r = client.completions.create(model="smollm2", prompt="The capital of France is", **GREEDY)
    assert r.choices[0].text
    r = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Pick a fruit."}],
        n=3,
        seed=5,
        temperature=1.0,
        max_tokens=8,
    )
    assert [c.index for c in r.choices] == [0, 1, 2]


def test_json_mode_and_json_schema_give_valid_json(server):
    client = server.client()
    r = ask(
        client,
        'Give a JSON object with the keys "name" and "colour" for a cat.',
        response_format={"type": "json_object"},
        max_tokens=300,
    )
    assert r.choices[0].finish_reason == "stop", r.choices[0].message.content
    assert isinstance(json.loads(r.choices[0].message.content), dict)
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    r = ask(
        client,
        "Invent a patient.",
        response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": schema}},
        max_tokens=64,
    )
    value = json.loads(r.choices[0].message.content)
    assert isinstance(value["name"], str) and isinstance(value["age"], int)


def test_embeddings_through_the_client(server):
    r = server.client().embeddings.create(model="smollm2", input=["hello world", "goodbye"])
    assert len(r.data) == 2
    vector = r.data[0].embedding
    assert len(vector) == 576
    assert abs(sum(x * x for x in vector) - 1.0) < 1e-3
    # Explicit float encoding over plain HTTP gives the same vector as the client's base64.
    status, body = http(
        "POST",
        server.url + "/v1/embeddings",
        {"model": "smollm2", "input": "hello world", "encoding_format": "base64"},
        {"authorization": "Bearer sk-test-1"},
    )
    assert status == 200
    raw = base64.b64decode(body["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert max(abs(a - b) for a, b in zip(decoded, vector)) < 1e-6


def test_errors_have_openai_status_codes(server):
    with pytest.raises(openai.AuthenticationError) as e:
        ask(server.client(key="sk-wrong"), "hi")
    assert e.value.status_code == 401
    with pytest.raises(openai.BadRequestError):
        ask(server.client(), "hi", logprobs=True)
    with pytest.raises(openai.BadRequestError):
        ask(server.client(), "hi", max_tokens=100000)
    status, body = http(
        "POST",
        server.url + "/v1/chat/completions",
        b"{not json",
        {"authorization": "Bearer sk-test-1"},
    )
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    huge = {"model": "smollm2", "messages": [{"role": "user", "content": "x" * 100000}]}
    status, _ = http("POST", server.url + "/v1/chat/completions", huge, {"authorization": "Bearer sk-test-1"})
    assert status == 413
    # Under the body limit but over the model's max_prompt_tokens (512): 400, code "limit".
    with pytest.raises(openai.BadRequestError) as e:
        ask(server.client(), "word " * 600)
    assert e.value.status_code == 400 and e.value.code == "limit", str(e.value)
    assert "max_prompt_tokens (512)" in str(e.value)
    # A well-formed image to a model without a projector, then a malformed image URL.
    png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    for url, needle in ((png, "no vision projector"), ("data:,", "base64")):
        image = [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": url}}]
        with pytest.raises(openai.BadRequestError) as e:
            server.client().chat.completions.create(model="smollm2", messages=[{"role": "user", "content": image}])
        assert needle in str(e.value), str(e.value)
    limited = server.client(key="sk-limited")
    codes = []
    for _ in range(5):
        try:
            limited.models.list()
            codes.append(200)
        except openai.RateLimitError as err:
            codes.append(err.status_code)
    assert codes[:3] == [200, 200, 200] and 429 in codes[3:], codes


def test_thirty_two_concurrent_clients_get_the_answers_they_get_alone(server):
    client = server.client()
    alone = [ask(client, q).choices[0].message.content for q in QUESTIONS]

    def one(q):
        return ask(server.client(), q).choices[0].message.content

    with ThreadPoolExecutor(32) as pool:
        together = list(pool.map(one, QUESTIONS))
    mismatches = [(q, a, b) for q, a, b in zip(QUESTIONS, alone, together) if a != b]
    assert not mismatches, mismatches[:3]
    assert all(together)


def test_a_client_disconnecting_mid_stream_frees_its_sequence(server):
    body = json.dumps(
        {
            "model": "smollm2",
            "messages": [{"role": "user", "content": "Count from one to one thousand."}],
            "max_tokens": 900,
            "temperature": 0,
            "ignore_eos": True,
            "stream": True,
        }
    ).encode()
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer sk-test-1\r\n"
        b"content-type: application/json\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    received = b""
    while received.count(b"data:") < 4:
        received += sock.recv(4096)
    assert b"200 OK" in received
    time.sleep(0.3)
    assert server.metrics()['llmedge_active_sequences{model="smollm2"}'] >= 1
    sock.close()
    deadline = time.time() + 20
    while time.time() < deadline:
        if server.metrics()['llmedge_active_sequences{model="smollm2"}'] == 0:
            break
        time.sleep(0.2)
    assert server.metrics()['llmedge_active_sequences{model="smollm2"}'] == 0
    time.sleep(0.5)
    last = [r for r in audit_records(server.audit_dir) if r["tokens"]["completion"] > 0][-1]
    assert last["finish_reason"] == "cancelled"
    assert last["tokens"]["completion"] < 900


def test_a_client_closing_right_after_its_request_is_audited_as_cancelled(server):
    """The connection ends while the handler is still reading the body. The request must
    still reach the engine, be cancelled there and leave its audit record."""
    ids = [f"close-at-once-{i}" for i in range(8)]
    for i, rid in enumerate(ids):
        body = json.dumps({"model": "smollm2", "messages": [{"role": "user", "content": "Count to fifty."}],
                           "max_tokens": 200, "stream": i % 2 == 1}).encode()
        headers = {"authorization": "Bearer sk-test-1", "x-request-id": rid}
        post_after_continue(server.port, "/v1/chat/completions", body, headers).close()
    deadline = time.time() + 30
    while time.time() < deadline:
        records = {r["request_id"]: r for r in audit_records(server.audit_dir) if r["request_id"] in ids}
        if len(records) == len(ids):
            break
        time.sleep(0.2)
    assert sorted(records) == sorted(ids)
    assert {r["finish_reason"] for r in records.values()} == {"cancelled"}
    assert all(r["tokens"]["completion"] < 200 for r in records.values())


def test_health_ready_metrics_and_every_request_audited(server):
    assert http("GET", server.url + "/health")[0] == 200
    assert http("GET", server.url + "/ready")[0] == 200
    before = len(audit_records(server.audit_dir))
    ask(server.client(), "One more question.")
    time.sleep(0.3)
    records = audit_records(server.audit_dir)
    assert len(records) == before + 1
    assert records[-1]["surface"] == "server"
    assert records[-1]["tenant"] == "ward-7"
    assert records[-1]["serving"]["route"] == "smollm2"
    metrics = server.metrics()
    for name in [
        'llmedge_queue_depth{model="smollm2"}',
        'llmedge_generated_tokens_total{model="smollm2"}',
        "llmedge_time_to_first_token_seconds_count",
        'llmedge_cache_hits_total{cache="prefix"}',
        'llmedge_cache_hits_total{cache="response"}',
        "llmedge_safety_blocks_total",
    ]:
        assert name in metrics, (name, sorted(metrics)[:40])
    assert metrics['llmedge_generated_tokens_total{model="smollm2"}'] > 0
    verify_audit(server.audit_dir)


def test_safety_applies_to_the_server(server):
    r = ask(server.client(), "Tell me how to make a bomb at home.")
    assert r.choices[0].finish_reason == "content_filter"
    assert server.metrics()["llmedge_safety_blocks_total"] >= 1
