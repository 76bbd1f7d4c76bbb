"""The throughput knee: completed calls per second against the concurrency limit C."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..throughput import ThroughputPoint, find_knee
from .style import PALETTE, axes_or_new, course_style


def plot_throughput(
    points: Sequence[ThroughputPoint],
    knee: ThroughputPoint | None = None,
    *,
    ax: Axes | None = None,
) -> Figure:
    """Throughput against C (log scale) under its bound, the refused requests as bars, the knee marked.

    ``points`` come from :func:`measure_throughput`; ``knee`` defaults to :func:`find_knee`
    of them. Points where some items failed for good are crossed out.
    """
    if not points or not all(isinstance(p, ThroughputPoint) for p in points):
        raise ValueError("points must hold at least one ThroughputPoint (from measure_throughput)")
    ordered = sorted(points, key=lambda p: p.concurrency)
    knee = find_knee(ordered) if knee is None else knee
    if not isinstance(knee, ThroughputPoint):
        raise TypeError(f"knee must be a ThroughputPoint or None; got {type(knee).__name__}")
    with course_style():
        figure, ax = axes_or_new(ax, size=(6.4, 4.6))
        cs = [p.concurrency for p in ordered]
        ax.plot(cs, [p.throughput for p in ordered], "o-", color=PALETTE["parallel"],
                label="completed calls / s (measured)", zorder=3)
        ax.plot(cs, [p.max_throughput for p in ordered], "--", color=PALETTE["reference"],
                label="bound: min(C, server limit) / latency")
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
        # Below the axes: inside, a legend would cover part of the curve whatever corner it took.
        ax.legend(handles + more_handles, labels + more_labels, fontsize="small", loc="upper center",
                  bbox_to_anchor=(0.5, -0.16), ncol=2)
        first = ordered[0]
        limit = "no server limit" if first.max_concurrent is None else f"server serves {first.max_concurrent} at once"
        ax.set_title(f"Throughput against C: {first.items} calls of {first.latency:g} s, {limit}")
        ax.grid(alpha=0.3)
    return figure
