"""The explorer's controls: start values and ranges are checked, typed values are used or refused with a message."""

from __future__ import annotations

import html

import pytest

from pocket_parallel import compare, explorer
from pocket_parallel.widgets.controls import Controls, check_start, parse_typed, slider_step
from pocket_parallel.widgets.explorer_widget import Explorer

DEFAULT_RANGES = {"items_range": (1, 500), "concurrency_range": (1, 100), "latency_range": (0.05, 5.0),
                  "jitter_range": (0.0, 1.0), "failure_range": (0.0, 0.5)}


@pytest.fixture
def small() -> Explorer:
    return explorer(items=12, max_concurrency=3, latency=0.5, jitter=0.3, seed=1)


def start(**changes):
    values = {"items": 12, "max_concurrency": 3, "latency": 0.5, "jitter": 0.3, "failure_rate": 0.0, "seed": 1,
              "show_failures": None, "max_retries": 3, **DEFAULT_RANGES, **changes}
    positional = [values.pop(k) for k in ("items", "max_concurrency", "latency", "jitter", "failure_rate", "seed")]
    return check_start(*positional, **values)


class Recorder:
    def __init__(self):
        self.changes, self.refused = 0, []

    def change(self):
        self.changes += 1

    def refuse(self, message):
        self.refused.append(message)


@pytest.fixture
def controls():
    recorder = Recorder()
    return Controls(start(), recorder.change, recorder.refuse), recorder


# -- the controls alone ---------------------------------------------------------------------


def test_controls_stand_for_the_start_settings(controls):
    c, _ = controls
    assert c.settings() == {"items": 12, "max_concurrency": 3, "latency": 0.5, "jitter": 0.3, "failure_rate": 0.0,
                            "seed": 1, "max_retries": 3}
    assert c.latency.step == 0.01 and c.jitter.step == 0.01 and c.failure_rate.step == 0.01
    assert {name: box.value for name, box in c.texts.items()} == {
        "items": "12", "max_concurrency": "3", "latency": "0.5", "jitter": "0.3", "failure_rate": "0", "seed": "1"}


def test_each_change_calls_back_once(controls):
    c, recorder = controls
    c.max_concurrency.value = 4
    c.latency.value = 0.75
    c.unlimited.value = True
    assert recorder.changes == 3 and c.max_concurrency.disabled
    c.apply_text("max_concurrency", "8")  # lifts no limit and sets C: one change
    assert recorder.changes == 4 and c.settings()["max_concurrency"] == 8 and not c.unlimited.value
    c.apply_text("seed", "7")
    assert recorder.changes == 5 and c.settings()["seed"] == 7
    c.apply_text("items", "012")  # the same value: nothing changes, the box reads 12 again
    assert recorder.changes == 5 and c.texts["items"].value == "12"


def test_a_refused_typed_value_is_reported_and_the_box_reset(controls):
    c, recorder = controls
    c.texts["latency"].value = "slow"
    assert recorder.changes == 0 and len(recorder.refused) == 1
    assert "latency" in recorder.refused[0] and "[0.05, 5]" in recorder.refused[0]
    assert c.texts["latency"].value == "0.5"


def test_parse_typed_and_slider_step():
    assert parse_typed(" 7 ", integer=True) == 7 and parse_typed("7", integer=False) == 7.0
    assert parse_typed("2.5", integer=True) == "2.5" and parse_typed("x", integer=False) == "x"
    assert slider_step(0.05, 5.0) == 0.01 and slider_step(0.0, 0.05) == 0.001 and slider_step(0, 1000) == 10


def test_check_start_decides_whether_failures_are_shown():
    assert not start().show_failures and start(failure_rate=0.2).show_failures
    assert start(show_failures=True).show_failures and start(max_concurrency=None).max_concurrency is None


# -- the no-limit box ---------------------------------------------------------------------------


def test_no_limit_checkbox(small):
    small.unlimited.value = True
    assert small.result.max_concurrency is None and small.max_concurrency.disabled
    assert small.result == compare(12, None, latency=0.5, jitter=0.3, seed=1)
    assert small.texts["max_concurrency"].value == "none" and "no limit" in small.summary.value
    small.unlimited.value = False
    assert small.result.max_concurrency == 3 and not small.max_concurrency.disabled


# -- typed values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "box, typed, expected",
    [("max_concurrency", "7", {"max_concurrency": 7}), ("max_concurrency", " none ", {"max_concurrency": None}),
     ("items", "25", {"items": 25}), ("latency", "2.5", {"latency": 2.5}), ("jitter", "0", {"jitter": 0.0}),
     ("seed", "9", {"seed": 9})],
)
def test_typed_values_are_used(small, box, typed, expected):
    small.texts[box].value = typed
    assert small.message.value == ""
    assert {k: small.settings()[k] for k in expected} == expected
    assert small.result == compare(**small.settings())


def test_typing_a_number_lifts_no_limit(small):
    small.unlimited.value = True
    redraws = len(small.redraw_times)
    small.texts["max_concurrency"].value = "8"
    assert small.result.max_concurrency == 8 and not small.unlimited.value
    assert len(small.redraw_times) == redraws + 1  # one change, one run


@pytest.mark.parametrize(
    "box, typed, words",
    [("items", "abc", ["items", "[1, 500]", "'abc'"]), ("items", "501", ["items", "501"]),
     ("items", "2.5", ["items", "integer"]), ("max_concurrency", "0", ["max_concurrency", "[1, 100]"]),
     ("max_concurrency", "lots", ["max_concurrency"]), ("latency", "0", ["latency", "[0.05, 5]"]),
     ("latency", "nan", ["latency"]), ("jitter", "-0.1", ["jitter", "[0, 1]"]), ("seed", "-1", ["seed", ">= 0"]),
     ("failure_rate", "0.9", ["failure_rate", "[0, 0.5]"])],
)
def test_invalid_typed_values_are_refused_with_a_visible_message(small, box, typed, words):
    before, picture = small.result, small.picture.value
    small.texts[box].value = typed
    assert small.result is before and small.picture.value == picture
    assert "⚠" in small.message.value
    for word in words:
        assert html.escape(word) in small.message.value
    assert small.texts[box].value == {**{k: f"{v:g}" for k, v in small.settings().items() if v is not None}}[box]
    small.max_concurrency.value = 2  # the next good change clears the message
    assert small.message.value == ""


# -- bad start values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"items": 0}, ValueError, ["items", "[1, 500]"]),
        ({"items": 600}, ValueError, ["items", "[1, 500]"]),
        ({"items": 600, "items_range": (1, 1000), "jitter": 0.0}, None, []),
        ({"max_concurrency": 0}, ValueError, ["max_concurrency", "None for no limit"]),
        ({"max_concurrency": 101}, ValueError, ["max_concurrency", "[1, 100]"]),
        ({"latency": 0}, ValueError, ["latency"]),
        ({"jitter": 1.5}, ValueError, ["jitter", "[0, 1]"]),
        ({"failure_rate": 0.6}, ValueError, ["failure_rate", "[0, 0.5]"]),
        ({"seed": -1}, ValueError, ["seed"]),
        ({"max_retries": 0}, ValueError, ["max_retries"]),
        ({"items_range": (5, 5)}, ValueError, ["items_range", "low < high"]),
        ({"items_range": (0, 10)}, ValueError, ["items_range"]),
        ({"items_range": (1, 20_000)}, ValueError, ["items_range", "10000"]),
        ({"concurrency_range": (1, 2.5)}, ValueError, ["concurrency_range", "integers"]),
        ({"latency_range": (0, 2)}, ValueError, ["latency_range", "above 0"]),
        ({"jitter_range": "wide"}, ValueError, ["jitter_range"]),
        ({"failure_range": (0, 1)}, ValueError, ["failure_range", "0.95"]),
        ({"show_failures": "yes"}, TypeError, ["show_failures"]),
    ],
)
def test_bad_start_values_and_ranges_are_named(kwargs, error, words):
    settings = {"items": 10, **kwargs}
    if error is None:
        assert explorer(**settings).items.value == settings["items"]
        return
    with pytest.raises(error) as caught:
        explorer(**settings)
    for word in words:
        assert word in str(caught.value)
