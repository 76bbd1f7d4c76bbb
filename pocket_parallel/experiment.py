"""Race a sequential PocketFlow batch against a bounded parallel one on the same workload.

Two references stand beside every measured parallel time:

- the **in-order schedule** (:func:`semaphore_makespan`): what a semaphore of C makes when
  every item waits on it from the start and takes the first slot that frees, in input
  order, with no overhead at all. A run on the virtual clock matches it exactly; on the real
  clock the difference is what the machinery cost.
- the **lower bound** (:func:`makespan_lower_bound`): no schedule with at most C calls in
  flight, in any order, can finish sooner. It is a bound, not a schedule: often no schedule
  reaches it.

With equal latencies L all three agree: ``ceil(N / C) × L`` is the best any schedule can do.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate
from typing import Any

from pocketflow import AsyncBatchNode, AsyncFlow

from . import _format
from ._validate import check_choice, check_clock, check_int, check_limit
from .backends.workload import Workload, as_workload
from .clock import Clock, is_virtual, run
from .nodes import BoundedParallelBatchNode
from .outcomes import Failure
from .trace import CallRecord


def _durations(latencies: Iterable[float]) -> list[float]:
    durations = []
    for value in latencies:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"latencies must be finite numbers >= 0 (seconds); got {value!r}")
        durations.append(float(value))
    return durations


def semaphore_makespan(latencies: Iterable[float], max_concurrency: int | None = None) -> float:
    """When a semaphore of ``max_concurrency`` finishes these calls, taken in the given order.

    Each call in turn takes the slot that frees first, the moment it frees; the makespan is
    when the last slot frees. ``None`` means no limit: the longest call.
    """
    durations = _durations(latencies)
    limit = check_limit("max_concurrency", max_concurrency)
    if not durations:
        return 0.0
    if limit is None or limit >= len(durations):
        return max(durations)
    slots = [0.0] * limit
    for duration in durations:
        heapq.heapreplace(slots, slots[0] + duration)
    return max(slots)


def makespan_lower_bound(latencies: Iterable[float], max_concurrency: int | None = None) -> float:
    """A time no schedule of these calls, with at most ``max_concurrency`` in flight, can beat.

    The largest of three facts: the longest call must run; the total work shared over C slots
    must run; and among the ``k·C + 1`` longest calls some slot runs ``k + 1`` of them, so at
    least the ``k + 1`` shortest of those one after another (for every k). With equal
    latencies L this is ``ceil(N / C) × L``, which a semaphore reaches. It moves smoothly with
    the latencies: nearly equal latencies give nearly ``ceil(N / C) × L``.
    """
    durations = sorted(_durations(latencies), reverse=True)
    limit = check_limit("max_concurrency", max_concurrency)
    if not durations:
        return 0.0
    if limit is None or limit >= len(durations):
        return durations[0]
    prefix = [0.0, *accumulate(durations)]  # prefix[m]: the m longest calls together
    bound = max(durations[0], math.fsum(durations) / limit)
    for k in range(1, (len(durations) - 1) // limit + 1):
        m = k * limit + 1  # the m longest calls: some slot runs k + 1 of them
        bound = max(bound, prefix[m] - prefix[m - k - 1])
    return bound


@dataclass(frozen=True)
class Comparison:
    """One sequential-versus-parallel race on the same workload, with its two references.

    Times are seconds on the clock the race ran on; traces hold every call with start and
    end measured from the start of its run. ``item_work`` is each item's busy time (all its
    attempts), in input order: the lengths both references schedule.
    """

    workload: Workload
    max_concurrency: int | None
    max_retries: int
    clock: str
    sequential_time: float
    parallel_time: float
    item_work: tuple[float, ...]
    peak_in_flight: int
    trace: tuple[CallRecord, ...]
    sequential_trace: tuple[CallRecord, ...]
    results: tuple[Any, ...]
    failures: tuple[Failure, ...]

    @property
    def items(self) -> int:
        """How many items (LLM calls) the batch had."""
        return self.workload.items

    @property
    def latency(self) -> float:
        """The workload's mean latency in seconds."""
        return float(self.workload.latency)

    @property
    def jitter(self) -> float:
        """The workload's latency spread (coefficient of variation)."""
        return float(self.workload.jitter)

    @property
    def failure_rate(self) -> float:
        """The workload's share of failing attempts."""
        return float(self.workload.failure_rate)

    @property
    def seed(self) -> int:
        """The workload's seed."""
        return self.workload.seed

    @property
    def total_work(self) -> float:
        """Seconds of calls in all: what one slot alone would take."""
        return math.fsum(self.item_work)

    @cached_property
    def schedule_time(self) -> float:
        """The in-order schedule: a semaphore of C, items in input order, no overhead."""
        return semaphore_makespan(self.item_work, self.max_concurrency)

    @cached_property
    def lower_bound(self) -> float:
        """No schedule with C calls in flight could finish sooner (see :func:`makespan_lower_bound`)."""
        return makespan_lower_bound(self.item_work, self.max_concurrency)

    @property
    def speedup(self) -> float:
        """Sequential time over parallel time: how many times sooner the parallel run ended."""
        return self.sequential_time / self.parallel_time if self.parallel_time else math.inf

    @property
    def max_speedup(self) -> float:
        """Total work over the lower bound: no schedule with this C could give a larger speedup."""
        return self.total_work / self.lower_bound if self.lower_bound else math.inf

    @property
    def efficiency(self) -> float:
        """The in-order schedule's time over the measured time: 1.0 means no time lost to overhead.

        It measures the machinery, not the order: a run that reorders its items can beat the
        in-order schedule and score above 1.
        """
        return self.schedule_time / self.parallel_time if self.parallel_time else 1.0

    def summary(self) -> str:
        """One line with units: sequential time, parallel time, speedup, and the two references."""
        return (
            f"N = {self.items} calls, {_format.limit(self.max_concurrency)}: "
            f"sequential {_format.seconds(self.sequential_time)}, parallel {_format.seconds(self.parallel_time)}, "
            f"speedup {_format.times(self.speedup)} (in-order schedule {_format.seconds(self.schedule_time)}, "
            f"no schedule below {_format.seconds(self.lower_bound)})"
        )

    def __repr__(self) -> str:
        return f"<Comparison {self.summary()}>"

    def _repr_markdown_(self) -> str:
        """The race as a small table in a notebook: the two times, the speedup and both references."""
        failed = f", {_format.plural(len(self.failures), 'item')} failed" if self.failures else ""
        return _format.markdown_record(
            f"Race of N = {self.items} calls, {_format.limit(self.max_concurrency)} ({self.clock} clock){failed}",
            [
                ("workload", f"{_format.latency(self.latency, self.jitter)}, seed {self.seed}"),
                ("sequential", _format.seconds(self.sequential_time)),
                ("parallel", _format.seconds(self.parallel_time)),
                ("speedup", f"{_format.times(self.speedup)} (no schedule gives more than {_format.times(self.max_speedup)})"),
                ("in-order schedule", _format.seconds(self.schedule_time)),
                ("lower bound", _format.seconds(self.lower_bound)),
                ("peak in flight", f"{self.peak_in_flight}"),
            ],
        )


def check_comparison(result: Any) -> Comparison:
    """``result`` if it is a :class:`Comparison`, else a TypeError that says where one comes from."""
    if not isinstance(result, Comparison):
        raise TypeError(f"result must be a Comparison (from compare(...)); got {type(result).__name__}")
    return result


class _PromptsToAnswers:
    """The three steps of both racers: prompts from the shared store, one LLM call each."""

    llm: Any

    async def prep_async(self, shared: dict[str, Any]) -> list[str]:
        prompts: list[str] = shared["prompts"]
        return prompts

    async def exec_async(self, prompt: str) -> str:
        answer: str = await self.llm(prompt)
        return answer

    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: list[Any]) -> str:
        shared["answers"] = exec_res
        return "default"


class AskEach(_PromptsToAnswers, BoundedParallelBatchNode):
    """A bounded parallel node that sends each prompt in ``shared["prompts"]`` to ``llm``.

    The answers land in ``shared["answers"]``, in input order. Every keyword of
    :class:`BoundedParallelBatchNode` (``max_concurrency``, ``max_retries``, ``backoff``,
    ``collect_failures``...) passes through. It is the parallel racer of :func:`compare`,
    the node :func:`~pocket_parallel.measure_throughput` drives, and a ready-made node for
    experiments of your own. ``llm`` is any LLM backend.
    """

    def __init__(self, llm: Any, **settings: Any) -> None:
        super().__init__(**settings)
        self.llm = llm


class SequentialAsk(_PromptsToAnswers, AsyncBatchNode):
    """PocketFlow's sequential ``AsyncBatchNode`` sending each prompt to ``llm``: the sequential racer.

    An item that fails every attempt becomes a :class:`~pocket_parallel.Failure`, as in the parallel racer.
    """

    def __init__(self, llm: Any, max_retries: int) -> None:
        super().__init__(max_retries=max_retries)
        self.llm = llm

    async def exec_fallback_async(self, prompt: str, exc: Exception) -> Failure:
        return Failure(prompt, exc, self.max_retries)


@dataclass(frozen=True)
class TimedRun:
    """One racer's run: its time, its answers, the calls it made and its peak in flight."""

    seconds: float
    answers: list[Any]
    trace: list[CallRecord]
    peak: int


async def timed_run(flow: AsyncFlow, prompts: list[str], llm: Any) -> TimedRun:
    """Run ``flow`` over ``prompts`` against a freshly reset ``llm``, timed on the running loop's clock."""
    llm.reset()
    shared: dict[str, Any] = {"prompts": prompts}
    loop = asyncio.get_running_loop()
    start = loop.time()
    await flow.run_async(shared)
    # Virtual clocks tick in whole microseconds: round away the float dust of subtraction,
    # so a run gives bit-identical numbers whatever virtual moment it started at.
    virtual = is_virtual(loop)

    def since_start(t: float) -> float:
        return round(t - start, 6) if virtual else t - start

    trace = [CallRecord(r.prompt, r.attempt, since_start(r.start), since_start(r.end), r.outcome) for r in llm.trace]
    return TimedRun(since_start(loop.time()), shared["answers"], trace, llm.stats.peak_in_flight)


def item_work(trace: Iterable[CallRecord], prompts: Sequence[str] | None = None) -> list[float]:
    """Busy seconds per item (all its attempts), in the order of ``prompts`` (default: first seen)."""
    per_prompt: dict[str, float] = {} if prompts is None else dict.fromkeys(prompts, 0.0)
    for record in trace:
        per_prompt[record.prompt] = per_prompt.get(record.prompt, 0.0) + record.duration
    return list(per_prompt.values())


async def compare_async(
    workload: Workload | int | None = None,
    max_concurrency: int | None = 5,
    *,
    max_retries: int = 3,
    sequential: Comparison | None = None,
    **settings: Any,
) -> Comparison:
    """:func:`compare` for code already inside an event loop (times on that loop's clock).

    ``sequential`` may carry an earlier comparison of the same workload whose sequential
    run is reused instead of run again (sweeps over ``max_concurrency`` do this).
    """
    chosen = as_workload(workload, **settings)
    limit = check_limit("max_concurrency", max_concurrency)
    retries = check_int("max_retries", max_retries, low=1, high=100)
    llm = chosen.llm()
    prompts = chosen.prompts()
    if sequential is not None and (sequential.workload, sequential.max_retries) == (chosen, retries):
        seq_time, seq_trace = sequential.sequential_time, sequential.sequential_trace
    else:
        seq = await timed_run(AsyncFlow(start=SequentialAsk(llm, retries)), prompts, llm)
        seq_time, seq_trace = seq.seconds, tuple(seq.trace)
    parallel = AskEach(llm, max_retries=retries, max_concurrency=limit, collect_failures=True)
    par = await timed_run(AsyncFlow(start=parallel), prompts, llm)
    return comparison_of(chosen, limit, retries, seq_time, seq_trace, par, prompts)


def comparison_of(workload: Workload, limit: int | None, retries: int, seq_time: float,
                  seq_trace: tuple[CallRecord, ...], par: TimedRun, prompts: Sequence[str]) -> Comparison:
    """The :class:`Comparison` of a sequential time and trace and a timed parallel run, on the running loop's clock."""
    return Comparison(
        workload=workload,
        max_concurrency=limit,
        max_retries=retries,
        clock="virtual" if is_virtual() else "real",
        sequential_time=seq_time,
        parallel_time=par.seconds,
        item_work=tuple(item_work(par.trace, prompts)),
        peak_in_flight=par.peak,
        trace=tuple(par.trace),
        sequential_trace=seq_trace,
        results=tuple(a for a in par.answers if not isinstance(a, Failure)),
        failures=tuple(a for a in par.answers if isinstance(a, Failure)),
    )


def compare(
    workload: Workload | int | None = None,
    max_concurrency: int | None = 5,
    *,
    max_retries: int = 3,
    clock: Clock = "virtual",
    **settings: Any,
) -> Comparison:
    """Run a workload's calls sequentially, then with at most ``max_concurrency`` in flight.

    ``workload`` is a :class:`~pocket_parallel.Workload` or an item count, and ``settings``
    set or change its ``items``, ``latency``, ``jitter``, ``failure_rate`` and ``seed``:
    ``compare(20, 5, latency=0.5)`` races 20 calls of 0.5 s with at most 5 in flight. Both
    runs are real PocketFlow nodes inside an ``AsyncFlow`` (``AsyncBatchNode`` and
    :class:`BoundedParallelBatchNode`) calling the workload's simulated LLM; each item gets
    ``max_retries`` attempts and an item that fails them all is kept in ``failures``.
    ``clock="virtual"`` (the default) finishes at once with exact times; ``"real"`` waits.
    """
    check_clock(clock)
    chosen = as_workload(workload, **settings)
    return run(compare_async(chosen, max_concurrency, max_retries=max_retries), clock=clock)


SWEEPABLE = ("items", "max_concurrency")
_UNSET: Any = object()


def sweep(
    parameter: str,
    values: Iterable[Any],
    *,
    workload: Workload | None = None,
    max_concurrency: Any = _UNSET,
    max_retries: int = 3,
    clock: Clock = "virtual",
    **settings: Any,
) -> list[Comparison]:
    """One :class:`Comparison` per value of ``parameter`` (``"items"`` or ``"max_concurrency"``).

    The other settings are held fixed: a ``workload`` and/or its settings, as for
    :func:`compare`. All runs share one event loop; a sweep over ``max_concurrency`` runs the
    sequential baseline only once.
    """
    check_choice("parameter", parameter, SWEEPABLE)
    if parameter in settings or (parameter == "max_concurrency" and max_concurrency is not _UNSET):
        raise ValueError(f"{parameter} is swept: give its values in values, not as a setting")
    values = list(values)
    if not values:
        raise ValueError("values must hold at least one value to sweep over")
    check_clock(clock)
    base = as_workload(workload, **settings) if parameter == "max_concurrency" else None
    if parameter == "items":
        for value in values:
            as_workload(workload, **{**settings, "items": value})  # every item count checked up front

    async def all_runs() -> list[Comparison]:
        results: list[Comparison] = []
        for value in values:
            if parameter == "max_concurrency":
                previous = results[-1] if results else None
                results.append(await compare_async(base, value, max_retries=max_retries, sequential=previous))
            else:
                chosen = as_workload(workload, **{**settings, "items": value})
                limit = 5 if max_concurrency is _UNSET else max_concurrency
                results.append(await compare_async(chosen, limit, max_retries=max_retries))
        return results

    return run(all_runs(), clock=clock)
