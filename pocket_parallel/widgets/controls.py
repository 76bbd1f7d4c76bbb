"""The explorer's controls: a slider and a text box per setting, a no-limit box and a seed box.

:func:`check_start` checks an explorer's start values and ranges (every check goes through
:mod:`pocket_parallel._validate`, so each error names the parameter and its accepted range).
:class:`Controls` builds the ipywidgets and turns what a learner does with them into one
call of its ``on_change`` callback per change of the settings. A typed value is parsed,
checked against its slider's range and used; a refused one goes to ``on_refused`` with the
message, and its box shows the value in use again.

Sliders send their value when released (``continuous_update=False``), so a drag is one
change, not fifty that pile up.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from .._validate import check_int, check_limit, check_optional_bool, check_pair, check_real

#: Widest ranges an explorer accepts: beyond them a redraw would no longer feel live.
ITEMS_MAX = 10_000
CONCURRENCY_MAX = 1_000
LATENCY_MAX = 3_600.0
JITTER_MAX = 3.0
FAILURE_MAX = 0.95

#: What a learner may type into the C box to mean "no limit".
UNLIMITED_WORDS = frozenset({"none", "no limit", "unlimited", "inf", "infinity", "∞"})

SLIDERS = ("items", "max_concurrency", "latency", "jitter", "failure_rate")
"""The settings with a slider, in the order :meth:`Controls.settings` lists them."""

_LABEL = {"description_width": "96px"}


@dataclass(frozen=True)
class Ranges:
    """The sliders' ranges, each a checked (low, high) pair."""

    items: tuple[int, int]
    concurrency: tuple[int, int]
    latency: tuple[float, float]
    jitter: tuple[float, float]
    failure: tuple[float, float]


@dataclass(frozen=True)
class Start:
    """Checked start values of an explorer: its settings, ranges and whether failures are shown."""

    items: int
    max_concurrency: int | None
    latency: float
    jitter: float
    failure_rate: float
    seed: int
    max_retries: int
    ranges: Ranges
    show_failures: bool


def check_start(
    items: Any, max_concurrency: Any, latency: Any, jitter: Any, failure_rate: Any, seed: Any, *,
    items_range: Any, concurrency_range: Any, latency_range: Any, jitter_range: Any, failure_range: Any,
    show_failures: Any, max_retries: Any,
) -> Start:
    """The explorer's arguments, checked: ranges within the widest allowed, start values inside them."""
    ranges = Ranges(
        items=check_pair("items_range", items_range, low=1, high=ITEMS_MAX, integer=True),
        concurrency=check_pair("concurrency_range", concurrency_range, low=1, high=CONCURRENCY_MAX, integer=True),
        latency=check_pair("latency_range", latency_range, low=0.0, high=LATENCY_MAX, low_open=True),
        jitter=check_pair("jitter_range", jitter_range, low=0.0, high=JITTER_MAX),
        failure=check_pair("failure_range", failure_range, low=0.0, high=FAILURE_MAX),
    )
    items = check_int("items", items, low=ranges.items[0], high=ranges.items[1])
    limit = check_limit("max_concurrency", max_concurrency)
    if limit is not None:
        limit = check_int("max_concurrency", limit, low=ranges.concurrency[0], high=ranges.concurrency[1])
    latency = check_real("latency", latency, low=ranges.latency[0], high=ranges.latency[1])
    jitter = check_real("jitter", jitter, low=ranges.jitter[0], high=ranges.jitter[1])
    shown = check_optional_bool("show_failures", show_failures)
    show = failure_rate != 0.0 if shown is None else shown
    if show or failure_rate != 0.0:
        failure_rate = check_real("failure_rate", failure_rate, low=ranges.failure[0], high=ranges.failure[1])
    return Start(
        items=items, max_concurrency=limit, latency=latency, jitter=jitter, failure_rate=float(failure_rate),
        seed=check_int("seed", seed, low=0), max_retries=check_int("max_retries", max_retries, low=1, high=100),
        ranges=ranges, show_failures=show,
    )


def slider_step(low: float, high: float) -> float:
    """A round slider step giving at least 50 positions: 0.01 for 0.05-5, 0.001 for 0-0.05..."""
    return float(10.0 ** math.floor(math.log10((high - low) / 50)))


def parse_typed(text: str, *, integer: bool) -> Any:
    """What a learner typed, as an int or float when it reads as one, else the text itself (for the check to refuse)."""
    text = text.strip()
    try:
        return int(text) if integer else float(text)
    except ValueError:
        return text


def _number_text(value: float) -> str:
    return f"{value:g}"


class Controls:
    """The explorer's sliders, text boxes, no-limit checkbox and seed box, laid out in ``box``.

    ``settings()`` are the keyword arguments of :func:`~pocket_parallel.compare` the controls
    stand for. Every accepted change calls ``on_change()`` once; a refused typed value calls
    ``on_refused(message)``.
    """

    def __init__(self, start: Start, on_change: Callable[[], None], on_refused: Callable[[str], None]) -> None:
        self._on_change, self._on_refused = on_change, on_refused
        self._quiet = 0
        self.seed = start.seed
        self.max_retries = start.max_retries
        r = start.ranges

        def slider() -> dict[str, Any]:
            return {"continuous_update": False, "readout": False, "style": _LABEL,
                    "layout": widgets.Layout(width="300px")}

        self.items = widgets.IntSlider(start.items, min=r.items[0], max=r.items[1], description="items N",
                                       tooltip="how many LLM calls the batch makes", **slider())
        self.max_concurrency = widgets.IntSlider(
            start.max_concurrency or r.concurrency[0], min=r.concurrency[0], max=r.concurrency[1],
            description="semaphore C", tooltip="the most calls in flight at once (the semaphore's size)",
            disabled=start.max_concurrency is None, **slider())
        self.unlimited = widgets.Checkbox(start.max_concurrency is None, description="no limit", indent=False,
                                          layout=widgets.Layout(width="90px"))
        self.latency = widgets.FloatSlider(start.latency, min=r.latency[0], max=r.latency[1],
                                           step=slider_step(*r.latency), description="latency (s)",
                                           tooltip="mean seconds one call takes", **slider())
        self.jitter = widgets.FloatSlider(
            start.jitter, min=r.jitter[0], max=r.jitter[1], step=slider_step(*r.jitter), description="jitter",
            tooltip="spread of the latency: its standard deviation over its mean (log-normal)", **slider())
        self.failure_rate = widgets.FloatSlider(
            start.failure_rate, min=r.failure[0], max=r.failure[1], step=slider_step(*r.failure),
            description="failure rate", tooltip="share of attempts that fail; failed attempts are retried", **slider())
        self.sliders: dict[str, widgets.ValueWidget] = {
            "items": self.items, "max_concurrency": self.max_concurrency, "latency": self.latency,
            "jitter": self.jitter, "failure_rate": self.failure_rate,
        }
        self.texts: dict[str, widgets.Text] = {
            name: widgets.Text(continuous_update=False, layout=widgets.Layout(width="76px")) for name in SLIDERS
        }
        self.texts["seed"] = widgets.Text(continuous_update=False, description="seed", style=_LABEL,
                                          layout=widgets.Layout(width="176px"))
        self.box = self._layout(start.show_failures)
        self.max_concurrency.add_class("pp-concurrency")
        self.unlimited.add_class("pp-unlimited")
        for name, text in self.texts.items():
            text.add_class(f"pp-text-{name.replace('_', '-')}")
        self.show_values()
        for widget in (*self.sliders.values(), self.unlimited):
            widget.observe(self._moved, names="value")
        for name, text in self.texts.items():
            text.observe(self._typed(name), names="value")

    def _layout(self, show_failures: bool) -> widgets.Box:
        row = widgets.HBox
        left = [row([self.items, self.texts["items"]]),
                row([self.max_concurrency, self.texts["max_concurrency"], self.unlimited])]
        right = [row([self.latency, self.texts["latency"]]), row([self.jitter, self.texts["jitter"]])]
        if show_failures:
            left.append(row([self.failure_rate, self.texts["failure_rate"]]))
        right.append(row([self.texts["seed"]]))
        return row([widgets.VBox(left), widgets.VBox(right)], layout=widgets.Layout(flex_flow="row wrap"))

    def settings(self) -> dict[str, Any]:
        """The keyword arguments of :func:`~pocket_parallel.compare` the controls now stand for."""
        return {
            "items": self.items.value,
            "max_concurrency": None if self.unlimited.value else self.max_concurrency.value,
            "latency": self.latency.value,
            "jitter": self.jitter.value,
            "failure_rate": self.failure_rate.value,
            "seed": self.seed,
            "max_retries": self.max_retries,
        }

    def show_values(self) -> None:
        """Write the values in use into the text boxes (without reacting to it)."""
        self._quiet += 1
        try:
            for name, slider in self.sliders.items():
                self.texts[name].value = _number_text(slider.value)
            if self.unlimited.value:
                self.texts["max_concurrency"].value = "none"
            self.texts["seed"].value = str(self.seed)
            self.max_concurrency.disabled = self.unlimited.value
        finally:
            self._quiet -= 1

    def _moved(self, change: dict[str, Any]) -> None:
        if self._quiet:
            return
        self.show_values()
        self._on_change()

    def _typed(self, name: str) -> Callable[[dict[str, Any]], None]:
        def react(change: dict[str, Any]) -> None:
            if self._quiet:
                return
            try:
                self.apply_text(name, change["new"])
            except ValueError as error:
                self._on_refused(str(error))
                self.show_values()  # the box goes back to the value in use

        return react

    def apply_text(self, name: str, text: str) -> None:
        """Use a value typed into the box of setting ``name``: ValueError naming the range if refused."""
        if name == "max_concurrency" and text.strip().lower() in UNLIMITED_WORDS:
            if not self.unlimited.value:
                self.unlimited.value = True  # one change, reported by _moved
            return
        value = parse_typed(text, integer=name in ("items", "max_concurrency", "seed"))
        if name == "seed":
            self.seed = check_int("seed", value, low=0)
            self.show_values()
            self._on_change()
            return
        slider = self.sliders[name]
        if name == "max_concurrency":
            checked = check_int(name, value, low=slider.min, high=slider.max)
            self._quiet += 1
            try:  # lifting "no limit" and setting C are one change
                self.unlimited.value = False
                slider.value = checked
            finally:
                self._quiet -= 1
            self.show_values()
            self._on_change()
            return
        if name == "items":
            slider.value = check_int(name, value, low=slider.min, high=slider.max)
        else:
            slider.value = check_real(name, value, low=slider.min, high=slider.max)
        self.show_values()  # "050" reads "50" again, also when the value did not change
