"""The explorer, driven from Python: every change re-runs compare() and redraws; bad values are refused."""

from __future__ import annotations

import asyncio
import dataclasses
import html

import ipywidgets
import pytest

from pocket_parallel import compare, explorer
from pocket_parallel import widgets as explorer_module
from pocket_parallel.experiment import Comparison
from pocket_parallel.widgets import CURVE_LIMITS, Explorer

PNG = b"\x89PNG\r\n\x1a\n"


def same_as_compare(result: Comparison, settings: dict) -> bool:
    """``result == compare(**settings)``; failures compared by content (exceptions compare by identity)."""
    expected = compare(**settings)
    for field in dataclasses.fields(Comparison):
        if field.name == "failures":
            content = lambda fs: [(f.item, f.attempts, type(f.error), str(f.error)) for f in fs]  # noqa: E731
            if content(result.failures) != content(expected.failures):
                return False
        elif getattr(result, field.name) != getattr(expected, field.name):
            return False
    return True


@pytest.fixture
def small() -> Explorer:
    return explorer(items=12, max_concurrency=3, latency=0.5, jitter=0.3, seed=1)


def test_it_is_a_widget_showing_the_start_settings(small):
    assert isinstance(small, ipywidgets.VBox)
    assert small.settings() == {"items": 12, "max_concurrency": 3, "latency": 0.5, "jitter": 0.3,
                                "failure_rate": 0.0, "seed": 1, "max_retries": 3}
    assert small.result == compare(12, 3, latency=0.5, jitter=0.3, seed=1)
    assert bytes(small.picture.value).startswith(PNG)
    assert small.max_concurrency.continuous_update is False and small.items.continuous_update is False
    assert {name: box.value for name, box in small.texts.items()} == {
        "items": "12", "max_concurrency": "3", "latency": "0.5", "jitter": "0.3", "failure_rate": "0", "seed": "1"}
    assert small.failure_rate not in _shown(small)  # no failures: no failure slider


def _shown(widget) -> list:
    children = getattr(widget, "children", ())
    return [widget] + [w for child in children for w in _shown(child)]


def test_default_explorer_matches_compare():
    w = explorer()
    assert (w.items.value, w.max_concurrency.value, w.latency.value, w.jitter.value) == (50, 10, 1.0, 0.3)
    assert w.result == compare(50, 10, latency=1.0, jitter=0.3)


def test_the_summary_states_times_speedup_and_references_with_units(small):
    r = small.result
    text = small.summary.value
    for part in (f"{r.items}</b> calls", "at most 3 in flight", f"sequential <b>{r.sequential_time:.3g} s</b>",
                 f"parallel <b>{r.parallel_time:.3g} s</b>", f"speedup <b>{r.speedup:.2f}×</b>",
                 f"in-order schedule {r.schedule_time:.3g} s", f"no schedule below {r.lower_bound:.3g} s",
                 f"{r.max_speedup:.2f}×"):
        assert part in text


@pytest.mark.parametrize(
    "control, value",
    [("max_concurrency", 5), ("max_concurrency", 1), ("items", 30), ("latency", 1.25), ("jitter", 0.0), ("jitter", 0.9)],
)
def test_setting_a_slider_reruns_and_matches_compare(small, control, value):
    before, picture, summary = small.result, small.picture.value, small.summary.value
    getattr(small, control).value = value
    assert small.result is not before
    assert small.settings()[control] == value
    assert small.result == compare(**small.settings())
    assert small.picture.value != picture and small.summary.value != summary
    assert small.texts[control].value == f"{value:g}"


def test_no_limit_checkbox(small):
    small.unlimited.value = True
    assert small.result.max_concurrency is None and small.max_concurrency.disabled
    assert small.result == compare(12, None, latency=0.5, jitter=0.3, seed=1)
    assert small.texts["max_concurrency"].value == "none" and "no limit" in small.summary.value
    small.unlimited.value = False
    assert small.result.max_concurrency == 3 and not small.max_concurrency.disabled


def test_each_change_redraws_once_and_the_sequential_run_is_reused(small):
    counted = len(small.redraw_times)
    small.max_concurrency.value = 4
    first = small.result
    small.max_concurrency.value = 6
    assert len(small.redraw_times) == counted + 2
    assert small.result.sequential_trace is first.sequential_trace  # run once per workload
    small.latency.value = 0.75  # a new workload runs its own sequential baseline
    assert small.result.sequential_trace is not first.sequential_trace
    assert small.result == compare(**small.settings())


def test_the_curve_is_measured_for_every_workload(small):
    assert small.curve_complete()
    small.items.value = 40
    assert small.curve_complete()
    curve_ax = small._overview.curve_ax
    measured = next(line for line in curve_ax.lines if line.get_label() == "parallel (measured)")
    expected = sorted({*[c for c in CURVE_LIMITS if c < 40], 3, 40})  # the handful, the current C, and N
    assert list(measured.get_xdata()) == expected


def test_failures_get_their_slider_and_still_match_compare():
    w = explorer(items=40, max_concurrency=8, latency=0.2, failure_rate=0.3, max_retries=2, seed=3)
    assert w.failure_rate in _shown(w)
    w.failure_rate.value = 0.45
    assert w.result.failures, "45 % failures with 2 attempts leave some items failed"
    assert same_as_compare(w.result, w.settings())
    assert "failed all 2 attempts" in w.summary.value
    shown = explorer(items=5, show_failures=True)
    assert shown.failure_rate in _shown(shown)


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


def test_a_failing_run_is_shown_not_raised(small, monkeypatch):
    async def broken(**settings):
        raise RuntimeError("simulated breakdown")

    monkeypatch.setattr(explorer_module, "compare_async", broken)
    before = small.result
    small.max_concurrency.value = 5
    assert small.result is before
    assert "could not run these settings: RuntimeError: simulated breakdown" in small.message.value


# -- in a notebook: the curve is measured after the redraw --------------------------------------


def test_in_an_event_loop_the_curve_is_filled_in_after_the_picture():
    async def in_a_cell() -> tuple[bool, bool, bytes, bytes]:
        w = explorer(items=30, max_concurrency=4, latency=0.5)
        complete_at_first, picture = w.curve_complete(), w.picture.value
        for _ in range(200):
            if w.curve_complete() and w.note.value == "":
                break
            await asyncio.sleep(0.05)
        return complete_at_first, w.curve_complete(), picture, w.picture.value

    complete_at_first, complete_later, first, later = asyncio.run(in_a_cell())
    assert not complete_at_first and complete_later
    assert first != later  # redrawn with the measured points


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


def test_repr_is_short_and_names_the_settings():
    from pocket_parallel import explorer

    widget = explorer(items=12, max_concurrency=3, latency=0.5, jitter=0.0)
    assert repr(widget) == (
        "Explorer(items=12, max_concurrency=3, latency=0.5, jitter=0.0, failure_rate=0.0, seed=0, max_retries=3)"
    )
    widget.unlimited.value = True
    assert "max_concurrency=None" in repr(widget)
