"""Threads, the GIL, cancellation and Ctrl-C."""

import _thread
import threading
import time

import pytest

import llmedge

PROMPTS = [
    "The capital of France is",
    "Water boils at a temperature of",
    "用一句话介绍上海：",
    "The three primary colours are",
]
LONG = dict(max_tokens=400, ignore_eos=True, greedy=True)


def token_seconds(model) -> float:
    """Seconds per generated token on this machine right now."""
    c = model.complete("Hello", greedy=True, max_tokens=8, ignore_eos=True)
    return c.timings.generation_ms / 1000 / 7


def test_threads_with_own_sessions_match_sequential(model):
    sessions = [model.session(threads=1) for _ in PROMPTS]
    expected = [s.complete(p, greedy=True, max_tokens=24).tokens for s, p in zip(sessions, PROMPTS)]
    results = [None] * len(PROMPTS)
    spans = [None] * len(PROMPTS)
    barrier = threading.Barrier(len(PROMPTS))

    def work(i):
        barrier.wait()
        start = time.monotonic()
        results[i] = sessions[i].complete(PROMPTS[i], greedy=True, max_tokens=24).tokens
        spans[i] = (start, time.monotonic())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(PROMPTS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert results == expected
    # The requests really ran at the same time.
    assert max(s for s, _ in spans) < min(e for _, e in spans)
    for s in sessions:
        s.close()


def test_threads_streaming_with_own_sessions(model):
    sessions = [model.session(threads=1) for _ in PROMPTS[:2]]
    expected = [s.generate(p, greedy=True, max_tokens=24) for s, p in zip(sessions, PROMPTS)]
    results = [None, None]

    def work(i):
        results[i] = "".join(sessions[i].generate(PROMPTS[i], greedy=True, max_tokens=24, stream=True))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert results == expected


def test_default_session_is_shared_safely(model):
    expected = [model.generate(p, greedy=True, max_tokens=12) for p in PROMPTS]
    results = [None] * len(PROMPTS)

    def work(i):
        results[i] = model.generate(PROMPTS[i], greedy=True, max_tokens=12)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(PROMPTS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert results == expected


@pytest.mark.parametrize("stream", [False, True])
def test_gil_is_released_during_generation(model, stream):
    session = model.session()
    done = threading.Event()

    def work():
        if stream:
            for _ in session.generate("Hello", max_tokens=48, ignore_eos=True, stream=True):
                pass
        else:
            session.generate("Hello", max_tokens=48, ignore_eos=True)
        done.set()

    t = threading.Thread(target=work)
    t.start()
    spins = 0
    while not done.is_set():
        spins += 1
    t.join()
    session.close()
    # Holding the GIL for the whole generation would leave this loop a handful of turns.
    assert spins > 10_000


def test_cancel_session_from_another_thread(model):
    session = model.session()
    out = {}

    def work():
        out["c"] = session.complete("Once upon a time", **LONG)

    t = threading.Thread(target=work)
    t.start()
    time.sleep(0.5)
    session.cancel()
    t.join(timeout=60)
    assert not t.is_alive()
    c = out["c"]
    assert c.finish_reason == "cancelled"
    assert 0 < len(c.tokens) < 400
    # The session is usable again, and a cancel with nothing running is a no-op.
    session.cancel()
    assert session.complete("Hi", greedy=True, max_tokens=3).finish_reason in ("length", "stop")
    session.close()


def test_cancel_default_session(model):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("c", model.complete("Once upon a time", **LONG)))
    t.start()
    time.sleep(0.5)
    model.cancel()
    t.join(timeout=60)
    assert out["c"].finish_reason == "cancelled"


def test_cancel_stream_from_another_thread(model):
    stream = model.generate("Once upon a time", stream=True, **LONG)
    pieces = []
    for piece in stream:
        pieces.append(piece)
        if len(pieces) == 5:
            threading.Thread(target=stream.cancel).start()
    c = stream.completion
    assert c.finish_reason == "cancelled"
    assert len(c.tokens) < 400
    assert "".join(pieces) == c.text


def test_close_model_while_streaming(model_path):
    m = llmedge.Model(model_path)
    stream = m.generate("Once upon a time", stream=True, **LONG)
    first = next(stream)
    assert first
    m.close()  # ends the stream that holds the default session
    rest = list(stream)
    assert rest == []
    assert stream.completion.finish_reason == "cancelled"
    assert len(stream.completion.tokens) < 400
    assert first + "".join(rest) == stream.completion.text


def test_abandoned_stream_frees_the_session(model):
    per_token = token_seconds(model)
    stream = model.generate("Once upon a time", stream=True, max_tokens=2000, ignore_eos=True, greedy=True)
    next(stream)
    del stream  # dropping the stream cancels its generation
    start = time.monotonic()
    assert model.generate("Hi", greedy=True, max_tokens=2)
    assert time.monotonic() - start < 1.0 + 40 * per_token


def test_new_request_on_the_same_thread_preempts_an_unfinished_stream(model):
    stream = model.generate("The capital of France is", greedy=True, max_tokens=16, stream=True)
    first = next(stream)
    # Same thread, same session, stream not finished: waiting would deadlock, so the new
    # request cancels the stream instead.
    assert model.generate("Hi", greedy=True, max_tokens=2)
    assert list(stream) == []
    assert stream.completion.finish_reason == "cancelled"
    # The result so far: what was yielded, plus any text the safety layer's output filter was
    # still holding back (checked, but not yet yielded) when the stream was cut.
    assert stream.completion.text.startswith(first)
    # A stream on another session is not affected.
    session = model.session()
    other = session.generate("The capital of France is", greedy=True, max_tokens=16, stream=True)
    model.generate("Hi", greedy=True, max_tokens=2)
    assert "".join(other) == model.generate("The capital of France is", greedy=True, max_tokens=16)
    session.close()


def test_stream_consumed_by_another_thread_is_waited_for(model):
    stream = model.generate("The capital of France is", greedy=True, max_tokens=16, stream=True)
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("text", "".join(stream)))
    t.start()
    time.sleep(0.05)
    # A request from another thread waits for the stream instead of cancelling it.
    t2 = threading.Thread(target=lambda: out.setdefault("other", model.generate("Hi", greedy=True, max_tokens=2)))
    t2.start()
    t.join(timeout=120)
    t2.join(timeout=120)
    assert stream.completion.finish_reason == "length"
    assert out["text"] == model.generate("The capital of France is", greedy=True, max_tokens=16)
    assert out["other"]


def interrupt_later(delay: float, stamp: dict):
    def fire():
        time.sleep(delay)
        stamp["t"] = time.monotonic()
        _thread.interrupt_main()

    t = threading.Thread(target=fire)
    t.start()
    return t


def test_ctrl_c_cancels_generate(model):
    per_token = token_seconds(model)
    stamp = {}
    helper = interrupt_later(0.4, stamp)
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        model.generate("Once upon a time", **LONG)
    caught = time.monotonic()
    helper.join()
    assert caught - start < 400 * per_token  # it did not run to the end
    assert caught - stamp["t"] < 0.25 + 3 * per_token  # it stopped within about a token
    # The model is immediately usable again.
    assert model.complete("Hi", greedy=True, max_tokens=2).finish_reason in ("length", "stop")


def test_ctrl_c_cancels_stream(model):
    per_token = token_seconds(model)
    stream = model.generate("Once upon a time", stream=True, **LONG)
    stamp = {}
    seen = 0
    helper = None
    with pytest.raises(KeyboardInterrupt):
        for _ in stream:
            seen += 1
            if seen == 3:
                helper = interrupt_later(0.05, stamp)
    caught = time.monotonic()
    helper.join()
    assert caught - stamp["t"] < 0.25 + 3 * per_token
    c = stream.completion
    assert c is not None and c.finish_reason == "cancelled"
    # Generation stopped within a token or two of the interrupt.
    assert len(c.tokens) <= seen + 3
    assert list(stream) == []  # the stream is finished
    assert model.complete("Hi", greedy=True, max_tokens=2).finish_reason in ("length", "stop")


def test_ctrl_c_while_waiting_for_a_busy_session(model):
    # Another thread holds the default session; Ctrl-C must also break the wait for it.
    t = threading.Thread(target=lambda: model.complete("Once upon a time", **LONG))
    t.start()
    time.sleep(0.3)
    stamp = {}
    helper = interrupt_later(0.3, stamp)
    with pytest.raises(KeyboardInterrupt):
        model.generate("Hi", max_tokens=2)
    assert time.monotonic() - stamp["t"] < 0.5
    helper.join()
    model.cancel()
    t.join(timeout=60)
    assert not t.is_alive()
