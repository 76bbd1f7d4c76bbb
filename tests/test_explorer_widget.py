"""The explorer, driven from Python: every change re-runs compare() and redraws; what it shows when stored."""

from __future__ import annotations

import asyncio
import dataclasses
import io

import ipywidgets
import PIL.Image
import pytest
from IPython.core.formatters import DisplayFormatter

from pocket_parallel import compare, explorer
from pocket_parallel.experiment import Comparison
from pocket_parallel.widgets import runs as explorer_runs
from pocket_parallel.widgets.explorer_widget import Explorer
from pocket_parallel.widgets.runs import CURVE_LIMITS

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


def _shown(widget) -> list:
    children = getattr(widget, "children", ())
    return [widget] + [w for child in children for w in _shown(child)]


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
    for widget in (small.items, small.max_concurrency, small.unlimited, small.latency, small.jitter,
                   *(box for name, box in small.texts.items() if name != "failure_rate"),
                   small.summary, small.message, small.note, small.picture):
        assert widget in _shown(small)


def test_the_css_classes_pages_and_tests_find_it_by(small):
    classes = {css for widget in _shown(small) for css in widget._dom_classes}
    assert {"pp-explorer", "pp-summary", "pp-message", "pp-note", "pp-picture", "pp-concurrency", "pp-unlimited",
            "pp-text-items", "pp-text-max-concurrency", "pp-text-latency", "pp-text-jitter", "pp-text-seed"} <= classes
    assert "pp-text-failure-rate" in small.texts["failure_rate"]._dom_classes


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


def test_a_setting_seen_before_is_shown_again_without_running(small):
    small.max_concurrency.value = 4
    four, runs = small.result, small._runs.runs_made
    small.max_concurrency.value = 6
    small.max_concurrency.value = 4
    assert small.result is four and small._runs.runs_made == runs + 1  # only C = 6 ran


def test_a_change_of_c_redraws_only_the_setting_layer_of_the_picture(small):
    before = dict(small._view.renders)
    small.max_concurrency.value = 4
    small.max_concurrency.value = 6
    after = small._view.renders
    assert after.get(2, 0) == before.get(2, 0) + 2
    assert (after.get(0, 0), after.get(1, 0)) == (before.get(0, 0), before.get(1, 0))


def test_the_curve_is_measured_for_every_workload(small):
    assert small.curve_complete()
    small.items.value = 40
    assert small.curve_complete()
    curve_ax = small._view.curve_ax
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


def test_a_failing_run_is_shown_not_raised(small, monkeypatch):
    async def broken(**settings):
        raise RuntimeError("simulated breakdown")

    monkeypatch.setattr(explorer_runs, "compare_async", broken)
    before = small.result
    small.max_concurrency.value = 4  # not run yet (C = 5 is a point of the curve, already measured)
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


# -- shown as a cell's result -----------------------------------------------------------------


def test_repr_is_short_and_names_the_settings():
    from pocket_parallel import explorer

    widget = explorer(items=12, max_concurrency=3, latency=0.5, jitter=0.0)
    assert repr(widget) == (
        "Explorer(items=12, max_concurrency=3, latency=0.5, jitter=0.0, failure_rate=0.0, seed=0, max_retries=3)"
    )
    widget.unlimited.value = True
    assert "max_concurrency=None" in repr(widget)


def test_a_cell_showing_it_stores_a_still_picture_beside_the_widget(small):
    data, _ = DisplayFormatter().format(small)  # what IPython stores for a cell's result
    assert data["text/plain"] == repr(small)
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == small.model_id
    still = data["image/png"]
    image = PIL.Image.open(io.BytesIO(still))
    assert still[:8] == PNG and image.width == 880 and image.height > 352  # the picture, a caption above it
    assert len(still) < 40_000  # stored in the notebook: kept small


def test_help_shows_the_explorers_parameters_and_what_it_returns():
    import inspect

    from pocket_parallel.widgets.explorer_widget import Explorer, explorer

    shown = inspect.signature(explorer)
    assert list(shown.parameters) == list(inspect.signature(Explorer).parameters)
    assert "items" in shown.parameters and shown.return_annotation == "Explorer"
