"""The live explorer: sliders that re-race sequential against parallel calls and redraw at once.

``explorer()`` returns an ipywidgets box (standard ipywidgets 8 controls only, so it runs in
JupyterLab, Notebook 7, VS Code and Colab). Every change re-runs the real PocketFlow nodes
of :func:`~pocket_parallel.compare` on the simulated LLM in virtual time and redraws the
makespan-against-C curve, both timelines and a one-line summary.

The :class:`Explorer` ties three parts together, one module each:

- :mod:`~pocket_parallel.widgets.controls`: the sliders and boxes, typed values, checks;
- :mod:`~pocket_parallel.widgets.runs`: every race run so far, per workload, so the
  sequential run happens once per workload and a setting seen before is not run again;
- :mod:`~pocket_parallel.widgets.picture`: one figure, redrawn by layers.

In a notebook the curve's other points are measured after the picture of the current
setting is sent, one per turn of the kernel's event loop, so they never hold it up.
``redraw_times`` keeps how long each change took until its picture was ready.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import time
from typing import Any

import ipywidgets as widgets

from .. import _format
from .._validate import check_real
from ..backends.workload import Workload
from ..experiment import Comparison
from .controls import Controls, check_start
from .picture import ExplorerPicture
from .runs import CURVE_LIMITS, RunCache, RunKey, curve_limits

__all__ = ["CURVE_LIMITS", "Explorer", "explorer"]

_NOTE_STYLE = "opacity:0.75;font-size:90%"


class Explorer(widgets.VBox):
    """Sliders for item count, semaphore size, latency and jitter over a live race picture.

    Use :func:`explorer` to make one. The controls are attributes, so code can set them:
    ``items``, ``max_concurrency`` (1..100), ``unlimited`` (a checkbox), ``latency``,
    ``jitter``, ``failure_rate`` (shown only when failures are on) and the ``texts`` boxes
    (one per setting, plus ``seed``) where exact values can be typed. ``result`` is the
    latest :class:`~pocket_parallel.Comparison`, equal to what ``compare(**settings())``
    returns. ``summary``, ``message``, ``note`` and ``picture`` are the display widgets;
    ``redraw_times`` holds the seconds each change took until its picture was drawn. Shown
    as a cell's result, it also carries a still PNG of its first picture, which notebook
    viewers without the live widget show instead.
    """

    def __init__(
        self,
        items: int = 50,
        max_concurrency: int | None = 10,
        latency: float = 1.0,
        jitter: float = 0.3,
        failure_rate: float = 0.0,
        seed: int = 0,
        *,
        items_range: tuple[int, int] = (1, 500),
        concurrency_range: tuple[int, int] = (1, 100),
        latency_range: tuple[float, float] = (0.05, 5.0),
        jitter_range: tuple[float, float] = (0.0, 1.0),
        failure_range: tuple[float, float] = (0.0, 0.5),
        show_failures: bool | None = None,
        max_retries: int = 3,
        picture_dpi: float = 80,
    ) -> None:
        dpi = check_real("picture_dpi", picture_dpi, low=40, high=300)
        start = check_start(
            items, max_concurrency, latency, jitter, failure_rate, seed, items_range=items_range,
            concurrency_range=concurrency_range, latency_range=latency_range, jitter_range=jitter_range,
            failure_range=failure_range, show_failures=show_failures, max_retries=max_retries,
        )
        self._controls = Controls(start, on_change=self.refresh, on_refused=self._show_error)
        c = self._controls
        self.items, self.max_concurrency, self.unlimited = c.items, c.max_concurrency, c.unlimited
        self.latency, self.jitter, self.failure_rate, self.texts = c.latency, c.jitter, c.failure_rate, c.texts
        self.summary = widgets.HTML()
        self.message = widgets.HTML()
        self.note = widgets.HTML()
        self.picture = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        self.redraw_times: collections.deque[float] = collections.deque(maxlen=500)
        self.result: Comparison | None = None
        self._runs = RunCache()
        self._view = ExplorerPicture(dpi=dpi)
        self._fill_pending: asyncio.Handle | None = None
        super().__init__([c.box, self.summary, self.message, self.note, self.picture])
        for widget, css in ((self, "pp-explorer"), (self.summary, "pp-summary"), (self.message, "pp-message"),
                            (self.note, "pp-note"), (self.picture, "pp-picture")):
            widget.add_class(css)
        self.refresh()

    # -- settings -----------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """The keyword arguments of :func:`~pocket_parallel.compare` the controls now stand for."""
        return self._controls.settings()

    def __repr__(self) -> str:
        # Short and stable: notebooks store this text, and the default repr lists every control.
        settings = ", ".join(f"{name}={value!r}" for name, value in self.settings().items())
        return f"Explorer({settings})"

    def _key(self) -> RunKey:
        s = self.settings()
        workload = Workload(s["items"], s["latency"], s["jitter"], s["failure_rate"], s["seed"])
        return RunKey(workload, s["max_retries"])

    def _show_error(self, text: str) -> None:
        self.message.value = _format.warning_html(text)

    # -- running and drawing ----------------------------------------------------------------

    def refresh(self) -> None:
        """Run the current settings (or take them from the run cache) and redraw."""
        started = time.perf_counter()
        try:
            key = self._key()
            self.result = self._runs.result(key, self.settings()["max_concurrency"])
            if _running_loop() is None:
                self._runs.measure(key, self._runs.missing(key))
            self._draw(key)
        except Exception as error:  # shown in the widget: a callback's traceback would go unseen
            self._show_error(f"could not run these settings: {type(error).__name__}: {error}")
            return
        self.message.value = ""
        self.redraw_times.append(time.perf_counter() - started)
        self._fill_curve_later()

    def _draw(self, key: RunKey) -> None:
        assert self.result is not None
        # The words first: they arrive at once, the picture a moment later.
        self.summary.value = summary_html(self.result, key.max_retries)
        self.picture.value = self._view.update(self.result, self._runs.curve(key)).png()

    def curve_complete(self) -> bool:
        """Whether every point of the current workload's curve has been measured."""
        return not self._runs.missing(self._key())

    def _fill_curve_later(self) -> None:
        """In a notebook, measure the curve's missing points after this change is drawn, one per turn."""
        loop = _running_loop()
        if self._fill_pending is not None:
            return
        if loop is None or self.curve_complete():
            self.remove_class("pp-measuring")
            return
        self.add_class("pp-measuring")  # a mark for pages and tests: more points are coming
        self._fill_pending = loop.call_later(0.05, self._fill_step)

    def _fill_step(self) -> None:
        self._fill_pending = None
        try:
            key = self._key()
            missing = self._runs.missing(key)
            if missing:
                self._runs.measure(key, missing[:1])
            if len(missing) <= 1:
                self._draw(key)
                self.note.value = ""
                self.remove_class("pp-measuring")  # after the picture: a page seeing it unmarked sees the last picture
                return
            total = len(curve_limits(key.workload.items))
            self.note.value = (f'<span style="{_NOTE_STYLE}">measuring the curve at other C: '
                               f'{total - len(missing) + 1} of {total} points …</span>')
        except Exception as error:
            self.remove_class("pp-measuring")
            self._show_error(f"could not measure the curve: {type(error).__name__}: {error}")
            return
        loop = _running_loop()
        if loop is not None:
            self._fill_pending = loop.call_later(0.0, self._fill_step)

    # -- a still picture for stored notebooks ---------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle: dict[str, Any] | None = super()._repr_mimebundle_(**kwargs)
        if bundle is not None and self.result is not None:
            caption = f"{self.result.summary()}  (a still picture: run the cell to move the sliders)"
            bundle["image/png"] = self._view.still(caption)
        return bundle


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The running event loop (a notebook kernel's), or None in a plain script."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def summary_html(result: Comparison, max_retries: int) -> str:
    """The one-line summary: sequential time, parallel time, speedup, and the references, with units."""
    limit = "no limit" if result.max_concurrency is None else f"at most {result.max_concurrency} in flight"
    parts = [
        f"<b>{result.items}</b> calls, {limit}:",
        f"sequential <b>{_format.seconds(result.sequential_time)}</b>,",
        f"parallel <b>{_format.seconds(result.parallel_time)}</b>,",
        f"speedup <b>{_format.times(result.speedup)}</b>",
        f"(in-order schedule {_format.seconds(result.schedule_time)};"
        f" no schedule below {_format.seconds(result.lower_bound)}, {_format.times(result.max_speedup)};"
        f" peak {result.peak_in_flight} in flight)",
    ]
    if result.failures:
        parts.append(f"— {len(result.failures)} items failed all {max_retries} attempts (kept as failures)")
    return f'<div class="pp-summary-line">{" ".join(parts)}</div>'


def explorer(*args: Any, **settings: Any) -> Explorer:
    """A live explorer of sequential against parallel LLM calls: show it as a cell's last line.

    Sliders set the item count N, the semaphore size C (or no limit), the mean latency in
    seconds, its jitter (the latency's coefficient of variation) and, when ``failure_rate > 0`` or
    ``show_failures=True``, the failure rate; the boxes beside them take typed values. Each
    change re-runs :func:`~pocket_parallel.compare` with ``max_retries`` attempts per item
    in virtual time and redraws. Start values must lie in their ranges, which can be
    widened up to N <= 10,000, C <= 1,000, latency <= 3,600 s, jitter <= 3, failure rate
    <= 0.95. ``max_concurrency=None`` starts with no limit. ``picture_dpi`` (40-300) sets the
    picture's pixels per inch: 80 gives 880 × 352 pixels; more is sharper on a large screen
    and takes longer to redraw.
    """
    return Explorer(*args, **settings)


# help(explorer) and Jupyter's explorer? show the real parameters, listed once, in Explorer.
setattr(explorer, "__signature__", inspect.signature(Explorer).replace(return_annotation="Explorer"))
