"""Client-side request-rate limits that never exceed a server's sliding window.

A provider's "60 requests per minute" means: in *any* 60 s window, at most 60 requests.
``aiolimiter.AsyncLimiter(60, 60)`` is a leaky bucket that lets a burst of 60 through at
once and then one more each second as the bucket drains, so the first minute can carry
60 + 59 = 119 requests: half of them are refused with a 429. In general a bucket that holds
``B`` and drains ``R`` per window lets ``B + R - 1`` requests into one window, so the only
bucket that keeps to ``R`` per window at the full long-run rate holds one request:
``AsyncLimiter(1, 60 / R)``, which spaces requests evenly, ``60 / R`` seconds apart.
:class:`RateLimiter` is exactly that, one bucket per event loop.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import NamedTuple

from aiolimiter import AsyncLimiter

from .._validate import check_bool, check_int, check_real
from ..trace import CallRecord


class _DustFreeLimiter(AsyncLimiter):
    """``aiolimiter.AsyncLimiter`` that counts float dust in its bucket as empty.

    Draining in floating point can leave about 1e-15 of a request in the bucket. aiolimiter
    then schedules its wake-up for "now + 1e-15"; on the virtual clock, which ticks in whole
    microseconds, that is now again, and the loop re-checks forever at one instant (two
    requests at 0.084733 s and 0.401032 s through ``RateLimiter(120)`` were enough). A level
    below a billionth of a request changes no spacing by more than a nanosecond.
    """

    def _leak(self) -> None:
        super()._leak()
        if 0.0 < self._level < 1e-9 * self.max_rate:
            self._level = 0.0


class RateLimiter:
    """At most ``requests`` request starts in any window of ``per`` seconds, evenly paced.

    Use it around each request (each attempt, retries included)::

        per_minute = RateLimiter(60)          # 60 per 60 s: one request per second
        async with per_minute:
            answer = await llm(prompt)

    or give it to :class:`~pocket_parallel.BoundedParallelBatchNode` as ``max_per_minute``
    so several nodes share one budget. It holds a separate ``aiolimiter.AsyncLimiter`` for
    each event loop it is used on, so it works across :func:`~pocket_parallel.run` calls
    (each runs a new loop). Within one loop, the requests are spaced ``per / requests``
    seconds apart: never faster, so never more than ``requests`` in any window.
    """

    def __init__(self, requests: int, per: float = 60.0) -> None:
        self.requests = check_int("requests", requests, low=1, high=1_000_000_000)
        self.per = check_real("per", per, low=0.0, high=86_400.0, low_open=True)
        self._limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncLimiter] = weakref.WeakKeyDictionary()

    @property
    def interval(self) -> float:
        """Seconds between two request starts: ``per / requests``."""
        return self.per / self.requests

    def limiter(self) -> AsyncLimiter:
        """The ``aiolimiter.AsyncLimiter`` for the running event loop (made on first use)."""
        loop = asyncio.get_running_loop()
        limiter = self._limiters.get(loop)
        if limiter is None:
            # A bucket of one: no burst, so no window ever holds more than `requests`.
            limiter = self._limiters[loop] = _DustFreeLimiter(1, self.interval)
        return limiter

    async def acquire(self) -> None:
        """Wait until one more request may start now."""
        await self.limiter().acquire()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def __repr__(self) -> str:
        return f"RateLimiter(requests={self.requests}, per={self.per:g})"


class Window(NamedTuple):
    """The busiest window of a trace: when it starts and how many requests it holds."""

    start: float
    requests: int


def busiest_window(
    trace: Iterable[CallRecord | float], window: float = 60.0, *, include_refused: bool = False
) -> Window:
    """The most requests that started within any window ``[t, t + window)``, checked exactly.

    ``trace`` holds :class:`~pocket_parallel.CallRecord` or plain start times. By default
    refused calls (outcome ``"rate_limited"``) are left out: the count is what the server
    admitted, which never exceeds its limit. ``include_refused=True`` counts every request
    the client sent, refused or not: the number that shows a client bursting past a limit. Every window that could be the busiest starts at some request's start, so each
    of those is counted; times are compared in whole microseconds, as the server does.
    """
    window = check_real("window", window, low=0.0, low_open=True)
    check_bool("include_refused", include_refused)
    starts = sorted(_start_ticks(trace, include_refused))
    if not starts:
        return Window(0.0, 0)
    width = round(window * 1_000_000)
    best, best_start, last = 0, starts[0], 0
    for first, start in enumerate(starts):
        last = max(last, first)
        while last < len(starts) and starts[last] < start + width:
            last += 1
        if last - first > best:
            best, best_start = last - first, start
    return Window(best_start / 1_000_000, best)


def _start_ticks(trace: Iterable[CallRecord | float], include_refused: bool) -> Sequence[int]:
    ticks = []
    for entry in trace:
        if isinstance(entry, CallRecord):
            if include_refused or entry.outcome != "rate_limited":
                ticks.append(round(entry.start * 1_000_000))
        else:
            ticks.append(round(check_real("trace entry", entry, low=-float("inf")) * 1_000_000))
    return ticks
