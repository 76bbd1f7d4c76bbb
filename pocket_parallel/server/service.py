"""The simulated service behind the HTTP routes: one request in, an answer or an error out.

:class:`ChatService` mirrors :class:`~pocket_parallel.SimulatedLLM` step by step, so that the
same seed, prompt and attempt number give the same latency, fault and answer in-process and
over HTTP:

1. number the attempt (a request right after a failed one with the same prompt is its retry);
2. turn it away at once as overloaded (529) if the model says so;
3. ask the :class:`~pocket_parallel.service.quota.Quota` to admit it, or refuse it at once (429);
4. stall for good if the model says so, else wait its latency;
5. fail with a 500 or 503 if the model says so, else answer.

It knows nothing of HTTP libraries: the routes (:mod:`pocket_parallel.server.app`) turn its
:class:`Answer` or :class:`~pocket_parallel.server.errors.ApiError` into a response.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from ..service.model import CHARS_PER_TOKEN, AttemptNumbers, estimate_tokens
from ..service.quota import Refusal
from .chat_request import ChatRequest
from .errors import ApiError
from .settings import ServerSettings
from .stats import ServerStats

_RATE_LIMIT_TYPES = {"requests_per_minute": "requests", "tokens_per_minute": "tokens", "max_concurrent": "requests"}


@dataclass(frozen=True)
class Answer:
    """A successful completion: its text, its token usage, why it ended, and the response headers."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    attempt: int
    headers: dict[str, str]

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


class ChatService:
    """The seeded model, the limits, the attempt numbers and the counters of one server."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.model = settings.service_model()
        self.quota = settings.quota()
        self.attempts = AttemptNumbers()
        self.stats = ServerStats()

    def rate_headers(self) -> dict[str, str]:
        """The ``x-ratelimit-*`` headers right now (only for the per-minute limits that are set)."""
        return self.quota.headers(asyncio.get_running_loop().time())

    def reset(self, *, refill_limits: bool = True) -> None:
        """Zero the counters and attempt numbers, and refill the limits unless told not to.

        Refused (409) while requests are in flight.
        """
        if self.stats.in_flight:
            raise ApiError(
                409, f"Cannot reset while {self.stats.in_flight} request(s) are in flight: wait for them to end "
                "(a stalled request ends when its client disconnects).", code="requests_in_flight",
            )
        self.stats = ServerStats()
        self.attempts.clear()
        if refill_limits:
            self.quota.reset()

    async def answer(self, request: ChatRequest) -> Answer:
        """Answer ``request`` after its latency, or raise :class:`ApiError` (429, 500, 503, 529)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        prompt, model, stats = request.prompt, self.model, self.stats
        attempt = self.attempts.next(prompt)
        stats.requests += 1
        if attempt > 1:
            stats.retries += 1
        if model.overloaded(prompt, attempt):
            stats.overloaded += 1
            self.attempts.ended(prompt, attempt, succeeded=False)
            raise ApiError(529, "The service is overloaded. Please retry after a brief wait.",
                           type="overloaded_error", code="overloaded", headers=self.quota.headers(now))
        latency = model.latency_for(prompt, attempt)
        stalls = model.stalls(prompt, attempt)
        tokens = model.tokens_for(prompt) if self.quota.tokens_per_minute is not None else 0
        ticket = self.quota.try_admit(now, tokens, math.inf if stalls else now + latency)
        headers = self.quota.headers(now)
        if isinstance(ticket, Refusal):
            stats.rate_limited += 1
            self.attempts.ended(prompt, attempt, succeeded=False)
            raise self._refusal(ticket, tokens, headers)
        stats.opened()
        stats.prompt_tokens += estimate_tokens(prompt)  # read by the service, whatever becomes of the request
        stats.total_tokens += estimate_tokens(prompt)
        outcome = "cancelled"
        try:
            if stalls:
                stats.stalled += 1
                await loop.create_future()  # accepted, never answered: ends when the client or server goes
            await asyncio.sleep(latency)
            outcome = "error" if model.fails(prompt, attempt) else "ok"
        finally:
            self.quota.release(ticket)
            stats.in_flight -= 1
            if outcome == "cancelled":
                stats.cancelled += 1
            self.attempts.settled(prompt, attempt, outcome, stalled=stalls)
        if outcome == "error":
            stats.errors += 1
            status = model.error_status(prompt, attempt)
            message = ("The server had an error while processing your request." if status == 500
                       else "The service is temporarily unavailable.")
            raise ApiError(status, message + " Retrying may succeed.", type="server_error", headers=headers)
        return self._completed(request, attempt, headers)

    def _completed(self, request: ChatRequest, attempt: int, headers: dict[str, str]) -> Answer:
        text = self.model.answer_for(request.prompt)
        finish_reason = "stop"
        if request.max_tokens is not None and estimate_tokens(text) > request.max_tokens:
            text, finish_reason = text[: request.max_tokens * CHARS_PER_TOKEN], "length"
        answer = Answer(text, estimate_tokens(request.prompt), estimate_tokens(text), finish_reason, attempt, headers)
        stats = self.stats
        stats.ok += 1
        stats.completion_tokens += answer.completion_tokens
        stats.total_tokens += answer.completion_tokens
        return answer

    def _refusal(self, refusal: Refusal, tokens: int, headers: dict[str, str]) -> ApiError:
        quota = self.quota
        if math.isinf(refusal.retry_after):
            # Waiting never helps: tell clients not to retry (the official ones obey x-should-retry).
            return ApiError(
                429, f"Request too large: it needs {tokens} tokens, and the limit is {quota.tokens_per_minute} "
                "tokens per minute. Send a shorter prompt.", type="tokens", code="rate_limit_exceeded",
                headers={**headers, "x-should-retry": "false"},
            )
        milliseconds = max(1, math.ceil(refusal.retry_after * 1000))
        limit = quota.limits()[refusal.limit]
        what = {"max_concurrent": f"requests in flight: limit {limit} at once",
                "requests_per_minute": f"requests per minute (RPM): limit {limit}",
                "tokens_per_minute": f"tokens per minute (TPM): limit {limit}, requested {tokens}"}[refusal.limit]
        return ApiError(
            429, f"Rate limit reached for {what}. Please try again in {milliseconds} ms.",
            type=_RATE_LIMIT_TYPES[refusal.limit], code="rate_limit_exceeded",
            headers={**headers, "retry-after": str(math.ceil(milliseconds / 1000)), "retry-after-ms": str(milliseconds)},
        )
