"""Stub of the native module; the public names are documented in `llmedge/__init__.pyi`."""

from typing import Any, Dict, List, Tuple

from . import (
    Completion as Completion,
    Model as Model,
    ModelInfo as ModelInfo,
    Session as Session,
    Timings as Timings,
    TokenStream as TokenStream,
    Usage as Usage,
    builtin_chat_templates as builtin_chat_templates,
    default_model_path as default_model_path,
)

__version__: str
__all__ = [
    "_generate_defaults",
    "builtin_chat_templates",
    "default_model_path",
    "Model",
    "Completion",
    "ModelInfo",
    "Timings",
    "Usage",
    "Session",
    "TokenStream",
    "ERROR_CODES",
    "__version__",
]
ERROR_CODES: List[Tuple[int, str]]

def _generate_defaults() -> Dict[str, Any]: ...
