"""Memory does not grow across many requests."""

import gc
import os

import llmedge

CALLS = 200
BOUND_MB = 20


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def one_round(model, session, i):
    kind = i % 4
    prompt = f"Item {i}: the weather today is"
    if kind == 0:
        assert isinstance(model.generate(prompt, max_tokens=4, greedy=True), str)
    elif kind == 1:
        c = model.complete(prompt, max_tokens=4, seed=i)
        assert c.usage.completion_tokens <= 4
    elif kind == 2:
        stream = model.generate(prompt, max_tokens=4, greedy=True, stream=True)
        "".join(stream)
        assert stream.completion is not None
    else:
        session.chat_complete([{"role": "user", "content": prompt}], max_tokens=4, greedy=True)


def test_rss_is_stable_over_200_calls(model_path):
    with llmedge.Model(model_path, n_ctx=512) as model, model.session() as session:
        for i in range(40):  # warm-up: caches, allocator pools, thread stacks
            one_round(model, session, i)
        gc.collect()
        before = rss_bytes()
        for i in range(CALLS):
            one_round(model, session, i)
        gc.collect()
        growth_mb = (rss_bytes() - before) / 2**20
    print(f"RSS growth over {CALLS} calls: {growth_mb:.2f} MB")
    assert growth_mb < BOUND_MB, f"RSS grew {growth_mb:.1f} MB over {CALLS} calls (bound {BOUND_MB} MB)"


def test_sessions_are_freed(model_path):
    with llmedge.Model(model_path, n_ctx=2048) as model:
        for _ in range(3):
            model.session().close()
        gc.collect()
        before = rss_bytes()
        for _ in range(30):
            s = model.session()
            s.generate("Hi", max_tokens=2, greedy=True)
            s.close()
        for _ in range(30):
            model.session()  # dropped without close(): freed by the garbage collector
        gc.collect()
        growth_mb = (rss_bytes() - before) / 2**20
    assert growth_mb < BOUND_MB, f"RSS grew {growth_mb:.1f} MB over 60 sessions"
