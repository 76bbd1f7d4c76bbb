"""Argument checks shared by the public API: each error names the parameter and its range."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any


def check_real(
    name: str,
    value: Any,
    *,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
) -> float:
    """Return ``value`` as a float if it is a finite real in range, else raise ValueError."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{']' if high != math.inf else ')'}"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a finite number in {interval}; got {value!r}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    if not math.isfinite(value) or too_low or value > high:
        raise ValueError(f"{name} must be a finite number in {interval}; got {value!r}")
    return value


def check_int(name: str, value: Any, *, low: int, high: int | None = None) -> int:
    """Return ``value`` if it is an int in ``[low, high]``, else raise ValueError.

    Booleans, floats (even 3.0) and strings are refused: a silent conversion would hide a
    mistake such as passing a latency where a count was meant.
    """
    interval = f">= {low}" if high is None else f"in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer {interval}; got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer {interval}; got {value!r}")
    return int(value)


def check_max_concurrency(value: Any, name: str = "max_concurrency") -> int | None:
    """Return a valid concurrency limit: an integer >= 1, or None for unlimited."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(
            f"{name} must be an integer >= 1, or None for no limit; got {value!r}"
            + (" (0 would let no call start: the run would wait forever)" if value == 0 else "")
        )
    return int(value)
