"""The shipped `.pyi` stub describes exactly the module: same names, members, kinds, signatures."""

import ast
import inspect
import pathlib

import pytest

import llmedge

PACKAGE = pathlib.Path(llmedge.__file__).parent
STUB = PACKAGE / "__init__.pyi"
PROTOCOL = {"__iter__", "__next__", "__enter__", "__exit__"}


def is_public(name: str) -> bool:
    return not name.startswith("_") or name in PROTOCOL


def stub_top_level():
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    names = {}
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.setdefault(node.name, node)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names[target.id] = node
    return names


STUB_NAMES = stub_top_level()
STUB_CLASSES = {n: c for n, c in STUB_NAMES.items() if isinstance(c, ast.ClassDef)}


def decorators(fn):
    return {d.id if isinstance(d, ast.Name) else getattr(d, "attr", "") for d in fn.decorator_list}


def stub_members(name):
    """Members of a stub class, with those of its stub-defined bases: name -> (kind, node)."""
    node = STUB_CLASSES[name]
    members = {}
    for base in node.bases:
        if isinstance(base, ast.Name) and base.id in STUB_CLASSES:
            members.update(stub_members(base.id))
    for item in node.body:
        if isinstance(item, ast.FunctionDef):
            kind = "property" if "property" in decorators(item) else "method"
            # Keep the first overload: it carries every default.
            if item.name not in members or members[item.name][1] not in node.body:
                members[item.name] = (kind, item)
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            members[item.target.id] = ("attribute", item)
    return {n: m for n, m in members.items() if is_public(n)}


def runtime_members(cls):
    if issubclass(cls, BaseException):
        names = set(dir(cls("message")))
        for base in cls.__mro__:
            if base.__module__ == "builtins":
                names -= set(dir(base))
    else:
        names = set(dir(cls)) - set(dir(object))
    return {n for n in names if is_public(n)}


def runtime_kind(cls, name):
    if issubclass(cls, BaseException) and name not in cls.__dict__ and not any(
        name in b.__dict__ for b in cls.__mro__
    ):
        return "attribute"  # set in __init__
    raw = inspect.getattr_static(cls, name)
    if inspect.isdatadescriptor(raw) or isinstance(raw, property):
        return "property"
    if callable(raw):
        return "method"
    return "attribute"


def stub_params(fn: ast.FunctionDef):
    a = fn.args
    positional = a.posonlyargs + a.args
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    out = []
    for i, (arg, default) in enumerate(zip(positional, defaults)):
        if i == 0 and arg.arg in ("self", "cls"):
            continue
        kind = "POSITIONAL_ONLY" if arg in a.posonlyargs else "POSITIONAL_OR_KEYWORD"
        out.append((arg.arg, kind, default))
    if a.vararg:
        out.append((a.vararg.arg, "VAR_POSITIONAL", None))
    for arg, default in zip(a.kwonlyargs, a.kw_defaults):
        out.append((arg.arg, "KEYWORD_ONLY", default))
    if a.kwarg:
        out.append((a.kwarg.arg, "VAR_KEYWORD", None))
    return [
        (name, kind, inspect.Parameter.empty if d is None else ast.literal_eval(d)) for name, kind, d in out
    ]


def runtime_params(obj):
    try:
        sig = inspect.signature(obj)
    except (ValueError, TypeError):
        return None  # no __text_signature__ (e.g. a class on Python 3.9 with abi3)
    return [
        (p.name, p.kind.name, p.default)
        for p in sig.parameters.values()
        if p.name not in ("self", "$self")
    ]


def test_stub_and_marker_ship_with_the_package():
    assert STUB.is_file()
    assert (PACKAGE / "py.typed").is_file()


def test_top_level_names_match():
    runtime = {n for n in dir(llmedge) if not n.startswith("_") and not inspect.ismodule(getattr(llmedge, n))}
    stub = {n for n in STUB_NAMES if not n.startswith("_")}
    assert runtime - stub == set(), "in the module but not in the stub"
    assert stub - runtime == set(), "in the stub but not in the module"
    assert set(llmedge.__all__) == runtime
    assert "__version__" in STUB_NAMES and isinstance(llmedge.__version__, str)


@pytest.mark.parametrize("name", sorted(STUB_CLASSES))
def test_class_members_match(name):
    cls = getattr(llmedge, name)
    assert isinstance(cls, type)
    stub = stub_members(name)
    runtime = runtime_members(cls)
    assert runtime - set(stub) == set(), f"{name}: in the module but not in the stub"
    assert set(stub) - runtime == set(), f"{name}: in the stub but not in the module"
    for member, (kind, _) in stub.items():
        assert runtime_kind(cls, member) == kind, f"{name}.{member} is a {kind} in the stub"


@pytest.mark.parametrize("name", sorted(n for n in STUB_CLASSES if not n.endswith("Error")))
def test_method_signatures_match(name):
    cls = getattr(llmedge, name)
    for member, (kind, node) in stub_members(name).items():
        if kind != "method":
            continue
        got = runtime_params(getattr(cls, member))
        assert got is not None, f"{name}.{member} has no runtime signature"
        assert got == stub_params(node), f"{name}.{member}"
    body = STUB_CLASSES[name].body
    ctor = next((f for f in body if isinstance(f, ast.FunctionDef) and f.name in ("__new__", "__init__")), None)
    got = runtime_params(cls)
    if ctor is not None and got is not None:
        assert got == stub_params(ctor), f"{name}()"


def test_function_signatures_match():
    for name, node in STUB_NAMES.items():
        if isinstance(node, ast.FunctionDef):
            assert runtime_params(getattr(llmedge, name)) == stub_params(node), name


def test_stub_base_classes_match():
    for name, node in STUB_CLASSES.items():
        cls = getattr(llmedge, name)
        for base in node.bases:
            if isinstance(base, ast.Name):
                base_cls = getattr(llmedge, base.id, None) or getattr(__builtins__, base.id, None)
                if base_cls is None and isinstance(__builtins__, dict):
                    base_cls = __builtins__.get(base.id)
                assert base_cls is not None, base.id
                assert issubclass(cls, base_cls), f"{name} should derive from {base.id}"


def test_public_api_has_docstrings():
    assert llmedge.__doc__
    for name in llmedge.__all__:
        obj = getattr(llmedge, name)
        if isinstance(obj, dict):
            continue
        assert (obj.__doc__ or "").strip(), f"{name} has no docstring"
        if isinstance(obj, type) and not issubclass(obj, BaseException):
            for member in runtime_members(obj) - PROTOCOL:
                doc = getattr(inspect.getattr_static(obj, member), "__doc__", None)
                assert (doc or "").strip(), f"{name}.{member} has no docstring"


@pytest.mark.parametrize("method", ["generate", "complete", "chat", "chat_complete"])
def test_documented_defaults_are_core_defaults(method):
    from llmedge import _llmedge

    core = _llmedge._generate_defaults()
    for cls in (llmedge.Model, llmedge.Session):
        params = inspect.signature(getattr(cls, method)).parameters
        documented = {n: p.default for n, p in params.items() if n in core}
        assert set(documented) == set(core)
        for name, value in core.items():
            if isinstance(value, float):
                assert documented[name] == pytest.approx(value), name
            else:
                assert documented[name] == value, name


def run_mypy(*args):
    import subprocess
    import sys

    pytest.importorskip("mypy")
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=600)


def test_mypy_stubtest_agrees():
    # mypy's own stub checker: runtime signatures, finality, __all__, ... of every module.
    proc = run_mypy("mypy.stubtest", "llmedge", "--ignore-disjoint-bases")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_stubs_type_check_real_code(tmp_path):
    example = pathlib.Path(__file__).resolve().parents[3] / "examples" / "python" / "summarize_csv.py"
    snippet = tmp_path / "usage.py"
    snippet.write_text(
        "import llmedge\n"
        "from typing import List\n"
        "with llmedge.Model(n_ctx=256) as m:\n"
        "    text: str = m.generate('hi', max_tokens=4)\n"
        "    for piece in m.generate('hi', stream=True):\n"
        "        piece.upper()\n"
        "    c = m.complete('hi')\n"
        "    n: int = c.usage.completion_tokens + len(c.tokens)\n"
        "    ms: float = c.timings.generation_ms\n"
        "    s = m.session(threads=1)\n"
        "    reply: str = s.chat([{'role': 'user', 'content': 'hi'}])\n"
        "    toks: List[int] = m.tokenize('x')\n"
        "try:\n"
        "    llmedge.Model('x')\n"
        "except llmedge.ModelNotFoundError as e:\n"
        "    code: int = e.code\n"
    )
    proc = run_mypy("mypy", "--strict", "--no-error-summary", str(snippet))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run_mypy("mypy", "--no-error-summary", "--ignore-missing-imports", str(example))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # And a misuse is caught.
    snippet.write_text("import llmedge\nx: int = llmedge.Model().generate('hi')\n")
    proc = run_mypy("mypy", "--no-error-summary", str(snippet))
    assert proc.returncode != 0 and "incompatible types" in proc.stdout.lower()
