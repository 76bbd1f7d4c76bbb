"""One simulated provider: the steps every call goes through, shared by SimulatedLLM and the server.

:class:`SimulatedProvider` holds the seeded model, the limits, the slots and the attempt
numbers of one service. :class:`~pocket_parallel.SimulatedLLM` (in process) and the HTTP
server's :class:`~pocket_parallel.server.service.ChatService` both run a call through it:

1. :meth:`~SimulatedProvider.admit`, at once (no waiting): turn the attempt away as
   overloaded (:class:`Overloaded`, a 529) if the model says so; charge the limits
   (:meth:`~SimulatedProvider.charge`) or refuse it (:class:`Refused`, a 429); otherwise it is
   in flight, with its :class:`~pocket_parallel.service.answers.Reply` decided;
2. :meth:`~SimulatedProvider.seat`: with ``slots``, wait in line for one (never refused);
   then its :class:`~pocket_parallel.service.timing.Timing`, which depends on the batch it joins;
3. the caller stalls for good if the attempt stalls, else waits its time, then asks
   :meth:`~SimulatedProvider.fails` (a 500 or 503) or returns the reply;
4. :meth:`~SimulatedProvider.settle`, however it ended: the slot is freed, the unused output
   reservation returned, and the attempt counted (a failure makes the next call its retry).

**What the limits are charged.** ``requests_per_minute``: one. ``input_tokens_per_minute``:
every message's tokens. ``output_tokens_per_minute``: the request's ``max_tokens``
(:data:`DEFAULT_MAX_TOKENS` without one), reserved, the unused part returned at the end
(Anthropic's rule). ``tokens_per_minute``: with a profile, every message plus ``max_tokens``
(OpenAI's rule); without one, the prompt plus the answer it is about to get, as this package
always charged (no provider can know the answer in advance).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Protocol

from .._arguments import MAX_TOKENS
from .._format import clip
from .._validate import check_int, check_prompt
from .answers import Reply, fit, lengthen, reply
from .model import AttemptNumbers, ServiceModel, estimate_tokens
from .quota import Charge, LimitStates, Refusal
from .settings import ServiceSettings
from .timing import Timing

#: Output tokens a request that gives no ``max_tokens`` is charged for at admission (reserved
#: against an output budget, or counted in OpenAI's tokens per minute): a common default cap.
DEFAULT_MAX_TOKENS = 4_096


class Behaviour(Protocol):
    """The seeded draws a call follows; :class:`~pocket_parallel.SimulatedLLM` is one, so a subclass can script them."""

    def latency_for(self, prompt: str, attempt: int = 1) -> float: ...  # noqa: D102
    def fails(self, prompt: str, attempt: int = 1) -> bool: ...  # noqa: D102
    def stalls(self, prompt: str, attempt: int = 1) -> bool: ...  # noqa: D102
    def answer_for(self, prompt: str) -> str: ...  # noqa: D102
    def tokens_for(self, prompt: str) -> int: ...  # noqa: D102


class ModelBehaviour:
    """A :class:`ServiceModel`'s draws, with each answer at its drawn length (``answer_tokens``).

    :class:`~pocket_parallel.SimulatedLLM` is one: a subclass overrides these methods to script
    a workload (the exercise checks do).
    """

    def __init__(self, model: ServiceModel) -> None:
        self.model = model

    def latency_for(self, prompt: str, attempt: int = 1) -> float:
        """Seconds the given attempt at ``prompt`` takes, rounded to the microsecond.

        With ``ttft`` and ``tpot``, the time of its whole answer alone in its batch: a call is
        then timed by the model itself (its ``max_tokens``, its batch), whatever this says.
        """
        return self.model.latency_for(prompt, attempt)

    def fails(self, prompt: str, attempt: int = 1) -> bool:
        """Whether the given attempt at ``prompt`` ends in a transient error."""
        return self.model.fails(prompt, attempt)

    def stalls(self, prompt: str, attempt: int = 1) -> bool:
        """Whether the given attempt at ``prompt`` is accepted and never answered."""
        return self.model.stalls(prompt, attempt)

    def answer_for(self, prompt: str) -> str:
        """The answer a successful call returns: recognisably derived from the prompt, at its drawn length."""
        return lengthen(self.model.answer_for(prompt), self.model.answer_length(prompt))

    def tokens_for(self, prompt: str) -> int:
        """Tokens a call with ``prompt`` uses against ``tokens_per_minute`` without a profile: prompt plus answer."""
        return estimate_tokens(check_prompt(prompt)) + estimate_tokens(self.answer_for(prompt))


@dataclass(frozen=True)
class CallRequest:
    """What one call asks, whatever API it came through.

    ``prompt`` seeds the model (the last user message); ``input_tokens`` counts every message,
    system included (None: the prompt's own); ``max_tokens`` caps the output (None: no cap,
    charged as :data:`DEFAULT_MAX_TOKENS`); ``thinking_budget`` turns on extended thinking
    with that budget (None: off); the answer ends before the first of ``stop_sequences`` it
    meets.
    """

    prompt: str
    input_tokens: int | None = None
    max_tokens: int | None = None
    thinking_budget: int | None = None
    stop_sequences: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_prompt(self.prompt)
        if not isinstance(self.stop_sequences, tuple) or not all(
                isinstance(stop, str) and stop for stop in self.stop_sequences):
            raise TypeError(f"stop_sequences must be a tuple of non-empty strings; got {self.stop_sequences!r}")
        for name in ("input_tokens", "max_tokens", "thinking_budget"):
            value = getattr(self, name)
            if value is not None:  # output is bounded: a reply is built in memory, 4 characters a token
                check_int(name, value, low=0 if name == "input_tokens" else 1,
                          high=None if name == "input_tokens" else MAX_TOKENS)


class Overloaded(Exception):
    """The attempt was turned away at once as overloaded (an HTTP 529); ``limits`` as they stood."""

    def __init__(self, prompt: str, attempt: int, limits: LimitStates) -> None:
        super().__init__(f"service overloaded on attempt {attempt} for prompt {clip(prompt, 40)!r}")
        self.attempt, self.limits = attempt, limits


class Refused(Exception):
    """A limit refused the attempt (an HTTP 429): which one and why in ``refusal``, ``limits`` as they stood."""

    def __init__(self, refusal: Refusal, attempt: int, limits: LimitStates) -> None:
        super().__init__(refusal.message)
        self.refusal, self.attempt, self.limits = refusal, attempt, limits


@dataclass
class Admission:
    """One admitted attempt: its ticket, what it will answer, and the limits just after it was charged."""

    request: CallRequest
    attempt: int
    ticket: int
    reply: Reply
    input_tokens: int
    stalls: bool
    limits: LimitStates
    seated: bool = False
    waited: bool = False


class SimulatedProvider:
    """The model, limits, slots and attempt numbers of one simulated service (see the module's docstring).

    ``behaviour`` supplies the seeded draws (default: the settings' own model); the timing of
    a call with ``ttft`` and ``tpot`` always comes from the model.
    """

    def __init__(self, settings: ServiceSettings, behaviour: Behaviour | None = None) -> None:
        self.settings = settings
        self.model = settings.service_model()
        self.behaviour: Behaviour = behaviour if behaviour is not None else ModelBehaviour(self.model)
        self.quota = settings.quota()
        self.slots = settings.new_slots()
        self.attempts = AttemptNumbers()

    def reset(self) -> None:
        """Refill the limits, free the slots, forget the attempt numbers."""
        self.quota.reset()
        if self.slots is not None:
            self.slots.clear()
        self.attempts.clear()

    # -- what a call costs and gives ------------------------------------------------------------

    def charge(self, request: CallRequest) -> Charge:
        """What ``request`` takes from each per-minute limit at admission (see the module's docstring)."""
        quota, prompt = self.quota, request.prompt
        inputs = charge_inputs(request)
        reserved = DEFAULT_MAX_TOKENS if request.max_tokens is None else request.max_tokens
        tokens = 0
        if quota.tokens_per_minute is not None:
            tokens = inputs + reserved if self.settings.charges_max_tokens else self.behaviour.tokens_for(prompt)
        return Charge(tokens, inputs if quota.input_tokens_per_minute is not None else 0,
                      reserved if quota.output_tokens_per_minute is not None else 0)

    def reply_for(self, request: CallRequest) -> Reply:
        """What a successful call with ``request`` returns: thinking (if asked), then the answer, within ``max_tokens``
        and up to its first stop sequence."""
        prompt = request.prompt
        thinking = None
        if request.thinking_budget is not None:
            length = self.model.thinking_length(prompt, request.thinking_budget)
            thinking = fit(f"Thinking about: {clip(prompt, 60)}", length)
        return reply(self.behaviour.answer_for(prompt), thinking, request.max_tokens, request.stop_sequences)

    def timing(self, admission: Admission, batch: int = 1) -> Timing:
        """When the admitted attempt's tokens come, with ``batch`` sequences decoded together."""
        prompt, attempt = admission.request.prompt, admission.attempt
        if self.model.token_timed:
            return self.model.timing_for(prompt, attempt, admission.reply.output_tokens, batch)
        return Timing.at_once(self.behaviour.latency_for(prompt, attempt))

    def fails(self, admission: Admission) -> bool:
        """Whether the admitted attempt ends in a transient error (asked when its time is up)."""
        return self.behaviour.fails(admission.request.prompt, admission.attempt)

    def error_status(self, admission: Admission) -> int:
        """The HTTP status of a failed attempt: 500 or 503, seeded."""
        return self.model.error_status(admission.request.prompt, admission.attempt)

    # -- the steps of a call ----------------------------------------------------------------------

    def admit(self, request: CallRequest, attempt: int, now: float) -> Admission:
        """Admit the attempt at ``now`` (seconds), or raise :class:`Overloaded` or :class:`Refused`."""
        prompt = request.prompt
        if self.model.overloaded(prompt, attempt):
            self.attempts.ended(prompt, attempt, succeeded=False)
            raise Overloaded(prompt, attempt, self.quota.snapshot(now))
        stalls = self.behaviour.stalls(prompt, attempt)
        answer = self.reply_for(request)
        charge = self.charge(request)
        # When it is due to end tells a refused caller when a slot frees (a queue would make it later).
        admission = Admission(request, attempt, 0, answer, charge_inputs(request), stalls, {})
        ends_at = math.inf if stalls else now + self.timing(admission).total
        ticket = self.quota.try_admit(now, charge.tokens, ends_at, input_tokens=charge.input_tokens,
                                      output_tokens=charge.output_tokens)
        limits = self.quota.snapshot(now)
        if isinstance(ticket, Refusal):
            self.attempts.ended(prompt, attempt, succeeded=False)
            raise Refused(ticket, attempt, limits)
        admission.ticket, admission.limits = ticket, limits
        return admission

    async def seat(self, admission: Admission) -> Timing:
        """Wait for a slot, first come first served (at once without ``slots``); returns the attempt's timing."""
        if self.slots is None:
            return self.timing(admission)
        admission.waited = self.slots.busy >= self.slots.count or self.slots.waiting > 0
        batch = await self.slots.take()
        admission.seated = True
        return self.timing(admission, batch)

    def settle(self, admission: Admission, now: float, outcome: str) -> None:
        """The attempt ended at ``now`` with ``outcome`` (``"ok"``, ``"error"`` or ``"cancelled"``): free what it held."""
        produced = admission.reply.output_tokens if outcome == "ok" else 0
        self.quota.release(admission.ticket, now, produced)
        if admission.seated and self.slots is not None:
            admission.seated = False
            self.slots.give()
        self.attempts.settled(admission.request.prompt, admission.attempt, outcome, stalled=admission.stalls)


def charge_inputs(request: CallRequest) -> int:
    """The input tokens of ``request``: every message's, or the prompt's own."""
    return estimate_tokens(request.prompt) if request.input_tokens is None else request.input_tokens


async def wait_forever() -> None:
    """Accepted, never answered: a stalled attempt waits here until its caller gives up."""
    await asyncio.get_running_loop().create_future()
