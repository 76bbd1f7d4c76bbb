"""Read a request body as one JSON object, turning every way it can be malformed into one error.

``json.loads`` alone lets three kinds of hostile body through as something other than a
``ValueError`` a route expects, so a server that catches only ``JSONDecodeError`` answers them
with a 500:

- an array or object nested thousands deep raises ``RecursionError``;
- an integer of more than 4,300 digits raises a plain ``ValueError`` (Python's guard against
  quadratic conversion), not a ``JSONDecodeError``;
- ``NaN`` and ``Infinity`` are accepted, though JSON has no such values.

:func:`read_json_object` refuses all of them, and bytes that are not UTF-8, with
:class:`MalformedBody`; each API's route words it in its own error shape (a 400). Parsing is
linear in the body's size, which the server bounds (``client_max_size``).
"""

from __future__ import annotations

import json
from typing import Any


class MalformedBody(ValueError):
    """The body is not one JSON object; the message says why, for a 400."""


def _no_constant(name: str) -> Any:
    raise MalformedBody(f"{name} is not a JSON value (JSON numbers are finite)")


def read_json_object(raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw``, or :class:`MalformedBody` saying what is wrong with it."""
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except MalformedBody:
        raise
    except UnicodeDecodeError:
        raise MalformedBody("the body is not UTF-8 text") from None
    except RecursionError:
        raise MalformedBody("the body is nested too deeply (arrays or objects inside one another)") from None
    except json.JSONDecodeError as error:
        raise MalformedBody(f"the body is not valid JSON ({error})") from None
    except ValueError:  # Python's guard against converting very long integers
        raise MalformedBody("an integer in it has more than 4,300 digits, more digits than this server reads") from None
    if not isinstance(body, dict):
        raise MalformedBody(f"the body must be a JSON object; got a JSON {json_kind(body)}")
    return body


def json_kind(value: Any) -> str:
    """What JSON calls the type of a decoded ``value``: object, array, string, boolean, null or number."""
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def describe(value: Any, width: int = 40) -> str:
    """A short picture of a decoded JSON value for an error message, costing a glance whatever its size or depth."""
    if isinstance(value, dict):
        keys = ", ".join(json.dumps(clip(key, width)) for key in list(value)[:4])
        return f"object with keys {keys}{', ...' if len(value) > 4 else ''}" if value else "empty object"
    if isinstance(value, list):
        return f"array of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, str):
        return f"string {json.dumps(clip(value, width))}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10 ** width:
        return f"number of more than {width} digits"
    if value is None:
        return "null"
    return f"{json_kind(value)} {json.dumps(value)}"


def clip(text: str, width: int = 40) -> str:
    """``text``, cut to ``width`` characters with an ellipsis when longer."""
    return text if len(text) <= width else text[: width - 3] + "..."


__all__ = ["MalformedBody", "clip", "describe", "json_kind", "read_json_object"]
