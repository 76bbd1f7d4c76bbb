"""The explorer's run cache: what it returns equals compare(), and it runs each thing once."""

from __future__ import annotations

import asyncio

import pytest

from pocket_parallel import Workload, compare
from pocket_parallel.widgets.runs import CURVE_LIMITS, RunCache, RunKey, curve_limits


def key(items: int = 12, latency: float = 0.5, jitter: float = 0.3, seed: int = 1, retries: int = 3) -> RunKey:
    return RunKey(Workload(items, latency, jitter, seed=seed), retries)


def expected(k: RunKey, limit):
    w = k.workload
    return compare(w.items, limit, latency=w.latency, jitter=w.jitter, failure_rate=w.failure_rate, seed=w.seed,
                   max_retries=k.max_retries)


def test_curve_limits_are_those_below_n_then_no_limit():
    assert curve_limits(12) == [1, 2, 5, 10, None]
    assert curve_limits(1) == [None]
    assert curve_limits(1000) == [*CURVE_LIMITS, None]


@pytest.mark.parametrize("k", [key(), key(500, 4.99, 1.0, 0), key(40, 0.2, 0.0, 3, retries=2)], ids=str)
def test_every_result_equals_compare_bit_for_bit(k):
    cache = RunCache()
    for limit in [3, *curve_limits(k.workload.items), 7]:
        assert cache.result(k, limit) == expected(k, limit)


def test_failures_match_compare_too():
    k = RunKey(Workload(40, 0.2, failure_rate=0.45, seed=3), 2)
    got, want = RunCache().result(k, 8), expected(k, 8)
    assert got.failures and [(f.item, f.attempts) for f in got.failures] == [(f.item, f.attempts) for f in want.failures]
    assert got.trace == want.trace and got.parallel_time == want.parallel_time


def test_the_sequential_run_is_shared_and_a_seen_setting_is_not_run_again():
    cache, k = RunCache(), key()
    first = cache.result(k, 3)
    second = cache.result(k, 4)
    assert second.sequential_trace is first.sequential_trace
    assert cache.runs_made == 2
    assert cache.result(k, 3) is first and cache.cached(k, 3) is first
    assert cache.runs_made == 2
    assert cache.cached(k, 5) is None and cache.cached(key(seed=2), 3) is None


def test_missing_measure_and_curve():
    cache, k = RunCache(), key()
    assert cache.missing(k) == [1, 2, 5, 10, None]
    cache.result(k, 5)
    assert cache.missing(k) == [1, 2, 10, None]
    cache.measure(k, cache.missing(k)[:2])
    assert cache.missing(k) == [10, None]
    cache.measure(k, cache.missing(k))
    assert cache.missing(k) == []
    assert [r.max_concurrency for r in cache.curve(k)] == [1, 2, 5, 10, None]


def test_asking_what_is_missing_runs_nothing_and_keeps_nothing():
    cache = RunCache(kept=1)
    cache.result(key(), 3)
    assert cache.missing(key(seed=5)) == [1, 2, 5, 10, None]
    assert len(cache) == 1 and cache.cached(key(), 3) is not None


def test_the_least_recently_used_workload_goes_first():
    cache = RunCache(kept=2)
    a, b, c = key(seed=1), key(seed=2), key(seed=3)
    cache.result(a, 2)
    cache.result(b, 2)
    cache.result(a, 3)  # a is used again: b is now the oldest
    cache.result(c, 2)
    assert len(cache) == 2
    assert cache.cached(b, 2) is None and cache.cached(a, 2) is not None and cache.cached(c, 2) is not None


def test_a_max_retries_change_is_another_workload():
    cache = RunCache()
    three, two = cache.result(key(), 3), cache.result(key(retries=2), 3)
    assert three is not two and two.max_retries == 2
    assert two.sequential_trace is not three.sequential_trace


def test_works_inside_a_running_event_loop():
    async def in_a_cell():
        return RunCache().result(key(), 4)

    assert asyncio.run(in_a_cell()) == expected(key(), 4)


@pytest.mark.parametrize("bad, message", [(0, "max_concurrency"), (2.5, "max_concurrency")])
def test_bad_limits_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        RunCache().result(key(), bad)


def test_kept_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="kept"):
        RunCache(kept=0)
