"""The simulated service behind the HTTP routes, API-neutral: one request in, a reply or a refusal out.

Every endpoint (OpenAI's ``/v1/chat/completions``, Anthropic's ``/v1/messages``) turns its
body into a :class:`ServiceRequest`, runs it through :meth:`ChatService.call`, and
renders what comes back in its own API's shapes. The service knows nothing of HTTP, JSON or
either API: the same seed, prompt and attempt number give the same latency, answer and faults
as :class:`~pocket_parallel.SimulatedLLM`, because both run a
:class:`~pocket_parallel.service.provider.SimulatedProvider`.

**The request.** :class:`ServiceRequest`: ``prompt`` (the last user message: it seeds the
model), ``messages`` (the text of every message, system included: input tokens are counted
from them), ``max_tokens`` (or None), ``thinking_budget`` (extended thinking's budget, or
None), ``stream`` and ``stop_sequences`` (the answer ends before the first it meets).

**The call.** ``async with service.call(request) as call:`` admits the request at once or
raises, then waits for a slot (with ``slots``; never refused), and yields a :class:`ServiceCall`:

- ``call.reply``: a :class:`~pocket_parallel.service.answers.Reply`: ``text``,
  ``thinking`` (None without thinking), ``text_tokens``, ``thinking_tokens``,
  ``output_tokens`` (both), ``stop_reason`` (``"end"``, ``"max_tokens"`` or
  ``"stop_sequence"``, with ``stop_sequence``; OpenAI's ``finish_reason`` is
  ``reply.finish_reason``);
- ``call.input_tokens`` (every message's tokens), ``call.attempt``;
- ``call.timing``: a :class:`~pocket_parallel.service.timing.Timing`: ``first_token``,
  ``per_token`` and ``total`` seconds from the moment the call was served;
- ``call.limits``: the state of every per-minute limit just after admission, from which
  :func:`~pocket_parallel.service.headers.openai_rate_headers` and
  :func:`~pocket_parallel.service.headers.anthropic_rate_headers` (with
  :meth:`ChatService.moment` for RFC 3339 times) write each API's headers;
- ``await call.finish()`` waits the whole time and returns the reply (non-streaming), or
  ``async for piece in call.pieces():`` yields each output token as a :class:`Piece`
  (``kind`` ``"thinking"`` or ``"text"``, and its ``text``) at its time: the first at
  ``first_token``, then one every ``per_token`` (streaming). Both stall for good on an
  attempt that stalls, and raise :class:`Faulted` (``status`` 500 or 503, ``limits``) on one
  that fails, after its whole time and before any token.

Leaving the ``async with`` (answered, failed, or cancelled because the client went away)
frees the slot, returns the unused output reservation and counts the request.

**Refusals**, raised by ``async with service.call(...)`` before any waiting:

- :class:`~pocket_parallel.service.provider.Refused` (a 429): ``refused.refusal`` names the
  limit (``.limit``: ``"max_concurrent"``, ``"requests_per_minute"``, ``"tokens_per_minute"``,
  ``"input_tokens_per_minute"`` or ``"output_tokens_per_minute"``), what was ``.requested``
  and ``.allowed``, ``.retry_after`` seconds (render with
  :func:`~pocket_parallel.service.headers.retry_after_headers`), ``.too_large`` (the request
  alone exceeds a per-minute limit: send :data:`~pocket_parallel.service.headers.DO_NOT_RETRY`
  instead) and a ready ``.message`` ("Rate limit reached for ...", "Request too large for
  ..."); ``refused.limits`` for the rate-limit headers;
- :class:`~pocket_parallel.service.provider.Overloaded` (a 529), with ``limits``.

A request an endpoint rejects before the service (a 400) should still carry the rate-limit
headers of :meth:`ChatService.limits`, and be counted with ``service.stats.bad_requests += 1``.

An endpoint, in outline (``_chat`` and ``_messages`` in :mod:`.app` are the two)::

    request = ServiceRequest(prompt, messages=texts, max_tokens=body["max_tokens"],
                             thinking_budget=budget_or_None, stream=body.get("stream", False))
    try:
        async with service.call(request) as call:
            headers = anthropic_rate_headers(call.limits, service.moment())
            if request.stream:
                ...  # send each piece of call.pieces() as it comes
            else:
                reply = await call.finish()
                ...  # render reply.thinking, reply.text, reply.stop_reason, call.input_tokens
    except Refused as refused:   # 429: refused.refusal.message, .retry_after or .too_large
        ...
    except Overloaded:           # 529
        ...
    except Faulted as faulted:   # faulted.status: 500 or 503
        ...
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Literal

from .._validate import check_bool
from ..service.answers import Reply
from ..service.headers import moment_of
from ..service.model import estimate_tokens, token_pieces
from ..service.provider import Admission, CallRequest, Overloaded, Refused, SimulatedProvider, wait_forever
from ..service.quota import LimitStates
from ..service.timing import Timing
from .settings import ServerSettings
from .stats import ServerStats

__all__ = ["Busy", "ChatService", "Faulted", "Overloaded", "Piece", "Refused", "ServiceCall", "ServiceRequest"]


@dataclass(frozen=True)
class ServiceRequest:
    """One request as the service needs it, whatever API it came through (see the module's docstring)."""

    prompt: str
    messages: tuple[str, ...] = ()
    max_tokens: int | None = None
    thinking_budget: int | None = None
    stream: bool = False
    stop_sequences: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_bool("stream", self.stream)
        if not isinstance(self.messages, tuple) or not all(isinstance(text, str) for text in self.messages):
            raise TypeError(f"messages must be a tuple of each message's text; got {self.messages!r}")

    @property
    def input_tokens(self) -> int:
        """Every message's tokens (the prompt's alone when ``messages`` is empty)."""
        texts = self.messages or (self.prompt,)
        return sum(estimate_tokens(text) for text in texts)

    def call_request(self) -> CallRequest:
        """The request as the provider takes it."""
        return CallRequest(self.prompt, self.input_tokens, self.max_tokens, self.thinking_budget, self.stop_sequences)


@dataclass(frozen=True)
class Piece:
    """One output token as it is streamed: ``kind`` ``"thinking"`` or ``"text"``, and its characters."""

    kind: Literal["thinking", "text"]
    text: str


class Faulted(Exception):
    """An admitted request failed after its time (a transient 500 or 503); ``limits`` as they stood at admission."""

    def __init__(self, status: int, limits: LimitStates) -> None:
        super().__init__(f"the service failed with a {status}")
        self.status, self.limits = status, limits


class Busy(RuntimeError):
    """The service cannot reset while requests are in flight."""


class ChatService:
    """The simulated provider and the counters of one server."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.provider = SimulatedProvider(settings)
        self.model = self.provider.model
        self.quota = self.provider.quota
        self.attempts = self.provider.attempts
        self.stats = ServerStats()

    def limits(self) -> LimitStates:
        """Every per-minute limit's state now, for the rate-limit headers of a response."""
        return self.quota.snapshot(asyncio.get_running_loop().time())

    def moment(self, loop_time: float | None = None) -> datetime:
        """The calendar time of ``loop_time`` (default: now), for RFC 3339 headers (virtual clock: from the fixed epoch)."""
        loop = asyncio.get_running_loop()
        return moment_of(loop.time() if loop_time is None else loop_time, loop)

    def call(self, request: ServiceRequest) -> ServiceCall:
        """One call for ``request``: use it with ``async with`` (see the module's docstring)."""
        return ServiceCall(self, request)

    def reset(self, *, refill_limits: bool = True) -> None:
        """Zero the counters and attempt numbers, and refill the limits unless told not to.

        :class:`Busy` while requests are in flight.
        """
        if self.stats.in_flight:
            raise Busy(f"Cannot reset while {self.stats.in_flight} request(s) are in flight: wait for them to "
                               "end (a stalled request ends when its client disconnects).")
        self.stats = ServerStats()
        if refill_limits:
            self.provider.reset()
        else:
            self.attempts.clear()


class ServiceCall:
    """One admitted request while it is served (see the module's docstring)."""

    def __init__(self, service: ChatService, request: ServiceRequest) -> None:
        self._service, self.request = service, request
        self._admission: Admission | None = None
        self._outcome = "cancelled"
        self.timing = Timing.at_once(0.0)
        self.served_at = 0.0

    @property
    def admission(self) -> Admission:
        """The provider's record of this attempt (only inside ``async with``)."""
        if self._admission is None:
            raise RuntimeError("use the call inside 'async with service.call(request) as call:'")
        return self._admission

    @property
    def reply(self) -> Reply:
        """What the call answers when it succeeds."""
        return self.admission.reply

    @property
    def attempt(self) -> int:
        """The attempt number (2 and more: a retry of a failed call with the same prompt)."""
        return self.admission.attempt

    @property
    def input_tokens(self) -> int:
        """Every message's tokens."""
        return self.admission.input_tokens

    @property
    def limits(self) -> LimitStates:
        """Every per-minute limit's state just after this request was charged."""
        return self.admission.limits

    async def __aenter__(self) -> ServiceCall:
        service, stats = self._service, self._service.stats
        provider, prompt = service.provider, self.request.prompt
        attempt = provider.attempts.next(prompt)
        stats.requests += 1
        if attempt > 1:
            stats.retries += 1
        loop = asyncio.get_running_loop()
        try:
            admission = provider.admit(self.request.call_request(), attempt, loop.time())
        except Overloaded:
            stats.overloaded += 1
            raise
        except Refused:
            stats.rate_limited += 1
            raise
        self._admission = admission
        stats.opened()
        stats.prompt_tokens += admission.input_tokens  # read by the service, whatever becomes of the request
        stats.total_tokens += admission.input_tokens
        try:
            self.timing = await provider.seat(admission)
        except BaseException:
            self._settle()
            raise
        if admission.waited:
            stats.queued += 1
        self.served_at = loop.time()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        self._settle()

    def _settle(self) -> None:
        admission, stats = self.admission, self._service.stats
        self._service.provider.settle(admission, asyncio.get_running_loop().time(), self._outcome)
        stats.in_flight -= 1
        if self._outcome == "cancelled":
            stats.cancelled += 1
        elif self._outcome == "ok":
            stats.ok += 1
            stats.completion_tokens += admission.reply.output_tokens
            stats.total_tokens += admission.reply.output_tokens

    async def _stall_or_fail(self) -> None:
        """Stall for good, or wait the whole time and raise :class:`Faulted`, as the attempt's draws say."""
        admission, provider = self.admission, self._service.provider
        if admission.stalls:
            self._service.stats.stalled += 1
            await wait_forever()  # accepted, never answered: ends when the client or the server goes
        if provider.fails(admission):
            await self._until(self.timing.total)
            self._outcome = "error"
            self._service.stats.errors += 1
            raise Faulted(provider.error_status(admission), admission.limits)

    async def finish(self) -> Reply:
        """Wait until the whole reply is there and return it (or stall, or raise :class:`Faulted`)."""
        await self._stall_or_fail()
        await self._until(self.timing.total)
        self._outcome = "ok"
        return self.reply

    async def pieces(self) -> AsyncIterator[Piece]:
        """Each output token at its time, thinking first (or stall, or raise :class:`Faulted` before any)."""
        await self._stall_or_fail()
        reply, timing, index = self.reply, self.timing, 0
        for kind, text in (("thinking", reply.thinking or ""), ("text", reply.text)):
            for token in token_pieces(text):
                index += 1
                await self._until(timing.token_at(index))
                yield Piece(kind, token)  # type: ignore[arg-type]
        await self._until(timing.total)
        self._outcome = "ok"

    async def _until(self, offset: float) -> None:
        """Sleep until ``offset`` seconds after the call was served (at once if that has passed)."""
        elapsed = asyncio.get_running_loop().time() - self.served_at
        # Not a moment later than served: sleep exactly `offset`, with no float dust from adding and subtracting.
        await asyncio.sleep(max(0.0, offset - elapsed) if elapsed else offset)
