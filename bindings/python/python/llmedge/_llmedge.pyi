"""Stub of the native module; the public names are documented in `llmedge/__init__.pyi`."""

from typing import Any, Dict, List, Tuple

from . import (
    Completion as Completion,
    DynamicFlowOutput as DynamicFlowOutput,
    Image as Image,
    Engine as Engine,
    JsonCompletion as JsonCompletion,
    LoraAdapter as LoraAdapter,
    Model as Model,
    ModelInfo as ModelInfo,
    PromptTemplate as PromptTemplate,
    Request as Request,
    ResponseCache as ResponseCache,
    Safety as Safety,
    Session as Session,
    TemplateLibrary as TemplateLibrary,
    TemplateOutput as TemplateOutput,
    Timings as Timings,
    TokenStream as TokenStream,
    Usage as Usage,
    audit_verify as audit_verify,
    manifest_verify as manifest_verify,
    builtin_chat_templates as builtin_chat_templates,
    default_model_path as default_model_path,
    extract_answer as extract_answer,
    lora_import as lora_import,
    lora_merge as lora_merge,
    quantize as quantize,
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
    "Engine",
    "Request",
    "ResponseCache",
    "JsonCompletion",
    "TemplateOutput",
    "DynamicFlowOutput",
    "PromptTemplate",
    "TemplateLibrary",
    "Safety",
    "audit_verify",
    "manifest_verify",
    "extract_answer",
    "LoraAdapter",
    "lora_merge",
    "lora_import",
    "quantize",
    "Image",
    "ERROR_CODES",
    "__version__",
]
ERROR_CODES: List[Tuple[int, str]]

def _generate_defaults() -> Dict[str, Any]: ...
