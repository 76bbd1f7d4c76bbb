"""SimulatedLLM: calls, trace, stats, faults and server-side limits (429s with retry_after)."""


from __future__ import annotations

import asyncio
import math

import pytest

from pocket_parallel import Backoff, RateLimitError, SimulatedLLM, TransientLLMError, run
from pocket_parallel.limits.ratelimit import busiest_window
from tests.support import (
    AskNode,
    micro,
    most_in_any_window,
    prompts,
    served_starts,
    timed,
)

BAD_LIMITS = [0, -1, 2.5, "5", True]






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


def test_requests_per_minute_refuses_with_the_time_until_the_oldest_leaves_the_window(virtual):
    llm = SimulatedLLM(latency=0.1, requests_per_minute=3, algorithm="sliding_window")

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


def test_tokens_per_minute_refuses_and_frees_as_calls_leave_the_window(virtual):
    prompt = "Translate to Spanish: Hello"  # 11 tokens
    llm = SimulatedLLM(latency=1.0, tokens_per_minute=25, algorithm="sliding_window")

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
        "failure_rate=0, max_concurrent=5, tokens_per_minute=1000 (token_bucket))"
    )


@pytest.mark.parametrize("name", ["max_concurrent", "requests_per_minute", "tokens_per_minute"])
@pytest.mark.parametrize("bad", BAD_LIMITS)
def test_bad_service_limits_name_the_parameter(name, bad):
    with pytest.raises(ValueError, match=f"{name} must be an integer >= 1, or None"):
        SimulatedLLM(**{name: bad})


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"latency": 0}, "latency"),
        ({"latency": -1}, "latency"),
        ({"latency": math.nan}, "latency"),
        ({"latency": math.inf}, "latency"),
        ({"latency": "1"}, "latency"),
        ({"jitter": -0.1}, "jitter"),
        ({"jitter": 5}, "jitter"),
        ({"jitter": math.nan}, "jitter"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"seed": "0"}, "seed"),
        ({"failure_rate": -0.1}, "failure_rate"),
        ({"failure_rate": 1.0}, "failure_rate"),
        ({"failure_rate": math.nan}, "failure_rate"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SimulatedLLM(**kwargs)


def test_prompt_must_be_text():
    llm = SimulatedLLM()
    with pytest.raises(TypeError, match="prompt"):
        run(llm(42), clock="virtual")  # type: ignore[arg-type]


def test_trace_and_stats_record_every_call_on_the_loop_clock():
    llm = SimulatedLLM(latency=1.5)

    async def three_at_once():
        await asyncio.gather(*(llm(f"Summarize: {i}") for i in range(3)))
        await llm("Summarize: last")

    run(three_at_once(), clock="virtual")
    stats = llm.stats
    assert (stats.calls, stats.ok, stats.in_flight, stats.peak_in_flight) == (4, 4, 0, 3)
    trace = llm.trace
    assert [r.outcome for r in trace] == ["ok"] * 4
    assert [r.attempt for r in trace] == [1, 1, 1, 1]
    last = next(r for r in trace if r.prompt == "Summarize: last")
    assert (last.start, last.end) == (pytest.approx(1.5), pytest.approx(3.0))
    llm.reset()
    assert llm.trace == [] and llm.stats.calls == 0


def test_failures_raise_transient_errors_and_are_counted():
    llm = SimulatedLLM(latency=0.1, failure_rate=0.5, seed=5)
    failing = [p for p in (f"Summarize: {i}" for i in range(40)) if llm.fails(p)]
    assert 5 < len(failing) < 35

    async def ask(prompt):
        try:
            return await llm(prompt)
        except TransientLLMError as error:
            return error

    async def ask_all():
        return await asyncio.gather(*(ask(f"Summarize: {i}") for i in range(40)))

    outcomes = run(ask_all(), clock="virtual")
    errors = [o for o in outcomes if isinstance(o, TransientLLMError)]
    assert len(errors) == len(failing) == llm.stats.transient_errors
    assert {e.prompt for e in errors} == set(failing)


def test_cancelled_call_is_recorded_and_leaves_nothing_in_flight():
    llm = SimulatedLLM(latency=10)

    async def cancel_midway():
        task = asyncio.ensure_future(llm("Summarize: slow"))
        await asyncio.sleep(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(cancel_midway(), clock="virtual")
    assert llm.stats.in_flight == 0 and llm.stats.cancelled == 1
    assert llm.trace[0].outcome == "cancelled" and llm.trace[0].duration == pytest.approx(1)


def test_sync_call_blocks_for_its_latency():
    llm = SimulatedLLM(latency=0.02)
    assert llm.call("Translate to French: cat") == "[French] cat"
    assert llm.trace[0].duration >= 0.02


def test_rerunning_the_same_prompts_sends_the_same_workload():
    # Only a call after a failure is a retry; after a success the next call is attempt 1 again,
    # so a learner who re-runs a cell without reset() sees the same latencies.
    llm = SimulatedLLM(latency=1, jitter=0.5, seed=12, failure_rate=0.3)
    texts = [f"Summarize: memo {i}" for i in range(30)]

    async def ask_all():
        async def ask(text):
            for _ in range(20):
                try:
                    return await llm(text)
                except TransientLLMError:
                    continue
            raise AssertionError("20 failures in a row")

        return await asyncio.gather(*(ask(t) for t in texts))

    run(ask_all(), clock="virtual")
    first = [(r.prompt, r.attempt, round(r.duration, 6), r.outcome) for r in llm.trace]
    run(ask_all(), clock="virtual")
    second = [(r.prompt, r.attempt, round(r.duration, 6), r.outcome) for r in llm.trace[len(first):]]
    assert sorted(second) == sorted(first)
    retried = [record for record in first if record[1] > 1]
    assert retried and all(record[3] in {"ok", "error"} for record in retried)


def test_an_overloaded_call_is_turned_away_at_once_and_counted_apart():
    from pocket_parallel.backends.simulated import OverloadedError

    llm = SimulatedLLM(latency=1.0, overload_rate=0.5, seed=1)
    prompt = next(p for p in (f"Summarize: {i}" for i in range(100)) if llm.model.overloaded(p))

    async def go():
        with pytest.raises(OverloadedError):
            await llm(prompt)
        return asyncio.get_running_loop().time()

    assert run(go(), clock="virtual") == 0.0
    assert llm.stats.overloaded == 1 and llm.stats.rate_limited == 0 and llm.trace[0].outcome == "overloaded"
    assert isinstance(OverloadedError(prompt, 1), TransientLLMError)  # retrying may succeed


def test_a_stalled_call_is_in_flight_until_it_is_cancelled():
    llm = SimulatedLLM(latency=1.0, stall_rate=0.5, seed=2)
    prompt = next(p for p in (f"Summarize: {i}" for i in range(100)) if llm.stalls(p))

    async def go():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(llm(prompt), timeout=30)
        return llm.stats

    stats = run(go(), clock="virtual")
    assert stats.cancelled == 1 and stats.in_flight == 0 and llm.trace[0].duration == 30.0
    with pytest.raises(RuntimeError, match="stall"):
        llm.call(prompt)


def test_a_stalled_attempt_counts_as_failed_so_the_retry_draws_afresh():
    llm = SimulatedLLM(latency=1.0, stall_rate=0.5, seed=2)
    prompt = next(p for p in (f"Summarize: {i}" for i in range(100)) if llm.stalls(p, 1) and not llm.stalls(p, 2))

    async def go():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(llm(prompt), timeout=5)
        return await llm(prompt)  # the caller's retry: attempt 2, which answers

    assert run(go(), clock="virtual") == llm.answer_for(prompt)
    assert [(r.attempt, r.outcome) for r in llm.trace] == [(1, "cancelled"), (2, "ok")]


def test_a_healthy_call_cancelled_by_its_caller_is_no_attempt():
    llm = SimulatedLLM(latency=1.0, jitter=0.5, seed=2)

    async def go():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(llm("Summarize: x"), timeout=0.1)
        await llm("Summarize: x")

    run(go(), clock="virtual")
    assert [(r.attempt, r.outcome) for r in llm.trace] == [(1, "cancelled"), (1, "ok")]


def test_a_refusal_carries_the_headers_a_provider_would_send():
    llm = SimulatedLLM(latency=1.0, requests_per_minute=2)

    async def go():
        await asyncio.gather(llm("a"), llm("b"))
        with pytest.raises(RateLimitError) as refused:
            await llm("c")
        return refused.value, llm.rate_limit_headers()

    error, headers = run(go(), clock="virtual")
    assert error.retry_after == 29.0  # at t = 1 s, one request refills every 30 s
    assert error.headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-limit-requests"] == "2" and headers["x-ratelimit-reset-requests"] == "59s"


def test_the_headers_of_either_api_describe_the_same_limits():
    llm = SimulatedLLM(latency=1.0, requests_per_minute=60, input_tokens_per_minute=600, output_tokens_per_minute=300)

    async def go():
        await llm.complete("Summarize: a", max_tokens=100)
        return llm.rate_limit_headers(api="anthropic"), llm.rate_limit_headers()

    anthropic, openai = run(go(), clock="virtual")
    assert anthropic["anthropic-ratelimit-requests-limit"] == "60" == openai["x-ratelimit-limit-requests"]
    assert anthropic["anthropic-ratelimit-requests-remaining"] == "60"  # one request taken at 0 s, refilled by 1 s
    assert anthropic["anthropic-ratelimit-output-tokens-limit"] == "300"
    assert anthropic["anthropic-ratelimit-input-tokens-remaining"] == "600"
    # On the virtual clock the resets are RFC 3339 times from the fixed epoch: 1 s in, with full buckets, that is now.
    assert anthropic["anthropic-ratelimit-requests-reset"] == "2025-01-01T00:00:01.000Z"
    assert "x-ratelimit-limit-tokens" not in openai  # OpenAI's family has no input or output budgets
    outside = llm.rate_limit_headers(0.0, api="anthropic")  # no loop: the given time, from the same epoch
    assert outside["anthropic-ratelimit-requests-reset"].startswith("2025-01-01T00:00:0")


def test_rate_limit_headers_names_a_bad_api_and_needs_a_time_outside_a_loop():
    llm = SimulatedLLM(requests_per_minute=60)
    with pytest.raises(ValueError, match="api must be one of 'openai', 'anthropic'; got 'gemini'"):
        llm.rate_limit_headers(0.0, api="gemini")
    with pytest.raises(RuntimeError, match="needs now= outside an event loop"):
        llm.rate_limit_headers()
