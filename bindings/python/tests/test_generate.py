"""Generation through Python equals generation through the Rust API (the CLI), streamed or not."""

import subprocess
import sys

import pytest

import llmedge

PROMPTS = [
    "The capital of France is",
    "用一句话介绍长城。🏯 The Great Wall is",
    "def fibonacci(n):\n    ",
]
UNICODE_PROMPT = "你好，世界！🌍 Tell me a short story about a dragon 🐉 who loves 🍜:"


@pytest.mark.parametrize("prompt", PROMPTS)
def test_raw_greedy_matches_rust_cli(model, cli, prompt):
    expected = cli("run", "--raw", "--greedy", "-n", "32", prompt)
    got = model.complete(prompt, greedy=True, max_tokens=32)
    assert got.tokens == expected["tokens"]
    assert got.text == expected["text"]
    assert got.finish_reason == expected["finish_reason"]
    assert got.usage.prompt_tokens == expected["usage"]["prompt_tokens"]
    assert got.usage.completion_tokens == expected["usage"]["completion_tokens"]
    # generate() is the same request returning only the text.
    assert model.generate(prompt, greedy=True, max_tokens=32) == expected["text"]


def test_chat_matches_rust_cli(model, cli):
    question = "What is the tallest mountain on Earth?"
    expected = cli("run", "--greedy", "-n", "32", question)
    got = model.chat_complete([{"role": "user", "content": question}], greedy=True, max_tokens=32)
    assert got.tokens == expected["tokens"]
    assert got.text == expected["text"]


@pytest.mark.parametrize("prompt", [UNICODE_PROMPT, PROMPTS[0]])
def test_stream_concatenation_equals_result(model, prompt):
    full = model.complete(prompt, greedy=True, max_tokens=48)
    stream = model.generate(prompt, greedy=True, max_tokens=48, stream=True)
    assert isinstance(stream, llmedge.TokenStream)
    assert stream.completion is None
    pieces = list(stream)
    assert all(isinstance(p, str) and p for p in pieces)
    assert len(pieces) > 1
    assert "".join(pieces) == full.text
    done = stream.completion
    assert done is not None
    assert done.tokens == full.tokens
    assert done.text == full.text
    assert done.finish_reason == full.finish_reason
    assert done.usage.completion_tokens == len(full.tokens)


def test_unicode_round_trip_is_exact(model):
    # The generated text of a prompt full of multi-byte characters must be valid text that
    # re-tokenizes and detokenizes to itself (no half characters at piece boundaries).
    out = model.complete(UNICODE_PROMPT, greedy=True, max_tokens=48)
    assert "\ufffd" not in "".join(model.generate(UNICODE_PROMPT, greedy=True, max_tokens=48, stream=True))
    assert model.detokenize(out.tokens) == out.text


def test_chat_stream_equals_chat(model):
    messages = [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Name three colours. 🎨"},
    ]
    text = model.chat(messages, greedy=True, max_tokens=40)
    stream = model.chat(messages, greedy=True, max_tokens=40, stream=True)
    assert "".join(stream) == text
    assert stream.completion.text == text


def test_openai_content_parts_and_objects(model):
    plain = [{"role": "user", "content": "Say hello."}]
    parts = [{"role": "user", "content": [{"type": "text", "text": "Say "}, {"type": "text", "text": "hello."}]}]
    assert model.render_chat(plain) == model.render_chat(parts)

    class Msg:
        def __init__(self, role, content):
            self.role, self.content = role, content

    assert model.render_chat([Msg("user", "Say hello.")]) == model.render_chat(plain)
    rendered = model.render_chat(plain)
    assert "Say hello." in rendered and rendered.endswith("assistant\n")
    assert model.render_chat(plain, add_generation_prompt=False) != rendered


def test_completion_object(model):
    c = model.complete("Once upon a time", greedy=True, max_tokens=8)
    assert c.finish_reason == "length"
    assert len(c.tokens) == 8
    assert c.usage.completion_tokens == 8
    assert c.usage.prompt_tokens == len(model.tokenize("Once upon a time"))
    assert c.usage.total_tokens == c.usage.prompt_tokens + 8
    t = c.timings
    assert t.prompt_ms > 0 and t.generation_ms > 0
    assert t.prompt_tokens_per_second > 0 and t.generation_tokens_per_second > 0
    assert t.time_to_first_token_ms >= t.prompt_ms
    d = c.to_dict()
    assert d["tokens"] == c.tokens and d["usage"]["completion_tokens"] == 8
    assert set(d["timings"]) == {
        "time_to_first_token_ms",
        "prompt_ms",
        "generation_ms",
        "prompt_tokens_per_second",
        "generation_tokens_per_second",
    }
    assert str(c) == c.text


def test_token_prompt_equals_text_prompt(model):
    prompt = "The capital of France is"
    tokens = model.tokenize(prompt)
    assert model.complete(tokens, greedy=True, max_tokens=12).tokens == model.complete(
        prompt, greedy=True, max_tokens=12
    ).tokens


def test_stop_strings(model):
    full = model.generate("The capital of France is", greedy=True, max_tokens=32)
    assert "\n" in full
    head = full.split("\n")[0]
    c = model.complete("The capital of France is", greedy=True, max_tokens=32, stop=["\n"])
    assert c.text == head
    assert c.finish_reason == "stop"
    assert "".join(model.generate("The capital of France is", greedy=True, max_tokens=32, stop="\n", stream=True)) == head


def test_sampling_options_are_applied(model):
    prompt = "My favourite fruit is"
    a = model.complete(prompt, temperature=0.9, seed=1234, max_tokens=16)
    b = model.complete(prompt, temperature=0.9, seed=1234, max_tokens=16)
    assert a.tokens == b.tokens  # a fixed seed is reproducible
    greedy = model.complete(prompt, greedy=True, max_tokens=16)
    banned = greedy.tokens[0]
    biased = model.complete(prompt, greedy=True, max_tokens=16, logit_bias={banned: float("-inf")})
    assert biased.tokens[0] != banned
    # OpenAI's JSON spells token ids as strings.
    assert model.complete(prompt, greedy=True, max_tokens=4, logit_bias={str(banned): -100.0}).tokens[0] != banned
    penalised = model.complete(prompt, greedy=True, max_tokens=32, repeat_penalty=1.5)
    assert len(set(penalised.tokens)) >= len(set(model.complete(prompt, greedy=True, max_tokens=32).tokens))


def test_ignore_eos_generates_exactly_max_tokens(model):
    c = model.complete("Hi", greedy=True, max_tokens=40, ignore_eos=True)
    assert len(c.tokens) == 40 and c.finish_reason == "length"


def test_truncation_drop_oldest(model_path):
    with llmedge.Model(model_path, n_ctx=64) as small:
        long_prompt = "one two three four five six seven eight nine ten " * 10
        with pytest.raises(llmedge.ContextOverflowError) as e:
            small.generate(long_prompt, max_tokens=8)
        assert e.value.code == 21
        c = small.complete(long_prompt, max_tokens=8, greedy=True, ignore_eos=True, truncation="drop_oldest")
        assert c.usage.prompt_tokens + 8 <= 64
        assert len(c.tokens) == 8


def test_tokenize_detokenize(model):
    text = "Hello, world! 你好 🌍"
    tokens = model.tokenize(text, add_special=False)
    assert all(isinstance(t, int) for t in tokens)
    assert model.detokenize(tokens) == text
    special = model.tokenize("<|im_start|>", add_special=False, parse_special=True)
    assert len(special) == 1
    assert model.detokenize(special, special=True) == "<|im_start|>"
    assert model.detokenize(special) == ""


def test_embed_numpy(model):
    np = pytest.importorskip("numpy")
    v = model.embed("The cat sat on the mat.")
    assert isinstance(v, np.ndarray) and v.dtype == np.float32
    assert v.shape == (model.info.n_embd,)
    assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-3
    batch = model.embed(["The cat sat on the mat.", "Stock markets fell today."])
    assert batch.shape == (2, model.info.n_embd)
    assert np.allclose(batch[0], v, atol=1e-5)
    same = float(batch[0] @ model.embed("A cat was sitting on the mat."))
    other = float(batch[0] @ batch[1])
    assert same > other


def test_embed_without_numpy_returns_lists(model_path):
    code = (
        "import sys; sys.modules['numpy'] = None\n"
        "import llmedge, math\n"
        f"m = llmedge.Model({model_path!r})\n"
        "v = m.embed('hello')\n"
        "assert type(v) is list and all(type(x) is float for x in v), type(v)\n"
        "assert len(v) == m.info.n_embd\n"
        "assert abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-3\n"
        "b = m.embed(['a', 'b'])\n"
        "assert type(b) is list and len(b) == 2 and type(b[0]) is list\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_model_info(model, model_path):
    info = model.info
    assert info.path == model_path == model.path
    assert info.architecture == "llama"
    assert info.quantization == "Q4_1"
    assert info.n_vocab > 1000 and info.n_embd > 0 and info.n_layer > 0
    assert info.chat_template and "im_start" in info.chat_template
    assert info.to_dict()["n_vocab"] == info.n_vocab
    assert len(model.sha256()) == 64
    assert "chatml" in llmedge.builtin_chat_templates()


def test_builtin_chat_template_option(model_path):
    with llmedge.Model(model_path, chat_template="chatml") as m:
        rendered = m.render_chat([{"role": "user", "content": "hi"}])
        assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        s = m.session(chat_template="llama3")
        assert "<|start_header_id|>" in s.render_chat([{"role": "user", "content": "hi"}])
        s.close()


def test_sessions_and_context_managers(model_path):
    with llmedge.Model(model_path) as m:
        with m.session(n_ctx=256) as s:
            assert s.n_ctx == 256
            assert s.generate("The capital of France is", greedy=True, max_tokens=8) == m.generate(
                "The capital of France is", greedy=True, max_tokens=8
            )
        assert s.closed
        assert not m.closed
    assert m.closed
    assert "closed" in repr(m)
