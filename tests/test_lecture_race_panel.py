"""The race panel: a button starts a live race, bars fill, and the verdict is computed from what was measured."""

from __future__ import annotations

import asyncio
import dataclasses
import re

import pytest

from pocket_parallel import _format, compare
from pocket_parallel.lecture import race_panel
from pocket_parallel.lecture.race_panel import verdict_html


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def test_the_panel_shows_its_settings_before_any_race():
    panel = race_panel(items=6, latency=0.1, jitter=0.0, max_concurrency=3)
    assert panel.settings().items == 6 and panel.settings().max_concurrency == 3
    assert not panel.unlimited.value and not panel.max_concurrency.disabled
    heading = _text(panel.heading.value)
    assert "6 calls of about 0.1 s each (0.6 s of calls in all)" in heading and "at most 3 in flight" in heading
    assert [bar.max for bar in panel.bars.values()] == [6, 6] and [bar.value for bar in panel.bars.values()] == [0, 0]
    assert panel.result is None and panel.races == 0 and panel.verdict.value == ""


def test_changing_the_controls_changes_what_the_next_race_runs():
    panel = race_panel(items=6, latency=0.1, max_concurrency=None)
    assert panel.max_concurrency.disabled and panel.settings().max_concurrency is None
    panel.items.value = 9
    panel.unlimited.value = False
    panel.max_concurrency.value = 2
    assert panel.settings().items == 9 and panel.settings().max_concurrency == 2
    assert not panel.max_concurrency.disabled
    assert "9 calls" in _text(panel.heading.value) and "at most 2 in flight" in _text(panel.heading.value)
    assert {side: status.value for side, status in panel.status.items()} == {
        "sequential": "0 of 9 calls", "parallel": "0 of 9 calls"}


@pytest.mark.parametrize(("arguments", "message"), [
    ({"items": 100}, r"items must be an integer in \[1, 50\]; got 100"),
    ({"latency": 5}, r"latency must be a finite number in \[0.05, 2\]; got 5"),
    ({"max_concurrency": -2}, r"max_concurrency must be an integer >= 1, or None for no limit; got -2"),
    ({"jitter": None}, r"jitter must be a finite number in \[0, 1\]; got None"),
])
def test_bad_arguments_are_refused_naming_the_parameter_and_its_range(arguments, message):
    with pytest.raises(ValueError, match=message):
        race_panel(**arguments)


def test_outside_an_event_loop_start_runs_the_race_to_its_end():
    panel = race_panel(items=4, latency=0.05, jitter=0.2, max_concurrency=2, seed=3)
    assert panel.start() is None
    result = panel.result
    assert result is not None and result.clock == "real" and panel.races == 1
    assert [bar.value for bar in panel.bars.values()] == [4, 4]
    assert _text(panel.status["sequential"].value) == f"4 of 4 calls · {_format.seconds(result.sequential_time)}"
    assert _text(panel.status["parallel"].value) == f"4 of 4 calls · {_format.seconds(result.parallel_time)}"
    assert panel.verdict.value == verdict_html(result)
    assert panel.button.description == "Run again" and not panel.button.disabled


def test_on_a_running_loop_the_race_is_a_task_and_the_controls_wait_for_it():
    panel = race_panel(items=3, latency=0.05, jitter=0.0)
    seen = {}

    async def lecture() -> None:
        task = panel.start()
        assert task is not None
        await asyncio.sleep(0)
        seen["running"] = panel.running
        seen["disabled"] = (panel.button.disabled, panel.items.disabled, panel.unlimited.disabled)
        seen["second press"] = panel.start()
        seen["result"] = await task

    asyncio.run(lecture())
    assert seen["running"] and seen["disabled"] == (True, True, True) and seen["second press"] is None
    assert seen["result"] is panel.result and panel.races == 1 and not panel.running
    assert not panel.button.disabled and not panel.items.disabled


def test_the_verdict_is_computed_from_the_measured_times():
    faster = compare(12, None, latency=0.4, jitter=0.2)
    text = _text(verdict_html(faster))
    assert f"Parallel finished {faster.speedup:.1f}× sooner" in text
    assert f"{_format.seconds(faster.parallel_time)} against {_format.seconds(faster.sequential_time)}" in text
    assert f"no schedule could finish before {_format.seconds(faster.lower_bound)} (its longest call)" in text
    assert f"with at most {faster.peak_in_flight} calls in flight" in text

    limited = compare(12, 3, latency=0.4, jitter=0.0)
    assert "the calls' seconds shared among the slots" in _text(verdict_html(limited))
    assert "With at most 3 in flight" in _text(verdict_html(limited))

    uneven = compare(12, 5, latency=0.4, jitter=0.0)  # three rounds: 1.2 s, more than 12 × 0.4 s / 5
    assert uneven.lower_bound > uneven.total_work / 5
    assert "some slot must run several of the longest calls one after another" in _text(verdict_html(uneven))

    same = compare(4, 1, latency=0.4)
    assert "Parallel took about as long as one at a time" in _text(verdict_html(same))

    slower = dataclasses.replace(faster, parallel_time=faster.sequential_time * 2)
    assert "Parallel took 2.0× longer" in _text(verdict_html(slower))
