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
        raise MalformedBody("the body nests arrays or objects too deeply") from None
    except json.JSONDecodeError as error:
        raise MalformedBody(f"the body is not valid JSON ({error})") from None
    except ValueError:  # Python's guard against converting very long integers
        raise MalformedBody("the body holds a number of more than 4,300 digits") from None
    if not isinstance(body, dict):
        raise MalformedBody(f"the body must be a JSON object; got a JSON {json_kind(body)}")
    return body


def json_kind(value: Any) -> str:
    """What JSON calls the type of a decoded ``value``: object, array, string, boolean, null or number."""
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


__all__ = ["MalformedBody", "json_kind", "read_json_object"]
