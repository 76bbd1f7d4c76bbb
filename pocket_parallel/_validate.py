"""Every argument check of the public API, in one place and one order: ``check_*(name, value, ...)``.

Each error names the parameter and the accepted range, so a learner who passes a latency
where a count was meant reads what went wrong, not a traceback from deep inside asyncio.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any, TypeVar

from .redaction import redact, safe_repr

T = TypeVar("T")


def check_real(name: str, value: Any, *, low: float, high: float = math.inf, low_open: bool = False) -> float:
    """Return ``value`` as a float if it is a finite real in range, else raise ValueError."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{']' if high != math.inf else ')'}"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a finite number in {interval}; got {value!r}")
    number = float(value)
    too_low = number <= low if low_open else number < low
    if not math.isfinite(number) or too_low or number > high:
        raise ValueError(f"{name} must be a finite number in {interval}; got {value!r}")
    return number


def check_int(name: str, value: Any, *, low: int, high: int | None = None) -> int:
    """Return ``value`` if it is an int in ``[low, high]``, else raise ValueError.

    Booleans, floats (even 3.0) and strings are refused: a silent conversion would hide a
    mistake such as passing a latency where a count was meant.
    """
    interval = f">= {low}" if high is None else f"in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer {interval}; got {value!r}")
    number = int(value)
    if number < low or (high is not None and number > high):
        raise ValueError(f"{name} must be an integer {interval}; got {value!r}")
    return number


def check_limit(name: str, value: Any) -> int | None:
    """A limit: an integer >= 1, or None for no limit (0 would let nothing through, ever)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(
            f"{name} must be an integer >= 1, or None for no limit; got {value!r}"
            + (" (0 would let no call start: the run would wait forever)" if value == 0 else "")
        )
    return int(value)


def check_optional_seconds(name: str, value: Any, *, high: float = 86_400.0) -> float | None:
    """A duration in seconds, > 0 and at most a day, or None for none."""
    if value is None:
        return None
    return check_real(name, value, low=0.0, high=high, low_open=True)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is True or False (not 0, 1 or "yes"), else TypeError."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return value


def check_optional_bool(name: str, value: Any) -> bool | None:
    """``value`` if it is True, False or None (None: decide from the other settings), else TypeError."""
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{name} must be True, False or None; got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[T]) -> T:
    """``value`` if it is one of ``choices``, else ValueError listing them."""
    options = tuple(choices)
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    chosen: T = value
    return chosen


def check_instance(name: str, value: Any, kind: type[T], example: str, *, optional: bool = True) -> T | None:
    """``value`` if it is a ``kind`` (or None when ``optional``), else TypeError showing ``example``."""
    if (value is None and optional) or isinstance(value, kind):
        checked: T | None = value
        return checked
    none = " or None" if optional else ""
    raise TypeError(f"{name} must be a {kind.__name__} (e.g. {example}){none}; got {value!r}")


def check_url(name: str, value: Any, example: str) -> str:
    """``value`` if it is an http:// or https:// URL, else ValueError showing ``example``."""
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError(f"{name} must be an http:// or https:// URL such as {example}; got {redact(safe_repr(value, 200))}")
    return value


def check_prompt(value: Any) -> str:
    """A prompt: any str."""
    if not isinstance(value, str):
        raise TypeError(f"prompt must be a str; got {type(value).__name__}")
    return value


def check_iterable(name: str, value: Any, example: str) -> list[Any]:
    """A list (or other iterable, but not a str or bytes) of items, as a list."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list (or other iterable) of {example}; got {type(value).__name__}")
    return list(value)


def check_pair(
    name: str, value: Any, *, low: float, high: float, integer: bool = False, low_open: bool = False
) -> tuple[Any, Any]:
    """A (low, high) pair inside ``[low, high]`` (``(low, high]`` if ``low_open``), its first value below its second."""
    kind = "integers" if integer else "numbers"
    bottom = f"low above {low:g} and low" if low_open else f"{low:g} <= low"
    message = f"{name} must be a pair (low, high) of {kind} with {bottom} < high <= {high:g}; got {value!r}"
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(message)
    first, second = value
    for v in (first, second):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
            raise ValueError(message)
        if not math.isfinite(v) or v < low or (low_open and v == low) or v > high:
            raise ValueError(message)
    if not first < second:
        raise ValueError(message)
    return (int(first), int(second)) if integer else (float(first), float(second))


CLOCKS = ("real", "virtual")


def check_clock(value: Any) -> Any:
    """``"real"`` or ``"virtual"``."""
    return check_choice("clock", value, CLOCKS)
