"""Pictures of parallel runs (matplotlib). Each function draws on ``ax`` if given and returns the Figure.

None of them calls ``plt.show()``: a notebook shows the returned figure, a script saves it.
Figures made here have a white background and dark text of their own, so they read the
same in light and dark JupyterLab themes; colours come from the Okabe-Ito palette, which
stays distinguishable with every common form of colour blindness. Log axes read 1, 2, 5,
10, 20... rather than 10^0, 10^1.

:class:`Overview` is the explorer's picture: makespan against C beside the two timelines,
kept between redraws so that a change costs one render, not a new figure.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import matplotlib
import numpy as np
import PIL.Image
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, Locator, NullLocator

from . import _format
from .experiment import Comparison, makespan_lower_bound, semaphore_makespan
from .throughput import ThroughputPoint, find_knee
from .trace import CallRecord

# Okabe-Ito: distinguishable with every common form of colour blindness, on light and dark.
PALETTE = {
    "sequential": "#E69F00",
    "parallel": "#0072B2",
    "reference": "#009E73",
    "retry": "#CC79A7",
    "failed": "#D55E00",
    "marker": "#999999",
}

_INK = "#222222"  # text and the current-setting marker: near-black on the white background

# Explicit light colours: a dark JupyterLab theme (or a dark matplotlib style) must not turn
# the background black while the text stays black.
_STYLE: dict[str, Any] = {
    "figure.facecolor": "white",
    "figure.edgecolor": "white",
    "savefig.facecolor": "white",
    "axes.facecolor": "white",
    "axes.edgecolor": "#333333",
    "axes.labelcolor": _INK,
    "axes.titlecolor": _INK,
    "axes.titlesize": "medium",
    "text.color": _INK,
    "xtick.color": "#333333",
    "ytick.color": "#333333",
    "xtick.labelcolor": _INK,
    "ytick.labelcolor": _INK,
    "grid.color": "#b0b0b0",
    "legend.facecolor": "white",
    "legend.edgecolor": "#cccccc",
    "legend.framealpha": 0.9,
    "legend.labelcolor": _INK,
}


@contextlib.contextmanager
def course_style() -> Iterator[None]:
    """The course's matplotlib settings (white background, dark text) for a ``with`` block."""
    with matplotlib.rc_context(_STYLE):
        yield


class CourseFigure(Figure):
    """A matplotlib Figure that shows itself as a PNG in Jupyter without pyplot or ``%matplotlib``."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def _new_figure(size: tuple[float, float], layout: str | None = "constrained") -> CourseFigure:
    with course_style():
        return CourseFigure(figsize=size, layout=layout, facecolor="white")


def _axes(ax: Axes | None, size: tuple[float, float] = (6.4, 4.0)) -> tuple[Figure, Axes]:
    if ax is not None:
        if not isinstance(ax, Axes):
            raise TypeError(f"ax must be a matplotlib Axes or None; got {type(ax).__name__}")
        return ax.figure, ax  # type: ignore[return-value]
    figure = _new_figure(size)
    return figure, figure.add_subplot()


# -- words and numbers in titles and labels -------------------------------------------------


def _latency_text(result: Comparison) -> str:
    return _format.latency(result.latency, result.jitter)


# -- plain numbers on log axes --------------------------------------------------------------


class _PlainLogLocator(Locator):
    """Ticks at 1, 2, 5, 10, 20, 50...; on ranges too short for three of those, at each 1-9 x 10^k.

    No minor ticks: every tick is several artists to draw, and the explorer redraws often.
    """

    def __call__(self) -> list[float]:
        low, high = self.axis.get_view_interval()
        return self.tick_values(low, high)

    def tick_values(self, vmin: float, vmax: float) -> list[float]:
        low, high = sorted((vmin, vmax))
        if not (low > 0 and math.isfinite(high)):
            return []
        decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
        ticks: list[float] = []
        for subs in ((1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
            ticks = [s * 10.0**k for k in decades for s in subs if low * (1 - 1e-9) <= s * 10.0**k <= high * (1 + 1e-9)]
            if len(ticks) >= 3:
                break
        return ticks


class _PlainFormatter(Formatter):
    """Tick labels as plain numbers: 0.5, 1, 20, 5,000 (never 10^0)."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return _format.plain(x)


def plain_log_ticks(axis: Any) -> None:
    """Make a log-scaled axis (``ax.xaxis``, ``ax.yaxis``) read 1, 2, 5, 10, 20... instead of 10^0, 10^1."""
    axis.set_major_locator(_PlainLogLocator())
    axis.set_minor_locator(NullLocator())
    axis.set_major_formatter(_PlainFormatter())


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
    for r in results:
        if not isinstance(r, Comparison):
            raise TypeError(f"results must hold only Comparison objects; got a {type(r).__name__}")
    return results


def _check_comparison(result: Any) -> Comparison:
    if not isinstance(result, Comparison):
        raise TypeError(f"result must be a Comparison (from compare(...)); got {type(result).__name__}")
    return result


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


# -- speedup against item count -----------------------------------------------------------------


def speedup_vs_items(results: Sequence[Comparison], ax: Axes | None = None) -> Figure:
    """Sequential and parallel time against item count, from a sweep over ``items``.

    Measured times are points; under the parallel ones runs the in-order schedule (what a
    semaphore of C takes with no overhead at all) as a wide pale band, so that points
    sitting exactly on it stay visible.
    """
    ordered = sorted(_check_results(results, "items"), key=lambda r: r.items)
    with course_style():
        figure, ax = _axes(ax)
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
    at every C: no schedule with that many calls in flight could finish sooner.
    """
    work = list(_check_comparison(result).item_work)
    return [makespan_lower_bound(work, c) for c in _check_limits(limits)]


def schedule_curve(result: Comparison, limits: Sequence[int]) -> list[float]:
    """The in-order schedule of ``result``'s workload at each concurrency limit in ``limits``.

    :func:`~pocket_parallel.experiment.semaphore_makespan` at every C: what a semaphore of C
    takes, items in input order, with no overhead. A virtual run lands on it exactly.
    """
    work = list(_check_comparison(result).item_work)
    return [semaphore_makespan(work, c) for c in _check_limits(limits)]


def _over(numerator: float) -> Any:
    """x -> numerator / x, for the speedup axis (the map is its own inverse); safe at x = 0."""

    def divide(x: Any) -> Any:
        return numerator / np.maximum(np.asarray(x, dtype=float), 1e-300)

    return divide


def _setup_curve_axes(ax: Axes) -> Any:
    """Log axes, labels and the right-hand speedup axis of a makespan-against-C plot."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain_log_ticks(ax.xaxis)
    plain_log_ticks(ax.yaxis)
    ax.set_xlabel("concurrency limit C (calls in flight)")
    ax.set_ylabel("makespan (s)")
    ax.grid(alpha=0.3)
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
                    markeredgecolor=_INK, markeredgewidth=2, zorder=4,
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
    now = "" if mark is None else f", now {_format.limit(current)}"
    return f"Makespan against C: N = {n} calls, {_latency_text(first)}{now}"


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
        figure, ax = _axes(ax)
        speed = _setup_curve_axes(ax)
        ax.set_title(_draw_curve(ax, speed, results, current), y=1.0)
    return figure


# -- timelines ------------------------------------------------------------------------------


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


def _draw_timeline(ax: Axes, calls: list[CallRecord], ok_color: str | None, legend: str | None = "inside",
                   kind_of: Callable[[CallRecord], str] | None = None) -> int:
    """One PolyCollection of bars per kind of call, labelled for the legend; returns the slot count.

    With ``kind_of``, successful calls are split further, one collection (and colour) per name.
    """
    rows, kinds = _slots(calls), _kinds(calls)
    slots = max(rows) + 1
    # Thin white gaps tell neighbouring bars apart; with dozens of bars in a row they would
    # hide the bars themselves.
    gap = 0.5 if len(calls) / slots <= 60 else 0.0
    half = 0.4 if slots <= 60 else 0.5
    starts = np.array([c.start for c in calls])
    ends = np.array([c.end for c in calls])
    tops, bottoms = np.array(rows) - half, np.array(rows) + half
    # Corners of every bar, shape (calls, 4, 2): one array builds all paths at once.
    corners = np.stack([np.stack([starts, tops], 1), np.stack([ends, tops], 1),
                        np.stack([ends, bottoms], 1), np.stack([starts, bottoms], 1)], 1)
    outcome_of = np.array(kinds)
    for kind in ("ok", "retried", "failed", "cancelled"):
        boxes = corners[outcome_of == kind]
        if not len(boxes):
            continue
        label, color = _KIND_STYLE[kind]
        if kind == "ok" and kind_of is not None:
            names = np.array(_groups(calls, kinds, kind_of))
            for name, group_color in zip(dict.fromkeys(n for n in names if n), KIND_COLORS):
                ax.add_collection(PolyCollection(corners[names == name], facecolors=group_color, edgecolors="white",
                                                 linewidths=gap, label=name, gid=f"calls:ok:{name}"), autolim=False)
            continue
        if kind == "ok" and ok_color:
            color = ok_color
        ax.add_collection(PolyCollection(boxes, facecolors=color, edgecolors="white", linewidths=gap,
                                         label=label, gid=f"calls:{kind}"), autolim=False)
    end = max(c.end for c in calls)
    ax.set_xlim(0, end * 1.02 if end > 0 else 1.0)
    ax.set_ylim(slots - 0.5, -0.5)
    ticks = list(range(slots)) if slots <= 10 else sorted({0, slots // 2, slots - 1})
    ax.set_yticks(ticks, [str(t + 1) for t in ticks])
    if legend == "inside":  # lower right: where a parallel run beside a sequential one leaves room
        ax.legend(loc="lower right", fontsize="small")
    elif legend == "outside":
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return slots


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
        figure, ax = _axes(ax, size=(7.0, 3.2))
        _setup_timeline_axes(ax)
        # Beside the bars on a figure of our own (its layout makes room); inside on a given ax.
        slots = _draw_timeline(ax, calls, ok_color, legend="outside" if own_figure else "inside", kind_of=kind_of)
        mean = math.fsum(c.duration for c in calls) / len(calls)
        ax.set_title(title or f"{len(calls)} calls of {_format.seconds(mean)} on average, at most {slots} in flight", y=1.0)
    return figure


def call_bars(ax: Axes) -> dict[str, int]:
    """How many call bars of each kind (``"ok"``, ``"retried"``, ``"failed"``...) a timeline drew on ``ax``."""
    counts: dict[str, int] = {}
    for collection in ax.collections:
        gid = collection.get_gid() or ""
        if gid.startswith("calls:"):
            counts[gid.split(":", 1)[1]] = len(collection.get_paths())
    return counts


def _setup_race_axes(seq_ax: Axes, par_ax: Axes) -> None:
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
        ax.axvline(result.parallel_time, color=_INK, linestyle="--", linewidth=1)
    seq_ax.annotate("parallel done", (result.parallel_time, 0.5), xycoords=("data", "axes fraction"),
                    xytext=(4, 0), textcoords="offset points", va="center", fontsize="small",
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    limit = _format.limit(result.max_concurrency)
    return (
        f"Sequential: N = {result.items} calls, {_latency_text(result)}, one at a time: {_format.seconds(result.sequential_time)}",
        f"Parallel ({limit}): {_format.seconds(result.parallel_time)}, speedup {result.speedup:.1f}x",
    )


def race_timelines(result: Comparison) -> Figure:
    """The sequential and the parallel run of one comparison, one above the other, same time axis.

    A dashed line on both marks when the parallel run finished, so the picture alone
    shows how much sooner it was.
    """
    _check_comparison(result)
    with course_style():
        figure = _new_figure((7.5, 5.0))
        seq_ax, par_ax = figure.subplots(2, 1, sharex=True, height_ratios=[1, 2.5])
        _setup_race_axes(seq_ax, par_ax)
        seq_title, par_title = _draw_race(seq_ax, par_ax, result)
        seq_ax.set_title(seq_title, y=1.0)
        par_ax.set_title(par_title, y=1.0)
    return figure


# -- the explorer's picture -----------------------------------------------------------------


class Overview:
    """Makespan against C (left) beside the race timelines (right), redrawn in place.

    The axes, their ticks and labels are made once; :meth:`update` swaps only the data, which
    is what keeps the explorer's redraw quick. ``figure`` is a :class:`CourseFigure`.
    """

    def __init__(self, size: tuple[float, float] = (11.0, 4.4), dpi: float = 80) -> None:
        with course_style():
            self.figure = _new_figure(size, layout=None)
            self.figure.set_dpi(dpi)
            # A canvas of its own keeps one renderer, whose text-size cache then lasts
            # between redraws (savefig would make a new renderer each time).
            self._canvas = FigureCanvasAgg(self.figure)
            grid = self.figure.add_gridspec(2, 2, width_ratios=[1, 1.3], height_ratios=[1, 2.6], left=0.06,
                                            right=0.99, bottom=0.11, top=0.93, wspace=0.28, hspace=0.4)
            self.curve_ax = self.figure.add_subplot(grid[:, 0])
            self.seq_ax = self.figure.add_subplot(grid[0, 1])
            self.par_ax = self.figure.add_subplot(grid[1, 1], sharex=self.seq_ax)
            self._speed = _setup_curve_axes(self.curve_ax)
            _setup_race_axes(self.seq_ax, self.par_ax)
        self.result: Comparison | None = None

    def update(self, result: Comparison, curve: Sequence[Comparison] = ()) -> "Overview":
        """Draw ``result`` (and measured points ``curve`` of the same workload at other C)."""
        _check_comparison(result)
        runs = [r for r in curve if r.max_concurrency != result.max_concurrency] + [result]
        with course_style():
            for ax in (self.curve_ax, self.seq_ax, self.par_ax):
                for artist in [*ax.lines, *ax.collections, *ax.texts]:
                    artist.remove()
                if ax.get_legend() is not None:
                    ax.get_legend().remove()
            self.curve_ax.set_title(_draw_curve(self.curve_ax, self._speed, runs, result.max_concurrency), y=1.0)
            seq_title, par_title = _draw_race(self.seq_ax, self.par_ax, result)
            self.seq_ax.set_title(seq_title, y=1.0)
            self.par_ax.set_title(par_title, y=1.0)
        self.result = result
        return self

    def png(self) -> bytes:
        """The picture as PNG bytes, quickly compressed: the explorer sends one per change."""
        with matplotlib.rc_context({"text.hinting": "no_hinting"}):  # a fifth quicker, looks the same at 80 dpi
            self._canvas.draw()
        width, height = self._canvas.get_width_height()
        image = PIL.Image.frombuffer("RGBA", (width, height), self._canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="png", compress_level=1)
        return buffer.getvalue()


def overview(result: Comparison, curve: Sequence[Comparison] = ()) -> Figure:
    """Makespan against C beside the race timelines of one comparison: the explorer's picture, once.

    ``curve`` holds runs of the same workload at other limits (``sweep("max_concurrency", ...)``),
    drawn as measured points; ``result`` is marked as the current setting.
    """
    return Overview().update(result, curve).figure


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
        figure, ax = _axes(ax, size=(6.4, 4.6))
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
