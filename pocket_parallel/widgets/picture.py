"""The explorer's picture: makespan against C beside both timelines, one figure updated in place.

The figure, its axes and every artist are made once; :meth:`ExplorerPicture.update` changes
their data and redraws by layers (:class:`~pocket_parallel.widgets.blit.LayeredCanvas`), each drawn
only when something in it changed:

- the static parts: frames, ticks, tick labels, axis labels and grids. Their axis limits are
  rounded out to nice steps, so most changes keep them and nothing here is drawn again;
- the workload: the reference lines, the sequential line and timeline, the speedup ticks on
  the right (they read heights as sequential time over makespan) and the sequential title;
- the setting: the measured points, the marker of the current C, the parallel timeline and
  its row numbers, the other titles and the legends.

A change of C draws only the last layer; a new workload draws the last two. Most of a
redraw's time would go to text, so what looks the same wherever it goes (a tick label on the
white margin, the "parallel done" label in its opaque box, the opaque legends, which name no
number) is a :class:`~pocket_parallel.widgets.blit.Stamp`: drawn once, then pasted. Each timeline is
one collection of bars, coloured by kind of call. It shows what
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
from matplotlib.figure import Figure
from matplotlib.markers import TICKLEFT, TICKRIGHT
from matplotlib.patches import Patch
from matplotlib.transforms import ScaledTranslation

from .. import _format
from ..experiment import Comparison, check_comparison
from ..plots.curves import bound_curve, curve_title, schedule_curve, setup_curve_axes
from ..plots.style import INK, PALETTE, CourseFigure, PlainLogLocator, course_style, new_figure
from ..plots.timelines import (
    Bars,
    CallBars,
    kind_color,
    kind_label,
    parallel_title,
    sequential_title,
    setup_race_axes,
)
from .blit import Drawable, LayeredCanvas, Stamp, png_bytes

#: Steps the curve's log axes are rounded out to: 1, 2, 5, 10, 20...
LOG_STEPS: tuple[float, ...] = (1.0, 2.0, 5.0)
#: Steps the time axis is rounded up to: fine enough that the bars fill at least 4/5 of it.
TIME_STEPS: tuple[float, ...] = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)
#: Pixels a bar must span on average before white edges part neighbouring bars: thinner
#: bars would be all edge.
MIN_GAPPED_BAR = 4.0
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
            figure = new_figure(size, layout=None)
            figure.set_dpi(dpi)
            grid = figure.add_gridspec(2, 2, width_ratios=[1, 1.3], height_ratios=[1, 2.6], left=0.06,
                                       right=0.99, bottom=0.11, top=0.93, wspace=0.28, hspace=0.4)
            self.curve_ax = figure.add_subplot(grid[:, 0])
            self.seq_ax = figure.add_subplot(grid[0, 1])
            self.par_ax = figure.add_subplot(grid[1, 1], sharex=self.seq_ax)
            setup_curve_axes(self.curve_ax, speed_axis=False)
            setup_race_axes(self.seq_ax, self.par_ax)
            self.figure: CourseFigure = figure
            self._make_artists()
        self._canvas = LayeredCanvas(figure)
        self._frame: Frame | None = None
        self._workload_drawn: tuple[object, ...] | None = None
        self._reference: tuple[tuple[object, ...], float, References] | None = None
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
        (self._now,) = ax.plot([], [], "o", markersize=11, markerfacecolor="none", markeredgecolor=INK,
                               markeredgewidth=2, zorder=4, label="now (the C in the title)")
        self._seq_bars = CallBars([], edgecolors="white", gid="calls")
        self._par_bars = CallBars([], edgecolors="white", gid="calls")
        self.seq_ax.add_collection(self._seq_bars, autolim=False)
        self.par_ax.add_collection(self._par_bars, autolim=False)
        self._done = [a.axvline(0.0, color=INK, linestyle="--", linewidth=1) for a in (self.seq_ax, self.par_ax)]
        self._done_label = self.seq_ax.annotate(
            "parallel done", (0.0, 0.5), xycoords=("data", "axes fraction"), xytext=(4, 0), textcoords="offset points",
            va="center", fontsize="small", bbox={"boxstyle": "square,pad=0.2", "facecolor": "white", "edgecolor": "none"})
        for a in (self.curve_ax, self.seq_ax, self.par_ax):
            a.set_title(" ", y=1.0)
        # Ticks that move with the data are artists of their own, drawn without the axis
        # machinery around them; the axis labels beside them stay put.
        for ax in (self.seq_ax, self.par_ax):
            ax.set_ylabel("")
            ax.set_yticks([])
        self._seq_rows = SideTicks(self.seq_ax, "left", most=10)
        self._rows = SideTicks(self.par_ax, "left", most=10)
        self._speed = SideTicks(self.curve_ax, "right", most=16)
        _axis_label(self.par_ax, "left", "slot", widest=18)  # room for "100"
        _axis_label(self.curve_ax, "right", "speedup over sequential (×)", widest=26)  # room for "5,000"

    # -- drawing ------------------------------------------------------------------------------

    def update(self, result: Comparison, curve: Sequence[Comparison] = ()) -> ExplorerPicture:
        """Draw ``result`` (and measured points ``curve`` of the same workload at other C)."""
        check_comparison(result)
        points = [check_comparison(r) for r in curve]
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
        parallel = Bars(result.trace)
        start = 2
        with course_style():
            if frame != self._frame:
                start = 0
                self.curve_ax.set_xlim(*frame.curve_x)
                self.curve_ax.set_ylim(*frame.curve_y)
                self.seq_ax.set_xlim(*frame.time_x)
                self._frame = frame
            if workload != self._workload_drawn:
                start = min(start, 1)
                self._draw_workload(result, parallel, limits, schedule, bound)
                self._workload_drawn = workload
            self._draw_setting(result, parallel, by_limit, mark)
            self._canvas.render(self._layers(), start)
        self.result = result
        return self

    def _references(self, result: Comparison, top: int) -> References:
        """The in-order schedule and the lower bound at every drawn C up to ``top``.

        A call's latency is its workload's mean latency times a factor drawn from the prompt,
        the seed and the jitter (then rounded to the microsecond), so two workloads that differ
        only in their mean latency have the same reference lines, scaled. They are computed
        once for such a family and scaled after: a change of the latency slider then costs
        no schedule at all (the lines move by at most a microsecond per call, far below a pixel).
        """
        w = result.workload
        key = (w.items, w.jitter, w.failure_rate, w.seed, result.max_retries, top)
        if self._reference is None or self._reference[0] != key:
            limits = drawn_limits(top)
            self._reference = (key, w.latency, (limits, schedule_curve(result, limits), bound_curve(result, limits)))
        _, latency, (limits, schedule, bound) = self._reference
        if latency == w.latency:
            return limits, schedule, bound
        scale = w.latency / latency
        return limits, [t * scale for t in schedule], [t * scale for t in bound]

    def _draw_workload(
        self, result: Comparison, parallel: Bars, limits: list[int], schedule: list[float], bound: list[float]
    ) -> None:
        uneven = not _equal_work(result)
        self._schedule.set_data(limits, schedule)
        self._schedule.set_label("in-order schedule, no overhead" if uneven else "best possible: ⌈N / C⌉ × L")
        self._bound.set_data(limits, bound)
        self._bound.set_visible(uneven)
        self._sequential.set_ydata([result.sequential_time] * 2)
        self._speed.show(*_speed_ticks(result.sequential_time, self.curve_ax.get_ylim()))
        bars = Bars(result.sequential_trace)
        self._seq_bars.show(bars, PALETTE["sequential"], gap=self._gap(self.seq_ax, bars))
        self.seq_ax.set_ylim(bars.slots - 0.5, -0.5)
        rows = bars.ticks()
        self._seq_rows.show(rows, [str(row + 1) for row in rows])
        self.seq_ax.title.set_text(sequential_title(result))
        handles: list[Artist] = [self._schedule, *([self._bound] if uneven else []), self._sequential,
                                 self._measured, self._now]
        labels = [str(h.get_label()) for h in handles]
        if labels != self._legend_labels(self.curve_ax):
            self.curve_ax.legend(handles, labels, fontsize="small", loc="lower left", framealpha=1.0)
        kinds = parallel.present()  # every run of a workload makes the same attempts
        labels = [kind_label(k) for k in kinds]
        if labels != self._legend_labels(self.par_ax):
            self.par_ax.legend([Patch(facecolor=kind_color(k), edgecolor="white") for k in kinds], labels,
                               loc="lower right", fontsize="small", framealpha=1.0)

    def _draw_setting(self, result: Comparison, bars: Bars, by_limit: dict[int, Comparison], mark: int) -> None:
        measured = sorted(by_limit)
        self._measured.set_data(measured, [by_limit[c].parallel_time for c in measured])
        self._mark.set_xdata([mark, mark])
        self._now.set_data([mark], [result.parallel_time])
        self.curve_ax.title.set_text(curve_title(result, result.max_concurrency))

        self._par_bars.show(bars, gap=self._gap(self.par_ax, bars))
        self.par_ax.set_ylim(bars.slots - 0.5, -0.5)
        rows = bars.ticks()
        self._rows.show(rows, [str(row + 1) for row in rows])
        self.par_ax.title.set_text(parallel_title(result))
        for line in self._done:
            line.set_xdata([result.parallel_time] * 2)
        self._done_label.xy = (result.parallel_time, 0.5)

    def _gap(self, ax: Axes, bars: Bars) -> float:
        """The white edge between neighbouring bars, or none where bars are too thin to show beside it."""
        low, high = ax.get_xlim()
        width = bars.mean * ax.get_window_extent().width / (high - low) if high > low else 0.0
        return bars.gap if width >= MIN_GAPPED_BAR else 0.0

    @staticmethod
    def _legend_labels(ax: Axes) -> list[str]:
        legend = ax.get_legend()
        return [] if legend is None else [text.get_text() for text in legend.get_texts()]

    def _layers(self) -> list[list[Drawable]]:
        legends = [Stamp(legend, ("legend", name, tuple(self._legend_labels(ax))))
                   for name, ax in (("curve", self.curve_ax), ("parallel", self.par_ax))
                   if (legend := ax.get_legend()) is not None]
        workload: list[Drawable] = [*self._speed.drawables(), self._schedule, self._bound, self._sequential,
                                    self._seq_bars, *self._seq_rows.drawables(), self.seq_ax.title]
        setting: list[Drawable] = [
            self._measured, self._mark, self._now, self.curve_ax.title,
            self._par_bars, *self._rows.drawables(), self.par_ax.title, *self._done,
            Stamp(self._done_label, ("label", "parallel done")), *legends,
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


class SideTicks:
    """Ticks with labels on one side of an axes, looking like the axis's own, at data heights that change.

    The labels are stamps: each label text is drawn once and pasted after, wherever it goes.
    """

    def __init__(self, ax: Axes, side: str, most: int) -> None:
        rc = matplotlib.rcParams
        size, pad = rc["ytick.major.size"], rc["ytick.major.pad"]
        left = side == "left"
        self.side, self.most = side, most
        along = ax.get_yaxis_transform()  # x in axes fractions, y in data
        (self.marks,) = ax.plot([], [], linestyle="none", marker=TICKLEFT if left else TICKRIGHT, markersize=size,
                                markeredgewidth=rc["ytick.major.width"], color=rc["ytick.color"], transform=along,
                                clip_on=False)
        beside = along + ScaledTranslation((-1 if left else 1) * (size + pad) / 72, 0, ax.figure.dpi_scale_trans)
        self.labels = [ax.text(0.0 if left else 1.0, 1.0, "", ha="right" if left else "left", va="center",
                               transform=beside, fontsize=rc["ytick.labelsize"], color=rc["ytick.labelcolor"],
                               visible=False) for _ in range(most)]

    def show(self, heights: Sequence[float], texts: Sequence[str]) -> None:
        """Put a tick at each of ``heights`` (in data units) labelled with the matching text."""
        if len(heights) != len(texts) or len(heights) > self.most:
            raise ValueError(f"heights and texts must pair up, at most {self.most} of them; "
                             f"got {len(heights)} and {len(texts)}")
        x = 0.0 if self.side == "left" else 1.0
        self.marks.set_data([x] * len(heights), list(heights))
        for label, height, text in zip(self.labels, heights, texts):
            label.set_text(text)
            label.set_y(height)
        for number, label in enumerate(self.labels):
            label.set_visible(number < len(heights))

    def drawables(self) -> list[Drawable]:
        """What to draw: the tick marks, then each label as a stamp."""
        return [self.marks, *(Stamp(label, ("tick", self.side, label.get_text())) for label in self.labels)]


def _axis_label(ax: Axes, side: str, text: str, widest: float) -> None:
    """A y-axis label beside :class:`SideTicks` labels at most ``widest`` points wide, as the axis would place it."""
    rc = matplotlib.rcParams
    room = rc["ytick.major.size"] + rc["ytick.major.pad"] + widest + rc["axes.labelpad"]
    shift = ScaledTranslation((-room if side == "left" else room) / 72, 0, ax.figure.dpi_scale_trans)
    ax.text(0.0 if side == "left" else 1.0, 0.5, text, rotation=90, ha="right" if side == "left" else "left",
            va="center", transform=ax.transAxes + shift, fontsize=rc["axes.labelsize"], color=rc["axes.labelcolor"])


def _speed_ticks(sequential_time: float, heights: tuple[float, float]) -> tuple[list[float], list[str]]:
    """Where the speedups 1, 2, 5, 10... sit between ``heights`` when height h reads sequential_time / h."""
    low, high = sorted(heights)
    if sequential_time <= 0 or low <= 0:
        return [], []
    speeds = PlainLogLocator().tick_values(sequential_time / high, sequential_time / low)
    return [sequential_time / s for s in speeds], [_format.plain(s) for s in speeds]


def _equal_work(result: Comparison) -> bool:
    work = result.item_work
    return bool(work) and max(work) - min(work) <= 1e-9 * max(work)


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


def overview(result: Comparison, curve: Sequence[Comparison] = ()) -> Figure:
    """Makespan against C beside the race timelines of one comparison: the explorer's picture, once.

    ``curve`` holds runs of the same workload at other limits (``sweep("max_concurrency", ...)``),
    drawn as measured points; ``result`` is marked as the current setting.
    """
    return ExplorerPicture().update(result, curve).figure
