"""The llmedge exception hierarchy, generated from the native error codes.

Every error llmedge raises is an :class:`Error` whose ``code`` is the stable number shared with
the C ABI, the Java binding and the CLI's exit status. One subclass per code is generated from
``_llmedge.ERROR_CODES`` (core's ``ErrorCode::ALL``); its name is the code's snake_case name in
CamelCase plus ``Error`` (``invalid_argument`` -> ``InvalidArgumentError``), except where that
would shadow a built-in (``timeout`` -> ``RequestTimeoutError``). Where a built-in exception
means the same thing, the class also derives from it, so ``except ValueError``,
``except FileNotFoundError`` or ``except TimeoutError`` keep working.
"""

from __future__ import annotations

from typing import Dict, Tuple, Type

from . import _llmedge

__all__ = ["Error", "ArgumentTypeError", "ERROR_CLASSES"]


class Error(Exception):
    """Base class of every llmedge error.

    ``code`` is the stable numeric error code (the C ABI's status code) and ``name`` its
    snake_case name; ``message`` is the human-readable description.
    """

    code: int = 0
    name: str = ""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


# Built-in exceptions that mean the same as an llmedge code.
_BUILTIN_BASES: Dict[str, Tuple[type, ...]] = {
    "invalid_argument": (ValueError,),
    "null_argument": (TypeError,),
    "invalid_utf8": (UnicodeError,),
    "model_not_found": (FileNotFoundError,),
    "out_of_memory": (MemoryError,),
    "context_overflow": (ValueError,),
    "limit": (ValueError,),
    "io": (OSError,),
    "closed": (ValueError,),
    "timeout": (TimeoutError,),
}

# Class names that would shadow a built-in exception.
_CLASS_NAMES: Dict[str, str] = {"timeout": "RequestTimeoutError"}


def _class_name(name: str) -> str:
    if name in _CLASS_NAMES:
        return _CLASS_NAMES[name]
    return "".join(part[:1].upper() + part[1:] for part in name.split("_")) + "Error"


ERROR_CLASSES: Dict[int, Type[Error]] = {}
"""The exception class of each error code."""

for _code, _name in _llmedge.ERROR_CODES:
    _cls = type(
        _class_name(_name),
        (Error,) + _BUILTIN_BASES.get(_name, ()),
        {
            "code": _code,
            "name": _name,
            "__doc__": f"llmedge error {_code} ({_name}).",
            "__module__": "llmedge",
        },
    )
    ERROR_CLASSES[_code] = _cls
    globals()[_cls.__name__] = _cls
    __all__.append(_cls.__name__)

Error.__module__ = "llmedge"


class ArgumentTypeError(ERROR_CLASSES[1], TypeError):  # type: ignore[misc,valid-type]
    """An argument of the wrong type, or an unknown keyword (code 1, ``invalid_argument``).

    Both a :class:`TypeError` and an ``InvalidArgumentError``.
    """


ArgumentTypeError.__module__ = "llmedge"

del _code, _name, _cls
