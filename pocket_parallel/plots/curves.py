"""Curves of parallel runs: speedup against the item count, makespan against the concurrency limit.

Each function draws on ``ax`` if given and returns the Figure; the measured points sit on
their two references, the in-order schedule and the lower bound.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .. import _format
from ..experiment import Comparison, check_comparison, makespan_lower_bound, semaphore_makespan
from .style import INK, PALETTE, axes_or_new, course_style, plain_log_ticks

# -- words and numbers in titles and labels -------------------------------------------------


def _latency_text(result: Comparison) -> str:
    return _format.latency(result.latency, result.jitter)


# -- checks -----------------------------------------------------------------------------------


def _check_results(results: Any, swept: str) -> list[Comparison]:
    if isinstance(results, Comparison):
        raise TypeError(f"results must be a list of Comparison objects (from sweep({swept!r}, ...)); got one Comparison")
    try:
        results = list(results)
    except TypeError:
        raise TypeError(f"results must be a list of Comparison objects; got {type(results).__name__}") from None
    if not results:
        raise ValueError(f"results must hold at least one Comparison (from sweep({swept!r}, ...))")
    checked: list[Comparison] = []
    for r in results:
        if not isinstance(r, Comparison):
            raise TypeError(f"results must hold only Comparison objects; got a {type(r).__name__}")
        checked.append(r)
    return checked


# -- speedup against item count -----------------------------------------------------------------


def speedup_vs_items(results: Sequence[Comparison], ax: Axes | None = None) -> Figure:
    """Sequential and parallel time against item count, from a sweep over ``items``.

    Measured times are points; under the parallel ones runs the in-order schedule (what a
    semaphore of C takes with no overhead at all) as a wide pale band, so that points
    sitting exactly on it stay visible.
    """
    ordered = sorted(_check_results(results, "items"), key=lambda r: r.items)
    with course_style():
        figure, ax = axes_or_new(ax)
        counts = [r.items for r in ordered]
        ax.plot(counts, [r.schedule_time for r in ordered], "-", color=PALETTE["reference"], linewidth=7, alpha=0.35,
                solid_capstyle="round", label="in-order schedule, no overhead")
        ax.plot(counts, [r.sequential_time for r in ordered], "o-", color=PALETTE["sequential"], label="sequential (measured)")
        ax.plot(counts, [r.parallel_time for r in ordered], "s-", color=PALETTE["parallel"], markersize=5,
                label="parallel (measured)")
        ax.set_xlabel("items N (LLM calls)")
        ax.set_ylabel("makespan (s)")
        first = ordered[0]
        span = f"N = {counts[0]}" if counts[0] == counts[-1] else f"N = {counts[0]}–{counts[-1]}"
        ax.set_title(f"Sequential vs parallel: {span}, {_format.limit(first.max_concurrency)}, {_latency_text(first)}", y=1.0)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend()
    return figure


# -- makespan against the concurrency limit -------------------------------------------------


def _equal_work(result: Comparison) -> bool:
    work = result.item_work
    return bool(work) and max(work) - min(work) <= 1e-9 * max(work)


def _check_limits(limits: Sequence[int]) -> list[int]:
    for c in limits:
        if isinstance(c, bool) or not isinstance(c, int) or c < 1:
            raise ValueError(f"limits must hold integers >= 1; got {c!r}")
    return list(limits)


def bound_curve(result: Comparison, limits: Sequence[int]) -> list[float]:
    """The lower bound of ``result``'s workload at each concurrency limit in ``limits``.

    :func:`~pocket_parallel.experiment.makespan_lower_bound` of the workload's per-item work
    at every C: no schedule with that many calls in flight could finish sooner. The work is
    sorted once for all limits, so a whole curve costs about what one sort does.
    """
    work = list(check_comparison(result).item_work)
    limits = _check_limits(limits)
    if not work:
        return [makespan_lower_bound(work, c) for c in limits]
    durations = sorted(work, reverse=True)
    prefix = [0.0, *accumulate(durations)]  # prefix[m]: the m longest calls together
    total = math.fsum(durations)
    bounds = []
    for limit in limits:
        if limit >= len(durations):
            bounds.append(durations[0])
            continue
        bound = max(durations[0], total / limit)
        for k in range(1, (len(durations) - 1) // limit + 1):
            m = k * limit + 1
            bound = max(bound, prefix[m] - prefix[m - k - 1])
        bounds.append(bound)
    return bounds


def schedule_curve(result: Comparison, limits: Sequence[int]) -> list[float]:
    """The in-order schedule of ``result``'s workload at each concurrency limit in ``limits``.

    :func:`~pocket_parallel.experiment.semaphore_makespan` at every C: what a semaphore of C
    takes, items in input order, with no overhead. A virtual run lands on it exactly.
    """
    work = list(check_comparison(result).item_work)
    limits = _check_limits(limits)
    if not work:
        return [semaphore_makespan(work, c) for c in limits]
    longest = max(work)
    spans = []
    for limit in limits:
        if limit >= len(work):
            spans.append(longest)
            continue
        slots = [0.0] * limit
        for duration in work:
            heapq.heapreplace(slots, slots[0] + duration)
        spans.append(max(slots))
    return spans


def _over(numerator: float) -> Any:
    """x -> numerator / x, for the speedup axis (the map is its own inverse); safe at x = 0."""

    def divide(x: Any) -> Any:
        return numerator / np.maximum(np.asarray(x, dtype=float), 1e-300)

    return divide


def setup_curve_axes(ax: Axes, speed_axis: bool = True) -> Any:
    """Log axes, labels and (unless ``speed_axis`` is False) the right-hand speedup axis of a makespan-against-C plot."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain_log_ticks(ax.xaxis)
    plain_log_ticks(ax.yaxis)
    ax.set_xlabel("concurrency limit C (calls in flight)")
    ax.set_ylabel("makespan (s)")
    ax.grid(alpha=0.3)
    if not speed_axis:
        return None
    speed = ax.secondary_yaxis("right", functions=(_over(1.0), _over(1.0)))
    plain_log_ticks(speed.yaxis)
    speed.set_ylabel("speedup over sequential (×)")
    return speed


def _draw_curve(ax: Axes, speed: Any, results: list[Comparison], current: int | None) -> str:
    """The data of a makespan-against-C plot on prepared axes; returns its title."""
    first = results[0]
    for r in results[1:]:
        if r.workload != first.workload:
            raise ValueError(
                "results must all come from one workload (same items, latency, jitter, failure_rate "
                "and seed), as sweep('max_concurrency', ...) returns them"
            )
    if current is not None and (isinstance(current, bool) or not isinstance(current, int) or current < 1):
        raise ValueError(f"current must be an integer >= 1, or None; got {current!r}")
    n = first.items
    by_limit: dict[int, Comparison] = {}
    for r in results:
        by_limit[r.max_concurrency or n] = r  # an unlimited run sits at C = N; the last run at a C wins
    limits = sorted(by_limit)
    has_unlimited = any(r.max_concurrency is None for r in results)
    mark = current if current is not None else (n if has_unlimited else None)
    top = max(limits[-1], mark or 1, 2)
    curve_x = list(range(1, top + 1))
    if _equal_work(first):
        ax.plot(curve_x, schedule_curve(first, curve_x), "-", color=PALETTE["reference"], linewidth=1.5,
                label="best possible: ⌈N / C⌉ × L")
    else:
        ax.plot(curve_x, schedule_curve(first, curve_x), "-", color=PALETTE["reference"], linewidth=1.5,
                label="in-order schedule, no overhead")
        ax.plot(curve_x, bound_curve(first, curve_x), ":", color=PALETTE["reference"], linewidth=1.5,
                label="lower bound: no schedule is faster")
    ax.axhline(first.sequential_time, color=PALETTE["sequential"], linestyle=":", linewidth=2,
               label=f"sequential: {_format.seconds(first.sequential_time)}")
    ax.plot(limits, [by_limit[c].parallel_time for c in limits], "s", color=PALETTE["parallel"],
            markersize=6, label="parallel (measured)", zorder=3)
    if mark is not None:
        ax.axvline(mark, color=PALETTE["marker"], linestyle="--", linewidth=1)
        point = by_limit.get(mark)
        name = _format.limit(current)
        if point is not None:
            ax.plot([mark], [point.parallel_time], "o", markersize=11, markerfacecolor="none",
                    markeredgecolor=INK, markeredgewidth=2, zorder=4,
                    label=f"now: {name}, {_format.seconds(point.parallel_time)}")
        else:
            ax.plot([], [], "--", color=PALETTE["marker"], label=f"now: {name}")
    ax.set_xlim(0.8, top * 1.25)
    heights = [by_limit[c].parallel_time for c in limits] + [first.sequential_time, bound_curve(first, [top])[0]]
    low, high = min(h for h in heights if h > 0), max(heights)
    ax.set_ylim(low / 1.4, high * 1.4)
    if first.sequential_time > 0:
        speed.set_functions((_over(first.sequential_time), _over(first.sequential_time)))
    ax.legend(fontsize="small", loc="lower left")
    return curve_title(first, current, marked=mark is not None)


def curve_title(result: Comparison, current: int | None, marked: bool = True) -> str:
    """The title of a makespan-against-C plot of ``result``'s workload, naming the setting marked."""
    now = f", now {_format.limit(current)}" if marked else ""
    return f"Makespan against C: N = {result.items} calls, {_format.latency(result.latency, result.jitter)}{now}"


def makespan_vs_concurrency(
    results: Sequence[Comparison], current: int | None = None, ax: Axes | None = None
) -> Figure:
    """Measured parallel makespan against the concurrency limit C, over the in-order schedule.

    ``results`` come from ``sweep("max_concurrency", ...)`` (one workload, several C);
    an unlimited run (C = None) is drawn at C = N. ``current`` marks the setting in use;
    when it is None and ``results`` hold an unlimited run, that run is marked. The in-order
    schedule (and, for uneven latencies, the lower bound) is drawn for every C from 1 up;
    the right axis reads the heights as speedups.
    """
    results = _check_results(results, "max_concurrency")
    with course_style():
        figure, ax = axes_or_new(ax)
        speed = setup_curve_axes(ax)
        ax.set_title(_draw_curve(ax, speed, results, current), y=1.0)
    return figure


