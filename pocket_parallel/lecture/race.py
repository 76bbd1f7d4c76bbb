"""A live race: the same calls one at a time and in parallel, both started at once, on the real clock.

:func:`~pocket_parallel.compare` runs the sequential batch, then the parallel one. In a lecture
the audience should see both at the same time, so a :class:`Race` starts the two real
PocketFlow nodes together on the running event loop, each calling a simulated LLM of its own
(the same seeded workload, so both see the same latencies). While it runs, :meth:`Race.progress`
says how many calls each side has finished; when both are done, :meth:`Race.run` returns a
:class:`~pocket_parallel.Comparison` with the measured times and their references, as
``compare(..., clock="real")`` would.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pocketflow import AsyncFlow

from .._validate import check_int, check_limit, check_real
from ..backends.simulated import SimulatedLLM
from ..backends.workload import Workload
from ..clock import is_virtual
from ..experiment import AskEach, Comparison, SequentialAsk, TimedRun, comparison_of, timed_run

#: Widest settings a live race accepts: beyond them the audience waits too long.
ITEMS_RANGE = (1, 50)
LATENCY_RANGE = (0.05, 2.0)
JITTER_RANGE = (0.0, 1.0)
CONCURRENCY_RANGE = (1, 50)


@dataclass(frozen=True)
class RaceSettings:
    """What a live race runs: ``items`` calls of ``latency`` seconds on average (spread ``jitter``),
    the parallel side with at most ``max_concurrency`` in flight (None: no limit)."""

    items: int = 12
    latency: float = 0.4
    jitter: float = 0.2
    max_concurrency: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("items", self.items, low=ITEMS_RANGE[0], high=ITEMS_RANGE[1])
        check_real("latency", self.latency, low=LATENCY_RANGE[0], high=LATENCY_RANGE[1])
        check_real("jitter", self.jitter, low=JITTER_RANGE[0], high=JITTER_RANGE[1])
        if check_limit("max_concurrency", self.max_concurrency) is not None:
            check_int("max_concurrency", self.max_concurrency, low=CONCURRENCY_RANGE[0], high=CONCURRENCY_RANGE[1])
        check_int("seed", self.seed, low=0)

    @property
    def workload(self) -> Workload:
        """The seeded workload both sides send (no failures: one call per item)."""
        return Workload(self.items, float(self.latency), float(self.jitter), 0.0, self.seed)

    @property
    def sequential_estimate(self) -> float:
        """Seconds the sequential side's calls take in all: how long the race lasts, overhead aside."""
        model = self.workload.model
        return sum(model.latency_for(prompt) for prompt in self.workload.prompts())


class Race:
    """One race of :class:`RaceSettings`: sequential against parallel, started together.

    ``sequential_llm`` and ``parallel_llm`` are the two sides' services (fresh for each race);
    :meth:`progress` counts their answered calls while :meth:`run` is under way, and
    ``finished`` holds each side's measured seconds (``"sequential"``, ``"parallel"``) from the
    moment that side is done.
    """

    MAX_RETRIES = 1  # no failures in a live race: each item is exactly one call

    def __init__(self, settings: RaceSettings) -> None:
        if not isinstance(settings, RaceSettings):
            raise TypeError(f"settings must be a RaceSettings; got {type(settings).__name__}")
        self.settings = settings
        workload = settings.workload
        self.sequential_llm: SimulatedLLM = workload.llm()
        self.parallel_llm: SimulatedLLM = workload.llm()
        self.started = False
        self.finished: dict[str, float] = {}

    def progress(self) -> tuple[int, int]:
        """Answered calls so far: (sequential side, parallel side)."""
        return self.sequential_llm.stats.ok, self.parallel_llm.stats.ok

    async def run(self) -> Comparison:
        """Run both sides at once on the running loop (real clock) and return what was measured."""
        if self.started:
            raise RuntimeError("a Race runs once: make a new Race to run again")
        if is_virtual():
            raise RuntimeError("a live race runs on the real clock: await it on a real event loop")
        self.started = True
        settings, workload = self.settings, self.settings.workload
        prompts = workload.prompts()
        sequential = AsyncFlow(start=SequentialAsk(self.sequential_llm, self.MAX_RETRIES))
        parallel = AsyncFlow(start=AskEach(self.parallel_llm, max_retries=self.MAX_RETRIES,
                                           max_concurrency=settings.max_concurrency, collect_failures=True))

        async def side(name: str, flow: AsyncFlow, llm: SimulatedLLM) -> TimedRun:
            timed = await timed_run(flow, prompts, llm)
            self.finished[name] = timed.seconds
            return timed

        seq, par = await asyncio.gather(side("sequential", sequential, self.sequential_llm),
                                        side("parallel", parallel, self.parallel_llm))
        return comparison_of(workload, settings.max_concurrency, self.MAX_RETRIES, seq.seconds, tuple(seq.trace), par,
                           prompts)
