"""Throughput and latency against concurrency for a limited service, and its knee, on the virtual clock."""

from __future__ import annotations

import math

import pytest
from matplotlib.figure import Figure

from pocket_parallel import Backoff, find_knee, measure_throughput
from pocket_parallel.plots import plot_throughput
from pocket_parallel.throughput import ThroughputPoint, mean_item_latency
from pocket_parallel.trace import CallRecord

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


def test_the_plot_marks_the_knee_and_shows_latency_and_refusals(curve):
    figure = plot_throughput(curve)
    assert isinstance(figure, Figure) and len(figure.axes) == 2  # throughput, and latency beside it
    ax, latency = figure.axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "knee: C = 8 (8 calls/s)" in labels and "latency per item (measured, s)" in labels
    measured = ax.get_lines()[0]
    assert list(measured.get_xdata()) == VALUES
    assert list(measured.get_ydata()) == [p.throughput for p in curve]
    assert list(latency.get_lines()[0].get_ydata()) == [p.mean_latency for p in curve]
    refused = {p.concurrency: p.rate_limited for p in curve if p.rate_limited}
    assert sorted(t.get_text() for t in ax.texts) == sorted(f"{n:,}×429" for n in refused.values())


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
        (lambda: measure_throughput([1], slots=0), ValueError, "slots"),
        (lambda: measure_throughput([1], profile="cloud"), ValueError, "profile"),
        (lambda: measure_throughput([1], items=3, latenc=1.0), TypeError, "latenc"),
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
    eager = measure_throughput([16], items=64, max_concurrent=8, backoff=None, max_retries=50)[0]
    patient = measure_throughput([16], items=64, max_concurrent=8, backoff=Backoff(base=0.5, cap=4.0), max_retries=50)[0]
    # A 429 comes back at once, so without a pause an item spends its 50 attempts in 0 s:
    # every item that does not get one of the 8 slots at t = 0 has failed for good at t = 0.
    assert (eager.completed, eager.failed, eager.makespan) == (8, 56, 1.0)
    assert eager.rate_limited == 56 * 50
    assert (patient.completed, patient.failed) == (64, 0)
    assert patient.rate_limited < eager.rate_limited / 20


# -- a server that queues beyond its slots ------------------------------------------------------------


def test_without_a_limit_given_the_service_queues_beyond_8_slots_and_never_refuses():
    points = {p.concurrency: p for p in measure_throughput([4, 8, 16, 32], items=192, latency=1.0)}
    for point in points.values():
        assert (point.slots, point.max_concurrent, point.rate_limited, point.requests) == (8, None, 0, 192)
        assert point.completed == 192 and point.latency == 1.0
    assert points[4].throughput == 4.0 and points[4].mean_latency == 1.0  # below the slots: no queue
    for c in (8, 16, 32):  # at and past the slots: 8 calls a second, as 8 slots of 1 s allow
        assert points[c].throughput == points[c].max_throughput == 8.0
    # Past the slots only the wait grows, with C (Little's law: latency = calls in flight / throughput).
    assert points[8].mean_latency == 1.0
    assert 1.8 < points[16].mean_latency <= 2.0 and 3.4 < points[32].mean_latency <= 4.0
    assert find_knee(list(points.values())).concurrency == 8


def test_the_self_hosted_profile_saturates_at_its_slots_while_latency_rises():
    points = measure_throughput([1, 4, 8, 16, 32], items=120, profile="self-hosted")
    by_c = {p.concurrency: p for p in points}
    assert {(p.slots, p.max_concurrent, p.rate_limited) for p in points} == {(8, None, 0)}
    # One at a time, each call alone in its batch: the bound is met exactly.
    assert by_c[1].throughput == pytest.approx(by_c[1].max_throughput, rel=1e-6)
    # A fuller batch decodes each token more slowly: the time of a call grows up to the slots, then stays.
    assert by_c[1].latency < by_c[4].latency < by_c[8].latency == by_c[16].latency == by_c[32].latency
    assert by_c[8].latency / by_c[1].latency == pytest.approx(1.6, abs=0.1)  # most of a call is its tokens, 1.7 times slower
    for c in (8, 16, 32):  # the bound is slots over the time of a call in a full batch
        assert by_c[c].max_throughput == pytest.approx(8 / by_c[8].latency)
        assert 0.9 * by_c[c].max_throughput < by_c[c].throughput <= by_c[c].max_throughput
    assert by_c[16].throughput == by_c[32].throughput  # more calls in flight only wait longer in the queue
    assert by_c[8].mean_latency < by_c[16].mean_latency < by_c[32].mean_latency
    assert find_knee(points).concurrency == 8


def test_a_profile_limit_or_timing_given_overrides_the_profile():
    (point,) = measure_throughput([4], items=12, profile="self-hosted", slots=2, latency=2.0, jitter=0.0)
    assert (point.slots, point.latency, point.max_throughput, point.makespan) == (2, 2.0, 1.0, 12.0)
    assert point.mean_latency == pytest.approx((2 * 2 + 10 * 4) / 12)  # the first pair 2 s; each later pair queues 2 s, then runs 2 s


def test_mean_item_latency_runs_from_the_first_request_to_the_answer():
    trace = [CallRecord("a", 1, 0.0, 0.0, "rate_limited"), CallRecord("b", 1, 0.0, 1.0, "ok"),
             CallRecord("a", 2, 2.0, 3.0, "ok"), CallRecord("c", 1, 1.0, 2.0, "error")]
    assert mean_item_latency(trace) == 2.0  # a: 0 s to 3 s, b: 0 s to 1 s; c never answered
    assert mean_item_latency([CallRecord("c", 1, 1.0, 2.0, "error")]) is None
