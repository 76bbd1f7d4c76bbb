"""Server-side limits (429s with retry_after) and the client-side request-rate limiter, on the virtual clock."""

from __future__ import annotations

import asyncio
import math
import warnings

import pytest
from aiolimiter import AsyncLimiter
from conftest import AskNode, prompts
from pocketflow import AsyncFlow, AsyncNode

from pocket_parallel import (
    Backoff,
    BoundedParallelBatchFlow,
    BoundedParallelBatchNode,
    RateLimiter,
    RateLimitError,
    SimulatedLLM,
    TransientLLMError,
    busiest_window,
    estimate_tokens,
    run,
)

MICRO = 1_000_000
BAD_LIMITS = [0, -1, 2.5, "5", True]


def micro(seconds: float) -> int:
    return round(seconds * MICRO)


def served_starts(llm: SimulatedLLM) -> list[int]:
    """Start times (whole microseconds) of the calls the service admitted."""
    return sorted(micro(r.start) for r in llm.trace if r.outcome != "rate_limited")


def most_in_any_window(starts: list[int], width_s: float = 60.0) -> int:
    """Brute force, every window: for each admitted start t, the calls admitted in (t - 60 s, t]."""
    width = micro(width_s)
    return max((sum(1 for s in starts if t - width < s <= t) for t in starts), default=0)


async def timed(coro) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    await coro
    return round(loop.time() - start, 6)


class Collecting(AskNode):
    """AskNode that also keeps every RateLimitError it saw: (prompt, time, retry_after, limit)."""

    def __init__(self, llm, **kwargs):
        super().__init__(llm, **kwargs)
        self.refusals: list[tuple[str, float, float, str]] = []

    async def exec_async(self, prompt):
        try:
            return await self.llm(prompt)
        except RateLimitError as error:
            self.refusals.append((prompt, asyncio.get_running_loop().time(), error.retry_after, error.limit))
            raise


# -- acceptance: max_concurrent on the server ---------------------------------------------------


def test_unlimited_parallel_node_against_max_concurrent_5_gets_429s(virtual):
    llm = SimulatedLLM(latency=1.0, max_concurrent=5)
    node = AskNode(llm, max_concurrency=None, collect_failures=True)
    shared = {"prompts": prompts(20)}
    virtual(node.run_async(shared))
    # 20 calls at t = 0: the service takes 5 and refuses 15 at once; no retries were allowed.
    assert (llm.stats.calls, llm.stats.ok, llm.stats.rate_limited, llm.stats.transient_errors) == (20, 5, 15, 0)
    assert llm.stats.peak_in_flight == 5
    refused = [r for r in llm.trace if r.outcome == "rate_limited"]
    assert len(refused) == 15 and all(r.start == r.end == 0.0 for r in refused)  # answered at once
    failures = node.outcomes.failures
    assert len(failures) == 15 and all(isinstance(f.error, RateLimitError) for f in failures)
    assert {f.error.limit for f in failures} == {"max_concurrent"}
    assert {f.error.retry_after for f in failures} == {1.0}  # the first slot frees at t = 1 s


def test_the_same_workload_with_max_concurrency_5_gets_none(virtual):
    llm = SimulatedLLM(latency=1.0, max_concurrent=5)
    node = AskNode(llm, max_concurrency=5)
    shared = {"prompts": prompts(20)}
    assert virtual(timed(node.run_async(shared))) == 4.0
    assert (llm.stats.calls, llm.stats.ok, llm.stats.rate_limited) == (20, 20, 0)
    assert shared["answers"] == [llm.answer_for(p) for p in prompts(20)]


def test_retry_after_is_the_time_until_the_first_slot_frees(virtual):
    llm = SimulatedLLM(latency=1.0, jitter=0.5, seed=4, max_concurrent=3)

    async def scenario():
        calls = [asyncio.ensure_future(llm(p)) for p in prompts(3)]
        await asyncio.sleep(0.25)
        with pytest.raises(RateLimitError) as refused:
            await llm("Summarize: one too many")
        await asyncio.gather(*calls)
        return refused.value

    error = virtual(scenario())
    first_end = min(llm.latency_for(p) for p in prompts(3))
    assert error.limit == "max_concurrent"
    assert micro(error.retry_after) == micro(first_end - 0.25)
    assert "retry after" in str(error) and "max_concurrent" in str(error)


def test_backoff_honours_retry_after_and_every_item_gets_through(virtual):
    llm = SimulatedLLM(latency=1.0, max_concurrent=2)
    node = Collecting(llm, max_retries=20, backoff=Backoff(base=0.5, cap=4.0, seed=1))
    shared = {"prompts": prompts(6)}
    virtual(node.run_async(shared))
    assert shared["answers"] == [llm.answer_for(p) for p in prompts(6)]
    assert llm.stats.peak_in_flight == 2 and node.refusals
    starts: dict[str, list[float]] = {}
    for record in sorted(llm.trace, key=lambda r: (r.prompt, r.attempt)):
        starts.setdefault(record.prompt, []).append(record.start)
    for prompt, refused_at, retry_after, _ in node.refusals:
        later = [s for s in starts[prompt] if s > refused_at]
        assert later, f"{prompt} was refused at {refused_at} and never tried again"
        assert micro(later[0] - refused_at) >= micro(retry_after)  # never back before retry_after


# -- requests_per_minute: the sliding window ------------------------------------------------


def test_requests_per_minute_refuses_with_the_time_until_the_oldest_leaves_the_window(virtual):
    llm = SimulatedLLM(latency=0.1, requests_per_minute=3)

    async def scenario():
        loop = asyncio.get_running_loop()
        seen = []
        for at in (0.0, 10.0, 20.0, 30.0, 60.0, 60.5, 70.0):
            await asyncio.sleep(at - loop.time())
            try:
                await llm(f"Summarize: at {at}")
                seen.append((at, "ok"))
            except RateLimitError as error:
                seen.append((at, error.retry_after))
        return seen

    # Admitted at 0, 10, 20 (the calls take 0.1 s). At 30 the window (-30, 30] holds 3: wait until
    # t = 60, when the call of t = 0 leaves it. At 60 the window (0, 60] holds 10 and 20: admitted.
    # At 60.5 it holds 10, 20, 60: wait until 70. At 70 the call of 10 has left: admitted.
    assert virtual(scenario()) == [
        (0.0, "ok"), (10.0, "ok"), (20.0, "ok"), (30.0, 30.0), (60.0, "ok"), (60.5, 9.5), (70.0, "ok"),
    ]
    assert llm.stats.rate_limited == 2 and llm.stats.ok == 5


@pytest.mark.parametrize("per_minute, items, jitter", [(1, 4, 0.0), (7, 30, 0.6), (30, 100, 0.0), (60, 150, 0.4)])
def test_a_requests_per_minute_limit_is_never_exceeded_in_any_60_s_window(virtual, per_minute, items, jitter):
    llm = SimulatedLLM(latency=1.0, jitter=jitter, seed=per_minute, failure_rate=0.2, requests_per_minute=per_minute)
    node = AskNode(llm, max_retries=6, max_concurrency=10, max_per_minute=per_minute, collect_failures=True)
    virtual(node.run_async({"prompts": prompts(items)}))
    starts = served_starts(llm)
    assert llm.stats.rate_limited == 0  # the client never sent a request the server had to refuse
    assert most_in_any_window(starts) == per_minute  # every window checked; the limit is reached, never passed
    assert busiest_window(llm.trace).requests == per_minute
    interval = micro(60 / per_minute)
    assert all(b - a >= interval for a, b in zip(starts, starts[1:]))  # evenly paced, retries included
    assert llm.stats.transient_errors > 0 or per_minute == 1  # retries happened and were paced too


def test_the_rate_limit_counts_every_attempt_including_retries(virtual):
    llm = SimulatedLLM(latency=0.5, failure_rate=0.5, seed=2)
    node = AskNode(llm, max_retries=4, max_per_minute=60, collect_failures=True)
    elapsed = virtual(timed(node.run_async({"prompts": prompts(10)})))
    starts = sorted(r.start for r in llm.trace)
    assert len(starts) == llm.stats.calls > 10  # retries were made
    assert [micro(s) for s in starts] == [k * MICRO for k in range(len(starts))]  # one request per second
    assert micro(elapsed) == micro(starts[-1] + 0.5)


def test_plain_aiolimiter_bursts_past_the_server_window_and_ours_does_not(virtual):
    # AsyncLimiter(30, 60) lets 30 through at t = 0 and then one every 2 s: 59 in the first
    # minute. The server counts every 60 s window and refuses the excess.
    def run_with(make_gate):
        llm = SimulatedLLM(latency=1.0, requests_per_minute=30)

        class Gated(AskNode):
            async def exec_async(self, prompt):
                async with self.gate:
                    return await self.llm(prompt)

        async def go():
            node = Gated(llm, collect_failures=True)
            node.gate = make_gate()
            await node.run_async({"prompts": prompts(60)})

        virtual(go())
        return llm

    bursty = run_with(lambda: AsyncLimiter(30, 60))
    attempted = sorted(micro(r.start) for r in bursty.trace)
    assert most_in_any_window(attempted) == 59
    assert bursty.stats.rate_limited == 29 and bursty.stats.ok == 31
    paced = run_with(lambda: RateLimiter(30))
    assert paced.stats.rate_limited == 0 and paced.stats.ok == 60
    assert most_in_any_window(served_starts(paced)) == 30


def test_max_per_minute_composes_with_max_concurrency(virtual):
    llm = SimulatedLLM(latency=5.0)
    node = AskNode(llm, max_concurrency=2, max_per_minute=120)  # one start every 0.5 s, 2 in flight
    elapsed = virtual(timed(node.run_async({"prompts": prompts(6)})))
    starts = sorted(r.start for r in llm.trace)
    # 2 slots of 5 s: starts at 0, 0.5, then each as a slot frees: 5, 5.5, 10, 10.5.
    assert starts == [0.0, 0.5, 5.0, 5.5, 10.0, 10.5]
    assert llm.stats.peak_in_flight == 2 and elapsed == 15.5


def test_one_rate_limiter_shared_by_two_nodes_is_one_budget(virtual):
    llm = SimulatedLLM(latency=1.0, requests_per_minute=20)
    budget = RateLimiter(20)
    first, second = AskNode(llm, max_per_minute=budget), AskNode(llm, max_per_minute=budget)

    async def both():
        await asyncio.gather(
            first.run_async({"prompts": [f"Summarize: a{i}" for i in range(15)]}),
            second.run_async({"prompts": [f"Summarize: b{i}" for i in range(15)]}),
        )

    virtual(both())
    assert llm.stats.rate_limited == 0 and llm.stats.ok == 30
    assert most_in_any_window(served_starts(llm)) == 20


def test_the_node_budget_is_shared_by_its_flow_copies_and_works_across_runs():
    llm = SimulatedLLM(latency=1.0)
    node = AskNode(llm, max_per_minute=30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # aiolimiter warns when one limiter is reused across loops
        for _ in range(2):
            elapsed = run(timed(AsyncFlow(start=node).run_async({"prompts": prompts(3)})), clock="virtual")
            assert elapsed == 5.0  # starts at 0, 2, 4: each run is a new loop with a fresh bucket
    assert node.outcomes is not None and len(node.outcomes.results) == 3  # the copy's run, seen here


def test_flow_max_per_minute_paces_sub_flow_starts(virtual):
    llm = SimulatedLLM(latency=1.0)

    class One(AsyncNode):
        async def exec_async(self, _):
            return await llm(f"Summarize: {self.params['doc']}")

    class Docs(BoundedParallelBatchFlow):
        async def prep_async(self, shared):
            return [{"doc": d} for d in shared["docs"]]

    flow = Docs(start=One(), max_concurrency=3, max_per_minute=6)
    virtual(flow.run_async({"docs": list("abcd")}))
    assert sorted(r.start for r in llm.trace) == [0.0, 10.0, 20.0, 30.0]
    assert flow.outcomes.counts()["ok"] == 4


# -- tokens_per_minute ----------------------------------------------------------------------


def test_tokens_are_estimated_at_four_characters_each():
    assert [estimate_tokens(t) for t in ("", "abc", "abcd", "abcde")] == [0, 1, 1, 2]
    llm = SimulatedLLM()
    prompt = "Translate to Spanish: Hello"  # 27 characters; answer "[Spanish] Hello", 15
    assert llm.tokens_for(prompt) == 7 + 4
    with pytest.raises(TypeError, match="text"):
        estimate_tokens(12)  # type: ignore[arg-type]


def test_tokens_per_minute_refuses_and_frees_as_calls_leave_the_window(virtual):
    prompt = "Translate to Spanish: Hello"  # 11 tokens
    llm = SimulatedLLM(latency=1.0, tokens_per_minute=25)

    async def scenario():
        loop = asyncio.get_running_loop()
        await llm(prompt)  # t = 0, 11 tokens
        await asyncio.sleep(9)
        await llm(prompt)  # t = 10, 22 tokens in the window
        with pytest.raises(RateLimitError) as refused:
            await llm(prompt)  # t = 11: 33 > 25; the call of t = 0 leaves at 60
        assert refused.value.limit == "tokens_per_minute"
        await asyncio.sleep(refused.value.retry_after)
        admitted_at = loop.time()
        await llm(prompt)
        return refused.value.retry_after, admitted_at

    assert virtual(scenario()) == (49.0, 60.0)
    assert [r.outcome for r in llm.trace] == ["ok", "ok", "rate_limited", "ok"]


def test_a_call_larger_than_tokens_per_minute_can_never_succeed_and_fails_at_once(virtual):
    llm = SimulatedLLM(latency=1.0, tokens_per_minute=10)
    node = AskNode(llm, max_retries=5, backoff=Backoff(), collect_failures=True)
    long_prompt = "Summarize: " + "word " * 40
    elapsed = virtual(timed(node.run_async({"prompts": [long_prompt]})))
    (failure,) = node.outcomes.failures
    assert math.isinf(failure.error.retry_after) and "never" in str(failure.error)
    assert llm.stats.calls == 1 and elapsed == 0.0  # no pointless waits, no more requests
    assert failure.attempts == 5


# -- the rest of the service's bookkeeping ----------------------------------------------------


def test_rate_limited_and_transient_errors_are_counted_apart(virtual):
    llm = SimulatedLLM(latency=1.0, failure_rate=0.3, seed=8, max_concurrent=4)
    node = AskNode(llm, max_retries=1, collect_failures=True)
    virtual(node.run_async({"prompts": prompts(12)}))
    stats, trace = llm.stats, llm.trace
    assert stats.rate_limited == 8 and stats.transient_errors == sum(llm.fails(p) for p in prompts(12)[:4])
    assert stats.calls == stats.ok + stats.transient_errors + stats.rate_limited + stats.cancelled
    assert {r.outcome for r in trace} <= {"ok", "error", "rate_limited"}
    assert sum(r.outcome == "rate_limited" for r in trace) == stats.rate_limited
    errors = {type(f.error) for f in node.outcomes.failures}
    assert RateLimitError in errors and (TransientLLMError in errors) == (stats.transient_errors > 0)
    assert not issubclass(RateLimitError, TransientLLMError)


def test_blocking_call_obeys_the_limits_too():
    llm = SimulatedLLM(latency=0.001, requests_per_minute=1)
    llm.call("Summarize: first")
    with pytest.raises(RateLimitError, match="requests_per_minute") as refused:
        llm.call("Summarize: second")
    assert 59 < refused.value.retry_after <= 60


def test_repr_shows_the_limits_only_when_set():
    assert repr(SimulatedLLM()) == "SimulatedLLM(latency=1, jitter=0, seed=0, failure_rate=0)"
    assert repr(SimulatedLLM(max_concurrent=5, tokens_per_minute=1000)).endswith(
        "failure_rate=0, max_concurrent=5, tokens_per_minute=1000)"
    )


def test_busiest_window_counts_every_window_exactly():
    # [t, t + 60) holds t but not t + 60: the busiest is [59.999999, 119.999999), with 3.
    assert busiest_window([0.0, 59.999999, 60.0, 60.0, 119.999999]) == (59.999999, 3)
    assert busiest_window([0.0, 59.999999, 60.0, 60.0, 119.999998]) == (59.999999, 4)
    assert busiest_window([], 60.0) == (0.0, 0)
    assert busiest_window([5.0, 1.0, 3.0], window=2.0).requests == 1
    assert busiest_window([5.0, 1.0, 3.0], window=2.000001).requests == 2


# -- every new parameter refuses bad values by name ----------------------------------------------


@pytest.mark.parametrize("name", ["max_concurrent", "requests_per_minute", "tokens_per_minute"])
@pytest.mark.parametrize("bad", BAD_LIMITS)
def test_bad_service_limits_name_the_parameter(name, bad):
    with pytest.raises(ValueError, match=f"{name} must be an integer >= 1, or None"):
        SimulatedLLM(**{name: bad})


@pytest.mark.parametrize("bad", BAD_LIMITS)
def test_bad_max_per_minute_is_refused_on_node_and_flow(bad):
    for make in (BoundedParallelBatchNode, BoundedParallelBatchFlow):
        with pytest.raises(ValueError, match="max_per_minute must be an integer >= 1 .* a RateLimiter, or None"):
            make(max_per_minute=bad)


def test_bad_max_per_minute_in_a_class_body_or_assigned_later(virtual):
    class Broken(BoundedParallelBatchNode):
        max_per_minute = 0

    with pytest.raises(ValueError, match="max_per_minute"):
        Broken()
    node = AskNode(SimulatedLLM(), max_per_minute=10)
    node.max_per_minute = -5
    with pytest.raises(ValueError, match="max_per_minute"):
        virtual(node.run_async({"prompts": prompts(2)}))


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: RateLimiter(0), "requests"),
        (lambda: RateLimiter(1.5), "requests"),
        (lambda: RateLimiter(10, per=0), "per"),
        (lambda: RateLimiter(10, per=math.inf), "per"),
        (lambda: busiest_window([1.0], window=0), "window"),
        (lambda: busiest_window([math.nan]), "trace entry"),
    ],
)
def test_bad_limiter_arguments_name_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_busiest_window_can_count_refused_requests_too():
    from pocket_parallel import CallRecord, busiest_window

    trace = [CallRecord(f"p{i}", 1, float(i), float(i), "rate_limited" if i % 2 else "ok") for i in range(10)]
    assert busiest_window(trace, 60).requests == 5
    assert busiest_window(trace, 60, include_refused=True).requests == 10
    with pytest.raises(TypeError, match="include_refused"):
        busiest_window(trace, 60, include_refused="yes")


def test_rate_limiter_does_not_spin_on_float_dust_in_virtual_time():
    # aiolimiter's float drain once left ~1e-15 in the bucket and re-scheduled its wake-up
    # for "now" forever on the virtual clock; these two requests were enough to hang.
    import asyncio
    import threading

    from pocket_parallel import RateLimiter, run

    async def one(limiter, start):
        await asyncio.sleep(start)
        await limiter.acquire()
        return asyncio.get_running_loop().time()

    async def main():
        limiter = RateLimiter(120)  # one request per 0.5 s
        return await asyncio.gather(*(one(limiter, s) for s in (0.084733, 0.401032)))

    finished = []
    worker = threading.Thread(target=lambda: finished.append(run(main(), clock="virtual")), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert finished, "RateLimiter spun forever at one virtual instant"
    first, second = finished[0]
    assert second - first == pytest.approx(0.5, abs=1e-6)
