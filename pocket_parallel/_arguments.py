"""The argument types of the three command lines, with the bounds they share.

``python -m pocket_parallel``, ``python -m pocket_parallel.server`` and
``python -m pocket_parallel.cluster`` read their numbers through these types. A bad value
never reaches the library: argparse prints the usage line and one message naming the flag
and the accepted range, and exits with status 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Seconds in a day: the longest latency, timeout or deadline any command takes.
DAY = 86_400.0
#: The shortest latency: one microsecond, the virtual clock's tick (shorter rounds to nothing).
MIN_LATENCY = 1e-6
#: Most items a command sends: a million prompts is already minutes of virtual time.
MAX_ITEMS = 1_000_000
#: Highest per-minute rate (requests or tokens): well above any provider's published tier.
MAX_PER_MINUTE = 1_000_000_000
#: Highest seed.
MAX_SEED = 2**32 - 1
#: Highest calls in flight a command allows (and most slots a server has).
MAX_IN_FLIGHT = 100_000
#: Most output tokens an answer may be drawn to have.
MAX_TOKENS = 1_000_000
#: The longest quantum of a per-minute limit (a whole minute) and the shortest (a millisecond).
MAX_QUANTUM = 60.0
MIN_QUANTUM = 0.001
#: Words that mean "no limit" for a limit flag.
NO_LIMIT = ("none", "unlimited", "inf")


def _typed(flag: str, expected: str, parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse type for ``flag``: ``parse`` the text, or refuse it saying what ``flag`` must be."""

    def checked(text: str) -> T:
        try:
            return parse(text)
        except (ValueError, OverflowError):
            shown = text if len(text) <= 40 else f"{text[:20]}...{text[-10:]} ({len(text):,} characters)"
            raise argparse.ArgumentTypeError(f"must be {expected}; got {shown!r}") from None

    checked.__name__ = flag.lstrip("-").replace("-", "_")
    return checked


def integer(flag: str, *, low: int, high: int) -> Callable[[str], int]:
    """An integer in ``[low, high]``."""

    def parse(text: str) -> int:
        value = int(text.strip(), 10)
        if not low <= value <= high:
            raise ValueError(text)
        return value

    return _typed(flag, f"an integer in [{low:,}, {high:,}]", parse)


def number(flag: str, *, low: float, high: float, low_open: bool = False, unit: str = "") -> Callable[[str], float]:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""

    def parse(text: str) -> float:
        value = float(text)
        if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
            raise ValueError(text)
        return value

    bracket = "(" if low_open else "["
    return _typed(flag, f"a number{unit} in {bracket}{low:g}, {high:g}]", parse)


def seconds(flag: str, *, low: float = MIN_LATENCY, high: float = DAY) -> Callable[[str], float]:
    """A duration in seconds: from ``low`` (a microsecond by default: shorter rounds to nothing) to ``high`` (a day)."""
    return number(flag, low=low, high=high, unit=" of seconds")


def latency(flag: str = "--latency") -> Callable[[str], float]:
    """Mean seconds per call: from one microsecond to a day."""
    return number(flag, low=MIN_LATENCY, high=DAY, unit=" of seconds")


def quantum(flag: str = "--quantum") -> Callable[[str], float]:
    """Seconds of refill a per-minute bucket holds: from a millisecond to a minute."""
    return number(flag, low=MIN_QUANTUM, high=MAX_QUANTUM, unit=" of seconds")


def ttft(flag: str = "--ttft") -> Callable[[str], float]:
    """Seconds to the first token: from 0 to a day."""
    return number(flag, low=0.0, high=DAY, unit=" of seconds")


def tpot(flag: str = "--tpot") -> Callable[[str], float]:
    """Seconds per output token: from 0 to a minute."""
    return number(flag, low=0.0, high=60.0, unit=" of seconds")


def token_range(flag: str, *, high: int = MAX_TOKENS) -> Callable[[str], tuple[int, int] | None]:
    """A range of tokens written ``LOW-HIGH`` (1 <= LOW <= HIGH <= ``high``), or ``none``."""

    def parse(text: str) -> tuple[int, int] | None:
        if text.strip().lower() in NO_LIMIT:
            return None
        low_text, dash, high_text = text.strip().partition("-")
        low, top = int(low_text, 10), int(high_text, 10)
        if not dash or not 1 <= low <= top <= high:
            raise ValueError(text)
        return low, top

    return _typed(flag, f"a range LOW-HIGH of integers with 1 <= LOW <= HIGH <= {high:,}, or 'none'", parse)


def probability(flag: str) -> Callable[[str], float]:
    """A share of calls, in ``[0, 1)``."""

    def parse(text: str) -> float:
        value = float(text)
        if not (0.0 <= value < 1.0):
            raise ValueError(text)
        return value

    return _typed(flag, "a number in [0, 1)", parse)


def limit(flag: str, *, low: int = 1, high: int = MAX_PER_MINUTE) -> Callable[[str], int | None]:
    """A limit: an integer in ``[low, high]``, or ``none`` for no limit."""

    def parse(text: str) -> int | None:
        if text.strip().lower() in NO_LIMIT:
            return None
        value = int(text.strip(), 10)
        if not low <= value <= high:
            raise ValueError(text)
        return value

    return _typed(flag, f"an integer in [{low:,}, {high:,}], or 'none' for no limit", parse)


def items(flag: str = "--items") -> Callable[[str], int]:
    """How many calls a command makes."""
    return integer(flag, low=1, high=MAX_ITEMS)


def seed(flag: str = "--seed") -> Callable[[str], int]:
    """The seed of the simulated workload."""
    return integer(flag, low=0, high=MAX_SEED)


def port(flag: str = "--port") -> Callable[[str], int]:
    """A TCP port; 0 picks a free one."""
    return integer(flag, low=0, high=65_535)
