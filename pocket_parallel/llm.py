"""A simulated LLM service: seeded latency, deterministic answers, transient faults, limits, a call trace.

Everything about one call (how long it takes, whether it fails, what it answers) is a pure
function of the prompt, the seed and the attempt number. Sequential and parallel runs of
the same prompts therefore see exactly the same workload, whatever order the calls start in.

Optional server-side limits make it refuse work as a real provider does (HTTP 429): at most
``max_concurrent`` calls in flight, ``requests_per_minute`` and ``tokens_per_minute`` in any
sliding 60 s window. A refused call raises :class:`RateLimitError` at once, carrying the
``retry_after`` seconds after which the same call would be admitted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import math
import re
import time
from collections import deque
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

from ._validate import check_int, check_max_concurrency, check_real

Outcome = Literal["ok", "error", "cancelled", "rate_limited"]

#: Characters per token in :func:`estimate_tokens`: the usual rule of thumb for English text.
CHARS_PER_TOKEN = 4
#: The window, in seconds, of ``requests_per_minute`` and ``tokens_per_minute``.
WINDOW = 60.0
_TICKS_PER_SECOND = 1_000_000  # limits are kept in whole microseconds: the virtual clock's tick
_WINDOW_TICKS = round(WINDOW * _TICKS_PER_SECOND)

_STANDARD_NORMAL = NormalDist()
_TRANSLATE = re.compile(r"^\s*translate(?:\s+(?:this|it))?\s+(?:in)?to\s+([^\n:]{1,40}?)\s*$", re.I)
_SUMMARIZE = re.compile(r"^\s*summari[sz]e\b", re.I)


class LLMError(Exception):
    """Base class of the errors the simulated service raises."""


class TransientLLMError(LLMError):
    """A call failed for a passing reason (a dropped connection, a 500): retrying may succeed."""

    def __init__(self, prompt: str, attempt: int) -> None:
        super().__init__(f"transient failure on attempt {attempt} for prompt {_clip(prompt, 40)!r}")
        self.prompt = prompt
        self.attempt = attempt


class RateLimitError(LLMError):
    """The service refused a call because a limit was reached (an HTTP 429).

    ``retry_after`` is how many seconds from now the same call would be admitted, computed
    from the limit's state as a provider's ``Retry-After`` header is: until the earliest
    call in flight ends (``max_concurrent``) or until enough earlier requests leave the
    60 s window (``requests_per_minute``, ``tokens_per_minute``). It is ``math.inf`` for a
    call that needs more tokens than ``tokens_per_minute`` allows: waiting never helps.
    ``limit`` names the limit that refused the call.
    """

    def __init__(self, prompt: str, attempt: int, retry_after: float, limit: str) -> None:
        after = "never (the call alone exceeds the limit)" if math.isinf(retry_after) else f"{retry_after:g} s"
        super().__init__(f"rate limited by {limit} on attempt {attempt}: retry after {after} "
                         f"(prompt {_clip(prompt, 40)!r})")
        self.prompt = prompt
        self.attempt = attempt
        self.retry_after = retry_after
        self.limit = limit


def estimate_tokens(text: str) -> int:
    """Tokens in ``text`` by the rule of thumb: one token per 4 characters, rounded up."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}")
    return -(-len(text) // CHARS_PER_TOKEN)


@dataclass(frozen=True)
class CallRecord:
    """One call to the service: what was asked, when (on the caller's clock), and how it ended."""

    prompt: str
    attempt: int
    start: float
    end: float
    outcome: Outcome

    @property
    def duration(self) -> float:
        """Seconds from the call's start to its end."""
        return self.end - self.start


@dataclass
class LLMStats:
    """Counters kept by a :class:`SimulatedLLM` since it was made or last reset.

    ``calls`` counts every call, refused ones included; ``in_flight`` and ``peak_in_flight``
    count admitted calls only (a refused call is never in flight). ``rate_limited`` counts
    calls refused by a limit (429s), apart from ``transient_errors`` (admitted calls that
    failed after their latency).
    """

    calls: int = 0
    ok: int = 0
    transient_errors: int = 0
    cancelled: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    rate_limited: int = 0


class SimulatedLLM:
    """A stand-in for a remote LLM: awaitable, deterministic, and observable.

    Parameters
    ----------
    latency:
        Mean seconds a call takes (> 0, at most one day).
    jitter:
        Spread of the latency as a fraction of the mean (its coefficient of variation), in
        ``[0, 3]``. 0 makes every call take exactly ``latency``; 0.3 gives the long-tailed
        spread of a real API (log-normal, same mean).
    seed:
        Any integer >= 0. The same seed gives the same latencies, faults and answers.
    failure_rate:
        Probability in ``[0, 1)`` that an attempt raises :class:`TransientLLMError` after
        its latency has passed.
    max_concurrent:
        Server-side limit: at most this many calls in flight (an integer >= 1, or None).
    requests_per_minute:
        At most this many admitted calls in any 60 s window (an integer >= 1, or None).
    tokens_per_minute:
        At most this many tokens in the admitted calls of any 60 s window (an integer
        >= 1, or None). A call's tokens are :meth:`tokens_for` its prompt: prompt plus
        answer, one token per 4 characters, counted when it is admitted.

    A call beyond a limit is refused at once (0 s on the clock, as a 429 comes back in one
    short round trip) with :class:`RateLimitError`. "Per minute" means a sliding window:
    a call starting at time ``t`` is admitted only if the calls admitted in ``(t - 60, t]``
    leave room for it; refused calls use up no quota. Times are compared in whole
    microseconds, so float rounding never decides.

    ``await llm(prompt)`` calls it from async code; ``llm.call(prompt)`` blocks, for plain
    synchronous examples. Every call is recorded in :attr:`trace` and counted in
    :attr:`stats`; :meth:`reset` clears both.
    """

    def __init__(
        self,
        latency: float = 1.0,
        jitter: float = 0.0,
        seed: int = 0,
        failure_rate: float = 0.0,
        *,
        max_concurrent: int | None = None,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
    ) -> None:
        self.latency = check_real("latency", latency, low=0.0, high=86_400.0, low_open=True)
        self.jitter = check_real("jitter", jitter, low=0.0, high=3.0)
        self.seed = check_int("seed", seed, low=0)
        self.failure_rate = check_real("failure_rate", failure_rate, low=0.0, high=1.0)
        if self.failure_rate >= 1.0:
            raise ValueError(
                f"failure_rate must be a finite number in [0, 1) (1 would fail every call); "
                f"got {failure_rate!r}"
            )
        self.max_concurrent = check_max_concurrency(max_concurrent, "max_concurrent")
        self.requests_per_minute = check_max_concurrency(requests_per_minute, "requests_per_minute")
        self.tokens_per_minute = check_max_concurrency(tokens_per_minute, "tokens_per_minute")
        # Log-normal with mean `latency` and coefficient of variation `jitter`.
        self._sigma = math.sqrt(math.log1p(self.jitter**2))
        self._mu = math.log(self.latency) - self._sigma**2 / 2
        self.reset()

    def __repr__(self) -> str:
        limits = "".join(
            f", {name}={value}"
            for name, value in (
                ("max_concurrent", self.max_concurrent),
                ("requests_per_minute", self.requests_per_minute),
                ("tokens_per_minute", self.tokens_per_minute),
            )
            if value is not None
        )
        return (
            f"SimulatedLLM(latency={self.latency:g}, jitter={self.jitter:g}, "
            f"seed={self.seed}, failure_rate={self.failure_rate:g}{limits})"
        )

    # -- the deterministic workload -------------------------------------------------------

    def _uniforms(self, prompt: str, attempt: int) -> tuple[float, float]:
        """Two independent uniforms in (0, 1) drawn from (seed, attempt, prompt) alone."""
        key = f"{self.seed}\x1f{attempt}\x1f{prompt}".encode()
        digest = hashlib.blake2b(key, digest_size=16).digest()
        a, b = int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:], "big")
        return (a + 0.5) / 2**64, (b + 0.5) / 2**64

    def latency_for(self, prompt: str, attempt: int = 1) -> float:
        """Seconds the given attempt at ``prompt`` takes, rounded to the microsecond."""
        if self.jitter == 0.0:
            return self.latency
        u, _ = self._uniforms(_check_prompt(prompt), attempt)
        seconds = math.exp(self._mu + self._sigma * _STANDARD_NORMAL.inv_cdf(u))
        return max(round(seconds, 6), 1e-6)

    def fails(self, prompt: str, attempt: int = 1) -> bool:
        """Whether the given attempt at ``prompt`` ends in a transient error."""
        if self.failure_rate == 0.0:
            return False
        _, u = self._uniforms(_check_prompt(prompt), attempt)
        return u < self.failure_rate

    def answer_for(self, prompt: str) -> str:
        """The answer a successful call returns: recognisably derived from the prompt."""
        return _answer(_check_prompt(prompt))

    def tokens_for(self, prompt: str) -> int:
        """Tokens a call with ``prompt`` uses against ``tokens_per_minute``: prompt plus answer."""
        prompt = _check_prompt(prompt)
        return estimate_tokens(prompt) + estimate_tokens(_answer(prompt))

    # -- calling it -------------------------------------------------------------------------

    async def __call__(self, prompt: str, *, attempt: int | None = None) -> str:
        """Answer ``prompt`` after its latency, on the running event loop's clock."""
        prompt = _check_prompt(prompt)
        attempt = self._next_attempt(prompt, attempt)
        loop = asyncio.get_running_loop()
        start = loop.time()
        latency = self.latency_for(prompt, attempt)
        ticket = self._admit(prompt, attempt, start, latency)
        outcome: Outcome = "cancelled"
        try:
            await asyncio.sleep(latency)
            outcome = "error" if self.fails(prompt, attempt) else "ok"
        finally:
            self._finish(prompt, attempt, start, loop.time(), outcome, ticket)
        if outcome == "error":
            raise TransientLLMError(prompt, attempt)
        return _answer(prompt)

    def call(self, prompt: str, *, attempt: int | None = None) -> str:
        """Blocking version of ``await llm(prompt)``, for synchronous code (real time only)."""
        prompt = _check_prompt(prompt)
        attempt = self._next_attempt(prompt, attempt)
        start = time.monotonic()
        latency = self.latency_for(prompt, attempt)
        ticket = self._admit(prompt, attempt, start, latency)
        outcome: Outcome = "cancelled"
        try:
            time.sleep(latency)
            outcome = "error" if self.fails(prompt, attempt) else "ok"
        finally:
            self._finish(prompt, attempt, start, time.monotonic(), outcome, ticket)
        if outcome == "error":
            raise TransientLLMError(prompt, attempt)
        return _answer(prompt)

    # -- what it saw --------------------------------------------------------------------------

    @property
    def trace(self) -> list[CallRecord]:
        """Every finished call since the last reset, in the order they ended."""
        return list(self._trace)

    @property
    def stats(self) -> LLMStats:
        """A snapshot of the counters (calls, outcomes, calls in flight now and at peak)."""
        return dataclasses.replace(self._stats)

    def reset(self) -> None:
        """Forget every recorded call and zero the counters and attempt numbers."""
        self._trace: list[CallRecord] = []
        self._stats = LLMStats()
        self._failed_attempts: dict[str, int] = {}  # prompt -> attempts failed in a row
        # Server state for the limits: scheduled end of each admitted call in flight, and
        # (start, tokens) of the calls admitted in the last 60 s, oldest first; all in ticks.
        self._serving: dict[int, int] = {}
        self._recent: deque[tuple[int, int]] = deque()
        self._tickets = 0

    def _next_attempt(self, prompt: str, attempt: int | None) -> int:
        # A call right after a failed or refused call with the same prompt is its retry
        # (attempt 2, 3, ...) and draws a fresh latency and fault. After a success the count
        # starts again at 1, so re-running a cell sends the very same workload again.
        if attempt is None:
            return self._failed_attempts.get(prompt, 0) + 1
        return check_int("attempt", attempt, low=1)

    def _count_attempt(self, prompt: str, attempt: int, outcome: Outcome) -> None:
        if outcome == "ok":
            self._failed_attempts.pop(prompt, None)
        elif outcome != "cancelled":
            self._failed_attempts[prompt] = max(attempt, self._failed_attempts.get(prompt, 0))

    def refusal(self, prompt: str, now: float) -> tuple[str, float] | None:
        """Which limit would refuse a call with ``prompt`` at time ``now``, and its retry_after.

        ``None`` if the call would be admitted. When several limits are full, the one with
        the longest wait is named: the call cannot be admitted any sooner than that.
        """
        t = _ticks(now)
        while self._recent and self._recent[0][0] <= t - _WINDOW_TICKS:
            self._recent.popleft()  # out of the window (t - 60 s, t]
        waits: list[tuple[int, str]] = []
        if self.max_concurrent is not None and len(self._serving) >= self.max_concurrent:
            waits.append((min(self._serving.values()) - t, "max_concurrent"))
        if self.requests_per_minute is not None and len(self._recent) >= self.requests_per_minute:
            # The call becomes admissible when enough of the oldest starts leave the window.
            oldest = self._recent[len(self._recent) - self.requests_per_minute][0]
            waits.append((oldest + _WINDOW_TICKS - t, "requests_per_minute"))
        if self.tokens_per_minute is not None:
            needed = self.tokens_for(prompt)
            if needed > self.tokens_per_minute:
                return "tokens_per_minute", math.inf
            excess = sum(tokens for _, tokens in self._recent) + needed - self.tokens_per_minute
            if excess > 0:  # wait until the oldest calls holding `excess` tokens leave the window
                for start, tokens in self._recent:
                    excess -= tokens
                    if excess <= 0:
                        waits.append((start + _WINDOW_TICKS - t, "tokens_per_minute"))
                        break
        if not waits:
            return None
        ticks, limit = max(waits)
        # A slot whose call ends this very tick is not free yet: come back one tick later.
        return limit, max(ticks, 1) / _TICKS_PER_SECOND

    def _admit(self, prompt: str, attempt: int, now: float, latency: float) -> int:
        """Count a call; refuse it with RateLimitError or book it in as in flight."""
        stats = self._stats
        stats.calls += 1
        refused = self.refusal(prompt, now)
        if refused is not None:
            stats.rate_limited += 1
            self._trace.append(CallRecord(prompt, attempt, now, now, "rate_limited"))
            self._count_attempt(prompt, attempt, "rate_limited")
            raise RateLimitError(prompt, attempt, refused[1], refused[0])
        t = _ticks(now)
        if self.requests_per_minute is not None or self.tokens_per_minute is not None:
            tokens = self.tokens_for(prompt) if self.tokens_per_minute is not None else 0
            self._recent.append((t, tokens))
        self._tickets += 1
        if self.max_concurrent is not None:
            self._serving[self._tickets] = t + _ticks(latency)
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        return self._tickets

    def _finish(
        self, prompt: str, attempt: int, start: float, end: float, outcome: Outcome, ticket: int = 0
    ) -> None:
        stats = self._stats
        stats.in_flight -= 1
        self._serving.pop(ticket, None)
        if outcome == "ok":
            stats.ok += 1
        elif outcome == "error":
            stats.transient_errors += 1
        else:
            stats.cancelled += 1
        self._trace.append(CallRecord(prompt, attempt, start, end, outcome))
        self._count_attempt(prompt, attempt, outcome)


def _ticks(seconds: float) -> int:
    return round(seconds * _TICKS_PER_SECOND)


def _check_prompt(prompt: object) -> str:
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str; got {type(prompt).__name__}")
    return prompt


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _answer(prompt: str) -> str:
    instruction, colon, body = prompt.partition(":")
    body = body.strip()
    if colon and body:
        translate = _TRANSLATE.match(instruction)
        if translate:
            return f"[{translate.group(1).strip()}] {body}"
        if _SUMMARIZE.match(instruction):
            words = body.split()
            return f"Summary ({len(words)} words): {_clip(body, 48)}"
    return f"Answer to: {_clip(prompt, 60)}"


_default_llm = SimulatedLLM(latency=0.5, jitter=0.3, seed=42)


def get_default_llm() -> SimulatedLLM:
    """The instance that :func:`call_llm_async` and :func:`call_llm` use."""
    return _default_llm


def set_default_llm(llm: SimulatedLLM) -> SimulatedLLM:
    """Make ``llm`` the instance behind :func:`call_llm_async` and :func:`call_llm`.

    Returns the previous default, so a caller can put it back.
    """
    global _default_llm
    if not isinstance(llm, SimulatedLLM):
        raise TypeError(f"llm must be a SimulatedLLM; got {type(llm).__name__}")
    previous, _default_llm = _default_llm, llm
    return previous


async def call_llm_async(prompt: str) -> str:
    """Ask the default simulated LLM, as the chapter's ``call_llm_async`` does."""
    return await _default_llm(prompt)


def call_llm(prompt: str) -> str:
    """Ask the default simulated LLM and block until it answers."""
    return _default_llm.call(prompt)
