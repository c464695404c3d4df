"""llmedge: on-premises LLM inference over llama.cpp.

>>> import llmedge
>>> with llmedge.Model() as model:              # the default model, fetched on first use
...     print(model.generate("The capital of France is", max_tokens=8, greedy=True))
...     for piece in model.chat([{"role": "user", "content": "Hi!"}], stream=True):
...         print(piece, end="", flush=True)

Thread rules: a ``Model`` may be shared by threads; its ``generate``/``chat`` run on one default
session, one request at a time. For requests in parallel give each thread its own
``model.session()``. Loading, prompt evaluation and generation release the GIL; Ctrl-C cancels
a generation between tokens. Every error is an ``llmedge.Error`` with a stable ``code``.
"""

from ._llmedge import (
    Completion,
    Model,
    ModelInfo,
    Session,
    Timings,
    TokenStream,
    Usage,
    __version__,
    builtin_chat_templates,
    default_model_path,
)
from . import _errors
from ._errors import *  # noqa: F401,F403  (Error, ArgumentTypeError and one class per code)

__all__ = [
    "Completion",
    "Model",
    "ModelInfo",
    "Session",
    "Timings",
    "TokenStream",
    "Usage",
    "builtin_chat_templates",
    "default_model_path",
] + list(_errors.__all__)


