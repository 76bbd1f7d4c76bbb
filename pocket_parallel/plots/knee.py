"""The throughput knee: completed calls per second, and the latency per call, against the concurrency limit C."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..throughput import ThroughputPoint, find_knee
from .style import PALETTE, axes_or_new, course_style


def _service_text(point: ThroughputPoint) -> str:
    """The service's limit on calls at once, as the title says it."""
    if point.slots is not None:
        return f"a server with {point.slots} slots"
    if point.max_concurrent is not None:
        return f"a gateway refusing beyond {point.max_concurrent}"
    return "no limit on calls at once"


def plot_throughput(
    points: Sequence[ThroughputPoint],
    knee: ThroughputPoint | None = None,
    *,
    ax: Axes | None = None,
) -> Figure:
    """Throughput against C (log scale) under its bound, the knee marked, and the latency per call on the right.

    ``points`` come from :func:`measure_throughput`; ``knee`` defaults to :func:`find_knee`
    of them. The right axis shows each point's measured latency (from an item's first request
    to its answer: what grows past the knee, by Little's law) beside the time of one call
    served with no queue. A point where the service refused requests is labelled with how
    many (429s); a point where some items failed for good is crossed out.
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
                label="bound: calls served at once / call time")
        failed = [p for p in ordered if p.failed]
        if failed:
            ax.plot([p.concurrency for p in failed], [p.throughput for p in failed], "x", color=PALETTE["failed"],
                    markersize=9, label="some items failed", zorder=4)
        for point in ordered:
            if point.rate_limited:
                ax.annotate(f"{point.rate_limited:,}×429", (point.concurrency, point.throughput),
                            textcoords="offset points", xytext=(0, -14), ha="center", fontsize="x-small",
                            color=PALETTE["failed"])
        ax.axvline(knee.concurrency, color=PALETTE["marker"], linestyle=":",
                   label=f"knee: C = {knee.concurrency} ({knee.throughput:.3g} calls/s)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(cs, [str(c) for c in cs])
        ax.minorticks_off()
        ax.set_ylim(bottom=0)
        ax.set_xlabel("client concurrency C (calls in flight)")
        ax.set_ylabel("throughput (completed calls / s)")
        latency = ax.twinx()
        measured = [(p.concurrency, p.mean_latency) for p in ordered if p.mean_latency is not None]
        latency.plot([c for c, _ in measured], [seconds for _, seconds in measured], "s-",
                     color=PALETTE["sequential"], markersize=4, label="latency per item (measured, s)")
        latency.plot(cs, [p.latency for p in ordered], ":", color=PALETTE["sequential"],
                     label="one call with no queue (s)")
        latency.set_ylabel("latency (s)")
        latency.set_ylim(bottom=0)
        ax.set_zorder(latency.get_zorder() + 1)
        ax.patch.set_visible(False)
        handles, labels = ax.get_legend_handles_labels()
        more_handles, more_labels = latency.get_legend_handles_labels()
        # Below the axes: inside, a legend would cover part of the curve whatever corner it took.
        ax.legend(handles + more_handles, labels + more_labels, fontsize="small", loc="upper center",
                  bbox_to_anchor=(0.5, -0.16), ncol=2)
        ax.set_title(f"Throughput against C: {ordered[0].items} calls, {_service_text(ordered[0])}")
        ax.grid(alpha=0.3)
    return figure
