"""Bad input raises the typed llmedge exception with core's error code."""

import pathlib
import shutil

import pytest

import llmedge
from llmedge import _llmedge

# The numbers are part of the public ABI (core's ErrorCode, the C status codes).
EXPECTED_CODES = {
    1: "invalid_argument",
    2: "null_argument",
    3: "invalid_utf8",
    10: "model_not_found",
    11: "invalid_model",
    12: "unsupported_architecture",
    13: "out_of_memory",
    14: "model_load",
    15: "adapter",
    16: "model_integrity",
    17: "projector",
    18: "image",
    19: "dicom",
    20: "context_create",
    21: "context_overflow",
    22: "decode",
    23: "tokenize",
    30: "template",
    31: "no_chat_template",
    32: "template_variables",
    33: "grammar",
    34: "structured_output",
    40: "safety_blocked",
    41: "policy",
    42: "audit",
    50: "io",
    51: "checksum_mismatch",
    52: "fetch",
    60: "closed",
    70: "busy",
    71: "timeout",
    72: "state",
    73: "config",
    74: "limit",
    98: "internal",
    99: "panic",
}


def test_hierarchy_is_generated_from_core_codes():
    assert dict(_llmedge.ERROR_CODES) == EXPECTED_CODES
    assert set(llmedge.ERROR_CLASSES) == set(EXPECTED_CODES)
    for code, name in EXPECTED_CODES.items():
        cls = llmedge.ERROR_CLASSES[code]
        assert issubclass(cls, llmedge.Error)
        assert cls.code == code and cls.name == name
        assert getattr(llmedge, cls.__name__) is cls
        assert cls.__name__ in llmedge.__all__
    assert llmedge.InvalidArgumentError.code == 1
    assert llmedge.InvalidUtf8Error.code == 3
    assert llmedge.ClosedError.code == 60
    assert llmedge.TemplateVariablesError.code == 32
    assert llmedge.GrammarError.code == 33
    assert llmedge.StructuredOutputError.code == 34
    assert llmedge.SafetyBlockedError.code == 40
    assert llmedge.PolicyError.code == 41
    assert llmedge.AuditError.code == 42
    assert issubclass(llmedge.ArgumentTypeError, llmedge.InvalidArgumentError)
    assert issubclass(llmedge.ArgumentTypeError, TypeError)
    assert issubclass(llmedge.InvalidArgumentError, ValueError)
    assert issubclass(llmedge.ModelNotFoundError, FileNotFoundError)
    # Serving engine and session state codes; the timeout class does not shadow the built-in.
    assert llmedge.BusyError.code == 70
    assert llmedge.RequestTimeoutError.code == 71
    assert issubclass(llmedge.RequestTimeoutError, TimeoutError)
    assert llmedge.ERROR_CLASSES[71] is llmedge.RequestTimeoutError
    assert not hasattr(llmedge, "TimeoutError") or llmedge.TimeoutError is TimeoutError
    assert llmedge.StateError.code == 72


def check(excinfo, cls, code):
    err = excinfo.value
    assert type(err) is cls, f"{type(err).__name__}: {err}"
    assert isinstance(err, llmedge.Error)
    assert err.code == code
    assert str(err) == err.message and err.message


def test_missing_file(tmp_path):
    with pytest.raises(llmedge.ModelNotFoundError) as e:
        llmedge.Model(tmp_path / "nope.gguf")
    check(e, llmedge.ModelNotFoundError, 10)
    assert isinstance(e.value, FileNotFoundError)
    assert "nope.gguf" in str(e.value)


def test_truncated_model_file(tmp_path, model_path):
    bad = tmp_path / "truncated.gguf"
    with open(model_path, "rb") as src, open(bad, "wb") as dst:
        dst.write(src.read(2_000_000))
    with pytest.raises(llmedge.InvalidModelError) as e:
        llmedge.Model(str(bad))
    check(e, llmedge.InvalidModelError, 11)


def test_not_a_gguf_file(tmp_path):
    bad = tmp_path / "text.gguf"
    bad.write_text("this is not a model")
    with pytest.raises(llmedge.InvalidModelError) as e:
        llmedge.Model(bad)
    check(e, llmedge.InvalidModelError, 11)


def test_model_path_may_be_pathlike(tmp_path, model_path):
    link = tmp_path / "model.gguf"
    shutil.copyfile(model_path, link)
    with llmedge.Model(pathlib.Path(link), n_ctx=128) as m:
        assert m.path == str(link)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_tokens": "10"},
        {"max_tokens": 1.5},
        {"max_tokens": True},
        {"temperature": "hot"},
        {"greedy": 1},
        {"stop": 5},
        {"stop": ["ok", 5]},
        {"logit_bias": [1, 2]},
        {"seed": 1.0},
        {"stream": "yes"},
    ],
)
def test_wrong_argument_types(model, kwargs):
    with pytest.raises(llmedge.ArgumentTypeError) as e:
        model.generate("Hello", **kwargs)
    check(e, llmedge.ArgumentTypeError, 1)
    assert isinstance(e.value, TypeError)
    assert isinstance(e.value, llmedge.InvalidArgumentError)
    assert next(iter(kwargs)) in str(e.value)


@pytest.mark.parametrize("prompt", [42, b"bytes", {"a": 1}, ["a", "b"], 3.5])
def test_wrong_prompt_types(model, prompt):
    with pytest.raises(llmedge.ArgumentTypeError) as e:
        model.generate(prompt, max_tokens=2)
    check(e, llmedge.ArgumentTypeError, 1)


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.generate("Hello", max_token=5),
        lambda m: m.complete("Hello", stream=True),
        lambda m: m.chat([{"role": "user", "content": "hi"}], bogus=None),
        lambda m: m.tokenize("x", nope=True),
        lambda m: m.session(n_ctxx=5),
        lambda m: m.generate("Hello", 5),
        lambda m: m.generate(),
        lambda m: m.generate("a", prompt="b"),
    ],
)
def test_unknown_keywords_and_bad_calls(model, call):
    with pytest.raises(llmedge.ArgumentTypeError) as e:
        call(model)
    check(e, llmedge.ArgumentTypeError, 1)


def test_unknown_keyword_in_constructor(model_path):
    with pytest.raises(llmedge.ArgumentTypeError) as e:
        llmedge.Model(model_path, n_gpu_layer=1)
    check(e, llmedge.ArgumentTypeError, 1)
    with pytest.raises(llmedge.ArgumentTypeError):
        llmedge.Model(12345)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_tokens": -1},
        {"max_tokens": 0},
        {"temperature": -0.5},
        {"top_p": 0.0},
        {"top_k": -3},
        {"min_p": 2.0},
        {"repeat_penalty": 0.0},
        {"seed": -1},
        {"max_tokens": 2**40},
        {"truncation": "sometimes"},
        {"logit_bias": {"abc": 1.0}},
        {"penalty_last_n": -2},
    ],
)
def test_bad_values(model, kwargs):
    with pytest.raises(llmedge.InvalidArgumentError) as e:
        model.generate("Hello", **kwargs)
    check(e, llmedge.InvalidArgumentError, 1)
    assert isinstance(e.value, ValueError)


def test_negative_max_tokens_everywhere(model):
    for call in (
        lambda: model.generate("Hello", max_tokens=-5),
        lambda: model.generate("Hello", max_tokens=-5, stream=True),
        lambda: model.complete("Hello", max_tokens=-5),
        lambda: model.chat([{"role": "user", "content": "hi"}], max_tokens=-5),
        lambda: model.chat_complete([{"role": "user", "content": "hi"}], max_tokens=-5),
    ):
        with pytest.raises(llmedge.InvalidArgumentError) as e:
            call()
        assert e.value.code == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.generate("\ud800"),
        lambda m: m.generate("ok \udfff ok", stream=True),
        lambda m: m.complete("Hello", stop=["\ud800"]),
        lambda m: m.chat([{"role": "user", "content": "hi \ud800"}]),
        lambda m: m.chat([{"role": "\udc00", "content": "hi"}]),
        lambda m: m.tokenize("\ud800"),
        lambda m: m.embed("\ud800"),
    ],
)
def test_lone_surrogates(model, call):
    with pytest.raises(llmedge.InvalidUtf8Error) as e:
        call(model)
    check(e, llmedge.InvalidUtf8Error, 3)


def test_none_for_required_arguments(model):
    with pytest.raises(llmedge.NullArgumentError) as e:
        model.generate(None)
    check(e, llmedge.NullArgumentError, 2)
    with pytest.raises(llmedge.NullArgumentError):
        model.chat(None)
    with pytest.raises(llmedge.NullArgumentError):
        model.tokenize(None)


def test_bad_messages(model):
    with pytest.raises(llmedge.InvalidArgumentError):
        model.chat([])
    with pytest.raises(llmedge.InvalidArgumentError):
        model.chat([{"content": "no role"}])
    with pytest.raises(llmedge.ArgumentTypeError):
        model.chat("just a string")
    with pytest.raises(llmedge.ArgumentTypeError):
        model.chat([{"role": "user", "content": 5}])
    with pytest.raises(llmedge.InvalidArgumentError):
        model.chat([{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}])


def test_token_outside_vocabulary(model):
    with pytest.raises(llmedge.TokenizeError) as e:
        model.generate([1, 2, 10_000_000], max_tokens=2)
    check(e, llmedge.TokenizeError, 23)
    with pytest.raises(llmedge.TokenizeError):
        model.detokenize([-1])
    with pytest.raises(llmedge.TokenizeError):
        model.complete("Hi", logit_bias={10_000_000: 1.0})


def test_context_overflow(model_path):
    with llmedge.Model(model_path, n_ctx=32) as m:
        with pytest.raises(llmedge.ContextOverflowError) as e:
            m.generate("word " * 100, max_tokens=4)
        check(e, llmedge.ContextOverflowError, 21)
        # Raised when the stream is consumed, with the same type.
        with pytest.raises(llmedge.ContextOverflowError):
            list(m.generate("word " * 100, max_tokens=4, stream=True))


def test_resource_limits(model_path):
    with llmedge.Model(model_path, n_ctx=256, max_prompt_tokens=16, max_sessions=2) as m:
        with pytest.raises(llmedge.LimitError) as e:
            m.generate("word " * 40, max_tokens=4)
        check(e, llmedge.LimitError, 74)
        assert "max_prompt_tokens (16)" in str(e.value)
        assert isinstance(e.value, ValueError)
        with pytest.raises(llmedge.LimitError):
            m.chat([{"role": "user", "content": "word " * 40}], max_tokens=4)
        with pytest.raises(llmedge.LimitError):
            m.embed("word " * 40)
        # Nothing was lost: a short request on the same session answers as on a fresh one.
        short = m.generate("The capital of France is", max_tokens=4, greedy=True)
        # The default session holds one of the two sequences; a second session the other.
        with m.session() as s:
            assert s.generate("The capital of France is", max_tokens=4, greedy=True) == short
            with pytest.raises(llmedge.BusyError) as e:
                m.session()
            check(e, llmedge.BusyError, 70)
            assert "max_sessions (2)" in str(e.value)
            with pytest.raises(llmedge.BusyError):
                llmedge.Engine(m, slots=1, n_ctx=64)
        with llmedge.Engine(m, slots=1, n_ctx=256) as engine:
            with pytest.raises(llmedge.LimitError):
                engine.generate("word " * 40, max_tokens=4)
    for bad in ({"max_prompt_tokens": 0}, {"max_sessions": -1}):
        with pytest.raises(llmedge.InvalidArgumentError):
            llmedge.Model(model_path, **bad)


def test_bad_chat_template(model_path):
    with pytest.raises(llmedge.TemplateError) as e:
        llmedge.Model(model_path, chat_template="no-such-template")
    check(e, llmedge.TemplateError, 30)
    with llmedge.Model(model_path, chat_template="{{ raise_exception('no chat here') }}") as m:
        with pytest.raises(llmedge.TemplateError) as e:
            m.chat([{"role": "user", "content": "hi"}])
        assert "no chat here" in str(e.value)


def test_use_after_close(model_path):
    with llmedge.Model(model_path) as m:
        s = m.session()
        assert m.generate("Hi", max_tokens=2, greedy=True)
    assert m.closed
    calls = [
        lambda: m.generate("Hi"),
        lambda: m.generate("Hi", stream=True),
        lambda: m.complete("Hi"),
        lambda: m.chat([{"role": "user", "content": "hi"}]),
        lambda: m.tokenize("Hi"),
        lambda: m.detokenize([1]),
        lambda: m.embed("Hi"),
        lambda: m.session(),
        lambda: m.render_chat([{"role": "user", "content": "hi"}]),
        lambda: m.generate_json("Hi", {"type": "string"}),
        lambda: m.run_template("cot_en", {"question": "x"}),
        lambda: m.run_dynamic("cot_en", "x"),
    ]
    for call in calls:
        with pytest.raises(llmedge.ClosedError) as e:
            call()
        check(e, llmedge.ClosedError, 60)
    m.close()  # idempotent
    # A session keeps working after its model is closed, until it is closed itself.
    assert s.generate("Hi", max_tokens=2, greedy=True)
    s.close()
    with pytest.raises(llmedge.ClosedError) as e:
        s.generate("Hi")
    check(e, llmedge.ClosedError, 60)
