"""The explorer's picture: makespan against C beside both timelines, one figure updated in place.

The figure, its axes and every artist are made once; :meth:`ExplorerPicture.update` changes
their data and redraws by layers (:class:`~pocket_parallel.blit.LayeredCanvas`), each drawn
only when something in it changed:

- the static parts: frames, ticks, tick labels, axis labels and grids. Their axis limits are
  rounded out to nice steps, so most changes keep them and nothing here is drawn again;
- the workload: the reference lines, the sequential line and timeline, the speedup axis
  (it reads heights as sequential time over makespan) and the sequential title;
- the setting: the measured points, the marker of the current C, the parallel timeline and
  the other titles.

The two legends are opaque and name no number, so their pixels are kept and pasted on top
(:class:`~pocket_parallel.blit.Sticker`): each is drawn once for every set of entries.

A change of C draws only the last layer; a new workload draws the last two. Each timeline
is one collection of bars, coloured by kind of call. It shows what
:func:`~pocket_parallel.plots.makespan_vs_concurrency` and
:func:`~pocket_parallel.plots.race_timelines` show, side by side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import PIL.Image
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.markers import TICKLEFT
from matplotlib.patches import Patch
from matplotlib.transforms import ScaledTranslation

from . import _format
from .blit import LayeredCanvas, Sticker, png_bytes
from .experiment import Comparison
from .plots import (
    _INK,
    PALETTE,
    Bars,
    CallBars,
    CourseFigure,
    _check_comparison,
    _new_figure,
    _setup_curve_axes,
    _setup_race_axes,
    _over,
    bound_curve,
    course_style,
    curve_title,
    kind_color,
    kind_label,
    parallel_title,
    schedule_curve,
    sequential_title,
)

#: Steps the curve's log axes are rounded out to: 1, 2, 5, 10, 20...
LOG_STEPS: tuple[float, ...] = (1.0, 2.0, 5.0)
#: Steps the time axis is rounded up to: fine enough that the bars fill at least 4/5 of it.
TIME_STEPS: tuple[float, ...] = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)
#: Up to this C the reference lines are computed at every integer; above it, at C steps of
#: 2 %, about one pixel apart on the log axis (each point still exact).
DENSE_LIMITS = 50


def nice_ceiling(value: float, steps: Sequence[float]) -> float:
    """The smallest ``s × 10^k`` at or above ``value`` (> 0), for ``s`` in ``steps`` (each in [1, 10))."""
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"value must be a finite number > 0; got {value!r}")
    decade = math.floor(math.log10(value))
    for power in (decade - 1, decade, decade + 1):
        for step in steps:
            candidate = step * 10.0**power
            if candidate >= value * (1 - 1e-12):
                return candidate
    return 10.0 ** (decade + 2)


def nice_floor(value: float, steps: Sequence[float]) -> float:
    """The largest ``s × 10^k`` at or below ``value`` (> 0), for ``s`` in ``steps`` (each in [1, 10))."""
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"value must be a finite number > 0; got {value!r}")
    decade = math.floor(math.log10(value))
    for power in (decade + 1, decade, decade - 1):
        for step in sorted(steps, reverse=True):
            candidate = step * 10.0**power
            if candidate <= value * (1 + 1e-12):
                return candidate
    return 10.0 ** (decade - 1)


def drawn_limits(top: int) -> list[int]:
    """The C values the reference lines are computed at, from 1 to ``top``: see :data:`DENSE_LIMITS`."""
    limits = list(range(1, min(DENSE_LIMITS, top) + 1))
    while limits[-1] < top:
        limits.append(min(top, max(limits[-1] + 1, round(limits[-1] * 1.02))))
    return limits


References = tuple[list[int], list[float], list[float]]
"""The C values the reference lines are drawn at, the in-order schedule and the lower bound there."""


@dataclass(frozen=True)
class Frame:
    """The axis limits the static parts are drawn for."""

    curve_x: tuple[float, float]
    curve_y: tuple[float, float]
    time_x: tuple[float, float]


class ExplorerPicture:
    """Makespan against C (left) beside the sequential and parallel timelines (right), redrawn in place.

    :meth:`update` draws a comparison and measured points of its workload at other C;
    :meth:`png` is the picture as PNG bytes. ``figure`` is a :class:`~pocket_parallel.plots.CourseFigure`
    that also shows itself whole (``figure.savefig``, or as a cell's result). ``renders[k]``
    counts redraws that started at layer k (0: the static parts, 1: the workload, 2: the setting).
    """

    def __init__(self, size: tuple[float, float] = (11.0, 4.4), dpi: float = 80) -> None:
        with course_style():
            figure = _new_figure(size, layout=None)
            figure.set_dpi(dpi)
            grid = figure.add_gridspec(2, 2, width_ratios=[1, 1.3], height_ratios=[1, 2.6], left=0.06,
                                       right=0.99, bottom=0.11, top=0.93, wspace=0.28, hspace=0.4)
            self.curve_ax = figure.add_subplot(grid[:, 0])
            self.seq_ax = figure.add_subplot(grid[0, 1])
            self.par_ax = figure.add_subplot(grid[1, 1], sharex=self.seq_ax)
            self._speed = _setup_curve_axes(self.curve_ax)
            _setup_race_axes(self.seq_ax, self.par_ax)
            self.figure: CourseFigure = figure
            self._make_artists()
        self._canvas = LayeredCanvas(figure)
        self._frame: Frame | None = None
        self._workload_drawn: tuple[object, ...] | None = None
        self._reference: tuple[tuple[object, ...], References] | None = None
        self.result: Comparison | None = None

    def _make_artists(self) -> None:
        ax, reference = self.curve_ax, PALETTE["reference"]
        (self._schedule,) = ax.plot([], [], "-", color=reference, linewidth=1.5)
        (self._bound,) = ax.plot([], [], ":", color=reference, linewidth=1.5, label="lower bound: no schedule is faster")
        self._sequential = ax.axhline(1.0, color=PALETTE["sequential"], linestyle=":", linewidth=2,
                                      label="sequential (one at a time)")
        (self._measured,) = ax.plot([], [], "s", color=PALETTE["parallel"], markersize=6, label="parallel (measured)",
                                    zorder=3)
        self._mark = ax.axvline(1.0, color=PALETTE["marker"], linestyle="--", linewidth=1)
        (self._now,) = ax.plot([], [], "o", markersize=11, markerfacecolor="none", markeredgecolor=_INK,
                               markeredgewidth=2, zorder=4, label="now (the C in the title)")
        self._seq_bars = CallBars([], edgecolors="white", gid="calls")
        self._par_bars = CallBars([], edgecolors="white", gid="calls")
        self.seq_ax.add_collection(self._seq_bars, autolim=False)
        self.par_ax.add_collection(self._par_bars, autolim=False)
        self._done = [a.axvline(0.0, color=_INK, linestyle="--", linewidth=1) for a in (self.seq_ax, self.par_ax)]
        self._done_label = self.seq_ax.annotate(
            "parallel done", (0.0, 0.5), xycoords=("data", "axes fraction"), xytext=(4, 0), textcoords="offset points",
            va="center", fontsize="small",
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
        self.seq_ax.set_ylim(0.5, -0.5)
        for a in (self.curve_ax, self.seq_ax, self.par_ax):
            a.set_title(" ", y=1.0)
        # The parallel timeline's rows change with C: its row numbers are artists of their own,
        # drawn without the axis machinery around them; its axis label stays put.
        self.par_ax.set_ylabel("")
        self.par_ax.set_yticks([])
        self._slot_label = self.par_ax.text(-0.075, 0.5, "slot", rotation=90, va="center", ha="center",
                                            transform=self.par_ax.transAxes, fontsize=matplotlib.rcParams["axes.labelsize"])
        self._rows = RowNumbers(self.par_ax)

    # -- drawing ------------------------------------------------------------------------------

    def update(self, result: Comparison, curve: Sequence[Comparison] = ()) -> ExplorerPicture:
        """Draw ``result`` (and measured points ``curve`` of the same workload at other C)."""
        _check_comparison(result)
        points = [_check_comparison(r) for r in curve]
        runs = [r for r in points if r.max_concurrency != result.max_concurrency] + [result]
        for r in runs:
            if (r.workload, r.max_retries) != (result.workload, result.max_retries):
                raise ValueError(
                    "results must all come from one workload (same items, latency, jitter, failure_rate "
                    "and seed), as sweep('max_concurrency', ...) returns them"
                )
        n = result.items
        mark = result.max_concurrency or n  # an unlimited run sits at C = N
        top = int(nice_ceiling(max(n, mark, 2), LOG_STEPS))
        limits, schedule, bound = self._references(result, top)
        by_limit = {r.max_concurrency or n: r for r in runs}  # the last run at a C wins: the current one
        measured = sorted(by_limit)
        heights = [by_limit[c].parallel_time for c in measured] + [result.sequential_time, *schedule, *bound]
        positive = [h for h in heights if h > 0] or [1.0]
        bars_end = max(result.sequential_time, result.parallel_time) * 1.02
        frame = Frame(
            curve_x=(0.8, top * 1.25),
            curve_y=(nice_floor(min(positive) / 1.4, LOG_STEPS), nice_ceiling(max(positive) * 1.4, LOG_STEPS)),
            time_x=(0.0, nice_ceiling(bars_end, TIME_STEPS) if bars_end > 0 else 1.0),
        )
        workload = (frame, result.workload, result.max_retries, result.sequential_time)
        start = 2
        with course_style():
            if workload != self._workload_drawn:
                start = 1
                self._draw_workload(result, limits, schedule, bound)
                self._workload_drawn = workload
            if frame != self._frame:
                start = 0
                self.curve_ax.set_xlim(*frame.curve_x)
                self.curve_ax.set_ylim(*frame.curve_y)
                self.seq_ax.set_xlim(*frame.time_x)
                self._frame = frame
            self._draw_setting(result, by_limit, mark)
            self._canvas.render(self._layers(), start, self._stickers())
        self.result = result
        return self

    def _references(self, result: Comparison, top: int) -> References:
        """The in-order schedule and the lower bound at every drawn C up to ``top``, kept per workload."""
        key = (result.workload, result.max_retries, top)
        if self._reference is None or self._reference[0] != key:
            limits = drawn_limits(top)
            self._reference = (key, (limits, schedule_curve(result, limits), bound_curve(result, limits)))
        return self._reference[1]

    def _draw_workload(self, result: Comparison, limits: list[int], schedule: list[float], bound: list[float]) -> None:
        uneven = not _equal_work(result)
        self._schedule.set_data(limits, schedule)
        self._schedule.set_label("in-order schedule, no overhead" if uneven else "best possible: ⌈N / C⌉ × L")
        self._bound.set_data(limits, bound)
        self._bound.set_visible(uneven)
        self._sequential.set_ydata([result.sequential_time] * 2)
        if result.sequential_time > 0:
            self._speed.set_functions((_over(result.sequential_time), _over(result.sequential_time)))
        bars = Bars(result.sequential_trace)
        _set_bars(self._seq_bars, bars, PALETTE["sequential"])
        ticks = bars.ticks()
        self.seq_ax.set_ylim(bars.slots - 0.5, -0.5)
        self.seq_ax.set_yticks(ticks, [str(t + 1) for t in ticks])
        self.seq_ax.title.set_text(sequential_title(result))
        handles: list[Artist] = [self._schedule, *([self._bound] if uneven else []), self._sequential,
                                 self._measured, self._now]
        labels = [str(h.get_label()) for h in handles]
        if labels != self._legend_labels(self.curve_ax):
            self.curve_ax.legend(handles, labels, fontsize="small", loc="lower left", framealpha=1.0)
        kinds = Bars(result.trace).present()  # every run of a workload makes the same attempts
        labels = [kind_label(k) for k in kinds]
        if labels != self._legend_labels(self.par_ax):
            self.par_ax.legend([Patch(facecolor=kind_color(k), edgecolor="white") for k in kinds], labels,
                               loc="lower right", fontsize="small", framealpha=1.0)

    def _draw_setting(self, result: Comparison, by_limit: dict[int, Comparison], mark: int) -> None:
        measured = sorted(by_limit)
        self._measured.set_data(measured, [by_limit[c].parallel_time for c in measured])
        self._mark.set_xdata([mark, mark])
        self._now.set_data([mark], [result.parallel_time])
        self.curve_ax.title.set_text(curve_title(result, result.max_concurrency))

        bars = Bars(result.trace)
        _set_bars(self._par_bars, bars, None)
        self.par_ax.set_ylim(bars.slots - 0.5, -0.5)
        self._rows.show(bars.ticks())
        self.par_ax.title.set_text(parallel_title(result))
        for line in self._done:
            line.set_xdata([result.parallel_time] * 2)
        self._done_label.xy = (result.parallel_time, 0.5)

    @staticmethod
    def _legend_labels(ax: Axes) -> list[str]:
        legend = ax.get_legend()
        return [] if legend is None else [text.get_text() for text in legend.get_texts()]

    def _stickers(self) -> list[Sticker]:
        return [Sticker(legend, (name, tuple(self._legend_labels(ax))))
                for name, ax in (("curve", self.curve_ax), ("parallel", self.par_ax))
                if (legend := ax.get_legend()) is not None]

    def _layers(self) -> list[list[Artist]]:
        workload: list[Artist] = [self._speed, self._schedule, self._bound, self._sequential, self._seq_bars,
                                  self.seq_ax.yaxis, self.seq_ax.title]
        setting: list[Artist] = [
            self._measured, self._mark, self._now, self.curve_ax.title,
            self._par_bars, *self._rows.artists(), self.par_ax.title, *self._done, self._done_label,
        ]
        return [workload, setting]

    # -- output -------------------------------------------------------------------------------

    @property
    def renders(self) -> dict[int, int]:
        """How many redraws started at each layer: 0 the static parts, 1 the workload, 2 the setting."""
        return dict(self._canvas.renders)

    def png(self) -> bytes:
        """The picture as PNG bytes, quickly compressed: the explorer sends one per change."""
        if self.result is None:
            raise RuntimeError("nothing drawn yet: call update(result) first")
        return self._canvas.png()

    def still(self, caption: str = "") -> bytes:
        """The picture as a small PNG to store in a notebook, with ``caption`` on a line above it.

        Compressed harder than :meth:`png` and reduced to a palette of 64 colours, which keeps
        the lines and text crisp: it is made once, when the explorer is shown.
        """
        if self.result is None:
            raise RuntimeError("nothing drawn yet: call update(result) first")
        image = PIL.Image.fromarray(self._canvas.pixels())
        if caption:
            image = _stack(_caption_image(caption, image.width, self.figure.dpi), image)
        return png_bytes(image.quantize(64, method=PIL.Image.Quantize.MEDIANCUT), compress_level=9)


class RowNumbers:
    """Numbered ticks on the left of a timeline, looking like the axis's own, at most ten of them."""

    MOST = 10

    def __init__(self, ax: Axes) -> None:
        rc = matplotlib.rcParams
        size, pad = rc["ytick.major.size"], rc["ytick.major.pad"]
        along = ax.get_yaxis_transform()  # x in axes fractions, y in data
        (self.marks,) = ax.plot([], [], linestyle="none", marker=TICKLEFT, markersize=size,
                                markeredgewidth=rc["ytick.major.width"], color=rc["ytick.color"], transform=along,
                                clip_on=False)
        beside = along + ScaledTranslation(-(size + pad) / 72, 0, ax.figure.dpi_scale_trans)
        self.labels = [ax.text(0, 0, "", ha="right", va="center", transform=beside, fontsize=rc["ytick.labelsize"],
                               color=rc["ytick.labelcolor"], visible=False) for _ in range(self.MOST)]

    def show(self, rows: list[int]) -> None:
        """Mark ``rows`` (counted from 0) and number them from 1."""
        if len(rows) > self.MOST:
            raise ValueError(f"rows must hold at most {self.MOST} rows to number; got {len(rows)}")
        self.marks.set_data([0.0] * len(rows), rows)
        for label, row in zip(self.labels, rows):
            label.set_text(str(row + 1))
            label.set_y(row)
        for number, label in enumerate(self.labels):
            label.set_visible(number < len(rows))

    def artists(self) -> list[Artist]:
        """What to draw: the tick marks and every label."""
        return [self.marks, *self.labels]


def _equal_work(result: Comparison) -> bool:
    work = result.item_work
    return bool(work) and max(work) - min(work) <= 1e-9 * max(work)


def _set_bars(collection: CallBars, bars: Bars, ok_color: str | None) -> None:
    corners: Any = bars.corners  # an (n, 4, 2) array: set_verts builds every path at once
    collection.set_verts(corners)
    collection.set_facecolor(bars.colors(ok_color))
    collection.set_linewidth(bars.gap)
    collection.kinds = bars.kinds


def _caption_image(text: str, width: int, dpi: float) -> PIL.Image.Image:
    """One line of small text on white, ``width`` pixels wide."""
    height = 0.3  # inches
    with course_style():
        figure = CourseFigure(figsize=(width / dpi, height), dpi=dpi)
        figure.text(0.01, 0.5, text, va="center", ha="left", fontsize="small")
        canvas: Any = FigureCanvasAgg(figure)
        canvas.draw()
    pixels = canvas.buffer_rgba()
    size = canvas.get_width_height()
    return PIL.Image.frombuffer("RGBA", size, pixels, "raw", "RGBA", 0, 1).convert("RGB")


def _stack(top: PIL.Image.Image, bottom: PIL.Image.Image) -> PIL.Image.Image:
    image = PIL.Image.new("RGB", (max(top.width, bottom.width), top.height + bottom.height), "white")
    image.paste(top, (0, 0))
    image.paste(bottom, (0, top.height))
    return image
