"""What the student's code produced, carried from the subprocess to the check as JSON, never as pickle.

The subprocess that runs a student's answer (:mod:`._sandbox`) sends back what it saw: the
shared store, results, errors. Unpickling that in the notebook's kernel would run whatever
code the answer chose to put in it, so it travels as JSON instead, and anything that is not a
plain value arrives as a :class:`Foreign`: its type, its ``repr`` and, for the objects the
checks look into (exceptions, failure records), the attributes they read.

:func:`to_portable` is linear in the size of the value and bounded (depth, items, text), so a
huge or circular answer cannot stall the check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_MAX_DEPTH = 16
_MAX_ITEMS = 20_000
_MAX_TEXT = 200_000  # characters of one string
_REPR = 300  # characters of a foreign object's repr
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]+")
#: The attributes of a foreign object a check may read (a Failure's, an exception's).
_ATTRIBUTES = ("item", "error", "attempts")


@dataclass(frozen=True)
class Foreign:
    """An object that is not a plain value, as the check sees it: its type names and its repr.

    ``types`` lists the names of its class and its bases (``["TransientLLMError",
    "LLMError", "Exception", ...]``); ``attributes`` holds ``item``, ``error`` and
    ``attempts`` where it had them; ``message`` is ``str(error)`` for an exception.
    """

    types: tuple[str, ...]
    text: str
    message: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def type_name(self) -> str:
        """The name of its class."""
        return self.types[0] if self.types else "object"

    @property
    def is_exception(self) -> bool:
        """Whether it is an exception (an instance of BaseException)."""
        return "BaseException" in self.types

    def is_a(self, name: str) -> bool:
        """Whether its class, or a base of it, is called ``name``."""
        return name in self.types

    def __repr__(self) -> str:
        return self.text

    def __hash__(self) -> int:
        return hash((self.types, self.text))


def to_portable(value: Any) -> Any:
    """``value`` as JSON-safe data: plain values as they are, everything else tagged."""
    budget = [_MAX_ITEMS]
    return _encode(value, 0, budget, set())


def from_portable(data: Any) -> Any:
    """The value :func:`to_portable` encoded: plain values, tuples, dicts with any keys, :class:`Foreign`."""
    if isinstance(data, list):
        return [from_portable(item) for item in data]
    if not isinstance(data, dict):
        return data
    tag = data.get("~")
    if tag == "tuple":
        return tuple(from_portable(item) for item in data["items"])
    if tag == "dict":
        return {_hashable(from_portable(k)): from_portable(v) for k, v in data["items"]}
    if tag in ("set", "frozenset"):
        items = {_hashable(from_portable(item)) for item in data["items"]}
        return items if tag == "set" else frozenset(items)
    if tag == "float":
        return float(data["value"])
    if tag == "foreign":
        attributes = {name: from_portable(v) for name, v in data.get("attributes", {}).items()}
        return Foreign(tuple(data.get("types", ())), str(data.get("text", "")), str(data.get("message", "")), attributes)
    raise ValueError(f"not a portable value: {str(data)[:80]}")


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return Foreign(("dict",), repr(value)[:_REPR])
    if isinstance(value, set):
        return frozenset(value)
    return value


def _encode(value: Any, depth: int, budget: list[int], seen: set[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0 or depth > _MAX_DEPTH:
        return _foreign(value, shallow=True)
    kind = type(value)
    if value is None or kind in (bool, int):
        return value
    if kind is float:
        return value if value == value and abs(value) != float("inf") else {"~": "float", "value": repr(value)}
    if kind is str:
        return value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT]
    if id(value) in seen:
        return _foreign(value, shallow=True)
    if kind in (list, tuple, dict, set, frozenset):
        seen.add(id(value))
        try:
            if kind is list:
                return [_encode(item, depth + 1, budget, seen) for item in value]
            if kind is tuple:
                return {"~": "tuple", "items": [_encode(item, depth + 1, budget, seen) for item in value]}
            if kind is dict:
                return {"~": "dict", "items": [[_encode(k, depth + 1, budget, seen), _encode(v, depth + 1, budget, seen)]
                                               for k, v in list(value.items())]}
            return {"~": kind.__name__, "items": [_encode(item, depth + 1, budget, seen) for item in list(value)]}
        finally:
            seen.discard(id(value))
    return _foreign(value, depth=depth, budget=budget, seen=seen)


def _foreign(value: Any, *, shallow: bool = False, depth: int = 0, budget: list[int] | None = None,
             seen: set[int] | None = None) -> dict[str, Any]:
    types = [klass.__name__ for klass in type(value).__mro__]
    data: dict[str, Any] = {"~": "foreign", "types": types, "text": _safe_repr(value)}
    if isinstance(value, BaseException):
        data["message"] = _safe_str(value)
    if not shallow and budget is not None and seen is not None:
        attributes = {}
        for name in _ATTRIBUTES:
            try:
                found = getattr(value, name)
            except Exception:  # a student's property may raise anything
                continue
            attributes[name] = _encode(found, depth + 1, budget, seen)
        if attributes:
            data["attributes"] = attributes
    return data


def _safe_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a student's __repr__ may raise anything
        text = f"<{type(value).__name__} object>"
    text = _ADDRESS.sub("0x...", text)
    return text if len(text) <= _REPR else text[:_REPR - 3] + "..."


def _safe_str(value: Any) -> str:
    try:
        text = str(value)
    except Exception:  # a student's __str__ may raise anything
        return ""
    return text[:_REPR]
