"""Images in OpenAI content parts, on a vision model (the tiny random VLM fixture)."""

import base64

import pytest

from conftest import ROOT, Server, base_config

VLM = ROOT / "models" / "cache" / "fixtures" / "vlm"


@pytest.fixture(scope="module")
def vision(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vision")
    config = base_config('[safety]\nenabled = false\n[cache]\nbackend = "none"\n', slots=2)
    config = config.replace(
        f'path = "{ROOT / "models" / "cache" / "SmolLM2-135M-Instruct.Q4_1.gguf"}"',
        f'path = "{VLM / "tiny-vlm.gguf"}"\nmmproj = "{VLM / "tiny-vlm-mmproj.gguf"}"',
    )
    s = Server(tmp, config).start()
    yield s
    assert s.stop() == 0, s.log_text()


def ask(server, image_file):
    data = base64.b64encode((VLM / image_file).read_bytes()).decode()
    return server.client().chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
            {"type": "text", "text": "Describe the image."},
        ]}],
        temperature=0,
        max_tokens=12,
    )


def test_an_image_content_part_steers_the_answer(vision):
    a = ask(vision, "pattern.png")
    b = ask(vision, "xray16.png")
    assert a.usage.completion_tokens > 0
    assert a.choices[0].message.content != b.choices[0].message.content
    # Asked again, the same image gives the same answer.
    assert ask(vision, "pattern.png").choices[0].message.content == a.choices[0].message.content


def test_a_corrupt_image_is_a_400(vision):
    import openai

    with pytest.raises(openai.BadRequestError) as e:
        ask(vision, "corrupt.png")
    assert e.value.status_code == 400
