"""A simulated LLM service: seeded latency and answers, transient faults, stalls, limits, a call trace.

:class:`SimulatedLLM` puts three small parts together, each with one job:

- its :class:`~pocket_parallel.service.settings.ServiceSettings` say what it simulates;
- a :class:`~pocket_parallel.service.provider.SimulatedProvider` runs each call through the
  seeded model, the limits (refusing with an HTTP 429 as a provider does) and the slots, the
  same steps the HTTP server takes;
- its record (:class:`~pocket_parallel.backends.recorded.RecordedCalls`, which every backend
  keeps) logs every call and keeps the counters: :attr:`~SimulatedLLM.trace` and
  :attr:`~SimulatedLLM.stats`.

It runs on whatever event loop awaits it, so on the virtual clock a day of calls takes a
blink and every time is exact.
"""

from __future__ import annotations

import asyncio
import datetime
import math
import time
from typing import Any

from .._format import clip
from .._validate import check_choice, check_int, check_prompt
from ..service.answers import Reply
from ..service.headers import VIRTUAL_EPOCH, anthropic_rate_headers, moment_of, openai_rate_headers
from ..service.provider import (
    Admission,
    CallRequest,
    ModelBehaviour,
    Overloaded,
    Refused,
    SimulatedProvider,
    wait_forever,
)
from ..service.quota import LimitStates, Refusal
from ..service.settings import ServiceSettings, settings_from, takes_settings
from ..trace import Outcome
from .recorded import RecordedCalls


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, or None."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


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
    ``limit`` names the limit that refused the call, ``refusal`` says what it needed of that
    limit, and ``headers`` holds the ``x-ratelimit-*`` headers a provider would have sent
    with the refusal.
    """

    def __init__(
        self, prompt: str, attempt: int, retry_after: float, limit: str, headers: dict[str, str] | None = None,
        refusal: Refusal | None = None,
    ) -> None:
        after = "never (the call alone exceeds the limit)" if math.isinf(retry_after) else f"{retry_after:g} s"
        super().__init__(f"rate limited by {limit} on attempt {attempt}: retry after {after} "
                         f"(prompt {clip(prompt, 40)!r})")
        self.prompt = prompt
        self.attempt = attempt
        self.retry_after = retry_after
        self.limit = limit
        self.headers = dict(headers or {})
        self.refusal = refusal if refusal is not None else Refusal(limit, retry_after)


class SimulatedLLM(RecordedCalls, ModelBehaviour):
    """A stand-in for a remote LLM: awaitable, deterministic, and observable.

    It takes every setting of :class:`~pocket_parallel.service.settings.ServiceSettings`,
    the first four by position:

    - ``latency, jitter, seed, failure_rate``: how each call behaves (see
      :class:`~pocket_parallel.service.model.ServiceModel`): mean seconds per call, the spread
      of that latency (its coefficient of variation), the seed, and the share of attempts
      that fail after their latency;
    - ``stall_rate``: share of attempts accepted and never answered, as a hung connection is
      (``[0, 1)``); only a timeout gets the caller out. ``overload_rate``: share turned away
      at once as overloaded (``[0, 1)``), raising :class:`OverloadedError`;
    - ``ttft`` and ``tpot``: seconds to the first token and per output token, instead of one
      latency (a call then takes ``ttft + output tokens × tpot``); ``answer_tokens``: a range
      of output tokens to draw each answer's length from;
    - ``max_concurrent``: at most this many calls in flight, the rest refused (a gateway's
      cap); ``slots``: at most this many served at once, the rest waiting in line, never
      refused (a self-hosted server);
    - ``requests_per_minute``, ``tokens_per_minute``, ``input_tokens_per_minute``,
      ``output_tokens_per_minute``: per-minute budgets (integers >= 1, or None), each a token
      bucket that refills continuously and holds ``quantum`` seconds of refill (60 by
      default: a minute's burst passes at once), or a sliding window
      (``algorithm="sliding_window"``: at most that many in any 60 s). Without a profile a
      call's tokens are :meth:`tokens_for` its prompt (prompt plus answer, one token per 4
      characters), as always; what each profile charges is in
      :mod:`~pocket_parallel.service.provider`;
    - ``profile``: ``"openai"``, ``"anthropic"`` or ``"self-hosted"`` fills in every setting
      not given with that kind of provider's documented defaults
      (:mod:`~pocket_parallel.service.profiles`).

    Its seeded workload (:meth:`latency_for`, :meth:`fails`, :meth:`stalls`,
    :meth:`answer_for`, :meth:`tokens_for`) can be overridden in a subclass to script one.

    A call beyond a limit is refused at once (0 s on the clock, as a 429 comes back in one
    short round trip) with :class:`RateLimitError`; refused calls use up no quota.

    ``await llm(prompt)`` calls it from async code; ``await llm.complete(prompt,
    max_tokens=..., thinking_budget=...)`` sends a request's options and returns the whole
    reply; ``llm.call(prompt)`` blocks, for plain synchronous examples. Every call is recorded in
    :attr:`trace` and counted in :attr:`stats`; :meth:`reset` clears both and the limits.
    """

    @takes_settings(ServiceSettings)
    def __init__(self, *args: Any, **settings: Any) -> None:
        self.settings: ServiceSettings = settings_from(ServiceSettings, "SimulatedLLM", args, settings)
        self._provider = SimulatedProvider(self.settings, behaviour=self)
        super().__init__(self._provider.model)
        self.quota = self._provider.quota
        self.reset()

    # -- settings, read from the parts ------------------------------------------------------

    @property
    def latency(self) -> float:
        """Mean seconds per call (with ``ttft`` and ``tpot``: for an answer of average length, alone)."""
        return self.settings.mean_latency

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
        model, settings = self.model, self.settings
        faults = "".join(
            f", {name}={value:g}" for name, value in (("stall_rate", model.stall_rate), ("overload_rate", model.overload_rate))
            if value
        )
        limits = f", {self.quota.describe()}" if self.quota.limited else ""
        timing = f"latency={model.latency:g}" if model.latency is not None else f"ttft={model.ttft:g}, tpot={model.tpot:g}"
        extras = "".join(f", {name}={getattr(settings, name)!r}" for name in ("slots", "answer_tokens", "profile")
                         if getattr(settings, name) is not None)
        return (
            f"SimulatedLLM({timing}, jitter={model.jitter:g}, "
            f"seed={model.seed}, failure_rate={model.failure_rate:g}{faults}{limits}{extras})"
        )

    # The deterministic workload (latency_for, fails, stalls, answer_for, tokens_for) comes from
    # ModelBehaviour: overridable, e.g. by the exercise checks.

    # -- calling it -------------------------------------------------------------------------

    async def __call__(self, prompt: str, *, attempt: int | None = None) -> str:
        """Answer ``prompt`` after its latency, on the running event loop's clock."""
        reply = await self.complete(prompt, attempt=attempt)
        return reply.text

    async def complete(
        self, prompt: str, *, attempt: int | None = None, max_tokens: int | None = None,
        thinking_budget: int | None = None,
    ) -> Reply:
        """Like ``await llm(prompt)``, with a request's options, returning the whole :class:`~pocket_parallel.service.answers.Reply`.

        ``max_tokens`` caps the output (the answer is cut there, with the stop reason
        ``"max_tokens"``), and is what an output budget reserves; ``thinking_budget`` turns on
        extended thinking, a thinking block of seeded length charged as output tokens.
        """
        prompt, attempt = self._numbered(prompt, attempt)
        loop = asyncio.get_running_loop()
        start = loop.time()
        admission = self._admit(CallRequest(prompt, None, max_tokens, thinking_budget), attempt, start)
        outcome: Outcome = "cancelled"
        try:
            timing = await self._provider.seat(admission)
            if admission.stalls:
                await wait_forever()  # accepted, never answered: only a timeout ends it
            await asyncio.sleep(timing.total)
            outcome = "error" if self._provider.fails(admission) else "ok"
        finally:
            self._end(admission, start, loop.time(), outcome)
        if outcome == "error":
            raise TransientLLMError(prompt, attempt)
        return admission.reply

    def call(self, prompt: str, *, attempt: int | None = None) -> str:
        """Blocking version of ``await llm(prompt)``, for synchronous code (real time only)."""
        if self.model.stall_rate:
            raise RuntimeError(
                "llm.call(...) cannot simulate a stalled call without hanging the program: with "
                "stall_rate > 0, use 'await llm(prompt)' inside a timeout"
            )
        if self.settings.slots is not None:
            raise RuntimeError("llm.call(...) cannot wait in line for one of the slots without an event loop: with "
                               "slots, use 'await llm(prompt)'")
        prompt, attempt = self._numbered(prompt, attempt)
        start = time.monotonic()
        admission = self._admit(CallRequest(prompt), attempt, start)
        outcome: Outcome = "cancelled"
        try:
            time.sleep(self._provider.timing(admission).total)
            outcome = "error" if self._provider.fails(admission) else "ok"
        finally:
            self._end(admission, start, time.monotonic(), outcome)
        if outcome == "error":
            raise TransientLLMError(prompt, attempt)
        return admission.reply.text

    # -- what it saw (trace and stats come from RecordedCalls) ---------------------------------

    def rate_limit_headers(self, now: float | None = None, api: str = "openai") -> dict[str, str]:
        """The rate-limit headers the server would send at ``now`` (default: the running loop's time).

        ``api="openai"``: OpenAI's ``x-ratelimit-*`` (requests and tokens per minute);
        ``api="anthropic"``: Anthropic's ``anthropic-ratelimit-*`` (requests, input and output
        tokens per minute), whose resets are RFC 3339 times: on the virtual clock, or for a
        ``now`` given outside any event loop, counted from
        :data:`~pocket_parallel.service.headers.VIRTUAL_EPOCH`.
        """
        api = check_choice("api", api, ("openai", "anthropic"))
        loop = _running_loop()
        if now is None:
            if loop is None:
                raise RuntimeError("rate_limit_headers() needs now= outside an event loop: the time to describe, "
                                   "in seconds on the clock the calls ran on (for example 0.0, the start)")
            now = loop.time()
        states = self.quota.snapshot(now)
        if api == "openai":
            return openai_rate_headers(states)
        moment = moment_of(now, loop) if loop is not None else VIRTUAL_EPOCH + datetime.timedelta(seconds=now)
        return anthropic_rate_headers(states, moment)

    def limit_states(self, now: float | None = None) -> LimitStates:
        """Every per-minute limit's state at ``now`` (default: the running loop's time), for either
        header family (:mod:`pocket_parallel.service.headers`)."""
        return self.quota.snapshot(asyncio.get_running_loop().time() if now is None else now)

    def reset(self) -> None:
        """Forget every recorded call, zero the counters and attempt numbers, refill the limits."""
        super().reset()
        self._provider.reset()
        self._attempts = self._provider.attempts  # the provider numbers attempts; the record reads its numbers

    # -- bookkeeping ---------------------------------------------------------------------------

    def _numbered(self, prompt: Any, attempt: int | None) -> tuple[str, int]:
        prompt = check_prompt(prompt)
        if attempt is None:
            return prompt, self._attempts.next(prompt)
        return prompt, check_int("attempt", attempt, low=1)

    def _admit(self, request: CallRequest, attempt: int, now: float) -> Admission:
        """Count a call; turn it away (529, 429) or book it in as in flight."""
        prompt = request.prompt
        try:
            admission = self._provider.admit(request, attempt, now)
        except Overloaded:
            self._log.refused(prompt, attempt, now, "overloaded")
            raise OverloadedError(prompt, attempt) from None
        except Refused as refused:
            self._log.refused(prompt, attempt, now, "rate_limited")
            refusal = refused.refusal
            raise RateLimitError(prompt, attempt, refusal.retry_after, refusal.limit,
                                 openai_rate_headers(refused.limits), refusal) from None
        self._log.opened()
        return admission

    def _end(self, admission: Admission, start: float, end: float, outcome: Outcome) -> None:
        self._provider.settle(admission, end, outcome)
        self._log.closed(admission.request.prompt, admission.attempt, start, end, outcome)
