"""A simulated LLM service: seeded latency and answers, transient faults, stalls, limits, a call trace.

:class:`SimulatedLLM` puts three small parts together, each with one job:

- the seeded :class:`~pocket_parallel.service.model.ServiceModel` says how each call behaves;
- a :class:`~pocket_parallel.service.quota.Quota` refuses work beyond the server's limits, as a
  provider does with an HTTP 429 (calls in flight, requests and tokens per minute);
- a :class:`~pocket_parallel.trace.CallLog` records every call and keeps the counters.

It runs on whatever event loop awaits it, so on the virtual clock a day of calls takes a
blink and every time is exact.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from .._format import clip
from .._validate import check_int, check_prompt
from ..service.model import AttemptNumbers, ServiceModel
from ..service.quota import Algorithm, Quota, Refusal
from ..trace import CallLog, CallRecord, LLMStats, Outcome


class LLMError(Exception):
    """Base class of the errors the simulated service raises."""


class TransientLLMError(LLMError):
    """A call failed for a passing reason (a dropped connection, a 500): retrying may succeed."""

    def __init__(self, prompt: str, attempt: int, reason: str = "transient failure") -> None:
        super().__init__(f"{reason} on attempt {attempt} for prompt {clip(prompt, 40)!r}")
        self.prompt = prompt
        self.attempt = attempt


class OverloadedError(TransientLLMError):
    """The service was too busy to take the call and turned it away at once (an HTTP 529)."""

    def __init__(self, prompt: str, attempt: int) -> None:
        super().__init__(prompt, attempt, "service overloaded")


class RateLimitError(LLMError):
    """The service refused a call because a limit was reached (an HTTP 429).

    ``retry_after`` is how many seconds from now the same call would be admitted, computed
    from the limit's state as a provider's ``Retry-After`` header is; it is ``math.inf`` for a
    call that needs more tokens than ``tokens_per_minute`` allows: waiting never helps.
    ``limit`` names the limit that refused the call, and ``headers`` holds the
    ``x-ratelimit-*`` headers a provider would have sent with the refusal.
    """

    def __init__(
        self, prompt: str, attempt: int, retry_after: float, limit: str, headers: dict[str, str] | None = None
    ) -> None:
        after = "never (the call alone exceeds the limit)" if math.isinf(retry_after) else f"{retry_after:g} s"
        super().__init__(f"rate limited by {limit} on attempt {attempt}: retry after {after} "
                         f"(prompt {clip(prompt, 40)!r})")
        self.prompt = prompt
        self.attempt = attempt
        self.retry_after = retry_after
        self.limit = limit
        self.headers = dict(headers or {})


class SimulatedLLM:
    """A stand-in for a remote LLM: awaitable, deterministic, and observable.

    Parameters
    ----------
    latency, jitter, seed, failure_rate:
        How each call behaves (see :class:`~pocket_parallel.service.model.ServiceModel`): mean
        seconds per call, the spread of that latency (its coefficient of variation), the
        seed, and the share of attempts that fail after their latency.
    stall_rate:
        Share of attempts that are accepted and never answered, as a hung connection is
        (``[0, 1)``). Only a timeout gets the caller out.
    overload_rate:
        Share of attempts turned away at once as overloaded (``[0, 1)``), raising
        :class:`OverloadedError`.
    max_concurrent:
        Server-side limit: at most this many calls in flight (an integer >= 1, or None).
    requests_per_minute, tokens_per_minute:
        Server-side limits per minute (integers >= 1, or None). A call's tokens are
        :meth:`tokens_for` its prompt (prompt plus answer, one token per 4 characters).
    algorithm:
        How "per minute" is counted: ``"token_bucket"`` (the default, as OpenAI and Anthropic
        describe their limits: a bucket of one minute's worth that refills continuously, so a
        burst of a whole minute's requests passes at once) or ``"sliding_window"`` (at most
        that many in any 60 s).

    A call beyond a limit is refused at once (0 s on the clock, as a 429 comes back in one
    short round trip) with :class:`RateLimitError`; refused calls use up no quota.

    ``await llm(prompt)`` calls it from async code; ``llm.call(prompt)`` blocks, for plain
    synchronous examples. Every call is recorded in :attr:`trace` and counted in
    :attr:`stats`; :meth:`reset` clears both and the server's limits.
    """

    def __init__(
        self,
        latency: float = 1.0,
        jitter: float = 0.0,
        seed: int = 0,
        failure_rate: float = 0.0,
        *,
        stall_rate: float = 0.0,
        overload_rate: float = 0.0,
        max_concurrent: int | None = None,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        algorithm: Algorithm = "token_bucket",
    ) -> None:
        self.model = ServiceModel(latency, jitter, seed, failure_rate, stall_rate, overload_rate)
        self.quota = Quota(
            max_concurrent=max_concurrent,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            algorithm=algorithm,
        )
        self.reset()

    # -- settings, read from the parts ------------------------------------------------------

    @property
    def latency(self) -> float:
        """Mean seconds per call."""
        return float(self.model.latency)

    @property
    def jitter(self) -> float:
        """Spread of the latency (coefficient of variation)."""
        return float(self.model.jitter)

    @property
    def seed(self) -> int:
        """The seed of every draw."""
        return self.model.seed

    @property
    def failure_rate(self) -> float:
        """Share of attempts that fail after their latency."""
        return float(self.model.failure_rate)

    @property
    def stall_rate(self) -> float:
        """Share of attempts that never answer."""
        return float(self.model.stall_rate)

    @property
    def max_concurrent(self) -> int | None:
        """The server's cap on calls in flight (None: no cap)."""
        return self.quota.max_concurrent

    @property
    def requests_per_minute(self) -> int | None:
        """The server's request budget per minute (None: no budget)."""
        return self.quota.requests_per_minute

    @property
    def tokens_per_minute(self) -> int | None:
        """The server's token budget per minute (None: no budget)."""
        return self.quota.tokens_per_minute

    def __repr__(self) -> str:
        model = self.model
        faults = "".join(
            f", {name}={value:g}" for name, value in (("stall_rate", model.stall_rate), ("overload_rate", model.overload_rate))
            if value
        )
        limits = f", {self.quota.describe()}" if self.quota.limited else ""
        return (
            f"SimulatedLLM(latency={model.latency:g}, jitter={model.jitter:g}, "
            f"seed={model.seed}, failure_rate={model.failure_rate:g}{faults}{limits})"
        )

    # -- the deterministic workload (overridable, e.g. by the exercise checks) ----------------

    def latency_for(self, prompt: str, attempt: int = 1) -> float:
        """Seconds the given attempt at ``prompt`` takes, rounded to the microsecond."""
        return self.model.latency_for(prompt, attempt)

    def fails(self, prompt: str, attempt: int = 1) -> bool:
        """Whether the given attempt at ``prompt`` ends in a transient error."""
        return self.model.fails(prompt, attempt)

    def stalls(self, prompt: str, attempt: int = 1) -> bool:
        """Whether the given attempt at ``prompt`` is accepted and never answered."""
        return self.model.stalls(prompt, attempt)

    def answer_for(self, prompt: str) -> str:
        """The answer a successful call returns: recognisably derived from the prompt."""
        return self.model.answer_for(prompt)

    def tokens_for(self, prompt: str) -> int:
        """Tokens a call with ``prompt`` uses against ``tokens_per_minute``: prompt plus answer."""
        return self.model.tokens_for(prompt)

    # -- calling it -------------------------------------------------------------------------

    async def __call__(self, prompt: str, *, attempt: int | None = None) -> str:
        """Answer ``prompt`` after its latency, on the running event loop's clock."""
        prompt, attempt = self._numbered(prompt, attempt)
        loop = asyncio.get_running_loop()
        start = loop.time()
        latency = self.latency_for(prompt, attempt)
        stalls = self.stalls(prompt, attempt)
        ticket = self._admit(prompt, attempt, start, math.inf if stalls else start + latency)
        outcome: Outcome = "cancelled"
        try:
            if stalls:
                await loop.create_future()  # accepted, never answered: only a timeout ends it
            await asyncio.sleep(latency)
            outcome = "error" if self.fails(prompt, attempt) else "ok"
        finally:
            self._end(prompt, attempt, ticket, start, loop.time(), outcome, stalled=stalls)
        if outcome == "error":
            raise TransientLLMError(prompt, attempt)
        return self.answer_for(prompt)

    def call(self, prompt: str, *, attempt: int | None = None) -> str:
        """Blocking version of ``await llm(prompt)``, for synchronous code (real time only)."""
        if self.model.stall_rate:
            raise RuntimeError(
                "llm.call(...) cannot simulate a stalled call without hanging the program: with "
                "stall_rate > 0, use 'await llm(prompt)' inside a timeout"
            )
        prompt, attempt = self._numbered(prompt, attempt)
        start = time.monotonic()
        latency = self.latency_for(prompt, attempt)
        ticket = self._admit(prompt, attempt, start, start + latency)
        outcome: Outcome = "cancelled"
        try:
            time.sleep(latency)
            outcome = "error" if self.fails(prompt, attempt) else "ok"
        finally:
            self._end(prompt, attempt, ticket, start, time.monotonic(), outcome)
        if outcome == "error":
            raise TransientLLMError(prompt, attempt)
        return self.answer_for(prompt)

    # -- what it saw --------------------------------------------------------------------------

    @property
    def trace(self) -> list[CallRecord]:
        """Every finished call since the last reset, in the order they ended."""
        return list(self._log.records)

    @property
    def stats(self) -> LLMStats:
        """A snapshot of the counters (calls, outcomes, calls in flight now and at peak)."""
        return self._log.snapshot()

    def rate_limit_headers(self, now: float | None = None) -> dict[str, str]:
        """The ``x-ratelimit-*`` headers the server would send at ``now`` (default: the running loop's time)."""
        return self.quota.headers(asyncio.get_running_loop().time() if now is None else now)

    def reset(self) -> None:
        """Forget every recorded call, zero the counters and attempt numbers, refill the limits."""
        self._log = CallLog()
        self._attempts = AttemptNumbers()
        self.quota.reset()

    # -- bookkeeping ---------------------------------------------------------------------------

    def _numbered(self, prompt: Any, attempt: int | None) -> tuple[str, int]:
        prompt = check_prompt(prompt)
        if attempt is None:
            return prompt, self._attempts.next(prompt)
        return prompt, check_int("attempt", attempt, low=1)

    def _admit(self, prompt: str, attempt: int, now: float, ends_at: float) -> int:
        """Count a call; turn it away (529, 429) or book it in as in flight and return its ticket."""
        if self.model.overloaded(prompt, attempt):
            self._log.refused(prompt, attempt, now, "overloaded")
            self._attempts.ended(prompt, attempt, succeeded=False)
            raise OverloadedError(prompt, attempt)
        if not self.quota.limited:
            self._log.opened()
            return 0
        tokens = self.tokens_for(prompt) if self.quota.tokens_per_minute is not None else 0
        ticket = self.quota.try_admit(now, tokens, ends_at)
        if isinstance(ticket, Refusal):
            self._log.refused(prompt, attempt, now, "rate_limited")
            self._attempts.ended(prompt, attempt, succeeded=False)
            raise RateLimitError(prompt, attempt, ticket.retry_after, ticket.limit, self.quota.headers(now))
        self._log.opened()
        return ticket

    def _end(
        self, prompt: str, attempt: int, ticket: int, start: float, end: float, outcome: Outcome, *, stalled: bool = False
    ) -> None:
        self.quota.release(ticket)
        self._log.closed(prompt, attempt, start, end, outcome)
        self._attempts.settled(prompt, attempt, outcome, stalled=stalled)
