"""Checks of the limit settings a node takes: a number, the limit object itself, or None."""

from __future__ import annotations

from typing import Any

from .._validate import check_instance, check_int
from .ratelimit import RateLimiter
from .retry import Backoff
from .tokens import TokenBudget


def _per_minute(value: Any, name: str, kind: type, unit: str, high: int) -> Any:
    """A per-minute setting: an integer in [1, high], an instance of ``kind`` (shared between nodes), or None."""
    if value is None or isinstance(value, kind):
        return value
    try:
        return check_int(name, value, low=1, high=high)
    except ValueError:
        raise ValueError(
            f"{name} must be an integer >= 1 ({unit} per minute), a {kind.__name__}, or None for no limit; got {value!r}"
        ) from None


def check_max_per_minute(value: Any, name: str = "max_per_minute") -> Any:
    """A request-rate setting: an integer >= 1 (per minute), a RateLimiter, or None."""
    return _per_minute(value, name, RateLimiter, "requests", 1_000_000_000)


def check_max_tokens_per_minute(value: Any, name: str = "max_tokens_per_minute") -> Any:
    """A token-rate setting: an integer >= 1 (tokens per minute), a TokenBudget, or None."""
    return _per_minute(value, name, TokenBudget, "tokens", 1_000_000_000_000)


def check_backoff(value: Any) -> Any:
    """A :class:`~pocket_parallel.Backoff`, or None."""
    return check_instance("backoff", value, Backoff, "Backoff(base=1.0, cap=60.0)")
