"""Routing rules, the Redis response cache (a real `redis-server`), prefix reuse, and the
route in response metadata and audit records."""

import shutil
import subprocess
import time

import pytest

from conftest import LORA, MODEL, ROOT, Server, audit_records, base_config, free_port, verify_audit

ROUTES = f"""
[[models.adapters]]
name = "a"
path = "{LORA / 'lora_smollm2_a.gguf'}"

[[routes]]
name = "finance"
model = "smollm2"
adapters = [{{ name = "a", scale = 1.0 }}]
keywords = ["invoice", "tax"]

[[routes]]
name = "medical"
model = "smollm2"
models = ["medical-v2"]
tenants = ["lab"]
regex = "(?i)\\\\bICD-?10\\\\b"

[[routes]]
name = "general"
model = "smollm2"
default = true
"""


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (scripts/install-deps.sh installs it)")
    port = free_port()
    tmp = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    yield f"redis://127.0.0.1:{port}/0"
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def routed(tmp_path_factory, redis_url):
    tmp = tmp_path_factory.mktemp("routed")
    cache = f'[cache]\nbackend = "redis"\nredis_url = "{redis_url}"\nttl_secs = 60\n'
    # [[models.adapters]] must follow [[models]] directly: put the routes block first.
    config = base_config(audit_dir=tmp / "audit").replace("max_queue = 64\n", "max_queue = 64\n" + ROUTES)
    s = Server(tmp, config + cache).start()
    s.audit_dir = tmp / "audit"
    yield s
    assert s.stop() == 0, s.log_text()


def chat(server, text, key="sk-test-1", model="whatever", **kw):
    return server.client(key=key).chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": text}],
        temperature=0,
        max_tokens=kw.pop("max_tokens", 12),
        **kw,
    )


def test_router_rules_choose_the_route_and_it_is_audited(routed):
    cases = [
        ("Please check this invoice total.", "sk-test-1", "whatever", "finance", "keyword"),
        ("Code ICD10 for asthma?", "sk-test-1", "whatever", "medical", "regex"),
        ("Hello there.", "sk-limited", "whatever", "medical", "tenant"),
        ("Hello there.", "sk-test-1", "medical-v2", "medical", "model"),
        ("Hello there.", "sk-test-1", "whatever", "general", "default"),
    ]
    for text, key, model, route, rule in cases:
        r = chat(routed, text, key=key, model=model)
        meta = r.model_extra["llmedge"]
        assert (meta["route"], meta["route_rule"]["rule"]) == (route, rule), (text, meta)
    time.sleep(0.3)
    routes = [r["serving"]["route"] for r in audit_records(routed.audit_dir)[-len(cases):]]
    assert routes == [c[3] for c in cases]
    # The finance route runs the LoRA adapter: the audit record names it.
    finance = [r for r in audit_records(routed.audit_dir) if r["serving"]["route"] == "finance"][0]
    assert finance["sampling"]["adapters"][0]["name"] == "lora_smollm2_a"


def test_the_adapter_route_answers_differently_from_the_bare_model(routed):
    question = "Write one sentence about an invoice."
    adapted = chat(routed, question, model="finance").choices[0].message.content
    bare = chat(routed, question, model="general").choices[0].message.content
    assert adapted != bare


def test_repeated_requests_hit_the_redis_cache(routed, redis_url):
    before = routed.metrics()['llmedge_cache_hits_total{cache="response"}']
    first = chat(routed, "Say something about Redis caches.", model="general")
    second = chat(routed, "Say something about Redis caches.", model="general")
    assert second.choices[0].message.content == first.choices[0].message.content
    after = routed.metrics()['llmedge_cache_hits_total{cache="response"}']
    assert after == before + 1
    time.sleep(0.3)
    last = audit_records(routed.audit_dir)[-1]
    assert last["serving"]["response_cache"] == "hit"
    import redis

    keys = redis.Redis.from_url(redis_url).keys("llmedge:response:*")
    assert keys, "nothing was stored in Redis"
    verify_audit(routed.audit_dir)


def test_a_shared_system_prompt_is_reused_from_the_prefix_cache(routed):
    system = "You are the hospital's triage assistant. Be brief and precise. " * 20
    client = routed.client()

    def ask(q):
        return client.chat.completions.create(
            model="general",
            messages=[{"role": "system", "content": system}, {"role": "user", "content": q}],
            temperature=0.7,
            seed=None,
            max_tokens=4,
        )

    cold = ask("First patient: fever.")
    warm = ask("Second patient: cough.")
    assert cold.usage.prompt_tokens_details.cached_tokens < 50
    assert warm.usage.prompt_tokens_details.cached_tokens > 250, warm.usage


def test_the_shipped_example_config_serves_as_documented(tmp_path):
    """examples/serve/llmedge.toml is what operators copy: it must load and route as its
    comments say (keyword, alias, default), with its API key, and audit every request."""
    text = (ROOT / "examples/serve/llmedge.toml").read_text()
    text = text.replace('bind = "127.0.0.1:8080"', 'bind = "127.0.0.1:@PORT@"')
    text = text.replace('path = ""', f'path = "{MODEL}"')
    s = Server(tmp_path, text).start()
    try:
        cases = [
            ("What dosage of paracetamol is usual?", "whatever", "medical", "keyword"),
            ("Hello there.", "clinical", "medical", "model"),
            ("Hello there.", "whatever", "general", "default"),
        ]
        for content, model, route, rule in cases:
            r = s.client(key="change-me").chat.completions.create(
                model=model, messages=[{"role": "user", "content": content}], max_tokens=4, temperature=0)
            meta = r.model_extra["llmedge"]
            assert (meta["route"], meta["route_rule"]["rule"]) == (route, rule), (content, meta)
        import openai

        with pytest.raises(openai.AuthenticationError):
            s.client(key="sk-wrong").chat.completions.create(
                model="x", messages=[{"role": "user", "content": "hi"}], max_tokens=1)
    finally:
        assert s.stop() == 0, s.log_text()
    records = audit_records(tmp_path / "audit")
    assert [r["serving"]["route"] for r in records] == [c[2] for c in cases]
    assert {r["tenant"] for r in records} == {"ward-7"}, records[0]
    assert verify_audit(tmp_path / "audit")["ok"]
