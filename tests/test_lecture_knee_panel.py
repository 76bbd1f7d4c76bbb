"""The knee panel: a slider for a self-hosted server's slots over the measured throughput curve and its knee."""

from __future__ import annotations

import io
import re

import PIL.Image
import pytest

from pocket_parallel import find_knee, measure_throughput
from pocket_parallel.lecture import knee_panel
from pocket_parallel.lecture.knee_panel import knee_html

PNG = b"\x89PNG\r\n\x1a\n"


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def test_it_shows_the_measured_curve_of_a_self_hosted_server_and_names_its_knee():
    panel = knee_panel(slots=4, items=40, concurrency=[1, 2, 4, 8, 16])
    expected = measure_throughput([1, 2, 4, 8, 16], 40, profile="self-hosted", slots=4)
    assert panel.points == expected
    assert {(p.slots, p.max_concurrent, p.rate_limited) for p in expected} == {(4, None, 0)}  # a queue, never a 429
    knee = find_knee(expected)
    assert f"Knee at C = {knee.concurrency}: {knee.throughput:.3g} calls/s" in _text(panel.summary.value)
    last = expected[-1]
    assert (f"At C = 16: {last.throughput:.3g} calls/s, each call {last.mean_latency:.3g} s from request to answer "
            f"instead of {knee.mean_latency:.3g} s.") in _text(panel.summary.value)
    assert "refused" not in _text(panel.summary.value)
    picture = bytes(panel.picture.value)
    assert picture.startswith(PNG)
    assert PIL.Image.open(io.BytesIO(picture)).size == (1200, 480)  # 12 × 4.8 inches at 100 dpi


def test_moving_the_slots_measures_again_and_moving_back_shows_the_kept_picture():
    panel = knee_panel(slots=8, items=40, concurrency=[1, 2, 4, 8, 16, 32])
    first_points, first_picture = panel.points, bytes(panel.picture.value)
    panel.slots.value = 2
    assert {p.slots for p in panel.points} == {2}
    assert find_knee(panel.points).concurrency == 2
    assert bytes(panel.picture.value) != first_picture
    panel.slots.value = 8
    assert panel.points is first_points and bytes(panel.picture.value) == first_picture


def test_the_line_says_when_requests_were_refused_and_items_failed_for_good():
    points = measure_throughput([1, 2, 4, 64], 40, max_concurrent=1, max_retries=2)
    assert points[-1].failed > 0 and points[-1].rate_limited > 0
    line = _text(knee_html(points))
    assert f"with {points[-1].rate_limited:,} requests refused (429), and {points[-1].failed} items failed for good" in line


@pytest.mark.parametrize(("arguments", "error", "message"), [
    ({"slots": 0}, ValueError, r"slots must be an integer in \[1, 32\]; got 0"),
    ({"slots": 33}, ValueError, r"slots must be an integer in \[1, 32\]; got 33"),
    ({"items": 0}, ValueError, r"items must be an integer in \[1, 2000\]; got 0"),
    ({"concurrency": []}, ValueError, "concurrency must hold at least one value"),
    ({"concurrency": "1248"}, TypeError, "concurrency must be a list of integers >= 1"),
])
def test_bad_arguments_are_refused_naming_the_parameter(arguments, error, message):
    with pytest.raises(error, match=message):
        knee_panel(**arguments)
