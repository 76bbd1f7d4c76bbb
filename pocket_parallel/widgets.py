"""The live explorer: sliders that re-race sequential against parallel calls and redraw at once.

``explorer()`` returns an ipywidgets box (standard ipywidgets 8 controls only, so it runs in
JupyterLab, Notebook 7, VS Code and Colab). Every change re-runs the real PocketFlow nodes
of :func:`~pocket_parallel.compare` on the simulated LLM in virtual time and redraws the
makespan-against-C curve, both timelines and a one-line summary.

What keeps a redraw quick (measured: see ``Explorer.redraw_times``):

- sliders send their value when released (``continuous_update=False``), so a drag is one
  change, not fifty that pile up;
- the sequential run does not depend on C: it is run once per workload and reused;
- the reference curves are cheap to compute; the measured points of the curve (a handful of C
  values) are cached per workload, and in a notebook they are measured after the redraw,
  a point at a time, so they never hold up the picture of the current setting;
- the picture is one figure kept between redraws (:class:`~pocket_parallel.plots.Overview`):
  a change swaps its data and renders one PNG into an ``Image`` widget.
"""

from __future__ import annotations

import asyncio
import collections
import html
import math
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from . import _format
from ._validate import check_int, check_limit, check_pair, check_real
from .clock import run
from .experiment import Comparison, compare_async
from .plots import Overview

# C values measured for the curve of every workload (those below N, plus no limit).
CURVE_LIMITS: tuple[int, ...] = (1, 2, 5, 10, 20, 50, 100)

# Widest ranges an explorer accepts: beyond them a redraw would no longer feel live.
_ITEMS_MAX = 10_000
_CONCURRENCY_MAX = 1_000
_LATENCY_MAX = 3_600.0
_JITTER_MAX = 3.0
_FAILURE_MAX = 0.95

_UNLIMITED_WORDS = {"none", "no limit", "unlimited", "inf", "infinity", "∞"}
_WORKLOADS_KEPT = 8  # cached workloads (sequential run and curve points), oldest dropped first

_LABEL = {"description_width": "96px"}
_ERROR_STYLE = "background:#fde8e4;color:#8a1c0c;padding:2px 8px;border-radius:4px"
_NOTE_STYLE = "opacity:0.75;font-size:90%"


def _step(low: float, high: float) -> float:
    """A round slider step giving at least 50 positions: 0.01 for 0.05-5, 0.001 for 0-0.05..."""
    return 10.0 ** math.floor(math.log10((high - low) / 50))


def _number_text(value: float) -> str:
    return f"{value:g}"


class Explorer(widgets.VBox):
    """Sliders for item count, semaphore size, latency and jitter over a live race picture.

    Use :func:`explorer` to make one. The controls are attributes, so code can set them:
    ``items``, ``max_concurrency`` (1..100), ``unlimited`` (a checkbox), ``latency``,
    ``jitter``, ``failure_rate`` (shown only when failures are on) and the ``texts`` boxes
    (one per setting, plus ``seed``) where exact values can be typed. ``result`` is the
    latest :class:`~pocket_parallel.Comparison`, equal to what ``compare(**settings())``
    returns. ``summary``, ``message`` and ``picture`` are the display widgets;
    ``redraw_times`` holds the seconds each change took until its picture was drawn.
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
    ) -> None:
        items_lo, items_hi = check_pair("items_range", items_range, low=1, high=_ITEMS_MAX, integer=True)
        c_lo, c_hi = check_pair("concurrency_range", concurrency_range, low=1, high=_CONCURRENCY_MAX, integer=True)
        lat_lo, lat_hi = check_pair("latency_range", latency_range, low=0.0, high=_LATENCY_MAX)
        if lat_lo <= 0:
            raise ValueError(f"latency_range must start above 0 (a call takes some time); got {latency_range!r}")
        jit_lo, jit_hi = check_pair("jitter_range", jitter_range, low=0.0, high=_JITTER_MAX)
        fail_lo, fail_hi = check_pair("failure_range", failure_range, low=0.0, high=_FAILURE_MAX)
        items = check_int("items", items, low=items_lo, high=items_hi)
        max_concurrency = check_limit("max_concurrency", max_concurrency)
        if max_concurrency is not None:
            max_concurrency = check_int("max_concurrency", max_concurrency, low=c_lo, high=c_hi)
        latency = check_real("latency", latency, low=lat_lo, high=lat_hi)
        jitter = check_real("jitter", jitter, low=jit_lo, high=jit_hi)
        if show_failures is not None and not isinstance(show_failures, bool):
            raise TypeError(f"show_failures must be True, False or None; got {show_failures!r}")
        self._show_failures = failure_rate != 0.0 if show_failures is None else show_failures
        if self._show_failures or failure_rate != 0.0:
            failure_rate = check_real("failure_rate", failure_rate, low=fail_lo, high=fail_hi)
        seed = check_int("seed", seed, low=0)
        self._max_retries = check_int("max_retries", max_retries, low=1, high=100)

        def slider() -> dict[str, Any]:
            return {"continuous_update": False, "readout": False, "style": _LABEL, "layout": widgets.Layout(width="300px")}

        self.items = widgets.IntSlider(items, min=items_lo, max=items_hi, description="items N",
                                        tooltip="how many LLM calls the batch makes", **slider())
        self.max_concurrency = widgets.IntSlider(
            max_concurrency or c_lo, min=c_lo, max=c_hi, description="semaphore C",
            tooltip="the most calls in flight at once (the semaphore's size)",
            disabled=max_concurrency is None, **slider())
        self.unlimited = widgets.Checkbox(max_concurrency is None, description="no limit", indent=False,
                                          layout=widgets.Layout(width="90px"))
        self.latency = widgets.FloatSlider(latency, min=lat_lo, max=lat_hi, step=_step(lat_lo, lat_hi),
                                           description="latency (s)",
                                           tooltip="mean seconds one call takes", **slider())
        self.jitter = widgets.FloatSlider(jitter, min=jit_lo, max=jit_hi, step=_step(jit_lo, jit_hi),
                                          description="jitter",
                                          tooltip="spread of the latency: its standard deviation over its mean (log-normal)", **slider())
        self.failure_rate = widgets.FloatSlider(failure_rate, min=fail_lo, max=fail_hi, step=_step(fail_lo, fail_hi),
                                                description="failure rate",
                                                tooltip="share of attempts that fail; failed attempts are retried", **slider())
        self._sliders: dict[str, widgets.ValueWidget] = {
            "items": self.items, "max_concurrency": self.max_concurrency, "latency": self.latency,
            "jitter": self.jitter, "failure_rate": self.failure_rate,
        }
        self.texts: dict[str, widgets.Text] = {
            name: widgets.Text(continuous_update=False, layout=widgets.Layout(width="76px"))
            for name in self._sliders
        }
        self.texts["seed"] = widgets.Text(continuous_update=False, description="seed", style={"description_width": "96px"},
                                          layout=widgets.Layout(width="176px"))
        self._seed = seed
        self.summary = widgets.HTML()
        self.message = widgets.HTML()
        self.note = widgets.HTML()
        self.picture = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        self.redraw_times: collections.deque[float] = collections.deque(maxlen=500)
        self.result: Comparison | None = None

        self._overview = Overview()
        # workload -> {C or None: Comparison}; a workload's first entry also holds its sequential run.
        self._runs: collections.OrderedDict[tuple, dict[int | None, Comparison]] = collections.OrderedDict()
        self._quiet = 0
        self._fill_pending: asyncio.Handle | None = None

        row = widgets.HBox
        left = [row([self.items, self.texts["items"]]),
                row([self.max_concurrency, self.texts["max_concurrency"], self.unlimited])]
        right = [row([self.latency, self.texts["latency"]]), row([self.jitter, self.texts["jitter"]])]
        if self._show_failures:
            left.append(row([self.failure_rate, self.texts["failure_rate"]]))
        right.append(row([self.texts["seed"]]))
        controls = row([widgets.VBox(left), widgets.VBox(right)], layout=widgets.Layout(flex_flow="row wrap"))
        super().__init__([controls, self.summary, self.message, self.note, self.picture])
        for widget, css in ((self, "pp-explorer"), (self.summary, "pp-summary"), (self.message, "pp-message"),
                            (self.note, "pp-note"), (self.picture, "pp-picture"),
                            (self.max_concurrency, "pp-concurrency"), (self.unlimited, "pp-unlimited")):
            widget.add_class(css)
        for name, text in self.texts.items():
            text.add_class(f"pp-text-{name.replace('_', '-')}")

        self._show_values()
        for widget in (*self._sliders.values(), self.unlimited):
            widget.observe(self._on_change, names="value")
        for name, text in self.texts.items():
            text.observe(self._typed(name), names="value")
        self.refresh()

    # -- settings -----------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """The keyword arguments of :func:`~pocket_parallel.compare` the controls now stand for."""
        return {
            "items": self.items.value,
            "max_concurrency": None if self.unlimited.value else self.max_concurrency.value,
            "latency": self.latency.value,
            "jitter": self.jitter.value,
            "failure_rate": self.failure_rate.value,
            "seed": self._seed,
            "max_retries": self._max_retries,
        }

    def __repr__(self) -> str:
        # Short and stable: notebooks store this text, and the default repr lists every control.
        settings = ", ".join(f"{name}={value!r}" for name, value in self.settings().items())
        return f"Explorer({settings})"

    def _show_values(self) -> None:
        """Write the controls' values into the text boxes (without reacting to it)."""
        self._quiet += 1
        try:
            for name, slider in self._sliders.items():
                self.texts[name].value = _number_text(slider.value)
            if self.unlimited.value:
                self.texts["max_concurrency"].value = "none"
            self.texts["seed"].value = str(self._seed)
            self.max_concurrency.disabled = self.unlimited.value
        finally:
            self._quiet -= 1

    def _on_change(self, change: dict[str, Any]) -> None:
        if self._quiet:
            return
        self._show_values()
        self.refresh()

    def _typed(self, name: str) -> Callable[[dict[str, Any]], None]:
        def react(change: dict[str, Any]) -> None:
            if self._quiet:
                return
            try:
                self._apply_text(name, change["new"])
            except ValueError as error:
                self._show_error(str(error))
                self._show_values()  # the box goes back to the value in use

        return react

    def _apply_text(self, name: str, text: str) -> None:
        """Parse a typed value, check it against the control's range, and use it (one refresh)."""
        text = text.strip()
        if name == "max_concurrency" and text.lower() in _UNLIMITED_WORDS:
            if not self.unlimited.value:
                self.unlimited.value = True
            return
        if name in ("items", "max_concurrency", "seed"):
            try:
                value: Any = int(text)
            except ValueError:
                value = text
        else:
            try:
                value = float(text)
            except ValueError:
                value = text
        if name == "seed":
            self._seed = check_int("seed", value, low=0)
            self._show_values()
            self.refresh()
            return
        slider = self._sliders[name]
        if name == "max_concurrency":
            check_int(name, value, low=slider.min, high=slider.max)
            self._quiet += 1
            try:
                self.unlimited.value = False
                slider.value = value
            finally:
                self._quiet -= 1
            self._show_values()
            self.refresh()
        elif name == "items":
            slider.value = check_int(name, value, low=slider.min, high=slider.max)
        else:
            slider.value = check_real(name, value, low=slider.min, high=slider.max)
        self._show_values()  # "050" reads "50" again, also when the value did not change

    def _show_error(self, text: str) -> None:
        self.message.value = f'<span style="{_ERROR_STYLE}">⚠ {html.escape(text)}</span>'

    # -- running and drawing ----------------------------------------------------------------

    def refresh(self) -> None:
        """Run the current settings (sequential run and curve points cached per workload) and redraw."""
        started = time.perf_counter()
        settings = self.settings()
        try:
            runs = self._workload_runs(settings)
            sequential = next(iter(runs.values()), None)
            self.result = run(_parallel_after(sequential, settings), clock="virtual")
            runs[settings["max_concurrency"]] = self.result
            if not _in_event_loop():
                self._measure_curve(settings, self._missing_limits(settings))
            self._draw()
        except Exception as error:  # shown in the widget: a callback's traceback would go unseen
            self._show_error(f"could not run these settings: {type(error).__name__}: {error}")
            return
        self.message.value = ""
        self.redraw_times.append(time.perf_counter() - started)
        self._fill_curve_later()

    def _workload_runs(self, settings: dict[str, Any]) -> dict[int | None, Comparison]:
        key = tuple(settings[k] for k in ("items", "latency", "jitter", "failure_rate", "seed", "max_retries"))
        runs = self._runs.setdefault(key, {})
        self._runs.move_to_end(key)
        while len(self._runs) > _WORKLOADS_KEPT:
            self._runs.popitem(last=False)
        return runs

    def _missing_limits(self, settings: dict[str, Any]) -> list[int | None]:
        runs = self._workload_runs(settings)
        wanted: list[int | None] = [c for c in CURVE_LIMITS if c < settings["items"]]
        return [c for c in [*wanted, None] if c not in runs]

    def _measure_curve(self, settings: dict[str, Any], limits: list[int | None]) -> None:
        """Measure the curve's points at ``limits`` for the current workload, in one virtual run."""
        if not limits:
            return
        runs = self._workload_runs(settings)
        sequential = next(iter(runs.values()))

        async def measure() -> list[Comparison]:
            return [await compare_async(**{**settings, "max_concurrency": c}, sequential=sequential) for c in limits]

        for limit, result in zip(limits, run(measure(), clock="virtual")):
            runs[limit] = result

    def _draw(self) -> None:
        assert self.result is not None
        result = self.result
        runs = self._workload_runs(self.settings())
        # The words first: they arrive at once, the picture a moment later.
        self.summary.value = _summary_html(result, self._max_retries)
        self.picture.value = self._overview.update(result, list(runs.values())).png()

    def _fill_curve_later(self) -> None:
        """In a notebook, measure the curve's missing points after this change is drawn, one per turn."""
        loop = _in_event_loop()
        if self._fill_pending is not None:
            return
        if loop is None or not self._missing_limits(self.settings()):
            self.remove_class("pp-measuring")
            return
        self.add_class("pp-measuring")  # a mark for pages and tests: more points are coming
        self._fill_pending = loop.call_later(0.05, self._fill_step)

    def _fill_step(self) -> None:
        self._fill_pending = None
        settings = self.settings()
        missing = self._missing_limits(settings)
        try:
            if missing:
                self._measure_curve(settings, missing[:1])
            if len(missing) <= 1:
                self._draw()
                self.note.value = ""
                self.remove_class("pp-measuring")  # after the picture: a page seeing it unmarked sees the last picture
                return
            total = len([c for c in CURVE_LIMITS if c < settings["items"]]) + 1
            self.note.value = (f'<span style="{_NOTE_STYLE}">measuring the curve at other C: '
                               f'{total - len(missing) + 1} of {total} points …</span>')
        except Exception as error:
            self.remove_class("pp-measuring")
            self._show_error(f"could not measure the curve: {type(error).__name__}: {error}")
            return
        loop = _in_event_loop()
        if loop is not None:
            self._fill_pending = loop.call_later(0.0, self._fill_step)

    def curve_complete(self) -> bool:
        """Whether every point of the current workload's curve has been measured."""
        return not self._missing_limits(self.settings())


async def _parallel_after(sequential: Comparison | None, settings: dict[str, Any]) -> Comparison:
    """``compare_async(**settings)``, reusing the sequential run of ``sequential`` when given.

    compare() starts its parallel run when its sequential run ends, and a trace's times are
    differences of virtual loop times, whose last bits depend on where they start. Waiting
    the sequential time first starts the parallel run at that same virtual moment, so the
    result equals compare()'s bit for bit, not just to the microsecond.
    """
    if sequential is not None:
        await asyncio.sleep(sequential.sequential_time)
    return await compare_async(**settings, sequential=sequential)


def _in_event_loop() -> asyncio.AbstractEventLoop | None:
    """The running event loop (a notebook kernel's), or None in a plain script."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _summary_html(result: Comparison, max_retries: int) -> str:
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


def explorer(
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
) -> Explorer:
    """A live explorer of sequential against parallel LLM calls: show it as a cell's last line.

    Sliders set the item count N, the semaphore size C (or no limit), the mean latency in
    seconds, its jitter (spread as a share of the mean) and, when ``failure_rate > 0`` or
    ``show_failures=True``, the failure rate; the boxes beside them take typed values. Each
    change re-runs :func:`~pocket_parallel.compare` with ``max_retries`` attempts per item
    in virtual time and redraws. Start values must lie in their ranges, which can be
    widened up to N <= 10,000, C <= 1,000, latency <= 3,600 s, jitter <= 3, failure rate
    <= 0.95. ``max_concurrency=None`` starts with no limit.
    """
    return Explorer(
        items, max_concurrency, latency, jitter, failure_rate, seed,
        items_range=items_range, concurrency_range=concurrency_range, latency_range=latency_range,
        jitter_range=jitter_range, failure_range=failure_range, show_failures=show_failures,
        max_retries=max_retries,
    )
