"""compare() and sweep(): measured against the closed form, exactly, on the virtual clock."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocket_parallel import SimulatedLLM, compare, run, sweep
from pocket_parallel.experiment import makespan_lower_bound, semaphore_makespan
from tests.support import AskNode, prompts


def micro(seconds: float) -> int:
    """Whole microseconds: the virtual clock's tick, so equality here is exact."""
    return round(seconds * 1_000_000)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=200),
    limit=st.one_of(st.none(), st.integers(min_value=1, max_value=60)),
    latency_ms=st.integers(min_value=1, max_value=5_000),
)
def test_equal_latencies_give_ceil_n_over_c_times_l(n, limit, latency_ms):
    latency = latency_ms / 1000
    result = compare(n, limit, latency=latency)
    rounds = 1 if limit is None else math.ceil(n / limit)
    assert micro(result.parallel_time) == micro(rounds * latency)
    assert micro(result.sequential_time) == micro(n * latency)
    assert result.peak_in_flight == (n if limit is None else min(n, limit))
    assert result.efficiency == pytest.approx(1.0)


@settings(max_examples=30, deadline=None)
@given(latencies_ms=st.lists(st.integers(min_value=1, max_value=3_000), min_size=1, max_size=40))
def test_unlimited_makespan_is_the_longest_call(latencies_ms):
    # With no limit every call starts at t = 0, so the run ends with the longest one.
    durations = [ms / 1000 for ms in latencies_ms]
    llm = _FixedLatencyLLM(durations)
    node = AskNode(llm, max_concurrency=None)
    elapsed = run(_timed(node, llm.prompts), clock="virtual")
    assert micro(elapsed) == micro(max(durations)) == micro(makespan_lower_bound(durations))
    assert micro(semaphore_makespan(durations)) == micro(elapsed)


@settings(max_examples=30, deadline=None)
@given(
    latencies_ms=st.lists(st.integers(min_value=1, max_value=3_000), min_size=1, max_size=40),
    limit=st.integers(min_value=1, max_value=10),
)
def test_limited_makespan_is_between_the_bound_and_the_greedy_guarantee(latencies_ms, limit):
    # A semaphore starts items in input order as slots free up (list scheduling). Its
    # makespan is exactly what simulating that schedule by hand gives, never below the
    # lower bound max(max L, sum L / C), and never above sum L / C + max L (Graham).
    durations = [ms / 1000 for ms in latencies_ms]
    llm = _FixedLatencyLLM(durations)
    elapsed = run(_timed(AskNode(llm, max_concurrency=limit), llm.prompts), clock="virtual")
    slots = [0.0] * limit
    for d in durations:
        i = slots.index(min(slots))
        slots[i] += d
    assert micro(elapsed) == micro(max(slots)) == micro(semaphore_makespan(durations, limit))
    bound = makespan_lower_bound(durations, limit)
    assert micro(bound) <= micro(elapsed) <= micro(sum(durations) / limit + max(durations))


class _FixedLatencyLLM(SimulatedLLM):
    """A SimulatedLLM whose i-th prompt takes exactly the i-th given latency."""

    def __init__(self, durations):
        super().__init__(latency=1.0)
        self.prompts = [f"Summarize: item {i}" for i in range(len(durations))]
        self._by_prompt = dict(zip(self.prompts, durations))

    def latency_for(self, prompt, attempt=1):
        return self._by_prompt[prompt]


async def _timed(node, items):
    import asyncio

    loop = asyncio.get_running_loop()
    start = loop.time()
    await node.run_async({"prompts": items})
    return loop.time() - start


def test_lower_bound_closed_forms():
    assert makespan_lower_bound([1.0] * 10, 3) == 4.0
    assert makespan_lower_bound([1.0] * 10, None) == 1.0
    assert makespan_lower_bound([5.0, 1.0, 1.0], 2) == 5.0
    assert makespan_lower_bound([2.0, 2.0, 1.0, 1.0], 2) == 3.0
    assert makespan_lower_bound([], 4) == 0.0
    with pytest.raises(ValueError, match="max_concurrency"):
        makespan_lower_bound([1.0], 0)
    with pytest.raises(ValueError, match="latencies"):
        makespan_lower_bound([1.0, -2.0], 2)


def test_the_lower_bound_does_not_jump_when_latencies_barely_differ():
    # max(max L, sum L / C) gives 2.0 for [1, 1, 1] but 1.5 for [1, 1, 1.000001] on two slots:
    # a run as good as any schedule would read as 75 % efficient. Two of the three longest
    # calls must share a slot, so no schedule beats 2 s in either case.
    assert makespan_lower_bound([1.0, 1.0, 1.0], 2) == 2.0
    assert makespan_lower_bound([1.0, 1.0, 1.000001], 2) == pytest.approx(2.0)
    result = compare(6, 5, latency=1.0, jitter=0.01)
    assert result.lower_bound == pytest.approx(result.parallel_time, rel=0.02)
    assert result.efficiency == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(
    latencies_ms=st.lists(st.integers(min_value=1, max_value=3_000), min_size=1, max_size=7),
    limit=st.integers(min_value=1, max_value=3),
)
def test_the_lower_bound_never_exceeds_the_best_schedule(latencies_ms, limit):
    # The best schedule, found by trying every assignment of calls to slots (small cases only).
    import itertools

    durations = [ms / 1000 for ms in latencies_ms]
    slots = min(limit, len(durations))
    best = min(
        max(math.fsum(d for d, s in zip(durations, assignment) if s == slot) for slot in range(slots))
        for assignment in itertools.product(range(slots), repeat=len(durations))
    )
    assert micro(makespan_lower_bound(durations, limit)) <= micro(best)
    assert micro(best) <= micro(semaphore_makespan(durations, limit))


def test_semaphore_makespan_closed_forms():
    assert semaphore_makespan([1.0] * 10, 3) == 4.0
    assert semaphore_makespan([3.0, 1.0, 1.0, 1.0], 2) == 3.0
    assert semaphore_makespan([1.0, 1.0, 3.0], 2) == 4.0  # input order: the long call starts last
    assert semaphore_makespan([], 2) == 0.0


def test_comparison_fields_and_traces():
    result = compare(12, 4, latency=0.5, jitter=0.4, seed=3)
    assert result.items == 12 and result.max_concurrency == 4 and result.clock == "virtual"
    assert len(result.trace) == len(result.sequential_trace) == 12
    assert min(r.start for r in result.trace) == pytest.approx(0.0)
    assert max(r.end for r in result.trace) == pytest.approx(result.parallel_time)
    assert result.speedup == pytest.approx(result.sequential_time / result.parallel_time)
    assert result.lower_bound <= result.schedule_time <= result.parallel_time + 1e-9
    assert 0 < result.efficiency <= 1.0 + 1e-9
    assert result.max_speedup >= result.speedup - 1e-9
    assert len(result.results) == 12 and result.failures == ()
    assert "s" in result.summary() and "speedup" in result.summary()


def test_sequential_and_parallel_see_the_same_workload():
    result = compare(15, 5, latency=1.0, jitter=0.8, seed=4)
    seq = {r.prompt: r.duration for r in result.sequential_trace}
    par = {r.prompt: r.duration for r in result.trace}
    assert seq == pytest.approx(par, abs=1e-6)
    assert result.sequential_time == pytest.approx(sum(seq.values()), abs=1e-6)


def test_failed_items_are_kept_not_dropped():
    result = compare(200, 20, latency=0.1, failure_rate=0.4, max_retries=2, seed=1)
    assert result.failures, "with 40 % failures and 2 attempts some items must fail"
    assert len(result.results) + len(result.failures) == 200
    assert all(f.attempts == 2 for f in result.failures)


@pytest.mark.parametrize("seed", range(5))
def test_a_virtual_run_lands_exactly_on_the_in_order_schedule(seed):
    result = compare(40, 6, latency=1.0, jitter=0.8, failure_rate=0.3, seed=seed)
    assert micro(result.parallel_time) == micro(result.schedule_time)
    assert result.efficiency == pytest.approx(1.0, abs=1e-6)


def test_a_workload_or_its_settings_give_the_same_comparison():
    from pocket_parallel import Workload

    typed = compare(12, 4, latency=0.5, jitter=0.4, seed=3)
    assert compare(Workload(12, latency=0.5, jitter=0.4, seed=3), 4) == typed
    assert compare(items=12, max_concurrency=4, latency=0.5, jitter=0.4, seed=3) == typed
    assert typed.workload == Workload(items=12, latency=0.5, jitter=0.4, seed=3)


def test_sweeps():
    by_items = sweep("items", [1, 10, 100], max_concurrency=10, latency=1.0)
    assert [r.parallel_time for r in by_items] == [1.0, 1.0, 10.0]
    by_limit = sweep("max_concurrency", [1, 2, 5, None], items=10, latency=1.0)
    assert [r.parallel_time for r in by_limit] == [10.0, 5.0, 2.0, 1.0]
    assert len({r.sequential_time for r in by_limit}) == 1


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: compare(0, 5), "items"),
        (lambda: compare(10, 0), "max_concurrency"),
        (lambda: compare(10, 5, latency=-1), "latency"),
        (lambda: compare(10, 5, max_retries=0), "max_retries"),
        (lambda: compare(10, 5, clock="fast"), "clock"),
        (lambda: sweep("latency", [1, 2]), "parameter"),
        (lambda: sweep("items", []), "values"),
        (lambda: sweep("items", [0, 1]), "items"),
        (lambda: sweep("items", [1], items=3), "items"),
        (lambda: sweep("max_concurrency", [1], max_concurrency=3), "max_concurrency"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_ten_thousand_items_virtual_makespan_is_exact():
    llm = SimulatedLLM(latency=1.0)
    node = AskNode(llm, max_concurrency=10)
    items = prompts(10_000)
    assert run(_timed(node, items), clock="virtual") == 1000.0
    assert llm.stats.peak_in_flight == 10


def test_real_clock_run_is_close_to_ideal():
    result = compare(20, 10, latency=0.02, clock="real")
    assert result.clock == "real"
    assert result.parallel_time >= 0.04
    assert result.peak_in_flight == 10
