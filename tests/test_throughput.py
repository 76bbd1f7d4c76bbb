"""Throughput against concurrency for a limited service, and its knee, on the virtual clock."""

from __future__ import annotations

import math

import pytest
from matplotlib.figure import Figure

from pocket_parallel import Backoff, find_knee, measure_throughput
from pocket_parallel.plots import plot_throughput
from pocket_parallel.throughput import ThroughputPoint

VALUES = [1, 2, 4, 8, 16, 32]


@pytest.fixture(scope="module")
def curve() -> list[ThroughputPoint]:
    return measure_throughput(VALUES, items=200, latency=1.0, max_concurrent=8)


def test_below_the_limit_throughput_is_exactly_c_over_latency(curve):
    for point in curve[:4]:  # C = 1, 2, 4, 8 all divide 200
        assert point.makespan == 200 / point.concurrency
        assert point.throughput == point.concurrency == point.max_throughput
        assert (point.completed, point.failed, point.rate_limited, point.requests) == (200, 0, 0, 200)


def test_past_the_limit_extra_concurrency_buys_refusals_not_speed(curve):
    by_c = {p.concurrency: p for p in curve}
    for c in (16, 32):
        point = by_c[c]
        assert point.rate_limited > 0 and point.completed == 200 and point.failed == 0
        assert point.requests == 200 + point.rate_limited
        assert point.throughput < by_c[8].throughput  # retries and their waits leave slots idle
        assert point.max_throughput == 8.0
    assert by_c[32].rate_limited > by_c[16].rate_limited


def test_the_knee_for_max_concurrent_8_and_1_s_latency_is_8(curve):
    knee = find_knee(curve)
    assert (knee.concurrency, knee.throughput) == (8, 8.0)


def test_find_knee_is_the_smallest_c_within_the_fraction_of_the_best():
    def point(c, makespan):
        return ThroughputPoint(c, 100, 100, 0, makespan, 100, 0, 0, 1.0, None, None)

    points = [point(1, 100.0), point(2, 50.0), point(4, 26.0), point(8, 25.0), point(16, 40.0)]
    assert find_knee(points).concurrency == 4  # 3.85 / s is within 5 % of the best, 4 / s
    assert find_knee(points, fraction=1.0).concurrency == 8
    assert find_knee(points, fraction=0.4).concurrency == 2


def test_with_too_few_retries_items_fail_and_are_counted():
    (point,) = measure_throughput([32], items=100, max_concurrent=8, max_retries=2, backoff=None)
    assert point.failed > 0 and point.completed + point.failed == 100
    assert point.refused_share == point.rate_limited / point.requests > 0.5


def test_a_requests_per_minute_service_caps_the_long_run_bound():
    points = measure_throughput([1, 4], items=20, latency=1.0, max_concurrent=None, requests_per_minute=120)
    assert [p.max_throughput for p in points] == [1.0, 2.0]  # 120 per minute: 2 per second
    # 20 requests fit in one window: a short batch may run faster than the long-run rate.
    assert (points[1].completed, points[1].rate_limited, points[1].throughput) == (20, 0, 4.0)


def test_the_plot_marks_the_knee(curve):
    figure = plot_throughput(curve)
    assert isinstance(figure, Figure) and len(figure.axes) == 2  # throughput, and refusals beside it
    ax = figure.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "knee: C = 8 (8 calls/s)" in labels and "refused requests (429)" in labels
    measured = ax.get_lines()[0]
    assert list(measured.get_xdata()) == VALUES
    assert list(measured.get_ydata()) == [p.throughput for p in curve]


@pytest.mark.parametrize(
    "call, error, name",
    [
        (lambda: measure_throughput([]), ValueError, "concurrency"),
        (lambda: measure_throughput([0, 1]), ValueError, "concurrency"),
        (lambda: measure_throughput([2, 2]), ValueError, "concurrency"),
        (lambda: measure_throughput(8), TypeError, "concurrency"),  # type: ignore[arg-type]
        (lambda: measure_throughput([1], items=0), ValueError, "items"),
        (lambda: measure_throughput([1], max_retries=0), ValueError, "max_retries"),
        (lambda: measure_throughput([1], backoff=1.0), TypeError, "backoff"),  # type: ignore[arg-type]
        (lambda: measure_throughput([1], max_concurrent=0), ValueError, "max_concurrent"),
        (lambda: measure_throughput([1], clock="wall"), ValueError, "clock"),  # type: ignore[arg-type]
        (lambda: find_knee([]), ValueError, "points"),
        (lambda: find_knee([ThroughputPoint(1, 1, 1, 0, 1.0, 1, 0, 0, 1.0, None, None)], fraction=0), ValueError, "fraction"),
        (lambda: find_knee([ThroughputPoint(1, 1, 1, 0, 1.0, 1, 0, 0, 1.0, None, None)], fraction=math.nan), ValueError, "fraction"),
        (lambda: plot_throughput([]), ValueError, "points"),
        (lambda: plot_throughput([ThroughputPoint(1, 1, 1, 0, 1.0, 1, 0, 0, 1.0, None, None)], knee=3), TypeError, "knee"),  # type: ignore[arg-type]
        (lambda: plot_throughput([ThroughputPoint(1, 1, 1, 0, 1.0, 1, 0, 0, 1.0, None, None)], ax="left"), TypeError, "ax"),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_are_named(call, error, name):
    with pytest.raises(error, match=name):
        call()


def test_retrying_at_once_burns_every_attempt_and_backoff_does_not():
    eager = measure_throughput([16], items=64, backoff=None, max_retries=50)[0]
    patient = measure_throughput([16], items=64, backoff=Backoff(base=0.5, cap=4.0), max_retries=50)[0]
    # A 429 comes back at once, so without a pause an item spends its 50 attempts in 0 s:
    # every item that does not get one of the 8 slots at t = 0 has failed for good at t = 0.
    assert (eager.completed, eager.failed, eager.makespan) == (8, 56, 1.0)
    assert eager.rate_limited == 56 * 50
    assert (patient.completed, patient.failed) == (64, 0)
    assert patient.rate_limited < eager.rate_limited / 20
