"""A simulated LLM service: seeded latency, deterministic answers, transient faults, a call trace.

Everything about one call (how long it takes, whether it fails, what it answers) is a pure
function of the prompt, the seed and the attempt number. Sequential and parallel runs of
the same prompts therefore see exactly the same workload, whatever order the calls start in.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import math
import re
import time
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

from ._validate import check_int, check_real

Outcome = Literal["ok", "error", "cancelled"]

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
    """Counters kept by a :class:`SimulatedLLM` since it was made or last reset."""

    calls: int = 0
    ok: int = 0
    transient_errors: int = 0
    cancelled: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0


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
        # Log-normal with mean `latency` and coefficient of variation `jitter`.
        self._sigma = math.sqrt(math.log1p(self.jitter**2))
        self._mu = math.log(self.latency) - self._sigma**2 / 2
        self.reset()

    def __repr__(self) -> str:
        return (
            f"SimulatedLLM(latency={self.latency:g}, jitter={self.jitter:g}, "
            f"seed={self.seed}, failure_rate={self.failure_rate:g})"
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

    # -- calling it -------------------------------------------------------------------------

    async def __call__(self, prompt: str, *, attempt: int | None = None) -> str:
        """Answer ``prompt`` after its latency, on the running event loop's clock."""
        prompt = _check_prompt(prompt)
        attempt = self._next_attempt(prompt, attempt)
        loop = asyncio.get_running_loop()
        start = loop.time()
        self._begin()
        outcome: Outcome = "cancelled"
        try:
            await asyncio.sleep(self.latency_for(prompt, attempt))
            outcome = "error" if self.fails(prompt, attempt) else "ok"
        finally:
            self._finish(prompt, attempt, start, loop.time(), outcome)
        if outcome == "error":
            raise TransientLLMError(prompt, attempt)
        return _answer(prompt)

    def call(self, prompt: str, *, attempt: int | None = None) -> str:
        """Blocking version of ``await llm(prompt)``, for synchronous code (real time only)."""
        prompt = _check_prompt(prompt)
        attempt = self._next_attempt(prompt, attempt)
        start = time.monotonic()
        self._begin()
        outcome: Outcome = "cancelled"
        try:
            time.sleep(self.latency_for(prompt, attempt))
            outcome = "error" if self.fails(prompt, attempt) else "ok"
        finally:
            self._finish(prompt, attempt, start, time.monotonic(), outcome)
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
        self._attempts: dict[str, int] = {}

    def _next_attempt(self, prompt: str, attempt: int | None) -> int:
        # Retries of a prompt are numbered 1, 2, 3... so a retry draws a fresh latency and fault.
        if attempt is None:
            attempt = self._attempts.get(prompt, 0) + 1
        else:
            attempt = check_int("attempt", attempt, low=1)
        self._attempts[prompt] = max(attempt, self._attempts.get(prompt, 0))
        return attempt

    def _begin(self) -> None:
        stats = self._stats
        stats.calls += 1
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)

    def _finish(self, prompt: str, attempt: int, start: float, end: float, outcome: Outcome) -> None:
        stats = self._stats
        stats.in_flight -= 1
        if outcome == "ok":
            stats.ok += 1
        elif outcome == "error":
            stats.transient_errors += 1
        else:
            stats.cancelled += 1
        self._trace.append(CallRecord(prompt, attempt, start, end, outcome))


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
