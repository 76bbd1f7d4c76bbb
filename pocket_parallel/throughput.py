"""Throughput against concurrency for a service with limits: where more parallel calls stop helping.

Against a service that serves at most ``max_concurrent`` calls at once, raising the client's
concurrency ``C`` first raises the throughput (completed calls per second) in proportion.
Past the service's limit the extra calls are refused (429s), wait, retry, and are refused
again: the throughput flattens or falls, and with too few retries items start to fail.
The *knee* is where the curve stops rising; :func:`find_knee` defines it precisely.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._validate import check_int, check_real
from .clock import Clock, check_clock, run
from .experiment import AskEach
from .llm import SimulatedLLM
from .retry import Backoff, check_backoff

if TYPE_CHECKING:  # matplotlib is imported only when a plot is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_DEFAULT_BACKOFF = Backoff()


@dataclass(frozen=True)
class ThroughputPoint:
    """One run of ``items`` calls with at most ``concurrency`` in flight, against a limited service.

    ``makespan`` runs from the first call to the end of the last item (success or failure);
    ``requests`` counts every call sent, refused ones (``rate_limited``) included.
    ``latency``, ``max_concurrent`` and ``requests_per_minute`` describe the service.
    """

    concurrency: int
    items: int
    completed: int
    failed: int
    makespan: float
    requests: int
    rate_limited: int
    transient_errors: int
    latency: float
    max_concurrent: int | None
    requests_per_minute: int | None

    @property
    def throughput(self) -> float:
        """Completed calls per second: ``completed / makespan``."""
        return self.completed / self.makespan if self.makespan > 0 else 0.0

    @property
    def ideal_throughput(self) -> float:
        """The most calls per second C slots can get from this service over a long run.

        ``min(C, max_concurrent) / latency``, and no more than ``requests_per_minute / 60``.
        """
        slots = self.concurrency if self.max_concurrent is None else min(self.concurrency, self.max_concurrent)
        best = slots / self.latency
        return best if self.requests_per_minute is None else min(best, self.requests_per_minute / 60)

    @property
    def refused_share(self) -> float:
        """The fraction of the requests sent that the service refused (429s)."""
        return self.rate_limited / self.requests if self.requests else 0.0

    def summary(self) -> str:
        """One line: C, throughput, makespan, and what was refused or lost."""
        return (
            f"C = {self.concurrency:>3}: {self.throughput:6.2f} calls/s, makespan {self.makespan:7.2f} s, "
            f"{self.rate_limited:>4} refused (429), {self.failed:>3} failed"
        )


async def measure_throughput_async(
    concurrency: Iterable[int],
    *,
    items: int = 200,
    latency: float = 1.0,
    jitter: float = 0.0,
    max_concurrent: int | None = 8,
    requests_per_minute: int | None = None,
    tokens_per_minute: int | None = None,
    failure_rate: float = 0.0,
    max_retries: int = 10,
    backoff: Backoff | None = _DEFAULT_BACKOFF,
    seed: int = 0,
) -> list[ThroughputPoint]:
    """:func:`measure_throughput` for code already inside an event loop (times on its clock)."""
    values = _check_concurrency_values(concurrency)
    items = check_int("items", items, low=1, high=1_000_000)
    max_retries = check_int("max_retries", max_retries, low=1, high=1_000)
    backoff = check_backoff(backoff)
    prompts = [f"Summarize: document {i} of {items}" for i in range(1, items + 1)]
    loop = asyncio.get_running_loop()
    virtual = bool(getattr(loop, "looptime_on", False))
    points = []
    for c in values:
        llm = SimulatedLLM(
            latency=latency, jitter=jitter, seed=seed, failure_rate=failure_rate, max_concurrent=max_concurrent,
            requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute,
        )
        node = AskEach(llm, max_retries=max_retries, max_concurrency=c, backoff=backoff, collect_failures=True)
        start = loop.time()
        await node.run_async({"prompts": prompts})
        makespan = loop.time() - start
        outcomes, stats = node.outcomes, llm.stats
        assert outcomes is not None
        points.append(ThroughputPoint(
            concurrency=c,
            items=items,
            completed=len(outcomes.results),
            failed=len(outcomes.failures),
            makespan=round(makespan, 6) if virtual else makespan,
            requests=stats.calls,
            rate_limited=stats.rate_limited,
            transient_errors=stats.transient_errors,
            latency=llm.latency,
            max_concurrent=llm.max_concurrent,
            requests_per_minute=llm.requests_per_minute,
        ))
    return points


def measure_throughput(
    concurrency: Iterable[int],
    *,
    items: int = 200,
    latency: float = 1.0,
    jitter: float = 0.0,
    max_concurrent: int | None = 8,
    requests_per_minute: int | None = None,
    tokens_per_minute: int | None = None,
    failure_rate: float = 0.0,
    max_retries: int = 10,
    backoff: Backoff | None = _DEFAULT_BACKOFF,
    seed: int = 0,
    clock: Clock = "virtual",
) -> list[ThroughputPoint]:
    """Measure completed calls per second for each client concurrency ``C`` in ``concurrency``.

    Each run sends ``items`` simulated calls through a
    :class:`~pocket_parallel.BoundedParallelBatchNode` with ``max_concurrency=C``,
    ``max_retries`` attempts per item and ``backoff`` between them (``None``: retry at
    once), against a fresh :class:`~pocket_parallel.SimulatedLLM` with the given latency and
    server limits (by default at most 8 calls in flight). Failed items are counted, never
    dropped. ``clock="virtual"`` (the default) gives exact, repeatable numbers at once.
    """
    check_clock(clock)
    return run(
        measure_throughput_async(
            concurrency, items=items, latency=latency, jitter=jitter, max_concurrent=max_concurrent,
            requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute,
            failure_rate=failure_rate, max_retries=max_retries, backoff=backoff, seed=seed,
        ),
        clock=clock,
    )


def _check_concurrency_values(concurrency: Iterable[int]) -> list[int]:
    if isinstance(concurrency, (str, bytes)) or not isinstance(concurrency, Iterable):
        raise TypeError(f"concurrency must be a list of integers >= 1, such as [1, 2, 4, 8, 16]; got {concurrency!r}")
    values = [check_int("concurrency", value, low=1, high=1_000_000) for value in concurrency]
    if not values:
        raise ValueError("concurrency must hold at least one value, such as [1, 2, 4, 8, 16]")
    if len(set(values)) != len(values):
        raise ValueError(f"concurrency values must differ from each other; got {values}")
    return sorted(values)


def find_knee(points: Sequence[ThroughputPoint], fraction: float = 0.95) -> ThroughputPoint:
    """The knee of a throughput curve: the smallest C whose throughput reaches ``fraction`` of the best.

    With ``fraction=0.95`` it is the least concurrency that gets within 5% of the best
    throughput measured; going beyond it buys at most 5% more, and past the service's
    limit it usually buys refusals and retries instead. ``fraction`` is in ``(0, 1]``.
    """
    fraction = check_real("fraction", fraction, low=0.0, high=1.0, low_open=True)
    if not points or not all(isinstance(p, ThroughputPoint) for p in points):
        raise ValueError("points must hold at least one ThroughputPoint (from measure_throughput)")
    best = max(p.throughput for p in points)
    return min((p for p in points if p.throughput >= fraction * best), key=lambda p: p.concurrency)


def plot_throughput(
    points: Sequence[ThroughputPoint],
    knee: ThroughputPoint | None = None,
    *,
    ax: Axes | None = None,
) -> Figure:
    """Throughput against C (log scale) over its ideal, the refused requests as bars, the knee marked.

    ``points`` come from :func:`measure_throughput`; ``knee`` defaults to :func:`find_knee`
    of them. Points where some items failed for good are crossed out.
    """
    from matplotlib.axes import Axes

    from .plots import PALETTE, CourseFigure, course_style

    if not points or not all(isinstance(p, ThroughputPoint) for p in points):
        raise ValueError("points must hold at least one ThroughputPoint (from measure_throughput)")
    ordered = sorted(points, key=lambda p: p.concurrency)
    knee = find_knee(ordered) if knee is None else knee
    if not isinstance(knee, ThroughputPoint):
        raise TypeError(f"knee must be a ThroughputPoint or None; got {type(knee).__name__}")
    with course_style():
        if ax is None:
            figure: Figure = CourseFigure(figsize=(6.4, 4.0), layout="constrained", facecolor="white")
            ax = figure.add_subplot()
        elif isinstance(ax, Axes):
            figure = ax.figure  # type: ignore[assignment]
        else:
            raise TypeError(f"ax must be a matplotlib Axes or None; got {type(ax).__name__}")
        cs = [p.concurrency for p in ordered]
        ax.plot(cs, [p.throughput for p in ordered], "o-", color=PALETTE["parallel"],
                label="completed calls / s (measured)", zorder=3)
        ax.plot(cs, [p.ideal_throughput for p in ordered], "--", color=PALETTE["ideal"],
                label="ideal: min(C, server limit) / latency")
        failed = [p for p in ordered if p.failed]
        if failed:
            ax.plot([p.concurrency for p in failed], [p.throughput for p in failed], "x", color=PALETTE["failed"],
                    markersize=9, label="some items failed", zorder=4)
        ax.axvline(knee.concurrency, color=PALETTE["marker"], linestyle=":",
                   label=f"knee: C = {knee.concurrency} ({knee.throughput:.3g} calls/s)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(cs, [str(c) for c in cs])
        ax.minorticks_off()
        ax.set_ylim(bottom=0)
        ax.set_xlabel("client concurrency C (calls in flight)")
        ax.set_ylabel("throughput (completed calls / s)")
        refused = ax.twinx()
        refused.bar(cs, [p.rate_limited for p in ordered], width=[c * 0.15 for c in cs], color=PALETTE["retry"],
                    alpha=0.35, label="refused requests (429)")
        refused.set_ylabel("refused requests (429)")
        refused.set_ylim(bottom=0)
        ax.set_zorder(refused.get_zorder() + 1)
        ax.patch.set_visible(False)
        handles, labels = ax.get_legend_handles_labels()
        more_handles, more_labels = refused.get_legend_handles_labels()
        ax.legend(handles + more_handles, labels + more_labels, fontsize="small", loc="upper left")
        first = ordered[0]
        limit = "no server limit" if first.max_concurrent is None else f"server serves {first.max_concurrent} at once"
        ax.set_title(f"Throughput against C: {first.items} calls of {first.latency:g} s, {limit}")
        ax.grid(alpha=0.3)
    return figure
