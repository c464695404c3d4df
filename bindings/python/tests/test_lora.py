"""LoRA adapters and the model tools through Python, against the Rust CLI and the fixtures.

The fixtures come from `make fixtures` (models/cache/fixtures/lora): seeded adapters for the
default model (SmolLM2-135M-Instruct Q4_1), one for another architecture, one with a wrong
shape, a truncated one, and PEFT folders (plain and DoRA).
"""

import math
import pathlib

import pytest

import llmedge

ROOT = pathlib.Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "models" / "cache" / "fixtures" / "lora"
LORA_A = FIXTURES / "lora_smollm2_a.gguf"
LORA_B = FIXTURES / "lora_smollm2_b.gguf"
PROMPT = "The capital of France is"
N = 16

pytestmark = pytest.mark.skipif(
    not LORA_A.is_file(), reason="LoRA fixtures missing: run `make fixtures`"
)


@pytest.fixture(scope="module")
def bare(model_path):
    """One model for the module, without the safety layer (as the CLI's --no-safety)."""
    with llmedge.Model(model_path, safety_policy=False, n_ctx=512) as m:
        yield m


@pytest.fixture(scope="module")
def lora_a(bare):
    return bare.load_lora(LORA_A)


@pytest.fixture(scope="module")
def base_text(bare):
    return bare.generate(PROMPT, greedy=True, max_tokens=N)


def test_adapter_metadata(bare, lora_a):
    assert isinstance(lora_a, llmedge.LoraAdapter)
    info = lora_a.info
    assert info["architecture"] == bare.info.architecture
    assert info["rank"] > 0 and info["tensors"] > 0 and info["parameters"] > 0
    assert len(info["sha256"]) == 64
    assert lora_a.path == info["path"] and lora_a.name == info["name"]
    assert "LoraAdapter" in repr(lora_a)
    # The same file is loaded once: the same adapter comes back.
    again = bare.load_lora(str(LORA_A))
    assert again == lora_a and hash(again) == hash(lora_a)
    assert bare.load_lora(LORA_B) != lora_a


def test_adapter_changes_output_and_matches_cli(bare, lora_a, base_text, cli):
    expected = cli("run", "--raw", "--greedy", "-n", str(N), "--no-safety", "--lora", str(LORA_A), PROMPT)
    got = bare.complete(PROMPT, greedy=True, max_tokens=N, adapters=[(lora_a, 1.0)])
    assert got.text != base_text
    assert got.tokens == expected["tokens"]
    assert got.text == expected["text"]
    # A bare adapter means scale 1.0; streaming applies it too.
    assert bare.generate(PROMPT, greedy=True, max_tokens=N, adapters=[lora_a]) == got.text
    assert "".join(bare.generate(PROMPT, greedy=True, max_tokens=N, adapters=[lora_a], stream=True)) == got.text


def test_empty_list_restores_base(bare, lora_a, base_text, model_path):
    with llmedge.Model(model_path, safety_policy=False, n_ctx=512, adapters=[str(LORA_A)]) as m:
        with_default = m.generate(PROMPT, greedy=True, max_tokens=N)
        assert with_default != base_text
        assert m.generate(PROMPT, greedy=True, max_tokens=N, adapters=[]) == base_text
        # Omitted again: back to the model's adapters.
        assert m.generate(PROMPT, greedy=True, max_tokens=N) == with_default
    with bare.session(adapters=[(lora_a, 1.0)]) as s:
        assert s.generate(PROMPT, greedy=True, max_tokens=N) == with_default
        assert s.generate(PROMPT, greedy=True, max_tokens=N, adapters=[]) == base_text
    assert bare.generate(PROMPT, greedy=True, max_tokens=N) == base_text


def test_adapters_reach_json_and_template_calls(bare, lora_a):
    out = bare.complete_json(PROMPT, {"enum": ["Paris", "Rome"]}, greedy=True, max_tokens=8, adapters=[lora_a])
    assert out.value in ("Paris", "Rome")
    with pytest.raises(llmedge.ArgumentTypeError):
        bare.run_template("cot_en", {"question": "1+1?"}, max_tokens=2, adapters="x")


@pytest.mark.parametrize(
    "name, words",
    [
        ("lora_gemma3_arch.gguf", ["architecture"]),
        ("lora_bad_shape.gguf", ["shape"]),
        ("lora_truncated.gguf", ["gguf"]),
    ],
)
def test_bad_adapters_raise_adapter_error(bare, name, words):
    with pytest.raises(llmedge.AdapterError) as e:
        bare.load_lora(FIXTURES / name)
    assert e.value.code == 15 and e.value.name == "adapter"
    message = str(e.value).lower()
    assert name in str(e.value)
    assert any(w in message for w in words), message


def test_bad_adapter_arguments(bare, lora_a):
    with pytest.raises(llmedge.ArgumentTypeError):
        bare.generate(PROMPT, max_tokens=2, adapters=lora_a)
    with pytest.raises(llmedge.ArgumentTypeError):
        bare.generate(PROMPT, max_tokens=2, adapters=[str(LORA_A)])  # paths only for models/sessions
    with pytest.raises(llmedge.InvalidArgumentError):
        bare.generate(PROMPT, max_tokens=2, adapters=[lora_a, (lora_a, 0.5)])
    with pytest.raises(llmedge.AdapterError):
        bare.load_lora(FIXTURES / "no-such.gguf")


def test_merge_then_load_equals_runtime_adapter(bare, lora_a, model_path, tmp_path):
    calls = []
    out = tmp_path / "merged-f16.gguf"
    report = llmedge.lora_merge(
        model_path, [(LORA_A, 1.0)], out, out_type="f16", progress=lambda d, t: calls.append((d, t))
    )
    assert report["merged_tensors"] > 0 and report["adapters"] == 1 and out.is_file()
    assert calls and calls[-1][0] == calls[-1][1]
    runtime = bare.generate(PROMPT, greedy=True, max_tokens=N, adapters=[lora_a])
    with llmedge.Model(out, safety_policy=False, n_ctx=512) as merged:
        assert merged.generate(PROMPT, greedy=True, max_tokens=N) == runtime


def test_progress_exception_is_raised_not_crashing(model_path, tmp_path):
    def boom(done, total):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        llmedge.lora_merge(model_path, [str(LORA_A)], tmp_path / "m.gguf", progress=boom)


def test_lora_import(bare, tmp_path, model_path):
    out = tmp_path / "imported.gguf"
    report = llmedge.lora_import(FIXTURES / "peft_smollm2_r8", model_path, out)
    assert report["rank"] == 8 and report["tensors"] > 0 and out.is_file()
    adapter = bare.load_lora(out)
    assert adapter.info["rank"] == 8
    assert bare.generate(PROMPT, greedy=True, max_tokens=4, adapters=[adapter])
    with pytest.raises(llmedge.AdapterError) as e:
        llmedge.lora_import(FIXTURES / "peft_dora", model_path, tmp_path / "dora.gguf")
    assert e.value.code == 15 and "dora" in str(e.value).lower()
    with pytest.raises(llmedge.InvalidArgumentError):
        llmedge.lora_import(FIXTURES / "peft_smollm2_r8", model_path, out, out_type="q4_0")


def test_quantize_requantize_flag(model_path, tmp_path):
    out = tmp_path / "f16.gguf"
    with pytest.raises(llmedge.InvalidArgumentError) as e:
        llmedge.quantize(model_path, out, type="F16")
    assert e.value.code == 1 and "requantize" in str(e.value).lower()
    seen = []
    report = llmedge.quantize(
        model_path, out, type="F16", allow_requantize=True, threads=2, progress=lambda d, t, n: seen.append(n)
    )
    assert report["file_type"].upper().startswith("F16") and report["tensors"] > 0
    assert seen and all(isinstance(n, str) for n in seen)
    with llmedge.Model(out, n_ctx=256, safety_policy=False) as m:
        assert m.info.quantization.upper().startswith("F16")
        assert m.generate(PROMPT, greedy=True, max_tokens=4)
    with pytest.raises(llmedge.InvalidArgumentError):
        llmedge.quantize(model_path, out, type="Q9_X")


def test_perplexity(bare, lora_a):
    text = pathlib.Path(__file__).read_text(encoding="utf-8") * 2
    base = bare.perplexity(text, n_ctx=64, max_chunks=1)
    assert math.isfinite(base["perplexity"]) and base["perplexity"] > 1
    assert base["chunks"] == 1 and base["n_ctx"] == 64
    tuned = bare.perplexity(text, n_ctx=64, max_chunks=1, adapters=[(lora_a, 1.0)])
    assert math.isfinite(tuned["perplexity"]) and tuned["perplexity"] != base["perplexity"]
