"""Pictures of parallel runs (matplotlib). Each function draws on ``ax`` if given and returns the Figure.

None of them calls ``plt.show()``: a notebook shows the returned figure, a script saves it.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .experiment import Comparison

# Okabe-Ito: distinguishable with every common form of colour blindness, on light and dark.
PALETTE = {
    "sequential": "#E69F00",
    "parallel": "#0072B2",
    "ideal": "#009E73",
    "retry": "#CC79A7",
    "failed": "#D55E00",
    "marker": "#999999",
}


def _axes(ax: Axes | None, size: tuple[float, float] = (6.4, 4.0)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    figure = Figure(figsize=size, layout="constrained")
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
