"""Vision through Python on the tiny random VLM of `make fixtures` (models/cache/fixtures/vlm):
pixels against the fixture script's independent numpy values, greedy tokens against the mtmd
reference loop (examples/vlm_reference, no llmedge code), OpenAI content parts, embedding reuse
and the typed errors."""

import base64
import json
import os
import pathlib
import subprocess

import pytest

import llmedge

from conftest import ROOT

VLM = ROOT / "models" / "cache" / "fixtures" / "vlm"
PROMPT = "<|im_start|>user\n<__media__>Describe the image.<|im_end|>\n<|im_start|>assistant\n"
N = 16


def fixture(name: str) -> str:
    p = VLM / name
    if not p.exists():
        pytest.fail(f"{p} is missing: run `make fixtures`")
    return str(p)


def expected(name: str):
    meta = json.loads((VLM / "fixtures.json").read_text())["images"][name]
    return meta["width"], meta["height"], (VLM / f"{name}.rgb").read_bytes()


def reference_tokens(prompt: str, name: str):
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    exe = target / "release" / "examples" / "vlm_reference"
    if not exe.is_file():
        pytest.fail(f"{exe} is missing: run `cargo build --release --workspace --all-targets`")
    w, h, _ = expected(name)
    out = subprocess.run(
        [str(exe), fixture("tiny-vlm.gguf"), fixture("tiny-vlm-mmproj.gguf"), str(N), prompt,
         f"{w}x{h}:{VLM / (name + '.rgb')}"],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return json.loads(out.stdout)["tokens"]


@pytest.fixture(scope="module")
def vlm():
    with llmedge.Model(fixture("tiny-vlm.gguf"), mmproj=fixture("tiny-vlm-mmproj.gguf"), threads=2,
                       n_ctx=1024, safety_policy=False) as m:
        yield m


@pytest.mark.parametrize("file,name", [
    ("pattern.png", "pattern"), ("pattern.webp", "pattern"), ("pattern.tiff", "pattern"),
    ("xray16.png", "xray16"), ("anim.gif", "anim"), ("ct_mono2.dcm", "ct_mono2"),
    ("xray_mono1.dcm", "xray_mono1"),
])
def test_images_decode_to_the_independent_pixels(file, name):
    img = llmedge.Image.open(fixture(file))
    w, h, rgb = expected(name)
    assert (img.width, img.height) == (w, h)
    assert img.rgb() == rgb
    assert len(img.sha256) == 64
    assert llmedge.Image.from_bytes(pathlib.Path(fixture(file)).read_bytes()) == img
    assert llmedge.Image.from_rgb(w, h, rgb) == img


def test_dicom_window_and_frame():
    w, h, rgb = expected("ct_mono2_w40_400")
    assert llmedge.Image.open(fixture("ct_mono2.dcm"), window=(40, 400)).rgb() == rgb
    w, h, rgb = expected("multiframe_f2")
    assert llmedge.Image.open(fixture("multiframe.dcm"), frame=2).rgb() == rgb
    with pytest.raises(llmedge.DicomError, match="3 frames"):
        llmedge.Image.open(fixture("multiframe.dcm"), frame=3)


@pytest.mark.parametrize("file,name", [("pattern.png", "pattern"), ("xray16.png", "xray16"),
                                       ("ct_mono2.dcm", "ct_mono2")])
def test_tokens_equal_the_mtmd_reference(vlm, file, name):
    out = vlm.complete(PROMPT, images=[llmedge.Image.open(fixture(file))], greedy=True, max_tokens=N)
    assert out.tokens == reference_tokens(PROMPT, name)


def test_content_parts_and_embedding_reuse(vlm):
    vlm.clear_image_cache()
    before = vlm.vision_stats()["stats"]
    png = pathlib.Path(fixture("pattern.png")).read_bytes()
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    parts = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}},
        {"type": "text", "text": "Describe the image."},
    ]}]
    a = vlm.chat_complete(parts, greedy=True, max_tokens=N)
    image = llmedge.Image.open(fixture("pattern.png"))
    b = vlm.chat_complete([{"role": "user", "content": [image, "Describe the image."]}],
                          greedy=True, max_tokens=N)
    c = vlm.chat_complete([{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": fixture("pattern.png")}}, "Describe the image."]}],
        greedy=True, max_tokens=N)
    assert a.tokens == b.tokens == c.tokens
    stats = vlm.vision_stats()["stats"]
    assert stats["encoded"] - before["encoded"] == 1
    assert stats["cache_hits"] - before["cache_hits"] == 2
    assert vlm.vision_stats()["info"]["projector_type"] == "mlp"
    # Streaming works with images too.
    pieces = list(vlm.generate(PROMPT, images=[image], greedy=True, max_tokens=N, stream=True))
    assert "".join(pieces) == vlm.generate(PROMPT, images=[image], greedy=True, max_tokens=N)


def test_errors_are_typed(vlm):
    with pytest.raises(llmedge.ImageError):
        llmedge.Image.open(fixture("corrupt.png"))
    with pytest.raises(llmedge.ImageError, match="20000x20000"):
        llmedge.Image.open(fixture("bomb.png"))
    with pytest.raises(llmedge.ImageError, match="over the limit"):
        llmedge.Image.open(fixture("pattern.png"), max_bytes=100)
    with pytest.raises(llmedge.DicomError, match="unsupported transfer syntax"):
        llmedge.Image.open(fixture("jpeg2000.dcm"))
    with pytest.raises(llmedge.InvalidArgumentError, match="image list is empty"):
        vlm.generate(PROMPT, images=[])
    with pytest.raises(llmedge.InvalidArgumentError, match="offline"):
        vlm.chat([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}])
    with pytest.raises(llmedge.ProjectorError, match="n_embd"):
        llmedge.Model(fixture("tiny-vlm.gguf"), mmproj=fixture("mmproj-576.gguf"))
    with llmedge.Model(fixture("tiny-vlm.gguf"), threads=2) as plain:
        with pytest.raises(llmedge.ProjectorError, match="no vision projector"):
            plain.generate(PROMPT, images=[llmedge.Image.open(fixture("pattern.png"))])
        assert plain.vision_stats() is None
        plain.load_mmproj(fixture("tiny-vlm-mmproj.gguf"))
        assert plain.vision_stats()["stats"]["encoded"] == 0


def test_patient_data_stays_out_of_the_audit_log(tmp_path):
    patient = json.loads((VLM / "fixtures.json").read_text())["patient"].values()
    with llmedge.Model(fixture("tiny-vlm.gguf"), mmproj=fixture("tiny-vlm-mmproj.gguf"), threads=2,
                       audit_dir=tmp_path) as m:
        m.chat([{"role": "user", "content": [llmedge.Image.open(fixture("xray_mono1.dcm")), "Report."]}],
               greedy=True, max_tokens=8)
    log = "".join(p.read_text() for p in tmp_path.iterdir())
    assert log
    for value in patient:
        assert value not in log


def test_xray_report_example_runs(tmp_path):
    import sys
    script = ROOT / "examples" / "vision" / "xray_report.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--model", fixture("tiny-vlm.gguf"), "--mmproj", fixture("tiny-vlm-mmproj.gguf"),
         "--image", fixture("ct_mono2.dcm"), "--window", "40,400", "--complaint", "Cough and fever",
         "--max-tokens", "8", "--json", "--audit-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["completion_tokens"] > 0
    assert out["image_sha256"] == llmedge.Image.open(fixture("ct_mono2.dcm"), window=(40, 400)).sha256
    bad = subprocess.run([sys.executable, str(script), "--model", fixture("tiny-vlm.gguf"), "--mmproj",
                          fixture("tiny-vlm-mmproj.gguf"), "--image", fixture("jpeg2000.dcm"), "--complaint", "x"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 19, bad.stderr
