"""The lecture's throughput knee: completed calls per second against C, for a server with a limit.

:func:`knee_panel` shows a :class:`KneePanel`: a slider for the server's limit on calls in
flight, the curve of :func:`~pocket_parallel.measure_throughput` (on the virtual clock, so it
is exact and instant) drawn by :func:`~pocket_parallel.plots.plot_throughput` in large type,
and a line naming the knee (:func:`~pocket_parallel.find_knee`) with what lies beyond it.
Each limit is measured once; moving the slider back shows the kept picture.
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as widgets
import matplotlib

from .._validate import check_int, check_real
from ..plots import new_figure, plot_throughput
from ..throughput import ThroughputPoint, check_concurrency_values, find_knee, measure_throughput
from .style import FIGURE_RC, figure_png

#: The client concurrencies measured for each server limit.
CONCURRENCY = (1, 2, 4, 8, 16, 32, 64)
#: The server limits the slider offers.
LIMIT_RANGE = (1, 32)


def knee_html(points: Sequence[ThroughputPoint]) -> str:
    """One line: the knee's C and throughput, the bound there, and what the largest C got instead."""
    knee = find_knee(points)
    last = max(points, key=lambda p: p.concurrency)
    text = (f"<b>Knee at C = {knee.concurrency}</b>: {knee.throughput:.3g} calls/s "
            f"(no client gets more than {knee.max_throughput:.3g} calls/s there).")
    if last.concurrency > knee.concurrency:
        lost = f", and {last.failed} items failed for good" if last.failed else ""
        text += (f" At C = {last.concurrency}: {last.throughput:.3g} calls/s, "
                 f"with {last.rate_limited:,} requests refused (429){lost}.")
    return f'<div class="pp-knee-summary">{text}</div>'


class KneePanel(widgets.VBox):
    """Throughput against client concurrency C for a server that serves ``limit`` calls at once.

    Use :func:`knee_panel` to make one. ``limit`` is the server-limit slider, ``summary`` the
    line naming the knee, ``picture`` the figure; ``points`` are the current limit's
    :class:`~pocket_parallel.throughput.ThroughputPoint` values.
    """

    def __init__(self, server_limit: int, items: int, latency: float, concurrency: Sequence[int]) -> None:
        self._items = check_int("items", items, low=1, high=2_000)
        self._latency = check_real("latency", latency, low=0.0, high=60.0, low_open=True)
        self._concurrency = check_concurrency_values(concurrency)
        limit = check_int("server_limit", server_limit, low=LIMIT_RANGE[0], high=LIMIT_RANGE[1])
        self.limit = widgets.IntSlider(limit, min=LIMIT_RANGE[0], max=LIMIT_RANGE[1],
                                       description="server limit", continuous_update=False)
        self.summary = widgets.HTML()
        self.picture = widgets.Image(format="png", layout=widgets.Layout(width="100%", height="auto"))
        self.points: list[ThroughputPoint] = []
        self._kept: dict[int, tuple[list[ThroughputPoint], bytes]] = {}
        explain = widgets.HTML(
            f'<div class="pp-knee-what">{self._items} calls of {self._latency:g} s at each C, against a server that '
            "serves at most <i>server limit</i> calls at once and refuses the rest (429); refused calls back off "
            "and retry. Measured on the virtual clock.</div>")
        super().__init__([explain, self.limit, self.summary, self.picture], layout=widgets.Layout(width="100%"))
        for widget, css in ((self, "pp-knee"), (self.limit, "pp-knee-limit"), (self.summary, "pp-knee-line"),
                            (self.picture, "pp-figure")):
            widget.add_class(css)
        self.limit.observe(lambda _change: self.refresh(), names="value")
        self.refresh()

    def refresh(self) -> None:
        """Measure the slider's limit (once per limit) and show its curve and knee."""
        limit = self.limit.value
        if limit not in self._kept:
            points = measure_throughput(self._concurrency, self._items, latency=self._latency,
                                        max_concurrent=limit, clock="virtual")
            self._kept[limit] = (points, self._draw(points))
        self.points, png = self._kept[limit]
        self.summary.value = knee_html(self.points)
        self.picture.value = png

    @staticmethod
    def _draw(points: list[ThroughputPoint]) -> bytes:
        with matplotlib.rc_context(FIGURE_RC):
            figure = new_figure((12.0, 4.8))
            plot_throughput(points, ax=figure.add_subplot())
            return figure_png(figure)


def knee_panel(
    server_limit: int = 8,
    items: int = 200,
    latency: float = 1.0,
    concurrency: Sequence[int] = CONCURRENCY,
) -> KneePanel:
    """The throughput knee for a projector: a server-limit slider over the measured curve.

    ``items`` calls of ``latency`` seconds are sent at each client concurrency in
    ``concurrency`` against a simulated server that serves at most ``server_limit`` at once
    (1-32, the slider's range); items 1-2,000, latency in (0, 60] s.
    """
    return KneePanel(server_limit, items, latency, concurrency)
