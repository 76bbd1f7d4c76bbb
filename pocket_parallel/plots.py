"""Pictures of parallel runs (matplotlib). Each function draws on ``ax`` if given and returns the Figure.

None of them calls ``plt.show()``: a notebook shows the returned figure, a script saves it.
"""

from __future__ import annotations

from collections.abc import Sequence

import io

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .experiment import Comparison
from .llm import CallRecord

# Okabe-Ito: distinguishable with every common form of colour blindness, on light and dark.
PALETTE = {
    "sequential": "#E69F00",
    "parallel": "#0072B2",
    "ideal": "#009E73",
    "retry": "#CC79A7",
    "failed": "#D55E00",
    "marker": "#999999",
}


class CourseFigure(Figure):
    """A matplotlib Figure that shows itself as a PNG in Jupyter without pyplot or ``%matplotlib``."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def _axes(ax: Axes | None, size: tuple[float, float] = (6.4, 4.0)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    figure = CourseFigure(figsize=size, layout="constrained")
    return figure, figure.add_subplot()


def _limit_text(limit: int | None) -> str:
    return "no limit" if limit is None else f"C = {limit}"


def speedup_vs_items(results: Sequence[Comparison], ax: Axes | None = None) -> Figure:
    """Sequential time, parallel time and the ideal against item count, from a sweep over ``items``."""
    if not results:
        raise ValueError("results must hold at least one Comparison (from sweep('items', ...))")
    ordered = sorted(results, key=lambda r: r.items)
    figure, ax = _axes(ax)
    counts = [r.items for r in ordered]
    ax.plot(counts, [r.sequential_time for r in ordered], "o-", color=PALETTE["sequential"], label="sequential (measured)")
    ax.plot(counts, [r.parallel_time for r in ordered], "s-", color=PALETTE["parallel"], label="parallel (measured)")
    ax.plot(counts, [r.ideal_parallel_time for r in ordered], "--", color=PALETTE["ideal"], label="parallel ideal")
    ax.set_xlabel("items (LLM calls)")
    ax.set_ylabel("makespan (s)")
    first = ordered[0]
    ax.set_title(f"Sequential vs parallel: {_limit_text(first.max_concurrency)}, latency {first.latency:g} s")
    ax.grid(alpha=0.3)
    ax.legend()
    return figure


def makespan_vs_concurrency(
    results: Sequence[Comparison], current: int | None = None, ax: Axes | None = None
) -> Figure:
    """Measured parallel makespan against the concurrency limit C, over the ideal curve.

    ``results`` come from ``sweep("max_concurrency", ...)`` (one workload, several C);
    an unlimited run (C = None) is drawn at C = N. ``current`` marks the setting in use.
    """
    if not results:
        raise ValueError("results must hold at least one Comparison (from sweep('max_concurrency', ...))")
    figure, ax = _axes(ax)
    n = results[0].items
    points = sorted(((r.max_concurrency or n), r) for r in results)
    limits = [c for c, _ in points]
    ax.plot(limits, [r.parallel_time for _, r in points], "s", color=PALETTE["parallel"], label="parallel (measured)", zorder=3)
    ax.plot(limits, [r.ideal_parallel_time for _, r in points], "-", color=PALETTE["ideal"], label="ideal: max(max L, ΣL / C)")
    ax.axhline(results[0].sequential_time, color=PALETTE["sequential"], linestyle=":", label="sequential")
    if current is not None or any(r.max_concurrency is None for r in results):
        mark = n if current is None else current
        ax.axvline(mark, color=PALETTE["marker"], linestyle="--", label=f"current: {_limit_text(current)}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("concurrency limit C (calls in flight)")
    ax.set_ylabel("makespan (s)")
    ax.set_title(f"Makespan against C: N = {n} calls, latency {results[0].latency:g} s")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return figure


def _slots(trace: Sequence[CallRecord]) -> list[int]:
    """Give each call the lowest row free at its start, so rows read as concurrency slots."""
    order = sorted(range(len(trace)), key=lambda i: (trace[i].start, trace[i].end))
    row_free_at: list[float] = []
    rows = [0] * len(trace)
    for i in order:
        call = trace[i]
        for row, free_at in enumerate(row_free_at):
            if free_at <= call.start + 1e-9:
                break
        else:
            row = len(row_free_at)
            row_free_at.append(0.0)
        row_free_at[row] = call.end
        rows[i] = row
    return rows


def _kinds(trace: Sequence[CallRecord]) -> list[str]:
    """Name each call for colouring: ok, retried (failed but tried again), failed, cancelled."""
    last_attempt: dict[str, int] = {}
    for call in trace:
        last_attempt[call.prompt] = max(call.attempt, last_attempt.get(call.prompt, 0))
    kinds = []
    for call in trace:
        if call.outcome == "ok":
            kinds.append("ok")
        elif call.outcome == "cancelled":
            kinds.append("cancelled")
        else:
            kinds.append("retried" if call.attempt < last_attempt[call.prompt] else "failed")
    return kinds


_KIND_STYLE = {
    "ok": ("call", PALETTE["parallel"]),
    "retried": ("failed attempt, retried", PALETTE["retry"]),
    "failed": ("failed for good", PALETTE["failed"]),
    "cancelled": ("cancelled", PALETTE["marker"]),
}


def timeline(trace: Sequence[CallRecord], ax: Axes | None = None, title: str | None = None, ok_color: str | None = None) -> Figure:
    """Gantt chart of one run: a row per concurrency slot, a bar per call from start to end.

    Failed attempts that were retried, failures that stuck and cancelled calls get their
    own colours and legend entries; times are seconds from the run's start.
    """
    figure, ax = _axes(ax, size=(7.0, 3.2))
    rows, kinds = _slots(trace), _kinds(trace)
    seen: set[str] = set()
    for call, row, kind in zip(trace, rows, kinds):
        label, color = _KIND_STYLE[kind]
        if kind == "ok" and ok_color:
            color = ok_color
        ax.barh(row, call.duration, left=call.start, height=0.8, color=color, edgecolor="white", linewidth=0.5,
                label=None if kind in seen else label)
        seen.add(kind)
    slots = max(rows, default=-1) + 1
    ax.set_ylim(slots - 0.5, -0.5)
    ax.set_yticks(range(slots) if slots <= 12 else [0, slots - 1])
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("slot")
    peak = slots
    ax.set_title(title or f"{len(trace)} calls, at most {peak} in flight")
    ax.grid(axis="x", alpha=0.3)
    if seen:
        ax.legend(loc="lower right", fontsize="small")
    return figure


def race_timelines(result: Comparison) -> Figure:
    """The sequential and the parallel run of one comparison, one above the other, same time axis."""
    figure = CourseFigure(figsize=(7.5, 5.0), layout="constrained")
    seq_ax, par_ax = figure.subplots(2, 1, sharex=True, height_ratios=[1, 2.5])
    limit = _limit_text(result.max_concurrency)
    timeline(result.sequential_trace, ax=seq_ax, ok_color=PALETTE["sequential"],
             title=f"Sequential: {result.items} calls, one at a time, {_seconds_text(result.sequential_time)}")
    timeline(result.trace, ax=par_ax,
             title=f"Parallel ({limit}): {_seconds_text(result.parallel_time)}, speedup {result.speedup:.1f}x")
    seq_ax.set_xlabel("")
    return figure


def _seconds_text(value: float) -> str:
    return f"{value:.3g} s"
