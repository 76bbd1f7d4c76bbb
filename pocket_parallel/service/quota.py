"""Server-side limits as providers enforce them: requests and tokens per minute, calls in flight.

A provider's "60 requests per minute" is, by default here as in OpenAI's and Anthropic's
documentation, a **token bucket** that refills continuously: it holds at most 60 requests,
starts full, and gains one request's worth every second. A burst of 60 goes through at once;
after that, one more each second. ``algorithm="sliding_window"`` instead admits a request
only if fewer than 60 were admitted in the 60 s before it.

Tokens per minute work the same way with each request costing its tokens (prompt plus
answer). A request that needs more tokens than the whole budget can never be admitted.

Times are seconds on whatever clock the caller uses (the virtual clock, or the server's
monotonic clock); inside they are whole microseconds and the buckets are integers, so no
float rounding ever decides whether a request is admitted.

:meth:`Quota.headers` gives the six ``x-ratelimit-*`` headers OpenAI sends with every
response, refused or not.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

from .._validate import check_choice, check_int, check_limit, check_real

Algorithm = Literal["token_bucket", "sliding_window"]
ALGORITHMS: tuple[Algorithm, ...] = ("token_bucket", "sliding_window")
#: The window, in seconds, of ``requests_per_minute`` and ``tokens_per_minute``.
WINDOW = 60.0
TICKS_PER_SECOND = 1_000_000
_WINDOW_TICKS = round(WINDOW * TICKS_PER_SECOND)
# When every call in flight has stalled, nobody knows when a slot frees: suggest this wait.
_UNKNOWN_WAIT_TICKS = TICKS_PER_SECOND


def ticks(seconds: float) -> int:
    """Seconds as whole microseconds."""
    return round(seconds * TICKS_PER_SECOND)


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused (an HTTP 429) and when the same request could be admitted.

    ``limit`` is ``"max_concurrent"``, ``"requests_per_minute"`` or ``"tokens_per_minute"``;
    ``retry_after`` is in seconds, and ``math.inf`` for a request that needs more tokens than
    ``tokens_per_minute`` allows: waiting never helps.
    """

    limit: str
    retry_after: float


@dataclass(frozen=True)
class LimitState:
    """One per-minute limit as a response header announces it.

    ``limit`` is the budget per minute, ``remaining`` what could be spent right now, and
    ``reset`` the seconds until the budget is whole again.
    """

    limit: int
    remaining: int
    reset: float


class _Bucket:
    """A token bucket in integer units: ``rate`` per minute, holding at most one minute's worth."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute  # units gained per tick: one request (or token) is _WINDOW_TICKS units
        self.capacity = per_minute * _WINDOW_TICKS
        self.level = self.capacity
        self.at = 0  # tick of the last refill
        self.started = False

    def refill(self, now: int) -> None:
        if not self.started:
            self.at, self.started = now, True
        elif now > self.at:
            self.level = min(self.capacity, self.level + self.rate * (now - self.at))
            self.at = now

    def wait(self, amount: int) -> float:
        """Ticks until ``amount`` whole units fit (0 if they fit now; inf if they never will)."""
        cost = amount * _WINDOW_TICKS
        if cost > self.capacity:
            return math.inf
        return max(0, -(-(cost - self.level) // self.rate))

    def take(self, amount: int) -> None:
        self.level -= amount * _WINDOW_TICKS

    def state(self) -> LimitState:
        reset = -(-(self.capacity - self.level) // self.rate)
        return LimitState(self.capacity // _WINDOW_TICKS, self.level // _WINDOW_TICKS, reset / TICKS_PER_SECOND)


class _Window:
    """A sliding 60 s window: what was admitted in ``(now - 60 s, now]`` must leave room."""

    def __init__(self, per_minute: int) -> None:
        self.limit = per_minute
        self.recent: deque[tuple[int, int]] = deque()  # (tick admitted, amount), oldest first
        self.total = 0

    def refill(self, now: int) -> None:
        while self.recent and self.recent[0][0] <= now - _WINDOW_TICKS:
            self.total -= self.recent.popleft()[1]

    def wait(self, amount: int, now: int) -> float:
        if amount > self.limit:
            return math.inf
        excess = self.total + amount - self.limit
        if excess <= 0:
            return 0
        for start, held in self.recent:  # wait until the oldest entries holding `excess` leave
            excess -= held
            if excess <= 0:
                return start + _WINDOW_TICKS - now
        raise AssertionError("a window holding more than its limit")  # pragma: no cover

    def take(self, amount: int, now: int) -> None:
        self.recent.append((now, amount))
        self.total += amount

    def state(self, now: int) -> LimitState:
        reset = self.recent[-1][0] + _WINDOW_TICKS - now if self.recent else 0
        return LimitState(self.limit, max(0, self.limit - self.total), reset / TICKS_PER_SECOND)


class Quota:
    """The limits one service enforces, and the bookkeeping that enforces them.

    ``max_concurrent`` caps the calls in flight; ``requests_per_minute`` and
    ``tokens_per_minute`` cap the rate (each an integer >= 1, or None for no limit), as a
    token bucket or a sliding window (``algorithm``). Call :meth:`try_admit` when a request
    arrives and :meth:`release` with its ticket when it ends (answered, failed or abandoned).
    Refused requests use up no quota.
    """

    def __init__(
        self,
        *,
        max_concurrent: int | None = None,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        algorithm: Algorithm = "token_bucket",
    ) -> None:
        self.max_concurrent = check_limit("max_concurrent", max_concurrent)
        self.requests_per_minute = check_limit("requests_per_minute", requests_per_minute)
        self.tokens_per_minute = check_limit("tokens_per_minute", tokens_per_minute)
        self.algorithm: Algorithm = check_choice("algorithm", algorithm, ALGORITHMS)
        self.reset()

    def __repr__(self) -> str:
        return f"Quota({self.describe() or 'no limits'})"

    def describe(self) -> str:
        """The limits in words, e.g. ``"requests_per_minute=60 (token_bucket)"``; empty with none."""
        parts = [f"{name}={value}" for name, value in self.limits().items() if value is not None]
        if self.requests_per_minute is not None or self.tokens_per_minute is not None:
            parts[-1] += f" ({self.algorithm})"
        return ", ".join(parts)

    def limits(self) -> dict[str, int | None]:
        """The three limits by name."""
        return {
            "max_concurrent": self.max_concurrent,
            "requests_per_minute": self.requests_per_minute,
            "tokens_per_minute": self.tokens_per_minute,
        }

    @property
    def limited(self) -> bool:
        """Whether any limit is set."""
        return any(value is not None for value in self.limits().values())

    def reset(self) -> None:
        """Forget every admitted request: buckets full, windows empty, nothing in flight."""
        self._serving: dict[int, int] = {}  # ticket -> tick its call is due to end
        self._tickets = 0
        kind = _Bucket if self.algorithm == "token_bucket" else _Window
        self._requests = kind(self.requests_per_minute) if self.requests_per_minute is not None else None
        self._tokens = kind(self.tokens_per_minute) if self.tokens_per_minute is not None else None

    def _refill(self, now: int) -> None:
        for rate in (self._requests, self._tokens):
            if rate is not None:
                rate.refill(now)

    def _wait(self, rate: _Bucket | _Window, amount: int, now: int) -> float:
        return rate.wait(amount) if isinstance(rate, _Bucket) else rate.wait(amount, now)

    def try_admit(self, now: float, tokens: int = 0, ends_at: float = math.inf) -> int | Refusal:
        """Admit a request at time ``now`` (seconds) using ``tokens``, or say why not.

        Returns a ticket (an int) for :meth:`release`, or a :class:`Refusal`. ``ends_at`` is
        when the call is due to end, which tells a refused caller when a slot frees up
        (``math.inf``: unknown, e.g. a call that stalls). When several limits are full, the
        one with the longest wait is named: the call cannot be admitted any sooner.
        """
        tokens = check_int("tokens", tokens, low=0)
        t = ticks(now)
        self._refill(t)
        waits: list[tuple[float, str]] = []  # every limit that refuses, with its wait in ticks
        if self.max_concurrent is not None and len(self._serving) >= self.max_concurrent:
            first_free = min(self._serving.values())
            waits.append((first_free - t if first_free < math.inf else _UNKNOWN_WAIT_TICKS, "max_concurrent"))
        for rate, amount, name in ((self._requests, 1, "requests_per_minute"), (self._tokens, tokens, "tokens_per_minute")):
            if rate is not None:
                wait = self._wait(rate, amount, t)
                if wait > 0:
                    waits.append((wait, name))
        if waits:
            wait, limit = max(waits)
            # A slot whose call ends this very tick is not free yet: come back one tick later.
            return Refusal(limit, math.inf if math.isinf(wait) else max(wait, 1) / TICKS_PER_SECOND)
        if isinstance(self._requests, _Bucket):
            self._requests.take(1)
        elif self._requests is not None:
            self._requests.take(1, t)
        if isinstance(self._tokens, _Bucket):
            self._tokens.take(tokens)
        elif self._tokens is not None:
            self._tokens.take(tokens, t)
        self._tickets += 1
        if self.max_concurrent is not None:
            self._serving[self._tickets] = ticks(ends_at) if ends_at < math.inf else math.inf  # type: ignore[assignment]
        return self._tickets

    def release(self, ticket: int) -> None:
        """The call holding ``ticket`` ended: its slot is free (per-minute budgets stay spent)."""
        self._serving.pop(ticket, None)

    @property
    def in_flight(self) -> int:
        """Admitted calls not yet released (counted only when ``max_concurrent`` is set)."""
        return len(self._serving)

    def state(self, now: float) -> tuple[LimitState | None, LimitState | None]:
        """The request and token limits at ``now`` as headers announce them (None where unlimited)."""
        t = ticks(now)
        self._refill(t)
        return tuple(  # type: ignore[return-value]
            None if rate is None else (rate.state() if isinstance(rate, _Bucket) else rate.state(t))
            for rate in (self._requests, self._tokens)
        )

    def headers(self, now: float) -> dict[str, str]:
        """OpenAI's six ``x-ratelimit-*`` headers at ``now`` (only for the limits that are set)."""
        headers: dict[str, str] = {}
        for kind, state in zip(("requests", "tokens"), self.state(now)):
            if state is not None:
                headers[f"x-ratelimit-limit-{kind}"] = str(state.limit)
                headers[f"x-ratelimit-remaining-{kind}"] = str(state.remaining)
                headers[f"x-ratelimit-reset-{kind}"] = duration_text(state.reset)
        return headers


def duration_text(seconds: float) -> str:
    """A duration the way OpenAI's reset headers write it: ``"20ms"``, ``"1s"``, ``"1.5s"``, ``"6m0s"``."""
    seconds = check_real("seconds", seconds, low=0.0)
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(round(seconds, 3), 60)
    hours, minutes = divmod(int(minutes), 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    return f"{minutes}m{text}" if minutes else text
