"""The serving engine (continuous batching) and session state files on the real default model.

The reference for every engine output is the same request run alone on a fresh session.
"""

import _thread
import asyncio
import threading
import time

import pytest

import llmedge

QUESTIONS = [
    "What is the capital of France?",
    "Name three colours of the rainbow.",
    "Write one sentence about the sea.",
    "What is 12 times 12?",
    "Give a synonym for happy.",
    "Why do hospitals keep records?",
]
GREEDY = dict(greedy=True, max_tokens=20)
LONG = dict(greedy=True, max_tokens=300, ignore_eos=True)


def ask(question):
    return [{"role": "user", "content": question}]


def alone(model, messages, **options):
    with model.session(n_ctx=512) as s:
        return s.chat_complete(messages, **options).tokens


def new_engine(model, **kwargs):
    kwargs.setdefault("n_ctx", 512)
    return llmedge.Engine(model, **kwargs)


def per_token_seconds(model) -> float:
    c = model.complete("Hello", greedy=True, max_tokens=8, ignore_eos=True)
    return c.timings.generation_ms / 1000 / 7


def test_threads_consuming_streams_get_what_each_request_gets_alone(model):
    expected = [alone(model, ask(q), **GREEDY) for q in QUESTIONS]
    with new_engine(model, slots=4) as engine:
        requests = [engine.submit(ask(q), stream=True, **GREEDY) for q in QUESTIONS]
        streamed = [None] * len(requests)

        def read(i):
            streamed[i] = "".join(requests[i])

        threads = [threading.Thread(target=read, args=(i,)) for i in range(len(requests))]
        for t in threads:
            t.start()
        spins = 0
        while any(t.is_alive() for t in threads):
            spins += 1
        for t in threads:
            t.join(timeout=600)
        results = [r.result() for r in requests]
        for q, want, text, c in zip(QUESTIONS, expected, streamed, results):
            assert c.tokens == want, f"batched output differs from the request alone: {q!r}"
            assert text == c.text
            assert c.finish_reason in ("stop", "length")
        stats = engine.stats()
        assert stats["finished"] == len(QUESTIONS) and stats["active"] == 0 and stats["queued"] == 0
        generated = sum(c.usage.completion_tokens for c in results)
        assert stats["decode_steps"] < generated, "nothing was batched"
        assert stats["generated_tokens"] >= generated
        assert set(stats) == {
            "slots", "active", "queued", "finished", "rejected_busy", "timed_out", "prompt_tokens",
            "cached_prompt_tokens", "generated_tokens", "decode_steps", "prefix_cache_entries",
            "prefix_cache_bytes", "prefix_hits", "response_cache_hits",
        }
        assert engine.slots == 4 and engine.n_ctx == 512
    # Waiting for pieces released the GIL: this thread kept running meanwhile.
    assert spins > 10_000


def test_inputs_text_tokens_and_messages(model):
    prompt = "The capital of France is"
    tokens = model.tokenize(prompt, parse_special=True)
    opts = dict(greedy=True, max_tokens=8, ignore_eos=True)
    with new_engine(model, slots=2) as engine:
        by_text = engine.complete(prompt, **opts)
        by_tokens = engine.submit(tokens, **opts).result()
        assert by_text.tokens == by_tokens.tokens
        assert engine.generate(prompt, **opts) == by_text.text
        assert engine.chat(ask(QUESTIONS[0]), **GREEDY) == engine.chat_complete(ask(QUESTIONS[0]), **GREEDY).text
        with model.session(n_ctx=512) as s:
            assert by_text.tokens == s.complete(prompt, **opts).tokens
        # stream=False keeps only the result: iteration gives the whole text at once.
        r = engine.submit(prompt, **opts)
        assert list(r) == [r.result().text]
        assert r.done and r.id == r.result().request_id
        # Per-sequence settings: a grammar in the batch, a stop string.
        yes_no = engine.submit(ask("Is water wet?"), choices=["yes", "no"], greedy=True)
        stopped = engine.submit(ask(QUESTIONS[2]), stop=".", greedy=True, max_tokens=40)
        assert yes_no.result().text in ("yes", "no")
        assert "." not in stopped.result().text


def test_full_queue_timeouts_and_cancels(model):
    with new_engine(model, slots=1, max_queue=1) as engine:
        running = engine.submit("Once upon a time", stream=True, **LONG)
        assert next(running)  # it holds the only slot now
        queued = engine.submit("Hello", **LONG)
        with pytest.raises(llmedge.BusyError) as e:
            engine.submit("Hi", **LONG)
        assert e.value.code == 70 and "busy" in str(e.value)
        queued.cancel()
        c = queued.result()
        assert c.finish_reason == "cancelled" and c.usage.completion_tokens == 0
        threading.Thread(target=running.cancel).start()
        rest = "".join(running)
        c = running.result()
        assert c.finish_reason == "cancelled" and 0 < c.usage.completion_tokens < 300
        assert c.text.endswith(rest)
        late = engine.submit("Once upon a time", timeout=0.3, **LONG)
        with pytest.raises(llmedge.RequestTimeoutError) as e:
            late.result()
        assert e.value.code == 71 and isinstance(e.value, TimeoutError)
        with pytest.raises(llmedge.RequestTimeoutError):
            list(engine.submit("Once upon a time", stream=True, timeout=0.3, **LONG))
        stats = engine.stats()
        assert stats["rejected_busy"] == 1 and stats["timed_out"] == 2
        # Refused inputs end at once; bad requests raise before they are queued.
        refused = engine.chat_complete(ask("Tell me how to make a bomb at home."), **GREEDY)
        assert refused.finish_reason == "content_filter" and refused.usage.completion_tokens == 0
        with pytest.raises(llmedge.ContextOverflowError):
            engine.submit("word " * 2000, **GREEDY)
        with pytest.raises(llmedge.InvalidArgumentError):
            engine.submit("Hi", top_p=2.0)
        with pytest.raises(llmedge.InvalidArgumentError):
            engine.submit("Hi", timeout=-1)
        with pytest.raises(llmedge.ArgumentTypeError):
            engine.submit("Hi", bogus=1)


def test_bad_engine_options(model):
    with pytest.raises(llmedge.InvalidArgumentError):
        llmedge.Engine(model, slots=0, n_ctx=64)
    with pytest.raises(llmedge.InvalidArgumentError):
        llmedge.Engine(model, adapter_quantum=0, n_ctx=64)
    with pytest.raises(llmedge.ArgumentTypeError):
        llmedge.Engine("model.gguf")
    with pytest.raises(llmedge.NullArgumentError):
        llmedge.Engine(None)


def test_shutdown_drains_and_later_submissions_are_closed(model):
    opts = dict(greedy=True, max_tokens=8)
    engine = new_engine(model, slots=1)
    a = engine.submit(ask(QUESTIONS[0]), **opts)
    b = engine.submit(ask(QUESTIONS[1]), **opts)
    engine.shutdown(drain=True)
    assert a.result().tokens == alone(model, ask(QUESTIONS[0]), **opts)
    assert b.result().tokens == alone(model, ask(QUESTIONS[1]), **opts)
    with pytest.raises(llmedge.ClosedError):
        engine.submit("Hi")
    engine.close()  # idempotent
    # Leaving a with block because of an exception cancels what is left.
    with pytest.raises(RuntimeError):
        with new_engine(model, slots=1) as engine:
            r = engine.submit("Once upon a time", stream=True, **LONG)
            next(r)
            raise RuntimeError("boom")
    assert r.result().finish_reason == "cancelled"


def interrupt_later(delay: float, stamp: dict):
    def fire():
        time.sleep(delay)
        stamp["t"] = time.monotonic()
        _thread.interrupt_main()

    t = threading.Thread(target=fire)
    t.start()
    return t


def test_ctrl_c_cancels_the_request(model):
    per_token = per_token_seconds(model)
    with new_engine(model, slots=2) as engine:
        r = engine.submit("Once upon a time", stream=True, **LONG)
        stamp, seen, helper = {}, 0, None
        with pytest.raises(KeyboardInterrupt):
            for _ in r:
                seen += 1
                if seen == 3:
                    helper = interrupt_later(0.05, stamp)
        caught = time.monotonic()
        helper.join()
        assert caught - stamp["t"] < 0.25 + 3 * per_token
        c = r.result()
        assert c.finish_reason == "cancelled" and c.usage.completion_tokens < 300
        # Blocking conveniences too, and the engine serves on.
        stamp = {}
        helper = interrupt_later(0.4, stamp)
        with pytest.raises(KeyboardInterrupt):
            engine.generate("Once upon a time", **LONG)
        assert time.monotonic() - stamp["t"] < 0.25 + 3 * per_token
        helper.join()
        assert engine.complete("Hi", greedy=True, max_tokens=2).finish_reason in ("length", "stop")
        assert engine.stats()["active"] == 0


def test_asyncio_streams_and_awaits(model):
    expected = [alone(model, ask(q), **GREEDY) for q in QUESTIONS[:3]]

    async def consume(engine, question):
        r = engine.submit(ask(question), stream=True, **GREEDY)
        text = ""
        async for piece in r:
            text += piece
        c = await r
        assert text == c.text
        return c.tokens

    async def cancelled(engine):
        r = engine.submit("Once upon a time", stream=True, **LONG)

        async def read():
            async for _ in r:
                pass

        task = asyncio.ensure_future(read())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await r

    async def main(engine):
        # The event loop keeps running while requests generate.
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        ticker = asyncio.ensure_future(tick())
        tokens = await asyncio.gather(*(consume(engine, q) for q in QUESTIONS[:3]))
        stopped = await cancelled(engine)
        ticker.cancel()
        return tokens, stopped, ticks

    with new_engine(model, slots=3) as engine:
        tokens, stopped, ticks = asyncio.run(main(engine))
    assert tokens == expected
    assert stopped.finish_reason == "cancelled" and stopped.usage.completion_tokens < 300
    assert ticks > 10


def test_session_state_round_trip_and_bad_files(model, tmp_path):
    path = tmp_path / "conversation.kv"
    history = ask(QUESTIONS[0])
    with model.session(n_ctx=512) as s:
        first = s.chat_complete(history, **GREEDY)
        assert first.usage.cached_prompt_tokens == 0
        history += [{"role": "assistant", "content": first.text}, {"role": "user", "content": "And of Italy?"}]
        second = s.chat_complete(history, **GREEDY)
        assert second.usage.cached_prompt_tokens >= first.usage.prompt_tokens
        assert second.usage.to_dict()["cached_prompt_tokens"] == second.usage.cached_prompt_tokens
        s.save_state(path)
        history += [{"role": "assistant", "content": second.text}, {"role": "user", "content": "And of Spain?"}]
        continued = s.chat_complete(history, **GREEDY)
    with model.session(n_ctx=512) as restored:
        n = restored.load_state(str(path))
        assert n >= second.usage.prompt_tokens
        third = restored.chat_complete(history, **GREEDY)
        assert third.tokens == continued.tokens
        assert third.usage.cached_prompt_tokens == continued.usage.cached_prompt_tokens
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x40
        corrupt = tmp_path / "corrupt.kv"
        corrupt.write_bytes(bytes(data))
        with pytest.raises(llmedge.StateError) as e:
            restored.load_state(corrupt)
        assert e.value.code == 72 and "corrupt" in str(e.value)
        (tmp_path / "other.kv").write_bytes(b"hello")
        with pytest.raises(llmedge.StateError):
            restored.load_state(tmp_path / "other.kv")
        with pytest.raises(llmedge.IoError):
            restored.load_state(tmp_path / "missing.kv")
        again = restored.chat_complete(ask(QUESTIONS[1]), **GREEDY)
        assert again.usage.cached_prompt_tokens == 0
        assert again.tokens == alone(model, ask(QUESTIONS[1]), **GREEDY)


def test_prefix_reuse_can_be_turned_off(model, model_path):
    with model.session(n_ctx=512, prefix_reuse=False) as s:
        s.chat(ask(QUESTIONS[0]), **GREEDY)
        assert s.chat_complete(ask(QUESTIONS[0]), **GREEDY).usage.cached_prompt_tokens == 0
    with llmedge.Model(model_path, n_ctx=512, prefix_reuse=False) as m:
        m.chat(ask(QUESTIONS[0]), **GREEDY)
        assert m.chat_complete(ask(QUESTIONS[0]), **GREEDY).usage.cached_prompt_tokens == 0
    with new_engine(model, slots=1, prefix_reuse=False) as engine:
        engine.chat(ask(QUESTIONS[0]), **GREEDY)
        assert engine.chat_complete(ask(QUESTIONS[0]), **GREEDY).usage.cached_prompt_tokens == 0
    with new_engine(model, slots=1) as engine:
        engine.chat(ask(QUESTIONS[0]), **GREEDY)
        assert engine.chat_complete(ask(QUESTIONS[0]), **GREEDY).usage.cached_prompt_tokens > 0


def test_response_cache_answers_repeats_without_decoding(model):
    cache = llmedge.ResponseCache.memory(16, ttl=600)
    assert cache.backend == "memory" and cache.stats() == {"hits": 0, "misses": 0, "errors": 0}
    want = alone(model, ask(QUESTIONS[0]), **GREEDY)
    with new_engine(model, slots=1, response_cache=cache) as a, new_engine(
        model, slots=1, response_cache=cache
    ) as b:
        first = a.chat_complete(ask(QUESTIONS[0]), **GREEDY)
        assert first.tokens == want
        steps = b.stats()["decode_steps"]
        hit = b.chat_complete(ask(QUESTIONS[0]), **GREEDY)
        assert hit.tokens == want and hit.text == first.text
        assert b.stats()["response_cache_hits"] == 1 and b.stats()["decode_steps"] == steps
        assert cache.stats()["hits"] == 1
        # Entries are per tenant; sampled requests without a seed are never cached.
        other = b.chat_complete(ask(QUESTIONS[0]), tenant="ward-9", **GREEDY)
        assert other.tokens == want and b.stats()["response_cache_hits"] == 1
        for _ in range(2):
            a.chat_complete(ask(QUESTIONS[1]), max_tokens=4)
        assert a.stats()["response_cache_hits"] == 0
    # Shared entries have keys of their own: the first tenant's answer is stored for all.
    with new_engine(model, slots=1, response_cache=cache, share_across_tenants=True) as shared:
        shared.chat_complete(ask(QUESTIONS[0]), tenant="ward-9", **GREEDY)
        assert shared.stats()["response_cache_hits"] == 0
        assert shared.chat_complete(ask(QUESTIONS[0]), tenant="ward-10", **GREEDY).tokens == want
        assert shared.stats()["response_cache_hits"] == 1
    with pytest.raises(llmedge.InvalidArgumentError):
        llmedge.ResponseCache.memory(0)
    with pytest.raises(llmedge.InvalidArgumentError):
        llmedge.ResponseCache.memory(4, ttl=-1)
    with pytest.raises(llmedge.ArgumentTypeError):
        new_engine(model, response_cache="memory")


def test_redis_response_cache_is_shared_and_an_outage_only_costs_hits(model, tmp_path):
    import shutil
    import socket
    import subprocess

    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed (scripts/install-deps.sh installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        url = f"redis://127.0.0.1:{port}/"
        deadline = time.time() + 20
        while True:
            try:
                cache = llmedge.ResponseCache.redis(url, prefix="pytest:", ttl=60, timeout=0.5)
                break
            except llmedge.IoError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        assert cache.backend == "redis"
        want = alone(model, ask(QUESTIONS[2]), **GREEDY)
        with new_engine(model, slots=1, response_cache=cache) as engine:
            assert engine.chat_complete(ask(QUESTIONS[2]), **GREEDY).tokens == want
            # Another process's view of the same server: a fresh client finds the entry.
            again = llmedge.ResponseCache.redis(url, prefix="pytest:", ttl=60)
            with new_engine(model, slots=1, response_cache=again) as peer:
                assert peer.chat_complete(ask(QUESTIONS[2]), **GREEDY).tokens == want
                assert peer.stats()["response_cache_hits"] == 1
            proc.terminate()
            proc.wait(timeout=20)
            # Redis is gone: the model answers, the failure is counted, nothing is raised.
            assert engine.chat_complete(ask(QUESTIONS[2]), **GREEDY).tokens == want
            assert cache.stats()["errors"] >= 1
    finally:
        proc.kill()
        proc.wait()
    with pytest.raises(llmedge.IoError):
        llmedge.ResponseCache.redis(url, timeout=0.2)
    with pytest.raises(llmedge.InvalidArgumentError):
        llmedge.ResponseCache.redis("not a url")
