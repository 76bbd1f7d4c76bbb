"""The lecture's live race: two bars fill as the same calls run one at a time and in parallel.

:func:`race_panel` shows a :class:`RacePanel`: sliders for the number of calls and the
parallel side's limit, a button that starts a :class:`~pocket_parallel.lecture.race.Race` on
the real clock, one progress bar per side with its count and time, and a verdict computed
from the measured times when both are done. In a notebook or a Voilà app the race runs as
a task on the kernel's event loop, so the page stays live while the bars fill; outside one
(a script, a test), :meth:`RacePanel.start` runs it to the end before returning.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import ipywidgets as widgets

from .. import _format
from ..clock import run
from ..experiment import Comparison
from ..plots import PALETTE
from .race import CONCURRENCY_RANGE, ITEMS_RANGE, Race, RaceSettings

#: Seconds between two updates of the bars while a race runs.
TICK = 0.05



def verdict_html(result: Comparison) -> str:
    """What the race showed, in words computed from its measured times (seconds, ×)."""
    seq, par, speedup = result.sequential_time, result.parallel_time, result.speedup
    if speedup >= 1.1:
        head = f"Parallel finished <b>{_format.times(speedup, 1)} sooner</b>"
    elif speedup > 1 / 1.1:
        head = "Parallel took <b>about as long</b> as one at a time"
    else:
        head = f"Parallel took <b>{_format.times(1 / speedup, 1)} longer</b>"
    limit = "no limit" if result.max_concurrency is None else f"at most {result.max_concurrency} in flight"
    bound = result.lower_bound
    if bound <= max(result.item_work):
        why = "its longest call"
    elif math.isclose(bound, result.total_work / (result.max_concurrency or 1), rel_tol=1e-9):
        why = "the calls' seconds shared among the slots"
    else:
        why = "some slot must run several of the longest calls one after another"
    extra = par - bound
    more = f"{extra * 1000:.2g} ms" if extra < 0.1 else _format.seconds(extra)
    return (
        f'<div class="pp-verdict">{head}: {_format.seconds(par)} against {_format.seconds(seq)}, '
        f"both measured.<br>With {limit}, no schedule could finish before {_format.seconds(bound)} ({why}): "
        f"the parallel run took {more} more, with at most {result.peak_in_flight} calls in flight at once.</div>"
    )


class RacePanel(widgets.VBox):
    """A live race of sequential against parallel calls on the real clock, run by a button.

    Use :func:`race_panel` to make one. ``items`` and ``max_concurrency`` are sliders and
    ``unlimited`` a checkbox; ``button`` starts a race; ``bars`` and ``status`` hold each
    side's progress bar and text (keys ``"sequential"``, ``"parallel"``); ``verdict`` shows
    the outcome. ``result`` is the last race's :class:`~pocket_parallel.Comparison`
    (``clock="real"``), ``races`` counts the races finished.
    """

    def __init__(self, settings: RaceSettings) -> None:
        if not isinstance(settings, RaceSettings):
            raise TypeError(f"settings must be a RaceSettings; got {type(settings).__name__}")
        self._start_settings = settings
        limit = settings.max_concurrency
        self.items = widgets.IntSlider(settings.items, min=ITEMS_RANGE[0], max=ITEMS_RANGE[1], description="calls N",
                                       continuous_update=False)
        self.max_concurrency = widgets.IntSlider(
            limit or settings.items, min=CONCURRENCY_RANGE[0], max=CONCURRENCY_RANGE[1],
            description="parallel: C", disabled=limit is None, continuous_update=False)
        self.unlimited = widgets.Checkbox(limit is None, description="no limit", indent=False)
        self.button = widgets.Button(description="Run the race", button_style="primary", icon="play")
        self.heading = widgets.HTML()
        self.bars: dict[str, widgets.IntProgress] = {}
        self.status: dict[str, widgets.HTML] = {}
        rows = []
        for side, label in (("sequential", "one at a time"), ("parallel", "in parallel")):
            bar = widgets.IntProgress(0, min=0, max=settings.items, layout=widgets.Layout(flex="1 1 auto"),
                                      style={"bar_color": PALETTE[side]})
            status = widgets.HTML()
            name = widgets.HTML(f"<b>{label}</b>")
            self.bars[side], self.status[side] = bar, status
            row = widgets.HBox([name, bar, status], layout=widgets.Layout(align_items="center", width="100%"))
            row.add_class("pp-race-row")
            row.add_class(f"pp-race-{side}")
            rows.append(row)
        self.verdict = widgets.HTML()
        self.result: Comparison | None = None
        self.races = 0
        self._task: asyncio.Task[Comparison | None] | None = None
        controls = widgets.HBox([self.items, self.max_concurrency, self.unlimited, self.button],
                                layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        super().__init__([self.heading, controls, *rows, self.verdict],
                         layout=widgets.Layout(width="100%"))
        for widget, css in ((self, "pp-race"), (self.heading, "pp-race-heading"), (self.button, "pp-race-button"),
                            (self.verdict, "pp-race-verdict"), (self.items, "pp-race-items"),
                            (self.max_concurrency, "pp-race-concurrency"), (self.unlimited, "pp-race-unlimited")):
            widget.add_class(css)
        for control in (self.items, self.max_concurrency, self.unlimited):
            control.observe(self._settings_changed, names="value")
        self.button.on_click(lambda _button: self.start())
        self._settings_changed()

    # -- settings ---------------------------------------------------------------------------

    def settings(self) -> RaceSettings:
        """The race the controls now describe."""
        limit = None if self.unlimited.value else self.max_concurrency.value
        s = self._start_settings
        return RaceSettings(self.items.value, s.latency, s.jitter, limit, s.seed)

    def _settings_changed(self, change: Any = None) -> None:
        self.max_concurrency.disabled = self.unlimited.value or self.running
        s = self.settings()
        limit = "as many in flight as there are calls" if s.max_concurrency is None else (
            f"at most {s.max_concurrency} in flight")
        self.heading.value = (
            f'<div class="pp-race-what"><b>{s.items}</b> calls of about {s.latency:g} s each '
            f"({_format.seconds(s.sequential_estimate)} of calls in all), the same calls both ways, "
            f"both started at once on the real clock; in parallel: {limit}.</div>"
        )
        if not self.running:
            for side in self.bars:
                self.bars[side].max = s.items
                self.bars[side].value = 0
                self.status[side].value = f"0 of {s.items} calls"

    # -- running ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether a race is under way."""
        return self._task is not None and not self._task.done()

    def start(self) -> asyncio.Task[Comparison | None] | None:
        """Start a race with the current settings.

        On a running event loop (a notebook's kernel) the race becomes a task of that loop,
        returned at once; elsewhere it runs to its end first and None is returned. A press
        while a race runs does nothing.
        """
        if self.running:
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            run(self._race(), clock="real")
            return None
        self._task = loop.create_task(self._race())
        return self._task

    async def _race(self) -> Comparison | None:
        race = Race(self.settings())
        self._set_busy(True)
        self.verdict.value = ""
        loop = asyncio.get_running_loop()
        started = loop.time()
        runner = asyncio.ensure_future(race.run())
        try:
            while not runner.done():
                self._show_progress(race, loop.time() - started)
                await asyncio.wait({runner}, timeout=TICK)
            result = runner.result()
        except Exception as error:  # shown in the panel: a task's traceback would go unseen
            self.verdict.value = _format.warning_html(f"the race failed: {type(error).__name__}: {error}")
            return None
        finally:
            if not runner.done():
                runner.cancel()
                await asyncio.gather(runner, return_exceptions=True)
            self._set_busy(False)
        self._show_progress(race, loop.time() - started)
        self.result = result
        self.races += 1
        self.verdict.value = verdict_html(result)
        self.button.description = "Run again"
        return result

    def _set_busy(self, busy: bool) -> None:
        for control in (self.items, self.unlimited, self.button):
            control.disabled = busy
        self.max_concurrency.disabled = busy or self.unlimited.value
        if busy:
            self.add_class("pp-racing")
        else:
            self.remove_class("pp-racing")

    def _show_progress(self, race: Race, elapsed: float) -> None:
        done = dict(zip(("sequential", "parallel"), race.progress()))
        items = race.settings.items
        for side in ("sequential", "parallel"):
            self.bars[side].value = done[side]
            measured = race.finished.get(side)
            if measured is None:
                self.status[side].value = f"{done[side]} of {items} calls · {elapsed:.1f} s"
            else:
                self.status[side].value = f"{done[side]} of {items} calls · <b>{_format.seconds(measured)}</b>"


def race_panel(
    items: int = 12,
    latency: float = 0.4,
    jitter: float = 0.2,
    max_concurrency: int | None = None,
    seed: int = 0,
) -> RacePanel:
    """A live race for a projector: ``items`` calls of about ``latency`` s, one at a time against in parallel.

    Both sides send the same seeded calls (``jitter`` spreads their latencies; ``seed`` picks
    them) and start together when the button is pressed; the parallel side keeps at most
    ``max_concurrency`` in flight (None: no limit). Ranges: items 1-50, latency 0.05-2 s,
    jitter 0-1, max_concurrency 1-50 or None. The times shown are measured on the real clock.
    """
    return RacePanel(RaceSettings(items, latency, jitter, max_concurrency, seed))
