"""The simulated LLM service's model: what each call costs, answers and takes, seeded.

:class:`ServiceModel` says how one call behaves: its latency, whether it fails or stalls,
its answer and its tokens. Each is a pure function of the prompt, the seed and the attempt
number, so a sequential and a parallel run of the same prompts see the same workload
whatever order their calls start in, and the in-process :class:`~pocket_parallel.SimulatedLLM`
and the HTTP server (:mod:`pocket_parallel.server`) answer alike. :class:`AttemptNumbers`
numbers the calls to one prompt, as both count them.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

from .._format import clip
from .._arguments import MAX_TOKENS as MAX_OUTPUT_TOKENS
from .._validate import check_int, check_prompt, check_real
from .timing import Timing

#: Characters per token in :func:`estimate_tokens`: the usual rule of thumb for English text.
CHARS_PER_TOKEN = 4
#: Latency at most one day: longer would be a mistake (hours typed as seconds), not a lesson.
MAX_LATENCY = 86_400.0
#: Time per output token at most a minute.
MAX_TPOT = 60.0

#: Prompts whose attempts :class:`AttemptNumbers` keeps count of at once; the oldest is forgotten first.
MAX_COUNTED_PROMPTS = 100_000

_STANDARD_NORMAL = NormalDist()
# A language name, as "Translate to <language>: text" gives it, is at most this long.
_MAX_LANGUAGE = 40


def estimate_tokens(text: str) -> int:
    """Tokens in ``text`` by the rule of thumb: one token per 4 characters, rounded up."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}")
    return -(-len(text) // CHARS_PER_TOKEN)


def token_pieces(text: str) -> Iterator[str]:
    """``text`` one token at a time, as :func:`estimate_tokens` counts them: pieces of 4 characters."""
    for at in range(0, len(text), CHARS_PER_TOKEN):
        yield text[at:at + CHARS_PER_TOKEN]


def answer_to(prompt: str) -> str:
    """The answer the simulated service gives ``prompt``: recognisably derived from it.

    ``"Translate to French: text"`` answers ``"[French] text"``; ``"Summarize: text"``
    answers ``"Summary (N words): text…"``; anything else ``"Answer to: prompt…"``.
    Reading the prompt takes time in proportion to its length, whatever it holds.
    """
    instruction, colon, body = check_prompt(prompt).partition(":")
    body = body.strip()
    if colon and body:
        language = _translation_target(instruction)
        if language is not None:
            return f"[{language}] {body}"
        if _asks_for_summary(instruction):
            words = body.split()
            return f"Summary ({len(words)} words): {clip(body, 48)}"
    return f"Answer to: {clip(prompt, 60)}"


# The two readers below use str.split and slices only: a regular expression with two
# quantifiers over whitespace next to each other backtracks quadratically on a run of spaces.


def _translation_target(instruction: str) -> str | None:
    """The language in ``"translate [this|it] (to|into) <language>"`` (any case and spacing), else None."""
    first = instruction.split(None, 1)
    if len(first) < 2 or first[0].casefold() != "translate":
        return None
    rest = first[1].split(None, 1)
    if len(rest) == 2 and rest[0].casefold() in ("this", "it"):
        after = rest[1].split(None, 1)
        if len(after) == 2 and after[0].casefold() in ("to", "into"):
            return _language(after[1])
    if len(rest) == 2 and rest[0].casefold() in ("to", "into"):
        return _language(rest[1])
    return None


def _language(text: str) -> str | None:
    """``text`` without its trailing space, if it is one line of 1 to 40 characters."""
    name = text.rstrip()
    if not name or len(name) > _MAX_LANGUAGE or "\n" in name:
        return None
    return name.strip()


def _asks_for_summary(instruction: str) -> bool:
    """Whether ``instruction`` starts (after any space) with the word "summarize" or "summarise"."""
    head = instruction.lstrip()
    word, following = head[:9], head[9:10]
    return word.casefold() in ("summarize", "summarise") and not (following.isalnum() or following == "_")


@dataclass(frozen=True)
class ServiceModel:
    """How each call to the simulated service behaves: a pure function of prompt, seed and attempt.

    Parameters
    ----------
    latency:
        Mean seconds a call takes (> 0, at most one day), whatever its answer; or None, with
        ``ttft`` and ``tpot`` instead.
    jitter:
        Spread of the latency: its coefficient of variation (standard deviation over mean),
        in ``[0, 3]``. 0 makes every call take exactly ``latency``; 0.3 gives the long tail
        of a real API (log-normal with the same mean; most calls within about ±30 % of it,
        a few far slower).
    seed:
        Any integer >= 0. The same seed gives the same latencies, faults and answers.
    failure_rate:
        Probability in ``[0, 1)`` that an attempt fails after its latency (a transient
        error: an HTTP 500 or 503 from the server).
    stall_rate:
        Probability in ``[0, 1)`` that an attempt is accepted and never answered.
    overload_rate:
        Probability in ``[0, 1)`` that an attempt is turned away at once as overloaded
        (the HTTP 529 one major provider sends). ``failure_rate + overload_rate`` must
        stay below 1.
    ttft, tpot:
        With ``latency=None``: seconds to the first token (in ``[0, 86400]``) and per output
        token (in ``[0, 60]``). A call then takes ``ttft + output tokens × tpot`` (slower in a
        batch: :mod:`~pocket_parallel.service.timing`), scaled by the same log-normal draw
        that ``jitter`` gives a plain latency, so the mean stays that of the formula.
    answer_tokens:
        None: each answer is as long as its text (a dozen tokens or so). A pair (low, high):
        each prompt's answer is drawn, seeded, to a length in ``[low, high]`` tokens (never
        shorter than its text), and filled out with plain words so that text and token
        counts agree.
    """

    latency: float | None = 1.0
    jitter: float = 0.0
    seed: int = 0
    failure_rate: float = 0.0
    stall_rate: float = 0.0
    overload_rate: float = 0.0
    ttft: float | None = None
    tpot: float | None = None
    answer_tokens: tuple[int, int] | None = None
    _mu: float = field(init=False, repr=False, compare=False)
    _sigma: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_timing(self.latency, self.ttft, self.tpot)
        if self.answer_tokens is not None:
            object.__setattr__(self, "answer_tokens", check_answer_tokens(self.answer_tokens))
        check_real("jitter", self.jitter, low=0.0, high=3.0)
        check_int("seed", self.seed, low=0)
        for name in ("failure_rate", "stall_rate", "overload_rate"):
            check_rate(name, getattr(self, name))
        if self.failure_rate + self.overload_rate >= 1.0:
            raise ValueError(
                f"failure_rate + overload_rate must be below 1 (otherwise no call could succeed); "
                f"got {self.failure_rate!r} + {self.overload_rate!r}"
            )
        # Log-normal with mean `latency` and coefficient of variation `jitter`.
        sigma = math.sqrt(math.log1p(float(self.jitter) ** 2))
        object.__setattr__(self, "_sigma", sigma)
        # With ttft and tpot the draw scales the call's whole schedule: a factor of mean 1.
        mean = 1.0 if self.latency is None else float(self.latency)
        object.__setattr__(self, "_mu", math.log(mean) - sigma**2 / 2)

    def _uniforms(self, prompt: str, attempt: int) -> tuple[float, float]:
        """Two independent uniforms in (0, 1) drawn from (seed, attempt, prompt) alone."""
        key = f"{self.seed}\x1f{attempt}\x1f{prompt}".encode()
        digest = hashlib.blake2b(key, digest_size=16).digest()
        a, b = int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:], "big")
        return (a + 0.5) / 2**64, (b + 0.5) / 2**64

    def _fault_uniforms(self, prompt: str, attempt: int) -> tuple[float, float]:
        """Two more uniforms, for stalls and the kind of server error, independent of the first two."""
        key = f"{self.seed}\x1f{attempt}\x1f{prompt}\x1ffaults".encode()
        digest = hashlib.blake2b(key, digest_size=16).digest()
        a, b = int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:], "big")
        return (a + 0.5) / 2**64, (b + 0.5) / 2**64

    @property
    def token_timed(self) -> bool:
        """Whether calls take time per token (``ttft`` and ``tpot``) rather than one ``latency``."""
        return self.latency is None

    def latency_for(self, prompt: str, attempt: int = 1) -> float:
        """Seconds the given attempt at ``prompt`` takes, rounded to the microsecond.

        With ``ttft`` and ``tpot``: its :meth:`timing_for` its whole answer, alone in its batch.
        """
        if self.latency is None:
            return self.timing_for(prompt, attempt, self.answer_length(prompt)).total
        if self.jitter == 0.0:
            return float(self.latency)
        u, _ = self._uniforms(check_prompt(prompt), attempt)
        seconds = math.exp(self._mu + self._sigma * _STANDARD_NORMAL.inv_cdf(u))
        return max(round(seconds, 6), 1e-6)

    def timing_for(self, prompt: str, attempt: int, output_tokens: int, batch: int = 1) -> Timing:
        """When the given attempt's ``output_tokens`` come, with ``batch`` sequences decoded together.

        With ``ttft`` and ``tpot``: TTFT plus the tokens at TPOT(batch) (see
        :mod:`~pocket_parallel.service.timing`), all scaled by the attempt's log-normal draw.
        Without: the whole answer at once after :meth:`latency_for`.
        """
        if self.ttft is None or self.tpot is None:
            return Timing.at_once(self.latency_for(prompt, attempt))
        factor = 1.0
        if self.jitter != 0.0:
            u, _ = self._uniforms(check_prompt(prompt), attempt)
            factor = math.exp(self._mu + self._sigma * _STANDARD_NORMAL.inv_cdf(u))
        return Timing.streamed(factor, self.ttft, self.tpot, output_tokens, batch)

    def _draw(self, prompt: str, what: str) -> float:
        """A uniform in (0, 1) drawn from (seed, prompt, what) alone: the same for every attempt."""
        digest = hashlib.blake2b(f"{self.seed}\x1f{check_prompt(prompt)}\x1f{what}".encode(), digest_size=8).digest()
        return (int.from_bytes(digest, "big") + 0.5) / 2**64

    def answer_length(self, prompt: str) -> int:
        """Output tokens of the answer to ``prompt``: its own, or a seeded draw in ``answer_tokens`` if longer."""
        own = estimate_tokens(answer_to(prompt))
        if self.answer_tokens is None:
            return own
        low, high = self.answer_tokens
        return max(own, low + math.floor(self._draw(prompt, "answer") * (high - low + 1)))

    def thinking_length(self, prompt: str, budget: int) -> int:
        """Tokens of the thinking block for ``prompt`` under a thinking ``budget``: seeded, in ``[budget // 4, budget]``."""
        budget = check_int("budget", budget, low=1)
        low = max(1, budget // 4)
        return low + math.floor(self._draw(prompt, "thinking") * (budget - low + 1))

    def fails(self, prompt: str, attempt: int = 1) -> bool:
        """Whether the given attempt at ``prompt`` ends in a transient error after its latency."""
        if self.failure_rate == 0.0:
            return False
        _, u = self._uniforms(check_prompt(prompt), attempt)
        return u < self.failure_rate

    def overloaded(self, prompt: str, attempt: int = 1) -> bool:
        """Whether the given attempt is turned away at once as overloaded (HTTP 529)."""
        if self.overload_rate == 0.0:
            return False
        _, u = self._uniforms(check_prompt(prompt), attempt)
        return self.failure_rate <= u < self.failure_rate + self.overload_rate

    def stalls(self, prompt: str, attempt: int = 1) -> bool:
        """Whether the given attempt is accepted and then never answered."""
        if self.stall_rate == 0.0:
            return False
        u, _ = self._fault_uniforms(check_prompt(prompt), attempt)
        return u < self.stall_rate

    def error_status(self, prompt: str, attempt: int = 1) -> int:
        """The HTTP status a failing attempt gets from the server: 500 or 503, seeded."""
        _, u = self._fault_uniforms(check_prompt(prompt), attempt)
        return 500 if u < 0.5 else 503

    def answer_for(self, prompt: str) -> str:
        """The answer a successful call returns (see :func:`answer_to`)."""
        return answer_to(prompt)

    def tokens_for(self, prompt: str) -> int:
        """Tokens a call with ``prompt`` uses: prompt plus answer, one token per 4 characters."""
        return estimate_tokens(check_prompt(prompt)) + estimate_tokens(answer_to(prompt))


def check_timing(latency: Any, ttft: Any, tpot: Any) -> None:
    """A call's time: a ``latency``, or ``ttft`` and ``tpot`` (a time to first token and a time per token)."""
    if latency is not None:
        check_real("latency", latency, low=0.0, high=MAX_LATENCY, low_open=True)
        if ttft is not None or tpot is not None:
            raise ValueError(f"give latency (the mean seconds per call) or ttft and tpot (seconds to the first "
                             f"token and per output token), not both; got latency={latency!r}, ttft={ttft!r}, "
                             f"tpot={tpot!r}")
        return
    if ttft is None or tpot is None:
        raise ValueError(f"ttft and tpot go together (seconds to the first token and per output token); got "
                         f"ttft={ttft!r} and tpot={tpot!r}")
    check_real("ttft", ttft, low=0.0, high=MAX_LATENCY)
    check_real("tpot", tpot, low=0.0, high=MAX_TPOT)
    if ttft == 0 and tpot == 0:
        raise ValueError("ttft and tpot cannot both be 0: a call would take no time at all")


def check_answer_tokens(value: Any) -> tuple[int, int]:
    """A range (low, high) of output tokens to draw answers from: integers with 1 <= low <= high <= 1,000,000."""
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) for v in value)
            or not 1 <= value[0] <= value[1] <= MAX_OUTPUT_TOKENS):
        raise ValueError(f"answer_tokens must be a pair (low, high) of integers with 1 <= low <= high <= "
                         f"{MAX_OUTPUT_TOKENS:,} (output tokens per answer), or None; got {value!r}")
    return int(value[0]), int(value[1])


def check_rate(name: str, value: Any) -> float:
    """A probability in ``[0, 1)``: 1 would make every attempt fail, and retries could never help."""
    rate = check_real(name, value, low=0.0, high=1.0)
    if rate >= 1.0:
        raise ValueError(f"{name} must be a finite number in [0, 1) (1 would hit every call); got {value!r}")
    return rate


class AttemptNumbers:
    """Numbers each call to one prompt: a call right after a failed one with that prompt is its retry.

    A retry (attempt 2, 3, ...) draws a fresh latency and fault. After a success the count
    starts again at 1, so re-running a cell sends the very same workload again. A call the
    caller cancelled leaves the count as it was, unless it had stalled: a stalled attempt is
    the service's fault, like a failure, so the caller's next try (after its timeout) is the
    next attempt, with fresh draws. The HTTP server numbers requests the same way.

    What it keeps is bounded, whatever the callers send: a 16-byte digest per prompt (never
    the prompt itself) for at most ``max_prompts`` prompts that failed last; beyond that the
    prompt whose count changed longest ago is forgotten, and its next call is attempt 1.
    """

    def __init__(self, max_prompts: int = MAX_COUNTED_PROMPTS) -> None:
        self.max_prompts = check_int("max_prompts", max_prompts, low=1)
        self._failed_in_a_row: OrderedDict[bytes, int] = OrderedDict()

    def __len__(self) -> int:
        """How many prompts have a count now (at most ``max_prompts``)."""
        return len(self._failed_in_a_row)

    def next(self, prompt: str) -> int:
        """The attempt number the next call with ``prompt`` gets."""
        return self._failed_in_a_row.get(_digest(prompt), 0) + 1

    def ended(self, prompt: str, attempt: int, succeeded: bool) -> None:
        """Note how an attempt ended: a success resets the count, a failure or refusal raises it."""
        key = _digest(prompt)
        counts = self._failed_in_a_row
        if succeeded:
            counts.pop(key, None)
            return
        counts[key] = max(attempt, counts.get(key, 0))
        counts.move_to_end(key)
        while len(counts) > self.max_prompts:
            counts.popitem(last=False)

    def settled(self, prompt: str, attempt: int, outcome: str, *, stalled: bool = False) -> None:
        """Note how a call ended by its outcome (``"ok"``, ``"cancelled"``, or a failure or refusal).

        A cancelled call leaves the count as it was, unless it had ``stalled``: then it counts as failed.
        """
        if outcome != "cancelled" or stalled:
            self.ended(prompt, attempt, succeeded=outcome == "ok")

    def clear(self) -> None:
        """Forget every count."""
        self._failed_in_a_row.clear()


def _digest(prompt: str) -> bytes:
    """A prompt's fixed-size stand-in: 16 bytes, whatever its length."""
    return hashlib.blake2b(check_prompt(prompt).encode("utf-8", "surrogatepass"), digest_size=16).digest()
