"""Call timelines: one bar per call attempt, stacked into the slots that ran them.

:func:`timeline` draws one trace; :func:`race_timelines` the sequential and parallel runs of
a comparison on one time axis.
"""

from __future__ import annotations

import collections
import heapq
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.path import Path as MplPath
from matplotlib.ticker import NullLocator

from .. import _format
from ..experiment import Comparison, check_comparison
from ..trace import CallRecord
from .style import INK, PALETTE, axes_or_new, course_style, new_figure


def _check_trace(trace: Any) -> list[CallRecord]:
    try:
        calls = list(trace)
    except TypeError:
        raise TypeError(f"trace must be a sequence of CallRecord (such as llm.trace); got {type(trace).__name__}") from None
    if not calls:
        raise ValueError("trace must hold at least one CallRecord: make some calls first (llm.trace is empty)")
    for call in calls:
        if not isinstance(call, CallRecord):
            raise TypeError(f"trace must hold only CallRecord objects; got a {type(call).__name__}")
    return calls


# -- timelines ------------------------------------------------------------------------------


def _slots(trace: Sequence[CallRecord]) -> list[int]:
    """Give each call the lowest row free at its start, so rows read as concurrency slots.

    Calls are taken by start time; rows whose call has ended go back to a heap of free rows,
    so each call costs a logarithm of the rows in use rather than a scan of them all.
    """
    order = sorted(range(len(trace)), key=lambda i: (trace[i].start, trace[i].end))
    busy: list[tuple[float, int]] = []  # (free at, row) of rows in use
    free: list[int] = []  # rows free again
    opened = 0
    rows = [0] * len(trace)
    for i in order:
        call = trace[i]
        while busy and busy[0][0] <= call.start + 1e-9:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            row = heapq.heappop(free)
        else:
            row, opened = opened, opened + 1
        heapq.heappush(busy, (call.end, row))
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


#: Colours for the kinds of successful call that ``timeline(..., kind_of=...)`` tells apart, in
#: order of first appearance: Okabe-Ito colours other than those of retries and failures.
KIND_COLORS = (PALETTE["parallel"], PALETTE["sequential"], PALETTE["reference"], "#56B4E9", "#F0E442", "#000000")


def _check_kind_of(kind_of: Any, ok_color: str | None) -> Callable[[CallRecord], str] | None:
    if kind_of is None:
        return None
    if not callable(kind_of):
        raise TypeError(f"kind_of must be a function from a CallRecord to the name of its kind; got {kind_of!r}")
    if ok_color is not None:
        raise ValueError("give ok_color (one colour for every call) or kind_of (a colour per kind), not both")
    chosen: Callable[[CallRecord], str] = kind_of
    return chosen


def _groups(calls: list[CallRecord], kinds: list[str], kind_of: Callable[[CallRecord], str]) -> list[str]:
    """The kind_of name of each successful call (others keep their outcome), checked."""
    names: list[str] = []
    seen: list[str] = []
    for call, kind in zip(calls, kinds):
        if kind != "ok":
            names.append("")
            continue
        name = kind_of(call)
        if not isinstance(name, str) or not name:
            raise ValueError(f"kind_of must return a non-empty str for every call; got {name!r} for {call.prompt!r}")
        if name not in seen:
            seen.append(name)
        names.append(name)
    if len(seen) > len(KIND_COLORS):
        raise ValueError(f"kind_of named {len(seen)} kinds; a timeline tells at most {len(KIND_COLORS)} apart by colour")
    return names


def _setup_timeline_axes(ax: Axes) -> None:
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("slot")
    ax.grid(axis="x", alpha=0.3)


KINDS = ("ok", "retried", "failed", "cancelled")
"""The kinds of call a timeline tells apart, in the order its legend lists them."""


class Bars:
    """Where a timeline draws its calls: one bar per call in the row of its concurrency slot.

    ``corners`` has shape (calls, 4, 2): one array builds every bar's path at once.
    ``gap`` is the width of the white edge between neighbouring bars, ``slots`` the rows.
    """

    def __init__(self, calls: Sequence[CallRecord]) -> None:
        rows = _slots(calls)
        self.kinds: tuple[str, ...] = tuple(_kinds(calls))
        self.slots = max(rows) + 1
        # Thin white gaps tell neighbouring bars apart; with dozens of bars in a row they would
        # hide the bars themselves.
        self.gap = 0.5 if len(calls) / self.slots <= 60 else 0.0
        half = 0.4 if self.slots <= 60 else 0.5
        starts = np.array([c.start for c in calls])
        ends = np.array([c.end for c in calls])
        tops, bottoms = np.array(rows) - half, np.array(rows) + half
        self.corners = np.stack([np.stack([starts, tops], 1), np.stack([ends, tops], 1),
                                 np.stack([ends, bottoms], 1), np.stack([starts, bottoms], 1)], 1)
        self.end = float(ends.max())
        self.mean = float((ends - starts).mean())

    def ticks(self) -> list[int]:
        """The rows to label: every row up to 10, else the first, the middle and the last."""
        return list(range(self.slots)) if self.slots <= 10 else sorted({0, self.slots // 2, self.slots - 1})

    def colors(self, ok_color: str | None = None) -> list[str]:
        """Each bar's colour, by its kind of call (``ok_color`` for calls that succeeded, if given)."""
        return [ok_color if kind == "ok" and ok_color else _KIND_STYLE[kind][1] for kind in self.kinds]

    def present(self) -> list[str]:
        """The kinds of call among the bars, in legend order."""
        return [kind for kind in KINDS if kind in self.kinds]


def kind_label(kind: str) -> str:
    """A kind of call as its legend names it: ``"failed attempt, retried"``."""
    return _KIND_STYLE[kind][0]


def kind_color(kind: str, ok_color: str | None = None) -> str:
    """The colour bars of this kind get (``ok_color`` for calls that succeeded, if given)."""
    return ok_color if kind == "ok" and ok_color else _KIND_STYLE[kind][1]


class CallBars(PolyCollection):
    """All bars of one timeline in one collection: one compound path per kind of call, in its colour.

    ``kinds`` names every bar's kind (in the order of the calls); ``path_kinds`` the kind of
    each path, matching the face colours. Drawing a few compound paths instead of a path per
    bar is what makes a timeline of hundreds of calls quick to draw again.
    """

    kinds: tuple[str, ...] = ()
    path_kinds: tuple[str, ...] = ()

    def show(self, bars: Bars, ok_color: str | None = None, *, gap: float | None = None) -> None:
        """Draw ``bars`` (``ok_color`` for calls that succeeded, if given; ``gap`` instead of ``bars.gap``)."""
        kinds = np.array(bars.kinds)
        present = bars.present()
        verts: list[Any] = []
        codes: list[Any] = []  # one array of path codes per path (the stub says ints)
        for kind in present:
            boxes = bars.corners[kinds == kind]
            closed = np.concatenate([boxes, boxes[:, :1]], axis=1)  # each box: four corners and back
            verts.append(closed.reshape(-1, 2))
            codes.append(np.tile(_BOX_CODES, len(boxes)))
        self.set_verts_and_codes(verts, codes)
        self.set_facecolor([kind_color(kind, ok_color) for kind in present])
        self.set_linewidth(bars.gap if gap is None else gap)
        self.kinds, self.path_kinds = bars.kinds, tuple(present)


_BOX_CODES = np.array([MplPath.MOVETO, MplPath.LINETO, MplPath.LINETO, MplPath.LINETO, MplPath.CLOSEPOLY], np.uint8)


def _draw_timeline(ax: Axes, calls: list[CallRecord], ok_color: str | None, legend: str | None = "inside",
                   kind_of: Callable[[CallRecord], str] | None = None) -> int:
    """One PolyCollection of bars per kind of call, labelled for the legend; returns the slot count.

    With ``kind_of``, successful calls are split further, one collection (and colour) per name.
    """
    bars = Bars(calls)
    outcome_of = np.array(bars.kinds)
    for kind in KINDS:
        boxes = bars.corners[outcome_of == kind]
        if not len(boxes):
            continue
        if kind == "ok" and kind_of is not None:
            names = np.array(_groups(calls, list(bars.kinds), kind_of))
            for name, group_color in zip(dict.fromkeys(n for n in names if n), KIND_COLORS):
                ax.add_collection(PolyCollection(bars.corners[names == name], facecolors=group_color,
                                                 edgecolors="white", linewidths=bars.gap, label=name,
                                                 gid=f"calls:ok:{name}"), autolim=False)
            continue
        ax.add_collection(PolyCollection(boxes, facecolors=kind_color(kind, ok_color), edgecolors="white",
                                         linewidths=bars.gap, label=kind_label(kind), gid=f"calls:{kind}"),
                          autolim=False)
    ax.set_xlim(0, bars.end * 1.02 if bars.end > 0 else 1.0)
    ax.set_ylim(bars.slots - 0.5, -0.5)
    ticks = bars.ticks()
    ax.set_yticks(ticks, [str(t + 1) for t in ticks])
    if legend == "inside":  # lower right: where a parallel run beside a sequential one leaves room
        ax.legend(loc="lower right", fontsize="small")
    elif legend == "outside":
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return bars.slots


def timeline(
    trace: Sequence[CallRecord],
    ax: Axes | None = None,
    title: str | None = None,
    ok_color: str | None = None,
    *,
    kind_of: Callable[[CallRecord], str] | None = None,
) -> Figure:
    """Gantt chart of one run: a row per concurrency slot, a bar per call from start to end.

    Failed attempts that were retried, failures that stuck and cancelled calls get their
    own colours and legend entries; times are seconds from the run's start. Each kind of
    call is one ``PolyCollection`` with one bar per call (:func:`call_bars` counts them).

    ``kind_of`` tells successful calls apart: a function from a :class:`CallRecord` to the
    name of its kind (say ``lambda call: "combine" if "Combine" in call.prompt else "chunk"``).
    Each name gets its own colour (from :data:`KIND_COLORS`, at most six names) and legend
    entry, and :func:`call_bars` counts it as ``"ok:<name>"``. ``ok_color`` paints every
    successful call one colour instead; give one or the other.
    """
    calls = _check_trace(trace)
    kind_of = _check_kind_of(kind_of, ok_color)
    with course_style():
        own_figure = ax is None
        figure, ax = axes_or_new(ax, size=(7.0, 3.2))
        _setup_timeline_axes(ax)
        # Beside the bars on a figure of our own (its layout makes room); inside on a given ax.
        slots = _draw_timeline(ax, calls, ok_color, legend="outside" if own_figure else "inside", kind_of=kind_of)
        mean = math.fsum(c.duration for c in calls) / len(calls)
        ax.set_title(title or f"{len(calls)} calls of {_format.seconds(mean)} on average, at most {slots} in flight", y=1.0)
    return figure


def call_bars(ax: Axes) -> dict[str, int]:
    """How many call bars of each kind (``"ok"``, ``"retried"``, ``"failed"``...) a timeline drew on ``ax``."""
    counts: collections.Counter[str] = collections.Counter()
    for collection in ax.collections:
        gid = collection.get_gid() or ""
        if isinstance(collection, CallBars):
            if collection.get_visible():
                counts.update(collection.kinds)
        elif gid.startswith("calls:"):
            counts[gid.split(":", 1)[1]] += len(collection.get_paths())
    order = {kind: index for index, kind in enumerate(KINDS)}
    return {kind: counts[kind] for kind in sorted(counts, key=lambda k: order.get(k, len(KINDS))) if counts[kind]}


def setup_race_axes(seq_ax: Axes, par_ax: Axes) -> None:
    _setup_timeline_axes(seq_ax)
    _setup_timeline_axes(par_ax)
    seq_ax.set_ylabel("")
    seq_ax.set_xlabel("")
    seq_ax.tick_params(labelbottom=False)


def _draw_race(seq_ax: Axes, par_ax: Axes, result: Comparison) -> tuple[str, str]:
    """Both timelines of a comparison on one time axis; returns their titles."""
    _draw_timeline(seq_ax, list(result.sequential_trace), PALETTE["sequential"], legend=None)
    _draw_timeline(par_ax, list(result.trace), None)
    end = max(result.sequential_time, result.parallel_time) * 1.02 or 1.0
    for ax in (seq_ax, par_ax):
        ax.set_xlim(0, end)
        ax.axvline(result.parallel_time, color=INK, linestyle="--", linewidth=1)
    seq_ax.annotate("parallel done", (result.parallel_time, 0.5), xycoords=("data", "axes fraction"),
                    xytext=(4, 0), textcoords="offset points", va="center", fontsize="small",
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    return sequential_title(result), parallel_title(result)


def sequential_title(result: Comparison) -> str:
    """The title of ``result``'s sequential timeline: its workload and how long it took."""
    return (f"Sequential: N = {result.items} calls, {_format.latency(result.latency, result.jitter)}, one at a time: "
            f"{_format.seconds(result.sequential_time)}")


def parallel_title(result: Comparison) -> str:
    """The title of ``result``'s parallel timeline: its limit, how long it took and the speedup."""
    limit = _format.limit(result.max_concurrency)
    return f"Parallel ({limit}): {_format.seconds(result.parallel_time)}, speedup {result.speedup:.1f}x"


def race_timelines(result: Comparison) -> Figure:
    """The sequential and the parallel run of one comparison, one above the other, same time axis.

    A dashed line on both marks when the parallel run finished, so the picture alone
    shows how much sooner it was.
    """
    check_comparison(result)
    with course_style():
        figure = new_figure((7.5, 5.0))
        seq_ax, par_ax = figure.subplots(2, 1, sharex=True, height_ratios=[1, 2.5])
        setup_race_axes(seq_ax, par_ax)
        seq_title, par_title = _draw_race(seq_ax, par_ax, result)
        seq_ax.set_title(seq_title, y=1.0)
        par_ax.set_title(par_title, y=1.0)
    return figure
