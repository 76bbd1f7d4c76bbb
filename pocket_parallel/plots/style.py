"""The course's figure style: colours, a white background with dark text, plain numbers on log axes.

Figures made here have a white background and dark text of their own, so they read the
same in light and dark JupyterLab themes; colours come from the Okabe-Ito palette, which
stays distinguishable with every common form of colour blindness. Log axes read 1, 2, 5,
10, 20... rather than 10^0, 10^1.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator
from typing import Any, Literal

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, Locator, NullLocator

from .. import _format

# Okabe-Ito: distinguishable with every common form of colour blindness, on light and dark.
PALETTE = {
    "sequential": "#E69F00",
    "parallel": "#0072B2",
    "reference": "#009E73",
    "retry": "#CC79A7",
    "failed": "#D55E00",
    "marker": "#999999",
}

INK = "#222222"  # text and the current-setting marker: near-black on the white background

# Explicit light colours: a dark JupyterLab theme (or a dark matplotlib style) must not turn
# the background black while the text stays black.
_STYLE: dict[Any, Any] = {
    "figure.facecolor": "white",
    "figure.edgecolor": "white",
    "savefig.facecolor": "white",
    "axes.facecolor": "white",
    "axes.edgecolor": "#333333",
    "axes.labelcolor": INK,
    "axes.titlecolor": INK,
    "axes.titlesize": "medium",
    "text.color": INK,
    "xtick.color": "#333333",
    "ytick.color": "#333333",
    "xtick.labelcolor": INK,
    "ytick.labelcolor": INK,
    "grid.color": "#b0b0b0",
    "legend.facecolor": "white",
    "legend.edgecolor": "#cccccc",
    "legend.framealpha": 0.9,
    "legend.labelcolor": INK,
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


def new_figure(size: tuple[float, float], layout: Literal["constrained"] | None = "constrained") -> CourseFigure:
    """A course-styled figure of ``size`` inches, not registered with pyplot."""
    with course_style():
        return CourseFigure(figsize=size, layout=layout, facecolor="white")


def axes_or_new(ax: Axes | None, size: tuple[float, float] = (6.4, 4.0)) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new figure of ``size`` with one axes when ``ax`` is None."""
    if ax is not None:
        if not isinstance(ax, Axes):
            raise TypeError(f"ax must be a matplotlib Axes or None; got {type(ax).__name__}")
        return ax.figure, ax  # type: ignore[return-value]
    figure = new_figure(size)
    return figure, figure.add_subplot()


# -- plain numbers on log axes --------------------------------------------------------------


class PlainLogLocator(Locator):
    """Ticks at 1, 2, 5, 10, 20, 50...; on ranges too short for three of those, at each 1-9 x 10^k.

    No minor ticks: every tick is several artists to draw, and the explorer redraws often.
    """

    def __call__(self) -> list[float]:
        if self.axis is None:  # not attached to an axis yet: no view to place ticks in
            return []
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
    axis.set_major_locator(PlainLogLocator())
    axis.set_minor_locator(NullLocator())
    axis.set_major_formatter(_PlainFormatter())


