"""The simulated service and the random workloads the exercise checks use.

:class:`CheckLLM` is a :class:`~pocket_parallel.SimulatedLLM` with three additions a check
needs: latencies given per prompt (so messages can quote round numbers), prompts that fail on
every attempt (a broken document), and counters for what a check must notice (blocking
calls from async code, refusals by limit) and, for each call, where in the student's code it
was made (:mod:`._calls`). Everything else, the trace, the stats, the server-side limits, is
the ordinary simulated service.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..backends.simulated import RateLimitError, SimulatedLLM
from ._calls import Origin, Origins


class BlockingCallInAsyncCode(RuntimeError):
    """Raised by :meth:`CheckLLM.call`: a blocking call from async code would stall the check."""


class CheckLLM(SimulatedLLM):
    """A simulated service for one workload of a check.

    ``latencies`` maps prompts to their latency in seconds (other prompts draw one as usual);
    every attempt at a prompt in ``broken`` fails, and the first ``flaky[prompt]`` attempts at
    a prompt in :attr:`flaky` (empty at first) fail. ``blocking_calls`` counts calls to the blocking :meth:`call`,
    which is refused (on the virtual clock it would really sleep); ``refused`` counts
    rate-limit refusals by the limit that refused them. With ``origins`` given, the origin of
    each call (:class:`~._calls.Origin`) is kept beside the trace: ``origin_of[i]`` for
    ``trace[i]``.
    """

    def __init__(self, *, latencies: Mapping[str, float] | None = None, broken: Iterable[str] = (),
                 origins: Origins | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.latencies = dict(latencies or {})
        self.broken = frozenset(broken)
        self.flaky: dict[str, int] = {}
        self.blocking_calls = 0
        self.refused: Counter[str] = Counter()
        self.origins = origins
        self.origin_of: list[Origin] = []

    def latency_for(self, prompt: str, attempt: int = 1) -> float:
        """The scripted latency of ``prompt`` if it has one, else the seeded draw."""
        if prompt in self.latencies:
            return self.latencies[prompt]
        return super().latency_for(prompt, attempt)

    def fails(self, prompt: str, attempt: int = 1) -> bool:
        """Broken prompts fail every attempt, flaky ones their first few; the others as the seeded service decides."""
        return prompt in self.broken or attempt <= self.flaky.get(prompt, 0) or super().fails(prompt, attempt)

    async def __call__(self, prompt: str, *, attempt: int | None = None) -> str:
        origin = self.origins.here() if self.origins is not None else Origin(False, ())
        recorded = self._records_so_far()
        try:
            return await super().__call__(prompt, attempt=attempt)
        except RateLimitError as error:
            self.refused[error.limit] += 1
            raise
        finally:
            # The call's record was appended as it ended, with nothing else run in between.
            if self._records_so_far() > recorded:
                self.origin_of.append(origin)

    def _records_so_far(self) -> int:
        stats = self.stats  # every call that ended or was turned away has one record in the trace
        return stats.ok + stats.transient_errors + stats.cancelled + stats.rate_limited + stats.overloaded

    def calls(self) -> list[dict[str, Any]]:
        """Every finished call, in the order they ended, with its origin: JSON-safe data."""
        return [{"prompt": r.prompt, "attempt": r.attempt, "start": r.start, "end": r.end, "outcome": r.outcome,
                 **(self.origin_of[i].as_data() if i < len(self.origin_of) else {"step": False, "functions": []})}
                for i, r in enumerate(self.trace)]

    def call(self, prompt: str, *, attempt: int | None = None) -> str:
        """Refused: count it and raise :class:`BlockingCallInAsyncCode`."""
        self.blocking_calls += 1
        raise BlockingCallInAsyncCode(
            "call_llm(...) blocks the event loop; inside async code use 'await call_llm_async(...)'"
        )


def rounds_schedule(latencies: Sequence[float], max_concurrency: int) -> float:
    """The makespan if calls went in rounds of ``max_concurrency``, each round waiting for its slowest call.

    Not what a semaphore does (it never waits for a whole round); checks use it to draw
    workloads on which the two differ.
    """
    return math.fsum(max(latencies[i:i + max_concurrency]) for i in range(0, len(latencies), max_concurrency))


# -- random workloads: readable words, never the same twice -----------------------------------

_ADJECTIVES = ("quiet", "amber", "northern", "restless", "ancient", "hollow", "bright", "tidal", "copper",
               "frozen", "patient", "crooked", "silver", "early", "distant", "humble", "stormy", "gentle")
_NOUNS = ("lighthouse", "orchard", "glacier", "market", "observatory", "harbour", "library", "canyon",
          "beehive", "railway", "windmill", "lagoon", "bakery", "volcano", "archive", "meadow", "comet")
_VERBS = ("guards", "outlasts", "feeds", "echoes", "shelters", "maps", "warms", "hides", "measures", "awakens")
_THINGS = ("the old town", "a winter flood", "forty ships", "the night shift", "a lost map", "the spring fair",
           "three villages", "a rare moth", "the tide tables", "the first snow", "a grain store")
LANGUAGES = ("Spanish", "French", "German", "Japanese", "Swahili", "Portuguese", "Italian", "Korean", "Dutch",
             "Polish", "Turkish", "Hindi", "Greek", "Finnish", "Czech", "Vietnamese", "Swedish", "Arabic",
             "Hebrew", "Danish", "Indonesian", "Norwegian", "Thai", "Ukrainian", "Welsh", "Icelandic", "Irish",
             "Basque", "Catalan", "Galician", "Romanian", "Hungarian", "Slovak", "Slovenian", "Croatian", "Serbian",
             "Bulgarian", "Macedonian", "Albanian", "Estonian", "Latvian", "Lithuanian", "Maltese", "Armenian",
             "Georgian", "Persian", "Urdu", "Bengali", "Punjabi", "Gujarati", "Marathi", "Tamil", "Telugu",
             "Kannada", "Malayalam", "Sinhala", "Nepali", "Khmer", "Lao", "Burmese", "Malay", "Tagalog", "Yoruba",
             "Igbo", "Hausa", "Zulu", "Xhosa", "Amharic", "Somali", "Mongolian", "Kazakh", "Uzbek", "Esperanto")


def sentence(rng: random.Random) -> str:
    """A short random sentence, e.g. 'The amber orchard shelters three villages.'"""
    return (f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {rng.choice(_VERBS)} "
            f"{rng.choice(_THINGS)} {rng.choice(('at dawn', 'every year', 'in silence', 'for now', 'again'))}.")


def documents(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct short documents (two sentences each)."""
    found: dict[str, None] = {}
    while len(found) < count:
        found[f"{sentence(rng)} {sentence(rng)}"] = None
    return list(found)


def documents_with_distinct_summaries(rng: random.Random, count: int) -> list[str]:
    """``count`` documents whose summaries (the simulated service's answers) all differ."""
    probe = SimulatedLLM()
    while True:
        docs = documents(rng, count)
        if len({probe.answer_for(f"Summarize: {doc}") for doc in docs}) == count:
            return docs


def names(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct document ids such as 'comet-17'."""
    found: dict[str, None] = {}
    while len(found) < count:
        found[f"{rng.choice(_NOUNS)}-{rng.randint(1, 99)}"] = None
    return list(found)


def uneven(rng: random.Random, count: int, low: float = 0.5, high: float = 3.0) -> list[float]:
    """``count`` distinct latencies in ``[low, high]`` seconds, to the microsecond: on no grid a
    simulation in ticks could follow, and never already sorted (when there are two or more)."""
    while True:
        found = list(dict.fromkeys(round(rng.uniform(low, high), 6) for _ in range(count)))
        if len(found) == count and (count < 2 or found not in (sorted(found), sorted(found, reverse=True))):
            return found
