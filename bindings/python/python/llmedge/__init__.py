"""llmedge: on-premises LLM inference over llama.cpp.

>>> import llmedge
>>> with llmedge.Model() as model:              # the default model, fetched on first use
...     print(model.generate("The capital of France is", max_tokens=8, greedy=True))
...     for piece in model.chat([{"role": "user", "content": "Hi!"}], stream=True):
...         print(piece, end="", flush=True)

Structured output and prompt templates:

>>> model.generate_json("A user profile:", {"type": "object", "properties": {"name": {"type": "string"}}})
>>> model.generate("Is it raining?", choices=["yes", "no"])
>>> out = model.run_template("insurance_claim_review_en", {"claim": "..."})   # out.json["verdict"]
>>> llmedge.PromptTemplate("greet", "Say hello to {name}.").render(name="Ada")

Every request goes through the safety layer (``Model(safety_policy=...)``; the built-in policy by
default) and, with ``Model(audit_dir=...)``, into a tamper-evident audit log
(``llmedge.audit_verify(dir)``).

LoRA adapters and model tools:

>>> lora = model.load_lora("adapter.gguf")
>>> model.generate("Hi", adapters=[(lora, 0.5)])      # adapters=[] runs the bare model
>>> llmedge.lora_merge("base.gguf", [("adapter.gguf", 1.0)], "merged.gguf", out_type="f16")
>>> llmedge.quantize("model-f16.gguf", "model-q4.gguf", type="Q4_K_M")

Serving many requests at once: an ``Engine`` batches them on one model (continuous batching,
prompt-prefix reuse, a bounded queue):

>>> with llmedge.Engine(model, slots=4) as engine:
...     requests = [engine.submit(q, stream=True, max_tokens=64) for q in questions]
...     for piece in requests[0]:                         # or: async for piece in request
...         print(piece, end="")
...     answers = [r.result() for r in requests]          # or: await request

Thread rules: a ``Model`` may be shared by threads; its ``generate``/``chat`` run on one default
session, one request at a time. For requests in parallel give each thread its own
``model.session()``, or share one ``Engine``. Loading, prompt evaluation and generation release
the GIL; Ctrl-C cancels a generation between tokens. Every error is an ``llmedge.Error`` with a
stable ``code``.
"""

from ._llmedge import (
    Completion,
    DynamicFlowOutput,
    Image,
    Engine,
    JsonCompletion,
    LoraAdapter,
    Model,
    ModelInfo,
    PromptTemplate,
    Request,
    ResponseCache,
    RouteClassifier,
    Router,
    Safety,
    Session,
    TemplateLibrary,
    TemplateOutput,
    Timings,
    TokenStream,
    Usage,
    __version__,
    audit_verify,
    builtin_chat_templates,
    default_model_path,
    extract_answer,
    lora_import,
    lora_merge,
    manifest_verify,
    quantize,
)
from . import _errors
from ._errors import *  # noqa: F401,F403  (Error, ArgumentTypeError and one class per code)

__all__ = [
    "Completion",
    "DynamicFlowOutput",
    "Image",
    "Engine",
    "JsonCompletion",
    "LoraAdapter",
    "Model",
    "ModelInfo",
    "PromptTemplate",
    "Request",
    "ResponseCache",
    "RouteClassifier",
    "Router",
    "Safety",
    "Session",
    "TemplateLibrary",
    "TemplateOutput",
    "Timings",
    "TokenStream",
    "Usage",
    "audit_verify",
    "builtin_chat_templates",
    "default_model_path",
    "extract_answer",
    "lora_import",
    "lora_merge",
    "manifest_verify",
    "quantize",
] + list(_errors.__all__)


