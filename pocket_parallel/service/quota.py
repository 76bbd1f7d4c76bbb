"""Server-side limits as providers enforce them: requests and tokens per minute, calls in flight.

A provider's "60 requests per minute" is a **token bucket** that refills continuously
(:mod:`.bucket`): one request's worth every second, holding ``limit × quantum / 60``. With
the default quantum of 60 s it holds a whole minute's budget, so a burst of 60 goes through
at once (how this package always behaved without a profile); with a quantum of 1 s, as OpenAI
documents for its per-minute limits, it holds one second's share and a burst draws 429s under
the minute's budget. ``algorithm="sliding_window"`` instead admits a request only if fewer
than 60 were admitted in the 60 s before it.

Four per-minute limits, each charged at admission (:class:`Charge`):

- ``requests_per_minute``: one per request;
- ``tokens_per_minute``: the request's ``tokens`` (how many depends on the rule the caller
  applies: see :class:`~pocket_parallel.service.provider.SimulatedProvider`);
- ``input_tokens_per_minute``: the tokens of every message, as Anthropic's ITPM;
- ``output_tokens_per_minute``: the output the request may produce (its ``max_tokens``),
  reserved at admission, with the unused part returned when the request ends
  (:meth:`Quota.release`), as Anthropic describes its OTPM.

``max_concurrent`` refuses a request while that many are in flight: what a gateway or proxy
in front of a service does (hosted APIs publish no such cap).

A request refused by a limit uses up no quota. One that could never fit a per-minute limit
(it needs more than the limit itself) is refused with ``retry_after = math.inf``.

Times are seconds on whatever clock the caller uses (the virtual clock, or the server's
monotonic clock); inside they are whole microseconds and the buckets are integers, so no
float rounding ever decides whether a request is admitted. :meth:`Quota.snapshot` gives the
state of every per-minute limit, from which :mod:`.headers` writes OpenAI's and Anthropic's
rate-limit headers.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .._arguments import MIN_QUANTUM
from .._validate import check_choice, check_int, check_limit, check_real
from .bucket import MINUTE, MINUTE_TICKS, TICKS_PER_SECOND, Bucket, LimitState, ticks
from .headers import duration_text, openai_rate_headers

Algorithm = Literal["token_bucket", "sliding_window"]
ALGORITHMS: tuple[Algorithm, ...] = ("token_bucket", "sliding_window")
#: The window, in seconds, of every per-minute limit.
WINDOW = MINUTE
#: The per-minute limits, in the order headers and messages list them.
PER_MINUTE = ("requests_per_minute", "tokens_per_minute", "input_tokens_per_minute", "output_tokens_per_minute")
#: What each limit is called in messages.
LABELS = {
    "max_concurrent": "requests in flight",
    "requests_per_minute": "requests per minute (RPM)",
    "tokens_per_minute": "tokens per minute (TPM)",
    "input_tokens_per_minute": "input tokens per minute (ITPM)",
    "output_tokens_per_minute": "output tokens per minute (OTPM)",
}
# When every call in flight has stalled, nobody knows when a slot frees: suggest this wait.
_UNKNOWN_WAIT_TICKS = TICKS_PER_SECOND

#: The state of every per-minute limit that is set, by name (see :data:`PER_MINUTE`).
LimitStates = Mapping[str, LimitState]

__all__ = ["ALGORITHMS", "Algorithm", "Charge", "LABELS", "LimitState", "LimitStates", "PER_MINUTE", "Quota",
           "Refusal", "WINDOW", "duration_text", "ticks"]


@dataclass(frozen=True)
class Charge:
    """What one request takes from the per-minute limits at admission (besides one request).

    ``tokens`` counts against ``tokens_per_minute``, ``input_tokens`` against
    ``input_tokens_per_minute``, ``output_tokens`` (the output reserved: the request's
    ``max_tokens``) against ``output_tokens_per_minute``.
    """

    tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def amount(self, limit: str) -> int:
        """What this request takes from ``limit`` (one of :data:`PER_MINUTE`)."""
        return {"requests_per_minute": 1, "tokens_per_minute": self.tokens,
                "input_tokens_per_minute": self.input_tokens, "output_tokens_per_minute": self.output_tokens}[limit]


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused (an HTTP 429) and when the same request could be admitted.

    ``limit`` names the limit (``"max_concurrent"`` or one of :data:`PER_MINUTE`);
    ``retry_after`` is in seconds, and ``math.inf`` for a request that needs more than the
    limit allows in a whole minute: waiting never helps (:attr:`too_large`). ``requested`` is
    what the request needed of that limit and ``allowed`` the limit itself.
    """

    limit: str
    retry_after: float
    requested: int = field(default=1, compare=False)
    allowed: int | None = field(default=None, compare=False)

    @property
    def too_large(self) -> bool:
        """Whether the request alone exceeds the limit, so that no retry can succeed."""
        return math.isinf(self.retry_after)

    @property
    def retry_after_ms(self) -> int:
        """``retry_after`` in whole milliseconds, rounded up, at least 1 (meaningless when :attr:`too_large`)."""
        return 0 if self.too_large else max(1, math.ceil(self.retry_after * 1000))

    def describe(self) -> str:
        """The limit and the numbers, e.g. ``"requests per minute (RPM): limit 60, requested 1"``."""
        label = LABELS.get(self.limit, self.limit)
        if self.limit == "max_concurrent":
            return f"{label}: limit {self.allowed} at once"
        return f"{label}: limit {self.allowed}, requested {self.requested}"

    @property
    def message(self) -> str:
        """What the refusal says, in the words OpenAI uses ("Rate limit reached", "Request too large")."""
        if self.too_large:
            return (f"Request too large for {self.describe()}. A request can never need more than the limit "
                    "allows in a minute: send fewer input tokens or a smaller max_tokens.")
        return f"Rate limit reached for {self.describe()}. Please try again in {self.retry_after_ms} ms."


class _Window:
    """A sliding 60 s window: what was admitted in ``(now - 60 s, now]`` must leave room."""

    def __init__(self, per_minute: int) -> None:
        self.limit = per_minute
        self.recent: deque[list[int]] = deque()  # [tick admitted, amount], oldest first
        self.total = 0

    def refill(self, now: int) -> None:
        while self.recent and self.recent[0][0] <= now - MINUTE_TICKS:
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
                return start + MINUTE_TICKS - now
        raise AssertionError("a window holding more than its limit")  # pragma: no cover

    def take(self, amount: int, now: int) -> list[int]:
        entry = [now, amount]
        self.recent.append(entry)
        self.total += amount
        return entry

    def refund(self, entry: list[int], amount: int, now: int) -> None:
        """Count ``amount`` less for an entry still in the window (``now``: the tick of the last refill)."""
        if entry[0] > now - MINUTE_TICKS:
            amount = min(amount, entry[1])
            entry[1] -= amount
            self.total -= amount

    def state(self, now: int) -> LimitState:
        reset = self.recent[-1][0] + MINUTE_TICKS - now if self.recent else 0
        return LimitState(self.limit, max(0, self.limit - self.total), reset / TICKS_PER_SECOND)


class Quota:
    """The limits one service enforces, and the bookkeeping that enforces them.

    ``max_concurrent`` caps the calls in flight; ``requests_per_minute``,
    ``tokens_per_minute``, ``input_tokens_per_minute`` and ``output_tokens_per_minute`` cap
    the rates (each an integer >= 1, or None for no limit), as token buckets holding
    ``quantum`` seconds of refill (in ``[0.001, 60]``, 60 by default) or as sliding windows
    (``algorithm``; a window always counts a whole minute). Call :meth:`try_admit` when a
    request arrives and :meth:`release` with its ticket when it ends (answered, failed or
    abandoned). Refused requests use up no quota.
    """

    def __init__(
        self,
        *,
        max_concurrent: int | None = None,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        input_tokens_per_minute: int | None = None,
        output_tokens_per_minute: int | None = None,
        algorithm: Algorithm = "token_bucket",
        quantum: float = WINDOW,
    ) -> None:
        self.max_concurrent = check_limit("max_concurrent", max_concurrent)
        self.requests_per_minute = check_limit("requests_per_minute", requests_per_minute)
        self.tokens_per_minute = check_limit("tokens_per_minute", tokens_per_minute)
        self.input_tokens_per_minute = check_limit("input_tokens_per_minute", input_tokens_per_minute)
        self.output_tokens_per_minute = check_limit("output_tokens_per_minute", output_tokens_per_minute)
        self.algorithm: Algorithm = check_choice("algorithm", algorithm, ALGORITHMS)
        self.quantum = check_quantum(quantum, self.algorithm)
        self.reset()

    def __repr__(self) -> str:
        return f"Quota({self.describe() or 'no limits'})"

    def describe(self) -> str:
        """The limits in words, e.g. ``"requests_per_minute=60 (token_bucket)"``; empty with none."""
        parts = [f"{name}={value}" for name, value in self.limits().items() if value is not None]
        if any(self.limits()[name] is not None for name in PER_MINUTE):
            quantum = f", quantum {self.quantum:g} s" if self.quantum != WINDOW else ""
            parts[-1] += f" ({self.algorithm}{quantum})"
        return ", ".join(parts)

    def limits(self) -> dict[str, int | None]:
        """Every limit by name: ``max_concurrent`` then the per-minute ones."""
        return {"max_concurrent": self.max_concurrent, **{name: getattr(self, name) for name in PER_MINUTE}}

    @property
    def limited(self) -> bool:
        """Whether any limit is set."""
        return any(value is not None for value in self.limits().values())

    def reset(self) -> None:
        """Forget every admitted request: buckets full, windows empty, nothing in flight."""
        self._serving: dict[int, float] = {}  # ticket -> tick its call is due to end
        self._reserved: dict[int, tuple[int, list[int] | None]] = {}  # ticket -> (output reserved, window entry)
        self._tickets = 0
        quantum_ticks = ticks(self.quantum)
        self._rates: dict[str, Bucket | _Window] = {
            name: Bucket(limit, quantum_ticks) if self.algorithm == "token_bucket" else _Window(limit)
            for name in PER_MINUTE if (limit := getattr(self, name)) is not None
        }

    def _refill(self, now: int) -> None:
        for rate in self._rates.values():
            rate.refill(now)

    def try_admit(
        self, now: float, tokens: int = 0, ends_at: float = math.inf, *, input_tokens: int = 0, output_tokens: int = 0,
    ) -> int | Refusal:
        """Admit a request at time ``now`` (seconds) with its :class:`Charge`, or say why not.

        Returns a ticket (an int) for :meth:`release`, or a :class:`Refusal`. ``ends_at`` is
        when the call is due to end, which tells a refused caller when a slot frees up
        (``math.inf``: unknown, e.g. a call that stalls). When several limits refuse, the one
        with the longest wait is named: the call cannot be admitted any sooner.
        """
        charge = Charge(check_int("tokens", tokens, low=0), check_int("input_tokens", input_tokens, low=0),
                        check_int("output_tokens", output_tokens, low=0))
        t = ticks(now)
        self._refill(t)
        refusals: list[tuple[float, str]] = []  # every limit that refuses, with its wait in ticks
        if self.max_concurrent is not None and len(self._serving) >= self.max_concurrent:
            first_free = min(self._serving.values())
            refusals.append((first_free - t if first_free < math.inf else _UNKNOWN_WAIT_TICKS, "max_concurrent"))
        for name, rate in self._rates.items():
            amount = charge.amount(name)
            wait = rate.wait(amount) if isinstance(rate, Bucket) else rate.wait(amount, t)
            if wait > 0:
                refusals.append((wait, name))
        if refusals:
            wait, limit = max(refusals)
            allowed = self.limits()[limit]
            requested = 1 if limit == "max_concurrent" else charge.amount(limit)
            # A slot whose call ends this very tick is not free yet: come back one tick later.
            return Refusal(limit, math.inf if math.isinf(wait) else max(wait, 1) / TICKS_PER_SECOND, requested, allowed)
        entry: list[int] | None = None
        for name, rate in self._rates.items():
            if isinstance(rate, Bucket):
                rate.take(charge.amount(name))
            else:
                taken = rate.take(charge.amount(name), t)
                entry = taken if name == "output_tokens_per_minute" else entry
        self._tickets += 1
        if self.max_concurrent is not None:
            self._serving[self._tickets] = ticks(ends_at) if ends_at < math.inf else math.inf
        if "output_tokens_per_minute" in self._rates and charge.output_tokens:
            self._reserved[self._tickets] = (charge.output_tokens, entry)
        return self._tickets

    def release(self, ticket: int, now: float | None = None, output_tokens: int = 0) -> None:
        """The call holding ``ticket`` ended at ``now``: its slot is free, and of the output it
        reserved, what it did not produce (beyond ``output_tokens``) goes back to the output budget.

        Per-minute budgets otherwise stay spent.
        """
        self._serving.pop(ticket, None)
        reserved = self._reserved.pop(ticket, None)
        rate = self._rates.get("output_tokens_per_minute")
        if reserved is None or rate is None or now is None:
            return
        amount, entry = reserved
        unused = amount - min(amount, check_int("output_tokens", output_tokens, low=0))
        t = ticks(now)
        rate.refill(t)
        if isinstance(rate, Bucket):
            rate.refund(unused)
        elif entry is not None:
            rate.refund(entry, unused, t)

    @property
    def in_flight(self) -> int:
        """Admitted calls not yet released (counted only when ``max_concurrent`` is set)."""
        return len(self._serving)

    def snapshot(self, now: float) -> dict[str, LimitState]:
        """Every per-minute limit that is set, by name, as headers announce it at ``now``."""
        t = ticks(now)
        self._refill(t)
        return {name: rate.state() if isinstance(rate, Bucket) else rate.state(t) for name, rate in self._rates.items()}

    def state(self, now: float) -> tuple[LimitState | None, LimitState | None]:
        """The request and token limits at ``now`` as OpenAI's headers announce them (None where unlimited)."""
        states = self.snapshot(now)
        return states.get("requests_per_minute"), states.get("tokens_per_minute")

    def headers(self, now: float) -> dict[str, str]:
        """OpenAI's six ``x-ratelimit-*`` headers at ``now`` (only for the limits that are set)."""
        return openai_rate_headers(self.snapshot(now))


def check_quantum(value: float, algorithm: Algorithm = "token_bucket") -> float:
    """A bucket's quantum in seconds, in ``[0.001, 60]``; a sliding window counts 60 s only."""
    quantum = check_real("quantum", value, low=MIN_QUANTUM, high=WINDOW)
    if algorithm == "sliding_window" and quantum != WINDOW:
        raise ValueError(f"quantum applies to the token bucket; a sliding window always counts {WINDOW:g} s: "
                         f"give algorithm='token_bucket' or leave quantum at {WINDOW:g}; got quantum={value!r}")
    return quantum
