"""Type stubs of llmedge (checked against the module by tests/test_stubs.py)."""

import os
from types import TracebackType
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Generator,
    Iterator,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
    final,
    overload,
)

__version__: str
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
    "manifest_verify",
    "builtin_chat_templates",
    "default_model_path",
    "extract_answer",
    "lora_import",
    "lora_merge",
    "quantize",
    "Error",
    "ArgumentTypeError",
    "ERROR_CLASSES",
    "InvalidArgumentError",
    "NullArgumentError",
    "InvalidUtf8Error",
    "ModelNotFoundError",
    "InvalidModelError",
    "UnsupportedArchitectureError",
    "OutOfMemoryError",
    "ModelLoadError",
    "AdapterError",
    "ModelIntegrityError",
    "ProjectorError",
    "ImageError",
    "DicomError",
    "ContextCreateError",
    "ContextOverflowError",
    "DecodeError",
    "TokenizeError",
    "TemplateError",
    "NoChatTemplateError",
    "TemplateVariablesError",
    "GrammarError",
    "StructuredOutputError",
    "SafetyBlockedError",
    "PolicyError",
    "AuditError",
    "IoError",
    "ChecksumMismatchError",
    "FetchError",
    "ClosedError",
    "BusyError",
    "RequestTimeoutError",
    "StateError",
    "ConfigError",
    "LimitError",
    "InternalError",
    "PanicError",
]

_Self = TypeVar("_Self")
_Prompt = Union[str, Sequence[int]]
_ContentPart = Union[str, Mapping[str, Any], "Image"]
_Message = Union[Mapping[str, Any], Any]
_Messages = Sequence[_Message]
_FinishReason = Literal["stop", "length", "cancelled", "content_filter"]
_Truncation = Literal["error", "drop_oldest"]
_Stop = Union[str, Sequence[str], None]
_LogitBias = Optional[Mapping[Union[int, str], float]]
# {"route", "model", "adapters": [{"name", "scale"}], "rule", "matched"} ("matched" absent for
# the default rule).
_RouteDecision = Dict[str, Any]
_Vector = Any  # numpy.ndarray (float32) when numpy is installed, else List[float]
_JsonSchema = Union[Mapping[str, Any], str, bool]  # a JSON Schema, or its JSON text
_Json = Any  # a parsed JSON value: dict, list, str, int, float, bool or None
_SafetyPolicy = Union[str, "os.PathLike[str]", "Safety", bool, None]
_PathLike = Union[str, "os.PathLike[str]"]
# A request's adapters: LoraAdapter (scale 1.0) or (LoraAdapter, scale); [] = the bare model.
_Adapters = Optional[Sequence[Union["LoraAdapter", Tuple["LoraAdapter", float]]]]
# A model's or session's adapters: as _Adapters, or adapter files (loaded into the model).
_AdapterSpecs = Optional[
    Sequence[Union["LoraAdapter", _PathLike, Tuple[Union["LoraAdapter", _PathLike], float]]]
]
_Progress = Optional[Callable[[int, int], Any]]
_QuantizeProgress = Optional[Callable[[int, int, str], Any]]

def default_model_path() -> str:
    """Path of the default model, fetching it with pip first if it is not cached."""

def builtin_chat_templates() -> List[str]:
    """Names of llama.cpp's built-in chat templates, usable as ``chat_template=``."""

def extract_answer(text: str, prefixes: Sequence[str]) -> Optional[str]:
    """The text after the last line of ``text`` starting with one of ``prefixes``, or None."""

def lora_merge(
    base: _PathLike,
    adapters: Sequence[Union[_PathLike, Tuple[_PathLike, float]]],
    output: _PathLike,
    out_type: Optional[str] = None,
    progress: _Progress = None,
) -> Dict[str, Any]:
    """Merge LoRA adapter files (path or (path, scale)) into a base model, written as a new GGUF."""

def lora_import(peft_dir: _PathLike, base: _PathLike, output: _PathLike, out_type: Literal["f32", "f16"] = "f32") -> Dict[str, Any]:
    """Convert a Hugging Face PEFT LoRA adapter folder into a GGUF adapter for ``base``."""

def quantize(
    input: _PathLike,
    output: _PathLike,
    type: str = "Q4_K_M",
    keep: Optional[Sequence[Tuple[str, str]]] = None,
    allow_requantize: bool = False,
    pure: bool = False,
    threads: Optional[int] = None,
    progress: _QuantizeProgress = None,
) -> Dict[str, Any]:
    """Quantize a GGUF model with llama.cpp's quantizer."""

def audit_verify(path: _PathLike) -> Dict[str, Any]:
    """Verify an audit log directory (or one segment file); a dict with ``ok`` and ``findings``."""

def manifest_verify(path: _PathLike, pubkey: Optional[_PathLike] = None) -> Dict[str, Any]:
    """Verify a model manifest (signature with ``pubkey``, and every listed file's SHA-256);
    a dict with ``ok``, ``signed``, ``signature`` and ``files``."""

@final
class Usage:
    """Token counts of a request."""

    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...
    @property
    def cached_prompt_tokens(self) -> int: ...
    @property
    def total_tokens(self) -> int: ...
    def to_dict(self) -> Dict[str, int]: ...

@final
class Timings:
    """Where the time of a request went (milliseconds and tokens per second)."""

    @property
    def time_to_first_token_ms(self) -> float: ...
    @property
    def prompt_ms(self) -> float: ...
    @property
    def generation_ms(self) -> float: ...
    @property
    def prompt_tokens_per_second(self) -> float: ...
    @property
    def generation_tokens_per_second(self) -> float: ...
    def to_dict(self) -> Dict[str, float]: ...

@final
class Completion:
    """The result of a finished generation. ``str(completion)`` is its text."""

    @property
    def text(self) -> str: ...
    @property
    def tokens(self) -> List[int]: ...
    @property
    def finish_reason(self) -> _FinishReason: ...
    @property
    def usage(self) -> Usage: ...
    @property
    def timings(self) -> Timings: ...
    @property
    def request_id(self) -> str: ...
    @property
    def safety(self) -> Optional[Dict[str, Any]]: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class JsonCompletion:
    """The parsed JSON of a schema-constrained generation and its completion."""

    @property
    def value(self) -> _Json: ...
    @property
    def completion(self) -> Completion: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class TemplateOutput:
    """One run of a prompt template."""

    @property
    def template(self) -> str: ...
    @property
    def messages(self) -> List[Dict[str, str]]: ...
    @property
    def prompt(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def answer(self) -> Optional[str]: ...
    @property
    def json(self) -> _Json: ...
    @property
    def completion(self) -> Completion: ...
    @property
    def usage(self) -> Usage: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class DynamicFlowOutput:
    """Both stages of a dynamic prompt flow."""

    @property
    def variables(self) -> Dict[str, Any]: ...
    @property
    def fill_prompt(self) -> str: ...
    @property
    def fill(self) -> Completion: ...
    @property
    def answer(self) -> TemplateOutput: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class PromptTemplate:
    """A named prompt template with variables (f-string or Jinja)."""

    def __new__(
        cls,
        name: str,
        template: str,
        format: Literal["fstring", "jinja"] = "fstring",
        system: Optional[str] = None,
        defaults: Optional[Mapping[str, Any]] = None,
        output_schema: Optional[_JsonSchema] = None,
        answer_prefixes: Optional[Sequence[str]] = None,
        *,
        description: str = "",
        examples: Optional[Sequence[Mapping[str, Any]]] = None,
    ) -> "PromptTemplate": ...
    @staticmethod
    def from_toml(text: str, origin: str = "<string>") -> "PromptTemplate": ...
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def format(self) -> Literal["fstring", "jinja"]: ...
    @property
    def system(self) -> Optional[str]: ...
    @property
    def template(self) -> str: ...
    @property
    def variables(self) -> List[str]: ...
    @property
    def required_variables(self) -> List[str]: ...
    @property
    def defaults(self) -> Dict[str, Any]: ...
    @property
    def examples(self) -> List[Dict[str, Any]]: ...
    @property
    def output_schema(self) -> Optional[Dict[str, Any]]: ...
    @property
    def answer_prefixes(self) -> List[str]: ...
    def render(self, vars: Optional[Mapping[str, Any]] = None, /, **variables: Any) -> str: ...
    def messages(self, vars: Optional[Mapping[str, Any]] = None, /, **variables: Any) -> List[Dict[str, str]]: ...
    def extract_answer(self, text: str) -> Optional[str]: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class TemplateLibrary:
    """Prompt templates by name: the built-in ones and folders of TOML files."""

    def __new__(cls) -> "TemplateLibrary": ...
    @staticmethod
    def builtin() -> "TemplateLibrary": ...
    @staticmethod
    def load_dir(path: _PathLike) -> "TemplateLibrary": ...
    def add_dir(self, path: _PathLike) -> None: ...
    def add(self, template: PromptTemplate) -> None: ...
    def get(self, name: str) -> PromptTemplate: ...
    def names(self) -> List[str]: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: object, /) -> bool: ...

@final
class Safety:
    """The safety layer on its own: sensitive-term filtering and PII redaction under a policy."""

    def __new__(cls, policy: _SafetyPolicy = None) -> "Safety": ...
    def check_input(self, text: str) -> Dict[str, Any]: ...
    def check_output(self, text: str) -> Dict[str, Any]: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def refusal_message(self) -> str: ...

@final
class LoraAdapter:
    """A LoRA adapter loaded into one model (``Model.load_lora(path)``)."""

    @property
    def info(self) -> Dict[str, Any]: ...
    @property
    def name(self) -> str: ...
    @property
    def path(self) -> str: ...

@final
class Image:
    """A decoded image (RGB8 pixels): PNG, JPEG, WebP, BMP, TIFF, GIF (first frame) or DICOM."""

    @staticmethod
    def open(
        path: _PathLike,
        *,
        max_bytes: Optional[int] = None,
        max_side: Optional[int] = None,
        max_pixels: Optional[int] = None,
        window: Optional[Tuple[float, float]] = None,
        frame: int = 0,
    ) -> "Image": ...
    @staticmethod
    def from_bytes(
        data: bytes,
        *,
        max_bytes: Optional[int] = None,
        max_side: Optional[int] = None,
        max_pixels: Optional[int] = None,
        window: Optional[Tuple[float, float]] = None,
        frame: int = 0,
    ) -> "Image": ...
    @staticmethod
    def from_rgb(width: int, height: int, data: bytes) -> "Image": ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    def rgb(self) -> bytes: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class ModelInfo:
    """What a model is, read from its GGUF metadata."""

    @property
    def path(self) -> str: ...
    @property
    def architecture(self) -> str: ...
    @property
    def name(self) -> Optional[str]: ...
    @property
    def n_params(self) -> int: ...
    @property
    def size_bytes(self) -> int: ...
    @property
    def n_ctx_train(self) -> int: ...
    @property
    def n_embd(self) -> int: ...
    @property
    def n_layer(self) -> int: ...
    @property
    def n_vocab(self) -> int: ...
    @property
    def quantization(self) -> str: ...
    @property
    def chat_template(self) -> Optional[str]: ...
    @property
    def sha256(self) -> Optional[str]: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class TokenStream(Iterator[str]):
    """An iterator of generated text pieces; ``completion`` holds the full result at the end."""

    def __iter__(self: _Self) -> _Self: ...
    def __next__(self) -> str: ...
    @property
    def completion(self) -> Optional[Completion]: ...
    def cancel(self) -> None: ...
    def close(self) -> None: ...
    def __enter__(self: _Self) -> _Self: ...
    def __exit__(
        self,
        *_exc: Union[Optional[Type[BaseException]], Optional[BaseException], Optional[TracebackType]],
    ) -> bool: ...

@final
class Session:
    """An independent conversation state (its own KV cache) on a shared model."""

    @overload
    def generate(
        self,
        prompt: _Prompt,
        *,
        images: Optional[Sequence[Union["Image", _PathLike]]] = None,
        stream: Literal[False] = False,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        json_schema: Optional[_JsonSchema] = None,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> str: ...
    @overload
    def generate(
        self,
        prompt: _Prompt,
        *,
        images: Optional[Sequence[Union["Image", _PathLike]]] = None,
        stream: Literal[True],
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        json_schema: Optional[_JsonSchema] = None,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> TokenStream: ...
    def complete(
        self,
        prompt: _Prompt,
        *,
        images: Optional[Sequence[Union["Image", _PathLike]]] = None,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        json_schema: Optional[_JsonSchema] = None,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> Completion: ...
    @overload
    def chat(
        self,
        messages: _Messages,
        *,
        stream: Literal[False] = False,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        json_schema: Optional[_JsonSchema] = None,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> str: ...
    @overload
    def chat(
        self,
        messages: _Messages,
        *,
        stream: Literal[True],
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        json_schema: Optional[_JsonSchema] = None,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> TokenStream: ...
    def chat_complete(
        self,
        messages: _Messages,
        *,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        json_schema: Optional[_JsonSchema] = None,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> Completion: ...
    def generate_json(
        self,
        prompt: _Prompt,
        schema: _JsonSchema,
        *,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> Any: ...
    def complete_json(
        self,
        prompt: _Prompt,
        schema: _JsonSchema,
        *,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> JsonCompletion: ...
    def chat_json(
        self,
        messages: _Messages,
        schema: _JsonSchema,
        *,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> Any: ...
    def chat_complete_json(
        self,
        messages: _Messages,
        schema: _JsonSchema,
        *,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> JsonCompletion: ...
    def run_template(
        self,
        template: Union[PromptTemplate, str],
        vars: Optional[Mapping[str, Any]] = None,
        *,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        json_schema: Optional[_JsonSchema] = None,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> TemplateOutput: ...
    def run_dynamic(
        self,
        template: Union[PromptTemplate, str],
        request: str,
        *,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        json_schema: Optional[_JsonSchema] = None,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> DynamicFlowOutput: ...
    def render_chat(self, messages: _Messages, add_generation_prompt: bool = True) -> str: ...
    def cancel(self) -> None: ...
    def save_state(self, path: _PathLike) -> None: ...
    def load_state(self, path: _PathLike) -> int: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def n_ctx(self) -> int: ...
    def __enter__(self: _Self) -> _Self: ...
    def __exit__(
        self,
        *_exc: Union[Optional[Type[BaseException]], Optional[BaseException], Optional[TracebackType]],
    ) -> bool: ...

@final
class Model:
    """A GGUF model loaded into memory, with a default session for generate/chat."""

    def __new__(
        cls,
        path: Union[str, "os.PathLike[str]", None] = None,
        *,
        n_gpu_layers: int = 0,
        n_ctx: Optional[int] = None,
        n_batch: Optional[int] = None,
        n_ubatch: Optional[int] = None,
        threads: Optional[int] = None,
        threads_batch: Optional[int] = None,
        use_mmap: bool = True,
        use_mlock: bool = False,
        chat_template: Optional[str] = None,
        safety_policy: _SafetyPolicy = None,
        audit_dir: Union[str, "os.PathLike[str]", None] = None,
        tenant: str = "local",
        adapters: _AdapterSpecs = None,
        manifest: Union[str, "os.PathLike[str]", None] = None,
        pubkey: Union[str, "os.PathLike[str]", None] = None,
        mmproj: Union[str, "os.PathLike[str]", None] = None,
        prefix_reuse: bool = True,
        max_prompt_tokens: Optional[int] = None,
        max_sessions: Optional[int] = None,
    ) -> "Model": ...
    @overload
    def generate(
        self,
        prompt: _Prompt,
        *,
        images: Optional[Sequence[Union["Image", _PathLike]]] = None,
        stream: Literal[False] = False,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        json_schema: Optional[_JsonSchema] = None,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> str: ...
    @overload
    def generate(
        self,
        prompt: _Prompt,
        *,
        images: Optional[Sequence[Union["Image", _PathLike]]] = None,
        stream: Literal[True],
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        json_schema: Optional[_JsonSchema] = None,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> TokenStream: ...
    def complete(
        self,
        prompt: _Prompt,
        *,
        images: Optional[Sequence[Union["Image", _PathLike]]] = None,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        json_schema: Optional[_JsonSchema] = None,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> Completion: ...
    @overload
    def chat(
        self,
        messages: _Messages,
        *,
        stream: Literal[False] = False,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        json_schema: Optional[_JsonSchema] = None,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> str: ...
    @overload
    def chat(
        self,
        messages: _Messages,
        *,
        stream: Literal[True],
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        json_schema: Optional[_JsonSchema] = None,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> TokenStream: ...
    def chat_complete(
        self,
        messages: _Messages,
        *,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        json_schema: Optional[_JsonSchema] = None,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> Completion: ...
    def generate_json(
        self,
        prompt: _Prompt,
        schema: _JsonSchema,
        *,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> Any: ...
    def complete_json(
        self,
        prompt: _Prompt,
        schema: _JsonSchema,
        *,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> JsonCompletion: ...
    def chat_json(
        self,
        messages: _Messages,
        schema: _JsonSchema,
        *,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> Any: ...
    def chat_complete_json(
        self,
        messages: _Messages,
        schema: _JsonSchema,
        *,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> JsonCompletion: ...
    def run_template(
        self,
        template: Union[PromptTemplate, str],
        vars: Optional[Mapping[str, Any]] = None,
        *,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        json_schema: Optional[_JsonSchema] = None,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> TemplateOutput: ...
    def run_dynamic(
        self,
        template: Union[PromptTemplate, str],
        request: str,
        *,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        json_schema: Optional[_JsonSchema] = None,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> DynamicFlowOutput: ...
    def render_chat(self, messages: _Messages, add_generation_prompt: bool = True) -> str: ...
    def load_lora(self, path: _PathLike) -> LoraAdapter: ...
    def load_mmproj(self, path: _PathLike) -> None:
        """Attach the vision projector (mmproj GGUF); ``ProjectorError`` when it does not fit."""
    def vision_stats(self) -> Optional[Dict[str, Any]]:
        """``{"info": {...}, "stats": {"encoded", "cache_hits", "cached_entries", "cached_bytes"}}``."""
    def clear_image_cache(self) -> None: ...
    def perplexity(
        self, text: str, n_ctx: int = 512, max_chunks: Optional[int] = None, adapters: _Adapters = None
    ) -> Dict[str, Any]: ...
    def session(
        self,
        *,
        n_ctx: Optional[int] = None,
        n_batch: Optional[int] = None,
        n_ubatch: Optional[int] = None,
        threads: Optional[int] = None,
        threads_batch: Optional[int] = None,
        chat_template: Optional[str] = None,
        safety_policy: _SafetyPolicy = None,
        audit_dir: Union[str, "os.PathLike[str]", None] = None,
        tenant: Optional[str] = None,
        adapters: _AdapterSpecs = None,
        prefix_reuse: Optional[bool] = None,
    ) -> Session: ...
    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> List[int]: ...
    def detokenize(self, tokens: Sequence[int], special: bool = False) -> str: ...
    def embed(self, text: Union[str, Sequence[str]]) -> _Vector: ...
    def sha256(self) -> str: ...
    def cancel(self) -> None: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def info(self) -> ModelInfo: ...
    @property
    def path(self) -> str: ...
    def __enter__(self: _Self) -> _Self: ...
    def __exit__(
        self,
        *_exc: Union[Optional[Type[BaseException]], Optional[BaseException], Optional[TracebackType]],
    ) -> bool: ...

@final
class Request(Iterator[str]):
    """A request submitted to an ``Engine``: iterate it (or ``async for``) for the pieces,
    ``result()`` (or ``await``) for the ``Completion``."""

    @property
    def id(self) -> str: ...
    @property
    def done(self) -> bool: ...
    def cancel(self) -> None: ...
    def result(self) -> Completion: ...
    def __iter__(self: _Self) -> _Self: ...
    def __next__(self) -> str: ...
    def __aiter__(self: _Self) -> _Self: ...
    def __anext__(self) -> Awaitable[str]: ...
    def __await__(self) -> Generator[Any, None, Completion]: ...

@final
class ResponseCache:
    """An exact-match cache of deterministic answers (in memory or Redis) for engines."""

    @staticmethod
    def memory(capacity: int = 1024, *, ttl: float = 3600.0) -> "ResponseCache": ...
    @staticmethod
    def redis(
        url: str, *, prefix: str = "llmedge:", ttl: float = 3600.0, timeout: float = 1.0
    ) -> "ResponseCache": ...
    @property
    def backend(self) -> str: ...
    def stats(self) -> Dict[str, int]: ...

@final
class RouteClassifier:
    """The classifier stage's model for a Router: a greedy session answering a route name."""

    def __new__(cls, model: Model) -> "RouteClassifier": ...

@final
class Router:
    """Routing rules from TOML (`[[routes]]`, optional `[classifier]`), as `llmedge serve` uses."""

    @staticmethod
    def from_toml(text: str) -> "Router": ...
    @staticmethod
    def from_file(path: str) -> "Router": ...
    def route(
        self,
        text: str,
        *,
        model: Optional[str] = None,
        tenant: str = "",
        classifier: Optional[RouteClassifier] = None,
    ) -> _RouteDecision: ...
    @property
    def routes(self) -> List[str]: ...

@final
class Engine:
    """A continuous-batching engine on one model: many requests decoded together."""

    def __new__(
        cls,
        model: Model,
        *,
        slots: int = 4,
        max_queue: int = 64,
        timeout: Optional[float] = None,
        prefix_cache_bytes: int = 268435456,
        prefix_cache_min_tokens: int = 32,
        adapter_quantum: int = 16,
        n_ctx: Optional[int] = None,
        n_batch: Optional[int] = None,
        n_ubatch: Optional[int] = None,
        threads: Optional[int] = None,
        threads_batch: Optional[int] = None,
        chat_template: Optional[str] = None,
        safety_policy: _SafetyPolicy = None,
        audit_dir: Union[str, "os.PathLike[str]", None] = None,
        tenant: Optional[str] = None,
        adapters: _AdapterSpecs = None,
        prefix_reuse: Optional[bool] = None,
        response_cache: Optional["ResponseCache"] = None,
        share_across_tenants: bool = False,
    ) -> "Engine": ...
    def submit(
        self,
        prompt: Union[_Prompt, _Messages],
        *,
        stream: bool = False,
        timeout: Optional[float] = None,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        json_schema: Optional[_JsonSchema] = None,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> Request: ...
    def generate(
        self,
        prompt: _Prompt,
        *,
        timeout: Optional[float] = None,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        json_schema: Optional[_JsonSchema] = None,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> str: ...
    def complete(
        self,
        prompt: _Prompt,
        *,
        timeout: Optional[float] = None,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        json_schema: Optional[_JsonSchema] = None,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> Completion: ...
    def chat(
        self,
        messages: _Messages,
        *,
        timeout: Optional[float] = None,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        json_schema: Optional[_JsonSchema] = None,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> str: ...
    def chat_complete(
        self,
        messages: _Messages,
        *,
        timeout: Optional[float] = None,
        max_tokens: Optional[int] = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        penalty_last_n: int = 64,
        seed: Optional[int] = None,
        greedy: bool = False,
        stop: _Stop = None,
        logit_bias: _LogitBias = None,
        ignore_eos: bool = False,
        truncation: _Truncation = "error",
        json_schema: Optional[_JsonSchema] = None,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        request_id: Optional[str] = None,
        tenant: Optional[str] = None,
        adapters: _Adapters = None,
    ) -> Completion: ...
    def stats(self) -> Dict[str, int]: ...
    def shutdown(self, drain: bool = True) -> None: ...
    def close(self) -> None: ...
    @property
    def slots(self) -> int: ...
    @property
    def n_ctx(self) -> int: ...
    def __enter__(self: _Self) -> _Self: ...
    def __exit__(
        self,
        *exc: Union[Optional[Type[BaseException]], Optional[BaseException], Optional[TracebackType]],
    ) -> bool: ...

class Error(Exception):
    """Base class of every llmedge error; ``code`` is the stable numeric error code."""

    code: int
    name: str
    message: str
    def __init__(self, message: str = "") -> None: ...

class InvalidArgumentError(Error, ValueError):
    """Code 1: an argument is out of range or malformed."""

class ArgumentTypeError(InvalidArgumentError, TypeError):
    """Code 1: an argument of the wrong type, or an unknown keyword."""

class NullArgumentError(Error, TypeError):
    """Code 2: a required argument was None."""

class InvalidUtf8Error(Error, UnicodeError):
    """Code 3: text that must be UTF-8 is not (e.g. lone surrogates)."""

class ModelNotFoundError(Error, FileNotFoundError):
    """Code 10: the model file does not exist."""

class InvalidModelError(Error):
    """Code 11: the file is not a valid GGUF model."""

class UnsupportedArchitectureError(Error):
    """Code 12: the GGUF names an architecture this build does not know."""

class OutOfMemoryError(Error, MemoryError):
    """Code 13: the model or its context does not fit in memory."""

class ModelLoadError(Error):
    """Code 14: llama.cpp refused the model for another reason."""

class AdapterError(Error):
    """Code 15: a LoRA adapter does not fit the model, is not a LoRA adapter or cannot be read."""

class ModelIntegrityError(Error):
    """Code 16: the model file is not in the manifest, or its hash or signature does not match."""

class ProjectorError(Error):
    """Code 17: the vision projector is missing, not a projector, or made for another text model."""

class ImageError(Error):
    """Code 18: an image is corrupt, of an unsupported format, or over a limit."""

class DicomError(Error):
    """Code 19: a DICOM file has an unsupported transfer syntax, no pixel data, or no such frame."""

class ContextCreateError(Error):
    """Code 20: a llama.cpp context could not be created."""

class ContextOverflowError(Error, ValueError):
    """Code 21: the request does not fit in the context window."""

class DecodeError(Error):
    """Code 22: llama.cpp failed while evaluating tokens."""

class TokenizeError(Error):
    """Code 23: text could not be tokenized, or a token id is outside the vocabulary."""

class TemplateError(Error):
    """Code 30: a chat template failed to parse or render."""

class NoChatTemplateError(Error):
    """Code 31: the model has no chat template and none was given."""

class TemplateVariablesError(Error):
    """Code 32: a prompt template got missing or unknown variables (the message lists them)."""

class GrammarError(Error):
    """Code 33: a JSON schema, regex or grammar cannot be turned into a llama.cpp grammar."""

class StructuredOutputError(Error):
    """Code 34: constrained output is unusable (e.g. cut off before the JSON was complete)."""

class SafetyBlockedError(Error):
    """Code 40: the request or the output was blocked by the safety policy."""

class PolicyError(Error):
    """Code 41: a safety policy or lexicon file is invalid (the message names the file and line)."""

class AuditError(Error):
    """Code 42: the audit log could not be opened, written or recovered."""

class IoError(Error, OSError):
    """Code 50: a file could not be read or written."""

class ChecksumMismatchError(Error):
    """Code 51: a downloaded or cached file has the wrong SHA-256."""

class FetchError(Error):
    """Code 52: a model could not be fetched from its package."""

class ClosedError(Error, ValueError):
    """Code 60: the object was closed."""

class BusyError(Error):
    """Code 70: the engine queue is full, or all of a model's max_sessions are open; retry later."""

class RequestTimeoutError(Error, TimeoutError):
    """Code 71: the request ran past its deadline (queued or generating)."""

class StateError(Error):
    """Code 72: a saved session state is corrupt or belongs to another model or adapter set."""

class ConfigError(Error):
    """Code 73: a server configuration file is invalid (the message names the file and line)."""

class LimitError(Error, ValueError):
    """Code 74: a request is over a configured resource limit, such as ``max_prompt_tokens``."""

class InternalError(Error):
    """Code 98: a bug inside llmedge."""

class PanicError(Error):
    """Code 99: a panic was caught."""

ERROR_CLASSES: Dict[int, Type[Error]]
