"""Prompt templates, the template library and structured output, on the real model."""

import json
import re

import jsonschema
import pytest

import llmedge

BUILTIN = {
    "role_en",
    "role_zh",
    "cot_en",
    "cot_zh",
    "few_shot_en",
    "few_shot_zh",
    "extract_fields_en",
    "extract_fields_zh",
    "insurance_claim_review_en",
    "insurance_claim_review_zh",
}

CLAIM = json.dumps(
    {
        "claim_id": "CLM-2024-0042",
        "diagnosis": "acute appendicitis",
        "policy_coverage": ["acute appendicitis", "fractures", "pneumonia"],
        "hospital_level": "tertiary A",
        "policy_min_hospital_level": "secondary",
    }
)

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "city": {"type": "string", "enum": ["Paris", "Beijing", "Lagos", "Lima"]},
        "hobbies": {"type": "array", "items": {"type": "string", "maxLength": 16}, "maxItems": 3},
        "student": {"type": "boolean"},
    },
    "required": ["name", "age", "city", "hobbies", "student"],
    "additionalProperties": False,
}


# --- templates without a model -------------------------------------------------------------


def test_render_defaults_and_variables():
    t = llmedge.PromptTemplate(
        "greet",
        "Hello {name}, you are {age}. {{literal}}",
        system="You greet {name}.",
        defaults={"age": 3},
        description="Greets someone.",
    )
    assert t.name == "greet" and t.description == "Greets someone." and t.format == "fstring"
    assert t.variables == ["name", "age"]
    assert t.required_variables == ["name"]
    assert t.defaults == {"age": 3}
    assert t.system == "You greet {name}."
    assert t.render(name="Ada") == "Hello Ada, you are 3. {literal}"
    assert t.render({"name": "Ada", "age": 36}) == "Hello Ada, you are 36. {literal}"
    assert t.render({"name": "Ada"}, age=[1, 2]) == "Hello Ada, you are [1,2]. {literal}"
    assert t.messages(name="Ada") == [
        {"role": "system", "content": "You greet Ada."},
        {"role": "user", "content": "Hello Ada, you are 3. {literal}"},
    ]
    assert t.output_schema is None and t.answer_prefixes == [] and t.examples == []
    assert t.to_dict()["name"] == "greet"


def test_jinja_template_and_examples():
    t = llmedge.PromptTemplate(
        "list",
        "{% for x in items %}- {{ x }}\n{% endfor %}",
        format="jinja",
        examples=[{"input": {"items": ["a"]}, "output": "one item"}],
    )
    assert t.format == "jinja" and t.variables == ["items"]
    assert t.render(items=["x", "y"]) == "- x\n- y\n"
    messages = t.messages(items=["z"])
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == "one item"


def test_variable_errors_list_missing_and_extra():
    t = llmedge.PromptTemplate("pair", "{first} and {second}")
    with pytest.raises(llmedge.TemplateVariablesError) as e:
        t.render(frist="a", extra=1)
    err = e.value
    assert isinstance(err, llmedge.Error) and err.code == 32 and err.name == "template_variables"
    msg = str(err)
    assert "missing variables: first, second" in msg
    assert "unknown variables:" in msg and "frist" in msg and "extra" in msg
    assert '"pair"' in msg
    with pytest.raises(llmedge.TemplateVariablesError):
        t.messages({"first": "a"})


def test_template_syntax_errors():
    with pytest.raises(llmedge.TemplateError) as e:
        llmedge.PromptTemplate("bad", "Hello {name")
    assert e.value.code == 30 and "unclosed" in str(e.value)
    with pytest.raises(llmedge.TemplateError):
        llmedge.PromptTemplate("bad", "{% for x in %}", format="jinja")
    with pytest.raises(llmedge.InvalidArgumentError):
        llmedge.PromptTemplate("bad", "x", format="mustache")
    with pytest.raises(llmedge.ArgumentTypeError):
        llmedge.PromptTemplate("bad", "x", answer_prefixes="Answer:")
    with pytest.raises(llmedge.ArgumentTypeError):
        llmedge.PromptTemplate("t", "{x}").render({"x": object()})


def test_from_toml():
    t = llmedge.PromptTemplate.from_toml(
        'name = "t"\ntemplate = "Q: {q}"\nanswer_prefixes = ["Answer:"]\n'
        'output_schema = \'{"type": "string"}\'\n'
    )
    assert t.name == "t" and t.variables == ["q"]
    assert t.answer_prefixes == ["Answer:"] and t.output_schema == {"type": "string"}
    with pytest.raises(llmedge.TemplateError) as e:
        llmedge.PromptTemplate.from_toml('name = "t"\ntemplate = "x"\nnot toml at all\n', "inline.toml")
    assert "inline.toml:3" in str(e.value)


def test_toml_errors_name_file_and_line(tmp_path):
    good = tmp_path / "a_good.toml"
    good.write_text('name = "mine"\ntemplate = "Say {word}."\n', encoding="utf-8")
    lib = llmedge.TemplateLibrary.load_dir(tmp_path)
    assert lib.names() == ["mine"] and len(lib) == 1 and "mine" in lib
    assert lib.get("mine").render(word="hi") == "Say hi."

    bad = tmp_path / "b_bad.toml"
    bad.write_text('name = "broken"\ntemplate = "ok"\nthis line is not toml\n', encoding="utf-8")
    with pytest.raises(llmedge.TemplateError) as e:
        llmedge.TemplateLibrary.load_dir(tmp_path)
    assert f"{bad}:3" in str(e.value)

    # A syntax error inside a multi-line template body: the file's line, not the body's.
    bad.write_text('name = "broken"\ntemplate = """\nline one\nline {two\n"""\n', encoding="utf-8")
    with pytest.raises(llmedge.TemplateError) as e:
        llmedge.TemplateLibrary.load_dir(tmp_path)
    assert f"{bad}:4" in str(e.value)

    lib = llmedge.TemplateLibrary.builtin()
    with pytest.raises(llmedge.TemplateError):
        lib.add_dir(tmp_path)
    bad.unlink()
    lib.add_dir(tmp_path)
    assert "mine" in lib and len(lib) == len(BUILTIN) + 1


def test_builtin_library():
    lib = llmedge.TemplateLibrary.builtin()
    assert set(lib.names()) == BUILTIN
    assert len(lib) == len(BUILTIN)
    assert "cot_en" in lib and "nope" not in lib and 5 not in lib
    claim = lib.get("insurance_claim_review_en")
    assert claim.required_variables == ["claim"]
    assert claim.output_schema["properties"]["verdict"]["enum"] == ["approve", "reject", "manual_review"]
    with pytest.raises(llmedge.TemplateError) as e:
        lib.get("nope")
    assert "cot_en" in str(e.value)
    empty = llmedge.TemplateLibrary()
    assert len(empty) == 0
    empty.add(llmedge.PromptTemplate("x", "y"))
    assert empty.names() == ["x"]


@pytest.mark.parametrize(
    "name, reply, expected",
    [
        ("cot_en", "The train covers 60 km in 1 h.\nSo 3 h is 180 km.\nAnswer: 180 km", "180 km"),
        ("cot_en", "Let me think.\n**Answer:** Paris\n", "Paris"),
        ("cot_en", "Answer: first\nWait, no.\nanswer : second", "second"),
        ("cot_en", "Answer:\n42\n", "42"),
        ("cot_en", "No final line here.", None),
        ("cot_zh", "先算单价。\n再乘以数量。\n答案：12 元", "12 元"),
        ("cot_zh", "推理过程……\n答案: 北京", "北京"),
    ],
)
def test_cot_answer_extraction(name, reply, expected):
    t = llmedge.TemplateLibrary.builtin().get(name)
    assert t.answer_prefixes
    assert t.extract_answer(reply) == expected
    assert llmedge.extract_answer(reply, t.answer_prefixes) == expected


def test_extract_answer_function():
    assert llmedge.extract_answer("x\nFinal: yes", ["Final:"]) == "yes"
    assert llmedge.extract_answer("x\nFinal: yes", []) is None
    with pytest.raises(llmedge.ArgumentTypeError):
        llmedge.extract_answer("x", "Final:")


# --- on the model --------------------------------------------------------------------------


@pytest.mark.parametrize("seed, how", [(1, "object"), (2, "name"), (3, "session")])
def test_insurance_claim_template(model, seed, how):
    template = llmedge.TemplateLibrary.builtin().get("insurance_claim_review_en")
    if how == "object":
        out = model.run_template(template, {"claim": CLAIM}, seed=seed, max_tokens=512)
    elif how == "name":  # a built-in template by name
        out = model.run_template("insurance_claim_review_en", {"claim": CLAIM}, seed=seed, max_tokens=512)
    else:
        with model.session() as s:
            out = s.run_template(template, vars={"claim": CLAIM}, seed=seed, max_tokens=512)
    assert isinstance(out, llmedge.TemplateOutput)
    assert out.template == "insurance_claim_review_en"
    assert out.messages == template.messages(claim=CLAIM)
    assert out.prompt == model.render_chat(out.messages)
    assert out.completion.finish_reason == "stop"
    assert out.json["verdict"] in ("approve", "reject", "manual_review")
    jsonschema.validate(out.json, template.output_schema)
    assert json.loads(out.text) == out.json
    assert out.usage.completion_tokens == len(out.completion.tokens)
    assert out.to_dict()["json"] == out.json


def test_run_template_chain_of_thought(model):
    out = model.run_template("cot_en", {"question": "What is 2 + 3?"}, greedy=True, max_tokens=160)
    assert out.json is None
    assert out.answer == llmedge.TemplateLibrary.builtin().get("cot_en").extract_answer(out.text)
    with pytest.raises(llmedge.TemplateVariablesError):
        model.run_template("cot_en", {"questoin": "x"})
    with pytest.raises(llmedge.TemplateError):
        model.run_template("no_such_template")


@pytest.mark.parametrize("seed", range(10))
def test_generate_json_validates(model, seed):
    value = model.generate_json(
        "Describe a fictional person as JSON.", PERSON, temperature=1.0, seed=seed, max_tokens=256
    )
    jsonschema.validate(value, PERSON)


def test_json_forms(model):
    schema_text = json.dumps({"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 4})
    value = model.generate_json("Some numbers:", schema_text, seed=1)
    assert isinstance(value, list) and 2 <= len(value) <= 4 and all(isinstance(x, int) for x in value)
    full = model.complete_json("Some numbers:", schema_text, seed=1)
    assert isinstance(full, llmedge.JsonCompletion)
    assert full.value == value and json.loads(full.completion.text) == value
    messages = [{"role": "user", "content": "Describe a person as JSON."}]
    person = model.chat_json(messages, PERSON, seed=4, max_tokens=256)
    jsonschema.validate(person, PERSON)
    chat_full = model.chat_complete_json(messages, PERSON, seed=4, max_tokens=256)
    assert chat_full.value == person
    # The schema is the constraint: the other constraint keywords are not accepted.
    with pytest.raises(llmedge.ArgumentTypeError):
        model.generate_json("x", {"type": "string"}, regex="a")
    # Cut off before the JSON is complete.
    with pytest.raises(llmedge.StructuredOutputError) as e:
        model.generate_json("A person:", PERSON, max_tokens=3)
    assert e.value.code == 34 and "max_tokens" in str(e.value)
    # generate/chat with json_schema= return the text.
    text = model.generate("Some numbers:", json_schema=schema_text, seed=1)
    assert json.loads(text) == value


@pytest.mark.parametrize("seed", range(5))
def test_choices_and_regex(model, seed):
    choices = ["yes", "no", "it depends"]
    assert model.generate("Is the sky green?", choices=choices, temperature=1.0, seed=seed) in choices
    reply = model.chat([{"role": "user", "content": "Pick a colour."}], choices=("red", "blue"), seed=seed)
    assert reply in ("red", "blue")
    pattern = r"[A-Z]{2}-[0-9]{3,4}(-[a-z]+)?"
    text = model.generate("A product code:", regex=pattern, temperature=1.0, seed=seed, max_tokens=32)
    assert re.fullmatch(pattern, text), text
    grammar = 'root ::= "(" [0-9] "+" [0-9] ")"'
    assert re.fullmatch(r"\([0-9]\+[0-9]\)", model.generate("Sum:", grammar=grammar, seed=seed))


def test_constraints_on_streams_and_sessions(model):
    with model.session() as s:
        pieces = list(s.generate("Answer:", choices=["alpha", "beta"], stream=True, seed=7))
        assert "".join(pieces) in ("alpha", "beta")
        c = s.complete("Answer:", regex="[0-9]{4}", seed=7)
        assert re.fullmatch("[0-9]{4}", c.text) and c.finish_reason == "stop"


def test_bad_constraints(model):
    with pytest.raises(llmedge.GrammarError) as e:
        model.generate("x", json_schema=[1, 2])
    assert e.value.code == 33
    with pytest.raises(llmedge.GrammarError):
        model.generate("x", grammar='root ::= "unterminated')
    with pytest.raises(llmedge.GrammarError):
        model.generate("x", regex="(unclosed")
    with pytest.raises(llmedge.InvalidArgumentError):
        model.generate("x", json_schema="{not json")
    with pytest.raises(llmedge.InvalidArgumentError) as e:
        model.generate("x", choices=["a"], regex="a")
    assert "at most one" in str(e.value)
    with pytest.raises(llmedge.ArgumentTypeError):
        model.generate("x", choices="ab")
    with pytest.raises(llmedge.ArgumentTypeError):
        model.generate("x", choices=["a", 1])


def test_run_dynamic_shows_both_stages(model):
    template = llmedge.PromptTemplate(
        "translate", "Translate into {language}: {text}", system="You are a translator."
    )
    request = "Please translate 'good morning' into French."
    out = model.run_dynamic(template, request, seed=1, max_tokens=48)
    assert isinstance(out, llmedge.DynamicFlowOutput)
    # Stage 1: the model filled the variables as JSON.
    assert set(out.variables) == {"language", "text"}
    assert all(isinstance(v, str) for v in out.variables.values())
    assert json.loads(out.fill.text) == out.variables
    assert request in out.fill_prompt
    # Stage 2: the template filled with them, answered.
    answer = out.answer
    assert isinstance(answer, llmedge.TemplateOutput) and answer.template == "translate"
    assert answer.messages == template.messages(out.variables)
    assert answer.prompt == model.render_chat(answer.messages)
    assert answer.completion.request_id != out.fill.request_id
    assert out.to_dict()["variables"] == out.variables
