"""Read a request's JSON body: any malformed or unrepresentable JSON is a 400, never a 500.

``json.loads`` fails in more ways than :class:`json.JSONDecodeError`: arrays nested a
hundred thousand deep raise :class:`RecursionError`, an integer of 5,000 digits raises a
plain :class:`ValueError` (Python converts at most 4,300 digits, a guard against quadratic
conversion), bytes that are not UTF-8 raise :class:`UnicodeDecodeError`, and it accepts
``NaN`` and ``Infinity``, which JSON does not have. Each of these is the client's mistake,
so each becomes a 400 with an error body that says what is wrong; none costs more than a
pass over the body (at most :data:`~pocket_parallel.server.app.MAX_BODY` bytes).
"""

from __future__ import annotations

import json
from typing import Any

from .errors import ApiError, bad_request

_EXAMPLE = "{\"model\": \"...\", \"messages\": [{\"role\": \"user\", \"content\": \"...\"}]}"


def parse_json(raw: bytes, example: str = _EXAMPLE) -> Any:
    """The JSON value in ``raw``, or an :class:`ApiError` (400, ``invalid_json``) saying what is wrong.

    ``example`` is a body the route would take, shown in the message.
    """
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        problem = "it is nested too deeply (arrays or objects inside one another)"
    except UnicodeDecodeError as error:
        problem = f"it is not UTF-8 text (byte {error.start})"
    except json.JSONDecodeError as error:
        problem = str(error)
    except ValueError as error:  # a number Python refuses to convert, or NaN or Infinity
        problem = str(error) if isinstance(error, _NotJson) else "an integer in it has more digits than this server reads"
    raise bad_request(
        f"We could not parse the JSON body of your request: {problem}. The body must be a JSON object such as "
        f"{example}.", code="invalid_json",
    )


class _NotJson(ValueError):
    """A value ``json.loads`` takes and JSON does not (``NaN``, ``Infinity``, ``-Infinity``)."""


def _refuse_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON value")


def kind_of(value: Any) -> str:
    """The JSON kind of a parsed value: ``"object"``, ``"array"``, ``"string"``, ``"number"``..."""
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def describe(value: Any, width: int = 40) -> str:
    """A short description of a parsed JSON value for an error message: its kind and how it starts."""
    try:
        text = json.dumps(value)
    except (RecursionError, ValueError):  # nested too deeply to write back, or an integer too long to
        return kind_of(value)
    return f"{kind_of(value)} {text if len(text) <= width else text[: width - 3] + '...'}"
