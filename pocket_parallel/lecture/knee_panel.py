"""The lecture's throughput knee: completed calls per second and latency against C, for a self-hosted server.

:func:`knee_panel` shows a :class:`KneePanel`: a slider for the slots of a self-hosted server
(the ``self-hosted`` profile: it decodes at most that many calls together and queues the rest,
never refusing, each token slower the fuller its batch), the curve of
:func:`~pocket_parallel.measure_throughput` (on the virtual clock, so it is exact and instant)
drawn by :func:`~pocket_parallel.plots.plot_throughput` in large type, and a line naming the
knee (:func:`~pocket_parallel.find_knee`) with what lies beyond it. Each number of slots is
measured once; moving the slider back shows the kept picture.
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as widgets
import matplotlib

from .._validate import check_int
from ..plots import new_figure, plot_throughput
from ..throughput import ThroughputPoint, check_concurrency_values, find_knee, measure_throughput
from .style import FIGURE_RC, figure_png

#: The client concurrencies measured for each number of slots.
CONCURRENCY = (1, 2, 4, 8, 16, 32, 64)
#: The slots the slider offers.
SLOTS_RANGE = (1, 32)


def knee_html(points: Sequence[ThroughputPoint]) -> str:
    """One line: the knee's C and throughput, the bound there, and what the largest C got instead."""
    knee = find_knee(points)
    last = max(points, key=lambda p: p.concurrency)
    text = (f"<b>Knee at C = {knee.concurrency}</b>: {knee.throughput:.3g} calls/s "
            f"(no client gets more than {knee.max_throughput:.3g} calls/s there).")
    if last.concurrency > knee.concurrency:
        text += f" At C = {last.concurrency}: {last.throughput:.3g} calls/s"
        if last.mean_latency is not None and knee.mean_latency is not None:
            text += f", each call {last.mean_latency:.3g} s from request to answer instead of {knee.mean_latency:.3g} s"
        if last.rate_limited:
            text += f", with {last.rate_limited:,} requests refused (429)"
        if last.failed:
            text += f", and {last.failed} items failed for good"
        text += "."
    return f'<div class="pp-knee-summary">{text}</div>'


class KneePanel(widgets.VBox):
    """Throughput and latency against client concurrency C for a self-hosted server with ``slots``.

    Use :func:`knee_panel` to make one. ``slots`` is the slider, ``summary`` the line naming
    the knee, ``picture`` the figure; ``points`` are the current slots'
    :class:`~pocket_parallel.throughput.ThroughputPoint` values.
    """

    def __init__(self, slots: int, items: int, concurrency: Sequence[int]) -> None:
        self._items = check_int("items", items, low=1, high=2_000)
        self._concurrency = check_concurrency_values(concurrency)
        count = check_int("slots", slots, low=SLOTS_RANGE[0], high=SLOTS_RANGE[1])
        self.slots = widgets.IntSlider(count, min=SLOTS_RANGE[0], max=SLOTS_RANGE[1],
                                       description="server slots", continuous_update=False)
        self.summary = widgets.HTML()
        self.picture = widgets.Image(format="png", layout=widgets.Layout(width="100%", height="auto"))
        self.points: list[ThroughputPoint] = []
        self._kept: dict[int, tuple[list[ThroughputPoint], bytes]] = {}
        explain = widgets.HTML(
            f'<div class="pp-knee-what">{self._items} calls at each C, against a self-hosted server that decodes at '
            "most <i>server slots</i> calls together and queues the rest, never refusing; each token takes longer "
            "the fuller the batch. Measured on the virtual clock.</div>")
        super().__init__([explain, self.slots, self.summary, self.picture], layout=widgets.Layout(width="100%"))
        for widget, css in ((self, "pp-knee"), (self.slots, "pp-knee-slots"), (self.summary, "pp-knee-line"),
                            (self.picture, "pp-figure")):
            widget.add_class(css)
        self.slots.observe(lambda _change: self.refresh(), names="value")
        self.refresh()

    def refresh(self) -> None:
        """Measure the slider's slots (once per number of slots) and show its curve and knee."""
        slots = self.slots.value
        if slots not in self._kept:
            points = measure_throughput(self._concurrency, self._items, profile="self-hosted", slots=slots,
                                        clock="virtual")
            self._kept[slots] = (points, self._draw(points))
        self.points, png = self._kept[slots]
        self.summary.value = knee_html(self.points)
        self.picture.value = png

    @staticmethod
    def _draw(points: list[ThroughputPoint]) -> bytes:
        with matplotlib.rc_context(FIGURE_RC):
            figure = new_figure((12.0, 4.8))
            plot_throughput(points, ax=figure.add_subplot())
            return figure_png(figure)


def knee_panel(
    slots: int = 8,
    items: int = 200,
    concurrency: Sequence[int] = CONCURRENCY,
) -> KneePanel:
    """The throughput knee for a projector: a slider for a self-hosted server's slots over the measured curve.

    ``items`` calls are sent at each client concurrency in ``concurrency`` against a
    simulated self-hosted server (the ``self-hosted`` profile) with ``slots`` slots (1-32, the
    slider's range); items 1-2,000.
    """
    return KneePanel(slots, items, concurrency)
