"""llmedge.Router and RouteClassifier: the rules in order, the classifier stage on the real model
(its answer equals a constrained greedy chat on the same prompt), and the mistakes."""

import pytest

import llmedge

ROUTES = """
[[routes]]
name = "finance"
model = "base"
keywords = ["invoice", "tax return"]
tenants = ["bank-1"]
adapters = [{ name = "fin", scale = 0.5 }]

[[routes]]
name = "medical"
model = "med"
regex = "ICD-?10"
models = ["medical-v2"]

[[routes]]
name = "general"
model = "base"
default = true
"""


def test_rules_apply_in_order():
    r = llmedge.Router.from_toml(ROUTES)
    assert r.routes == ["finance", "medical", "general"]
    assert r.route("invoice", model="medical-v2", tenant="bank-1") == {
        "route": "medical", "model": "med", "adapters": [], "rule": "model", "matched": "medical-v2"}
    assert r.route("hello", tenant="bank-1") == {
        "route": "finance", "model": "base", "adapters": [{"name": "fin", "scale": 0.5}],
        "rule": "tenant", "matched": "bank-1"}
    assert r.route("my TAX RETURN")["matched"] == "TAX RETURN"
    assert r.route("code ICD10")["rule"] == "regex"
    assert r.route("hello") == {"route": "general", "model": "base", "adapters": [], "rule": "default"}


def test_classifier_stage_on_the_real_model(model):
    r = llmedge.Router.from_toml(
        '[[routes]]\nname = "finance"\nmodel = "base"\n[[routes]]\nname = "medical"\nmodel = "base"\n'
        '[router.classifier]\nmodel = "base"\n')
    question = "What dose of ibuprofen is safe for a child with a fever?"
    with pytest.raises(llmedge.InvalidArgumentError):
        r.route(question)
    classifier = llmedge.RouteClassifier(model)
    d = r.route(question, classifier=classifier)
    assert d["rule"] == "classifier" and d["route"] == d["matched"]
    assert d["route"] in ("finance", "medical")
    # A rule that matches first leaves the classifier out.
    assert r.route(question, model="finance", classifier=classifier)["rule"] == "model"


def test_mistakes_raise_typed_errors(tmp_path):
    with pytest.raises(llmedge.ConfigError, match="<router>:4"):
        llmedge.Router.from_toml('[[routes]]\nname = "a"\nmodel = "m"\ncolour = 1\n')
    with pytest.raises(llmedge.ConfigError, match="at least one route"):
        llmedge.Router.from_toml("")
    with pytest.raises(llmedge.IoError):
        llmedge.Router.from_file(str(tmp_path / "missing.toml"))
    path = tmp_path / "routes.toml"
    path.write_text(ROUTES, encoding="utf-8")
    assert llmedge.Router.from_file(str(path)).routes == ["finance", "medical", "general"]
    r = llmedge.Router.from_toml(ROUTES)
    with pytest.raises(llmedge.ArgumentTypeError):
        r.route(42)
    with pytest.raises(llmedge.ArgumentTypeError):
        r.route("x", classifier="not a classifier")
    with pytest.raises(llmedge.ArgumentTypeError):
        r.route("x", colour=1)
    with pytest.raises(llmedge.ArgumentTypeError):
        llmedge.RouteClassifier("not a model")
    with pytest.raises(llmedge.InvalidUtf8Error):
        r.route("lone \ud800 surrogate")
