"""Race a sequential PocketFlow batch against a bounded parallel one on the same simulated workload."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pocketflow import AsyncBatchNode, AsyncFlow

from ._validate import check_int, check_max_concurrency
from .clock import Clock, check_clock, run
from .collect import Failure  # its home is collect.py; still importable from here
from .limits import BoundedParallelBatchNode
from .llm import CallRecord, SimulatedLLM


def ideal_makespan(latencies: Iterable[float], max_concurrency: int | None = None) -> float:
    """The shortest time any schedule can take: ``max(max L_i, sum L_i / C)``.

    No schedule with at most ``C`` calls in flight can finish before the longest call, nor
    before the total work shared evenly over ``C`` slots. With equal latencies ``L`` the
    bound is reached exactly: ``ceil(N / C) * L``. ``None`` means no limit.
    """
    durations = [float(x) for x in latencies]
    if not durations:
        return 0.0
    limit = check_max_concurrency(max_concurrency)
    longest, total = max(durations), math.fsum(durations)
    if limit is None or limit >= len(durations):
        return longest
    if longest - min(durations) <= 1e-9 * longest:  # equal, but for float dust
        return math.ceil(len(durations) / limit) * longest
    return max(longest, total / limit)


@dataclass(frozen=True)
class Comparison:
    """One sequential-versus-parallel race on the same workload, with its ideal.

    Times are seconds on the clock the race ran on; traces hold every call with start and
    end measured from the start of its run.
    """

    items: int
    max_concurrency: int | None
    latency: float
    jitter: float
    failure_rate: float
    seed: int
    clock: str
    sequential_time: float
    parallel_time: float
    ideal_parallel_time: float
    total_work: float
    peak_in_flight: int
    trace: tuple[CallRecord, ...]
    sequential_trace: tuple[CallRecord, ...]
    results: tuple[Any, ...]
    failures: tuple[Failure, ...]

    @property
    def speedup(self) -> float:
        """Sequential time over parallel time: how many times sooner the parallel run ended."""
        return self.sequential_time / self.parallel_time if self.parallel_time else math.inf

    @property
    def ideal_speedup(self) -> float:
        """Total work over the ideal makespan: the best speedup this ``C`` allows."""
        return self.total_work / self.ideal_parallel_time if self.ideal_parallel_time else math.inf

    @property
    def efficiency(self) -> float:
        """Ideal makespan over measured parallel time: 1.0 means no schedule could do better."""
        return self.ideal_parallel_time / self.parallel_time if self.parallel_time else 1.0

    def summary(self) -> str:
        """One line with units: sequential time, parallel time, speedup, and the ideal."""
        limit = "no limit" if self.max_concurrency is None else f"C = {self.max_concurrency}"
        return (
            f"N = {self.items} calls, {limit}: sequential {_seconds(self.sequential_time)}, "
            f"parallel {_seconds(self.parallel_time)}, speedup {self.speedup:.2f}x "
            f"(ideal {self.ideal_speedup:.2f}x, efficiency {self.efficiency:.0%})"
        )


def _seconds(value: float) -> str:
    return f"{value:.3g} s" if value < 100 else f"{value:,.0f} s"


def workload(items: int) -> list[str]:
    """The prompts a comparison sends: one summary request per numbered document."""
    return [f"Summarize: document {i} of {items}" for i in range(1, items + 1)]


class _PromptsToAnswers:
    """The three steps of both racers: prompts from the shared store, one LLM call each."""

    llm: SimulatedLLM

    async def prep_async(self, shared: dict[str, Any]) -> list[str]:
        return shared["prompts"]

    async def exec_async(self, prompt: str) -> str:
        return await self.llm(prompt)

    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: list[Any]) -> str:
        shared["answers"] = exec_res
        return "default"


class AskEach(_PromptsToAnswers, BoundedParallelBatchNode):
    """A bounded parallel node that sends each prompt in ``shared["prompts"]`` to ``llm``.

    The answers land in ``shared["answers"]``, in input order. Every keyword of
    :class:`BoundedParallelBatchNode` (``max_concurrency``, ``max_retries``, ``backoff``,
    ``collect_failures``...) passes through. It is the parallel racer of :func:`compare`,
    the node :func:`~pocket_parallel.measure_throughput` drives, and a ready-made node for
    experiments of your own.
    """

    def __init__(self, llm: SimulatedLLM, **settings: Any) -> None:
        super().__init__(**settings)
        self.llm = llm


class _SequentialAsk(_PromptsToAnswers, AsyncBatchNode):
    def __init__(self, llm: SimulatedLLM, max_retries: int) -> None:
        super().__init__(max_retries=max_retries)
        self.llm = llm

    async def exec_fallback_async(self, prompt: str, exc: Exception) -> Failure:
        return Failure(prompt, exc, self.max_retries)


async def _timed_run(flow: AsyncFlow, prompts: list[str], llm: SimulatedLLM) -> tuple[float, list[Any], list[CallRecord], int]:
    llm.reset()
    shared: dict[str, Any] = {"prompts": prompts}
    loop = asyncio.get_running_loop()
    start = loop.time()
    await flow.run_async(shared)
    # Virtual clocks tick in whole microseconds: round away the float dust of subtraction,
    # so a run gives bit-identical numbers whatever virtual moment it started at.
    since_start = (lambda t: round(t - start, 6)) if _is_virtual(loop) else (lambda t: t - start)
    trace = [
        CallRecord(r.prompt, r.attempt, since_start(r.start), since_start(r.end), r.outcome) for r in llm.trace
    ]
    return since_start(loop.time()), shared["answers"], trace, llm.stats.peak_in_flight


def _item_work(trace: Sequence[CallRecord]) -> list[float]:
    """Busy seconds per item (all its attempts), the lengths the ideal schedule packs."""
    per_prompt: dict[str, float] = {}
    for record in trace:
        per_prompt[record.prompt] = per_prompt.get(record.prompt, 0.0) + record.duration
    return list(per_prompt.values())


async def compare_async(
    items: int = 20,
    max_concurrency: int | None = 5,
    *,
    latency: float = 1.0,
    jitter: float = 0.0,
    failure_rate: float = 0.0,
    seed: int = 0,
    max_retries: int = 3,
    sequential: Comparison | None = None,
) -> Comparison:
    """:func:`compare` for code already inside an event loop (times on that loop's clock).

    ``sequential`` may carry an earlier comparison with the same workload whose
    sequential run is reused instead of run again (sweeps over ``max_concurrency`` do this).
    """
    items = check_int("items", items, low=1, high=1_000_000)
    max_concurrency = check_max_concurrency(max_concurrency)
    max_retries = check_int("max_retries", max_retries, low=1, high=100)
    llm = SimulatedLLM(latency=latency, jitter=jitter, seed=seed, failure_rate=failure_rate)
    prompts = workload(items)
    loop_is_virtual = _is_virtual(asyncio.get_running_loop())
    if sequential is not None and _same_workload(sequential, items, llm):
        seq_time, seq_trace = sequential.sequential_time, sequential.sequential_trace
    else:
        seq_time, _, seq_list, _ = await _timed_run(AsyncFlow(start=_SequentialAsk(llm, max_retries)), prompts, llm)
        seq_trace = tuple(seq_list)
    par_node = AskEach(llm, max_retries=max_retries, max_concurrency=max_concurrency, collect_failures=True)
    par_time, answers, par_trace, peak = await _timed_run(AsyncFlow(start=par_node), prompts, llm)
    work = _item_work(par_trace)
    return Comparison(
        items=items,
        max_concurrency=max_concurrency,
        latency=llm.latency,
        jitter=llm.jitter,
        failure_rate=llm.failure_rate,
        seed=llm.seed,
        clock="virtual" if loop_is_virtual else "real",
        sequential_time=seq_time,
        parallel_time=par_time,
        ideal_parallel_time=ideal_makespan(work, max_concurrency),
        total_work=math.fsum(work),
        peak_in_flight=peak,
        trace=tuple(par_trace),
        sequential_trace=seq_trace,
        results=tuple(a for a in answers if not isinstance(a, Failure)),
        failures=tuple(a for a in answers if isinstance(a, Failure)),
    )


def _is_virtual(loop: asyncio.AbstractEventLoop) -> bool:
    return bool(getattr(loop, "looptime_on", False))


def _same_workload(previous: Comparison, items: int, llm: SimulatedLLM) -> bool:
    return (previous.items, previous.latency, previous.jitter, previous.failure_rate, previous.seed) == (
        items, llm.latency, llm.jitter, llm.failure_rate, llm.seed
    )


def compare(
    items: int = 20,
    max_concurrency: int | None = 5,
    *,
    latency: float = 1.0,
    jitter: float = 0.0,
    failure_rate: float = 0.0,
    seed: int = 0,
    max_retries: int = 3,
    clock: Clock = "virtual",
) -> Comparison:
    """Run ``items`` simulated LLM calls sequentially, then with at most ``max_concurrency`` in flight.

    Both runs are real PocketFlow nodes inside an ``AsyncFlow`` (``AsyncBatchNode`` and
    :class:`BoundedParallelBatchNode`) calling a :class:`SimulatedLLM` built from
    ``latency``, ``jitter``, ``failure_rate`` and ``seed``; each item gets ``max_retries``
    attempts and an item that fails them all is kept in ``failures``. ``clock="virtual"``
    (the default) finishes at once with exact times; ``clock="real"`` really waits.
    """
    check_clock(clock)
    return run(
        compare_async(
            items, max_concurrency, latency=latency, jitter=jitter, failure_rate=failure_rate,
            seed=seed, max_retries=max_retries,
        ),
        clock=clock,
    )


SWEEPABLE = ("items", "max_concurrency")


def sweep(parameter: str, values: Iterable[Any], *, clock: Clock = "virtual", **settings: Any) -> list[Comparison]:
    """One :class:`Comparison` per value of ``parameter`` ("items" or "max_concurrency").

    ``settings`` are the other arguments of :func:`compare`, held fixed. All runs share one
    event loop; a sweep over ``max_concurrency`` runs the sequential baseline only once.
    """
    if parameter not in SWEEPABLE:
        raise ValueError(f"parameter must be one of {', '.join(map(repr, SWEEPABLE))}; got {parameter!r}")
    if parameter in settings:
        raise ValueError(f"{parameter} is swept: give its values in values, not as a setting")
    unknown = set(settings) - {"items", "max_concurrency", "latency", "jitter", "failure_rate", "seed", "max_retries"}
    if unknown:
        raise TypeError(f"sweep() got unexpected settings: {', '.join(sorted(unknown))}")
    values = list(values)
    if not values:
        raise ValueError("values must hold at least one value to sweep over")
    check_clock(clock)

    async def all_runs() -> list[Comparison]:
        results: list[Comparison] = []
        for value in values:
            previous = results[-1] if results and parameter == "max_concurrency" else None
            results.append(await compare_async(**{**settings, parameter: value}, sequential=previous))
        return results

    return run(all_runs(), clock=clock)
