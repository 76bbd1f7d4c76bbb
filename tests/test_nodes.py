"""BoundedParallelBatchNode and BoundedParallelBatchFlow: limits, retries, faults, cancellation, pacing."""


from __future__ import annotations

import asyncio
import warnings

import pytest
from pocketflow import AsyncFlow, AsyncNode, AsyncParallelBatchNode

from pocket_parallel import (
    Backoff,
    BoundedParallelBatchFlow,
    BoundedParallelBatchNode,
    Failure,
    RateLimiter,
    RateLimitError,
    SimulatedLLM,
    TransientLLMError,
    run,
)
from tests.support import AskNode, ChapterRateLimitedNode, micro, most_in_any_window, prompts, served_starts, timed


class Summarize(AsyncNode):
    """One sub-flow step: summarize the document named in params, store it under its own key."""

    def __init__(self, llm):
        super().__init__()
        self.llm = llm

    async def prep_async(self, shared):
        return self.params["doc"]

    async def exec_async(self, doc):
        return await self.llm(f"Summarize: {doc}")

    async def post_async(self, shared, prep_res, exec_res):
        shared.setdefault("summaries", {})[prep_res] = exec_res


class AllDocs(BoundedParallelBatchFlow):
    async def prep_async(self, shared):
        return [{"doc": d} for d in shared["docs"]]


async def _timed(coro):
    loop = asyncio.get_running_loop()
    start = loop.time()
    await coro
    return loop.time() - start


async def cancel_after(seconds: float, coro) -> list[asyncio.Task]:
    task = asyncio.ensure_future(coro)
    await asyncio.sleep(seconds)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return others()




BAD_LIMITS = [0, -1, 2.5, "5", True]




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


def others() -> list[asyncio.Task]:
    """Every task of this loop but the one asking: what a cancelled run must not leave behind."""
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


@pytest.mark.parametrize("inside_flow", [False, True], ids=["node alone", "inside AsyncFlow"])
@pytest.mark.parametrize("limit, n", [(1, 5), (5, 20), (7, 50)])
def test_limit_holds_alone_and_inside_a_flow(virtual, inside_flow, limit, n):
    llm = SimulatedLLM(latency=1.0, jitter=0.4, seed=limit)
    node = AskNode(llm, max_concurrency=limit)
    runner = AsyncFlow(start=node) if inside_flow else node
    shared = {"prompts": prompts(n)}
    virtual(runner.run_async(shared))
    assert llm.stats.peak_in_flight == limit
    assert shared["answers"] == [llm.answer_for(p) for p in prompts(n)]  # input order kept


def test_chapter_version_is_bypassed_inside_a_flow(virtual):
    # The reason this package exists: the chapter's override of run_async is skipped by AsyncFlow.
    alone, in_flow = SimulatedLLM(latency=1), SimulatedLLM(latency=1)
    virtual(ChapterRateLimitedNode(alone, 5).run_async({"prompts": prompts(20)}))
    virtual(AsyncFlow(start=ChapterRateLimitedNode(in_flow, 5)).run_async({"prompts": prompts(20)}))
    assert alone.stats.peak_in_flight == 5
    assert in_flow.stats.peak_in_flight == 20


def test_unlimited_starts_everything_at_once(virtual):
    llm = SimulatedLLM(latency=1)
    virtual(AskNode(llm, max_concurrency=None).run_async({"prompts": prompts(30)}))
    assert llm.stats.peak_in_flight == 30


def test_limit_from_the_class_body_and_overridden_at_construction(virtual):
    class FiveAtATime(AskNode):
        max_concurrency = 5

    llm = SimulatedLLM(latency=1)
    virtual(FiveAtATime(llm).run_async({"prompts": prompts(12)}))
    assert llm.stats.peak_in_flight == 5
    llm.reset()
    virtual(FiveAtATime(llm, max_concurrency=2).run_async({"prompts": prompts(12)}))
    assert llm.stats.peak_in_flight == 2


@pytest.mark.parametrize("bad", [0, -1, 2.5, 3.0, "5", True])
def test_bad_limits_are_refused_at_construction(bad):
    with pytest.raises(ValueError, match="max_concurrency must be an integer >= 1, or None"):
        BoundedParallelBatchNode(max_concurrency=bad)
    with pytest.raises(ValueError, match="max_concurrency"):
        BoundedParallelBatchFlow(max_concurrency=bad)


def test_bad_limit_in_a_class_body_is_refused_when_built():
    class Broken(BoundedParallelBatchNode):
        max_concurrency = 0

    with pytest.raises(ValueError, match="max_concurrency"):
        Broken()


def test_bad_limit_assigned_later_fails_at_run_not_deadlock(virtual):
    node = AskNode(SimulatedLLM(), max_concurrency=3)
    node.max_concurrency = 0
    with pytest.raises(ValueError, match="max_concurrency"):
        virtual(node.run_async({"prompts": prompts(3)}))


@pytest.mark.parametrize("kwargs, name", [({"max_retries": 0}, "max_retries"), ({"wait": -1}, "wait"), ({"max_retries": 1.5}, "max_retries")])
def test_bad_retry_settings_are_refused(kwargs, name):
    with pytest.raises(ValueError, match=name):
        BoundedParallelBatchNode(**kwargs)


def test_retries_wait_and_fallback_still_work_under_the_limit(virtual):
    llm = SimulatedLLM(latency=1, failure_rate=0.5, seed=9)
    items = prompts(20)

    class Careful(AskNode):
        async def exec_fallback_async(self, prompt, exc):
            return ("gave up", prompt, type(exc).__name__)

    node = Careful(llm, max_retries=3, wait=2, max_concurrency=4)
    shared = {"prompts": items}
    virtual(AsyncFlow(start=node).run_async(shared))
    assert llm.stats.peak_in_flight <= 4
    attempts = {}
    for record in llm.trace:
        attempts.setdefault(record.prompt, []).append(record)
    for prompt, answer in zip(items, shared["answers"]):
        calls = attempts[prompt]
        outcomes = [c.outcome for c in calls]
        if outcomes[-1] == "ok":
            assert answer == llm.answer_for(prompt)
        else:
            assert answer == ("gave up", prompt, "TransientLLMError") and len(calls) == 3
        assert outcomes[:-1] == ["error"] * (len(calls) - 1)
        for before, after in zip(calls, calls[1:]):  # the node waited 2 s between attempts
            assert after.start - before.end == pytest.approx(2.0)
    assert any(len(c) > 1 for c in attempts.values())


def test_without_fallback_the_error_reaches_the_caller(virtual):
    llm = SimulatedLLM(latency=1, failure_rate=0.9, seed=1)
    with pytest.raises(TransientLLMError):
        virtual(AskNode(llm, max_concurrency=2).run_async({"prompts": prompts(5)}))


def test_retries_under_the_chapter_run_async_path_are_lost():
    # Documented contrast: run directly, the chapter's version calls exec_async itself and
    # so skips max_retries; ours goes through PocketFlow's _exec and keeps them.
    assert ChapterRateLimitedNode.run_async is not AsyncNode.run_async
    assert BoundedParallelBatchNode.run_async is AsyncNode.run_async


@pytest.mark.parametrize("limit, expected_peak", [(3, 3), (None, 10)])
def test_flow_limit_counts_sub_flows_in_flight(virtual, limit, expected_peak):
    llm = SimulatedLLM(latency=1, jitter=0.3, seed=2)
    docs = [f"doc-{i}" for i in range(10)]
    shared = {"docs": docs}
    virtual(AsyncFlow(start=AllDocs(start=Summarize(llm), max_concurrency=limit)).run_async(shared))
    assert llm.stats.peak_in_flight == expected_peak
    assert shared["summaries"] == {d: llm.answer_for(f"Summarize: {d}") for d in docs}


def test_flow_limit_holds_when_run_directly(virtual):
    llm = SimulatedLLM(latency=1)
    shared = {"docs": [f"d{i}" for i in range(9)]}
    elapsed = virtual(_timed(AllDocs(start=Summarize(llm), max_concurrency=2).run_async(shared)))
    assert llm.stats.peak_in_flight == 2
    assert elapsed == pytest.approx(5.0)  # ceil(9 / 2) rounds of 1 s


@pytest.mark.parametrize("inside_flow", [False, True], ids=["node alone", "inside AsyncFlow"])
def test_task_cancel_stops_every_call_leaves_no_task_and_keeps_finished_results(virtual, inside_flow):
    llm = SimulatedLLM(latency=1.0, jitter=0.5, seed=3)
    node = AskNode(llm, max_concurrency=4)
    runner = AsyncFlow(start=node) if inside_flow else node
    leftovers = virtual(cancel_after(1.5, runner.run_async({"prompts": prompts(12)})))
    assert leftovers == []
    stats, outcomes = llm.stats, node.outcomes  # the original node shows the flow copy's run too
    assert stats.in_flight == 0 and stats.cancelled == 4  # all 4 slots were busy at t = 1.5
    finished = {r.prompt for r in llm.trace if r.outcome == "ok"}
    assert finished and all(r.end <= 1.5 for r in llm.trace if r.outcome == "ok")
    assert all(r.end == 1.5 for r in llm.trace if r.outcome == "cancelled")
    assert outcomes.succeeded == [(p, llm.answer_for(p)) for p in prompts(12) if p in finished]
    assert len(outcomes.cancelled) == 12 - len(finished) and outcomes.pending == []


def test_cancelling_a_parallel_flow_cancels_its_sub_flows_and_keeps_their_work(virtual):
    llm = SimulatedLLM(latency=1.0)

    class Summarize(AsyncNode):
        async def exec_async(self, _):
            return await llm(f"Summarize: {self.params['doc']}")

        async def post_async(self, shared, prep_res, exec_res):
            shared["summaries"][self.params["doc"]] = exec_res

    class Docs(BoundedParallelBatchFlow):
        async def prep_async(self, shared):
            return [{"doc": d} for d in shared["docs"]]

    docs = [f"d{i}" for i in range(10)]
    shared = {"docs": docs, "summaries": {}}
    flow = Docs(start=Summarize(), max_concurrency=3)
    assert virtual(cancel_after(2.5, flow.run_async(shared))) == []
    assert list(shared["summaries"]) == docs[:6]  # two rounds of three finished
    assert flow.outcomes.counts() == {"ok": 6, "failed": 0, "cancelled": 4, "pending": 0}
    assert llm.stats.cancelled == 3 and llm.stats.in_flight == 0


def test_a_thousand_items_with_enough_retries_all_succeed(virtual):
    llm = SimulatedLLM(latency=1.0, failure_rate=0.2, seed=5)
    items = prompts(1000)
    node = AskNode(llm, max_retries=10, max_concurrency=50, backoff=Backoff(base=0.5, cap=8.0))
    shared = {"prompts": items}
    virtual(node.run_async(shared))
    assert shared["answers"] == [llm.answer_for(p) for p in items]  # every one, in input order
    assert llm.stats.transient_errors > 150  # about 0.2 * 1000 first attempts failed, and were retried
    assert node.outcomes.counts() == {"ok": 1000, "failed": 0, "cancelled": 0, "pending": 0}


def test_a_thousand_items_with_too_few_retries_end_as_results_or_failures(virtual):
    llm = SimulatedLLM(latency=1.0, failure_rate=0.2, seed=5)
    items = prompts(1000)
    node = AskNode(llm, max_retries=2, max_concurrency=50, collect_failures=True)
    shared = {"prompts": items}
    virtual(node.run_async(shared))
    answers = shared["answers"]
    assert len(answers) == 1000
    # Which items fail for good follows from the service alone: both of their attempts fail.
    doomed = [p for p in items if llm.fails(p, 1) and llm.fails(p, 2)]
    assert 20 < len(doomed) < 80  # about 0.2 ** 2 = 4 %
    failures = node.outcomes.failures
    assert [f.item for f in failures] == doomed
    assert all(f.attempts == 2 and isinstance(f.error, TransientLLMError) and f.error.attempt == 2 for f in failures)
    for prompt, answer in zip(items, answers):  # post_async got a Failure in each failed item's place
        if prompt in doomed:
            assert isinstance(answer, Failure) and answer.item == prompt
        else:
            assert answer == llm.answer_for(prompt)
    assert len(node.outcomes.results) + len(failures) == 1000


def test_without_collect_failures_the_first_error_cancels_the_rest_and_keeps_what_finished(virtual):
    llm = SimulatedLLM(latency=1.0, jitter=0.5, seed=3, failure_rate=0.3)
    items = prompts(20)
    node = AskNode(llm, max_concurrency=4)
    leftovers = []

    async def scenario():
        with pytest.raises(TransientLLMError) as raised:
            await node.run_async({"prompts": items})
        leftovers.extend(t for t in asyncio.all_tasks() if t is not asyncio.current_task())
        return raised.value

    error = virtual(scenario())
    assert leftovers == []  # no item keeps running after the error, unlike PocketFlow's gather
    outcomes = node.outcomes
    assert outcomes.failures[0].error is error and len(outcomes.failures) == 1
    assert outcomes.pending == [] and outcomes.cancelled  # the rest were stopped, and say so
    assert outcomes.results == [llm.answer_for(p) for p, _ in outcomes.succeeded]
    assert {r.prompt for r in llm.trace if r.outcome == "ok"} == {p for p, _ in outcomes.succeeded}
    assert llm.stats.in_flight == 0


def test_pocketflow_gather_leaves_the_other_items_running_after_an_error(virtual):
    # The contrast the test above is about: plain AsyncParallelBatchNode raises the first error
    # while the other items go on running with nobody waiting for them.
    llm = SimulatedLLM(latency=1.0, jitter=0.5, seed=3, failure_rate=0.3)

    class Plain(AsyncParallelBatchNode):
        async def prep_async(self, shared):
            return shared["prompts"]

        async def exec_async(self, prompt):
            return await llm(prompt)

    async def scenario():
        with pytest.raises(TransientLLMError):
            await Plain().run_async({"prompts": prompts(20)})
        return sum(1 for t in asyncio.all_tasks() if t is not asyncio.current_task())

    assert virtual(scenario()) > 0


def test_fallback_still_decides_in_collect_mode(virtual):
    llm = SimulatedLLM(latency=1.0, failure_rate=0.5, seed=9)

    class Lenient(AskNode):
        async def exec_fallback_async(self, prompt, exc):
            if prompt.endswith("1"):
                raise exc  # give up on these: they become Failure records
            return "fallback answer"

    node = Lenient(llm, max_retries=2, collect_failures=True)
    shared = {"prompts": prompts(12)}
    virtual(node.run_async(shared))
    for prompt, answer in zip(prompts(12), shared["answers"]):
        failed_twice = llm.fails(prompt, 1) and llm.fails(prompt, 2)
        if not failed_twice:
            assert answer == llm.answer_for(prompt)
        elif prompt.endswith("1"):
            assert isinstance(answer, Failure) and answer.attempts == 2
        else:
            assert answer == "fallback answer"


def test_flow_collect_failures_keeps_the_other_sub_flows_going(virtual):
    llm = SimulatedLLM(latency=1.0, failure_rate=0.4, seed=2)

    class One(AsyncNode):
        async def exec_async(self, _):
            return await llm(f"Summarize: {self.params['doc']}")

        async def post_async(self, shared, prep_res, exec_res):
            shared.setdefault("done", []).append(self.params["doc"])

    class Docs(BoundedParallelBatchFlow):
        async def prep_async(self, shared):
            return [{"doc": d} for d in shared["docs"]]

    docs = [f"d{i}" for i in range(10)]
    flow = Docs(start=One(), max_concurrency=3, collect_failures=True)
    shared = {"docs": docs}
    virtual(flow.run_async(shared))
    failing = [d for d in docs if llm.fails(f"Summarize: {d}")]
    assert failing and sorted(shared["done"]) == sorted(set(docs) - set(failing))
    assert [f.item for f in flow.outcomes.failures] == [{"doc": d} for d in failing]


def test_backoff_timings_between_attempts_in_a_node(virtual):
    llm = SimulatedLLM(latency=1.0, failure_rate=0.6, seed=4)
    backoff = Backoff(base=2.0, cap=5.0, seed=3)
    node = AskNode(llm, max_retries=4, backoff=backoff, collect_failures=True)
    items = prompts(8)
    virtual(node.run_async({"prompts": items}))
    by_prompt: dict[str, list] = {}
    for record in llm.trace:
        by_prompt.setdefault(record.prompt, []).append(record)
    checked = 0
    for index, prompt in enumerate(items):
        calls = sorted(by_prompt[prompt], key=lambda r: r.attempt)
        for failures, (before, after) in enumerate(zip(calls, calls[1:]), start=1):
            expected = backoff.delay(failures, key=index)  # keyed by the item's position
            assert round(after.start - before.end, 6) == expected
            checked += 1
    assert checked >= 5


def test_bad_node_fault_settings_name_the_parameter():
    with pytest.raises(TypeError, match="backoff must be a Backoff"):
        BoundedParallelBatchNode(backoff=2.0)
    with pytest.raises(ValueError, match="give wait .* or backoff .*, not both"):
        BoundedParallelBatchNode(wait=1, backoff=Backoff())
    for bad in (1, "yes", None):
        with pytest.raises(TypeError, match="collect_failures must be True or False"):
            BoundedParallelBatchNode(collect_failures=bad)
        with pytest.raises(TypeError, match="collect_failures must be True or False"):
            BoundedParallelBatchFlow(collect_failures=bad)


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


def test_the_rate_limit_counts_every_attempt_including_retries(virtual):
    llm = SimulatedLLM(latency=0.5, failure_rate=0.5, seed=2)
    node = AskNode(llm, max_retries=4, max_per_minute=60, collect_failures=True)
    elapsed = virtual(timed(node.run_async({"prompts": prompts(10)})))
    starts = sorted(r.start for r in llm.trace)
    assert len(starts) == llm.stats.calls > 10  # retries were made
    assert [micro(s) for s in starts] == [k * 1_000_000 for k in range(len(starts))]  # one request per second
    assert micro(elapsed) == micro(starts[-1] + 0.5)


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


# -- deadlines: a per-attempt timeout and a whole-batch deadline --------------------------------


def test_a_stalled_call_without_a_timeout_ends_the_run_with_a_clear_error():
    from pocket_parallel import VirtualDeadlockError

    llm = SimulatedLLM(latency=1.0, stall_rate=0.1, seed=0)
    assert any(llm.stalls(p) for p in prompts(20))
    with pytest.raises(VirtualDeadlockError, match="stalled call"):
        run(AskNode(llm, max_concurrency=5).run_async({"prompts": prompts(20)}), clock="virtual")


@pytest.mark.parametrize("seed", range(4))
def test_with_a_timeout_stalled_attempts_are_cancelled_on_time_and_retried(seed):
    llm = SimulatedLLM(latency=1.0, stall_rate=0.1, seed=seed)
    items = prompts(40)
    node = AskNode(llm, max_concurrency=5, timeout=3.0, max_retries=4, collect_failures=True)
    shared = {"prompts": items}
    elapsed = run(_timed(node.run_async(shared)), clock="virtual")
    stalled = [r for r in llm.trace if r.outcome == "cancelled"]
    assert stalled and all(micro(r.duration) == micro(3.0) for r in stalled)
    assert len(stalled) == sum(llm.stalls(r.prompt, r.attempt) for r in llm.trace)
    # Every item ends: answered, or an explicit failure after 4 stalled attempts.
    outcomes = node.outcomes
    assert outcomes.pending == [] and len(outcomes.results) + len(outcomes.failures) == 40
    for failure in outcomes.failures:
        assert failure.attempts == 4 and "took longer than the timeout of 3 s" in str(failure.error)
    for prompt, answer in zip(items, shared["answers"]):
        if not isinstance(answer, Failure):
            assert answer == llm.answer_for(prompt)
    # Each item holds its slot for its attempts: the in-order schedule of those times is the makespan.
    from pocket_parallel.experiment import item_work, semaphore_makespan

    assert micro(elapsed) == micro(semaphore_makespan(item_work(llm.trace, items), 5))


def test_a_timeout_rescues_an_item_whose_first_attempt_stalls():
    llm = SimulatedLLM(latency=1.0, stall_rate=0.2, seed=1)
    items = prompts(30)
    stuck = [p for p in items if llm.stalls(p, 1) and not llm.stalls(p, 2) and not llm.fails(p, 2)]
    assert stuck
    node = AskNode(llm, max_concurrency=5, timeout=3.0, max_retries=2, collect_failures=True)
    run(node.run_async({"prompts": items}), clock="virtual")
    answered = dict(node.outcomes.succeeded)
    for prompt in stuck:  # cancelled at 3 s, then answered by attempt 2
        assert answered[prompt] == llm.answer_for(prompt)
        assert [(r.attempt, r.outcome) for r in llm.trace if r.prompt == prompt] == [(1, "cancelled"), (2, "ok")]


def test_a_timeout_error_raised_inside_an_attempt_is_not_mistaken_for_ours():
    class OwnTimeout(AskNode):
        async def exec_async(self, prompt):
            raise TimeoutError("the service's own read timeout")

    node = OwnTimeout(SimulatedLLM(), timeout=5.0, collect_failures=True)
    run(node.run_async({"prompts": prompts(1)}), clock="virtual")
    (failure,) = node.outcomes.failures
    assert str(failure.error) == "the service's own read timeout"


@pytest.mark.parametrize("collect", [True, False])
def test_the_batch_deadline_keeps_finished_items_and_fails_the_rest(collect):
    from pocket_parallel.outcomes import DeadlineExceeded

    llm = SimulatedLLM(latency=1.0, jitter=0.5, seed=2)
    items = prompts(30)
    node = AskNode(llm, max_concurrency=4, deadline=5.0, collect_failures=collect)

    async def go():
        loop = asyncio.get_running_loop()
        try:
            await node.run_async({"prompts": items})
        except DeadlineExceeded:
            assert not collect
        return loop.time(), [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    ended, leftovers = run(go(), clock="virtual")
    assert ended == 5.0 and leftovers == [] and llm.stats.in_flight == 0
    outcomes = node.outcomes
    finished = {r.prompt for r in llm.trace if r.outcome == "ok"}
    assert {p for p, _ in outcomes.succeeded} == finished and all(r.end <= 5.0 for r in llm.trace)
    assert outcomes.pending == [] and outcomes.cancelled == []
    assert len(outcomes.failures) == 30 - len(finished) > 0
    in_flight_at_deadline = {r.prompt for r in llm.trace if r.outcome == "cancelled"}
    assert len(in_flight_at_deadline) == 4
    for failure in outcomes.failures:
        assert isinstance(failure.error, DeadlineExceeded)
        assert failure.attempts == (1 if failure.item in in_flight_at_deadline else 0)


def test_a_flow_deadline_stops_its_sub_flows():
    from pocket_parallel.outcomes import DeadlineExceeded

    llm = SimulatedLLM(latency=1.0)
    docs = [f"d{i}" for i in range(10)]
    shared = {"docs": docs, "summaries": {}}
    flow = AllDocs(start=Summarize(llm), max_concurrency=3, deadline=2.5, collect_failures=True)
    virtual_time = run(_timed(flow.run_async(shared)), clock="virtual")
    assert virtual_time == 2.5
    assert flow.outcomes.counts() == {"ok": 6, "failed": 4, "cancelled": 0, "pending": 0}
    assert all(isinstance(f.error, DeadlineExceeded) for f in flow.outcomes.failures)


@pytest.mark.parametrize("bad", [0, -1, "5", float("inf"), True])
def test_bad_timeouts_and_deadlines_are_named(bad):
    for name in ("timeout", "deadline"):
        with pytest.raises((ValueError, TypeError), match=name):
            AskNode(SimulatedLLM(), **{name: bad})
    with pytest.raises((ValueError, TypeError), match="deadline"):
        BoundedParallelBatchFlow(deadline=bad)


# -- backoff and the concurrency slot -------------------------------------------------------------


@pytest.mark.parametrize("releases", [False, True])
def test_backoff_keeps_the_slot_unless_told_to_release_it(releases):
    llm = SimulatedLLM(latency=1.0, max_concurrent=4)
    node = AskNode(llm, max_concurrency=8, max_retries=40, backoff=Backoff(), collect_failures=True,
                   backoff_releases_slot=releases)
    in_progress, peak_items = set(), 0

    async def exec_async(prompt, _original=node.exec_async):
        nonlocal peak_items
        in_progress.add(prompt)
        peak_items = max(peak_items, len(in_progress))
        answer = await _original(prompt)
        in_progress.discard(prompt)
        return answer

    node.exec_async = exec_async
    run(node.run_async({"prompts": prompts(60)}), clock="virtual")
    stats = llm.stats
    assert node.outcomes.counts()["ok"] == 60 and stats.peak_in_flight == 4
    if releases:
        assert peak_items > 8  # items asleep in backoff gave their slots to new items
    else:
        assert peak_items == 8  # never more than C items in progress


def test_releasing_the_slot_in_backoff_costs_more_429s_for_the_same_throughput():
    from pocket_parallel import measure_throughput

    kept = measure_throughput([16], items=100, max_concurrent=8)[0]
    # measure_throughput has no switch for it: run the same node by hand.
    llm = SimulatedLLM(latency=1.0, max_concurrent=8)
    node = AskNode(llm, max_concurrency=16, max_retries=30, backoff=Backoff(), collect_failures=True,
                   backoff_releases_slot=True)
    released_time = run(_timed(node.run_async({"prompts": [f"Summarize: document {i} of 100" for i in range(1, 101)]})),
                        clock="virtual")
    assert kept.completed == 100 and node.outcomes.counts()["ok"] == 100
    assert llm.stats.rate_limited > 2 * kept.rate_limited
    assert released_time == pytest.approx(kept.makespan, rel=0.05)


# -- unlimited, our classes behave as PocketFlow's own (its tests, adapted) ------------------------


class _NumberProcessor(BoundedParallelBatchNode):
    def __init__(self, delay=0.1, **limits):
        super().__init__(**limits)
        self.delay = delay

    async def prep_async(self, shared_storage):
        return shared_storage.get("input_numbers", [])

    async def exec_async(self, number):
        await asyncio.sleep(self.delay)
        return number * 2

    async def post_async(self, shared_storage, prep_result, exec_result):
        shared_storage["processed_numbers"] = exec_result
        return "processed"


@pytest.mark.parametrize("limit", [None, 3])
def test_pocketflow_reference_parallel_node(limit):
    # From PocketFlow's tests/test_async_parallel_batch_node.py, on our node, unlimited and limited.
    shared = {"input_numbers": list(range(5))}
    elapsed = run(_timed(_NumberProcessor(0.1, max_concurrency=limit).run_async(shared)), clock="virtual")
    assert shared["processed_numbers"] == [0, 2, 4, 6, 8]
    assert micro(elapsed) == micro(0.1 if limit is None else 0.2)
    for numbers in ([], [42], list(range(100))):
        shared = {"input_numbers": numbers}
        run(_NumberProcessor(0.01, max_concurrency=limit).run_async(shared), clock="virtual")
        assert shared["processed_numbers"] == [x * 2 for x in numbers]

    class Error(_NumberProcessor):
        async def exec_async(self, item):
            if item == 2:
                raise ValueError(f"Error processing item {item}")
            return item

    with pytest.raises(ValueError):
        run(Error(max_concurrency=limit).run_async({"input_numbers": [1, 2, 3]}), clock="virtual")

    order = []

    class Order(_NumberProcessor):
        async def exec_async(self, item):
            await asyncio.sleep(0.1 if item % 2 == 0 else 0.05)
            order.append(item)
            return item

    # Completion order tells concurrency apart only when all four items run at once.
    run(Order(max_concurrency=None if limit is None else 4).run_async({"input_numbers": list(range(4))}),
        clock="virtual")
    assert order.index(1) < order.index(0) and order.index(3) < order.index(2)


@pytest.mark.parametrize("limit", [None, 2])
def test_pocketflow_reference_parallel_batch_flow(limit):
    # From PocketFlow's tests/test_async_parallel_batch_flow.py, on our flow.
    class Processor(_NumberProcessor):
        async def prep_async(self, shared_storage):
            return shared_storage["batches"][self.params["batch_id"]]

        async def post_async(self, shared_storage, prep_result, exec_result):
            shared_storage.setdefault("processed_numbers", {})[self.params["batch_id"]] = exec_result
            return "processed"

    class Aggregate(AsyncNode):
        async def prep_async(self, shared_storage):
            processed = shared_storage.get("processed_numbers", {})
            # PocketFlow's test reads processed[0..k-1]; batches that end at the same instant may
            # be filed in any order, so read them in key order instead.
            return [n for i in sorted(processed) for n in processed[i]]

        async def exec_async(self, prep_result):
            await asyncio.sleep(0.01)
            return sum(prep_result)

        async def post_async(self, shared_storage, prep_result, exec_result):
            shared_storage["total"] = exec_result
            return "aggregated"

    class Batches(BoundedParallelBatchFlow):
        async def prep_async(self, shared_storage):
            return [{"batch_id": i} for i in range(len(shared_storage["batches"]))]

    processor = Processor(0.1)
    processor - "processed" >> Aggregate()
    shared = {"batches": [[1, 2, 3], [4, 5, 6], [7, 8, 9]]}
    elapsed = run(_timed(Batches(start=processor, max_concurrency=limit).run_async(shared)), clock="virtual")
    assert shared["processed_numbers"] == {0: [2, 4, 6], 1: [8, 10, 12], 2: [14, 16, 18]}
    assert shared["total"] == sum(n * 2 for batch in shared["batches"] for n in batch)
    assert micro(elapsed) == micro(0.11 if limit is None else 0.22)

    class Error(Processor):
        async def exec_async(self, item):
            if item == 2:
                raise ValueError(f"Error processing item {item}")
            return item

    with pytest.raises(ValueError):
        run(Batches(start=Error(), max_concurrency=limit).run_async({"batches": [[1, 2, 3], [4, 5, 6]]}),
            clock="virtual")

    class Item(AsyncNode):
        async def prep_async(self, shared_storage):
            return shared_storage["groups"][self.params["group"]][self.params["item"]]

        async def exec_async(self, prep_res):
            return prep_res * 2

        async def post_async(self, shared_storage, prep_res, exec_res):
            shared_storage.setdefault("results", {}).setdefault(self.params["group"], []).append(exec_res)

    class Inner(BoundedParallelBatchFlow):
        async def prep_async(self, shared_storage):
            group = self.params["group"]
            return [{"item": i, "group": group} for i in range(len(shared_storage["groups"][group]))]

    class Outer(BoundedParallelBatchFlow):
        async def prep_async(self, shared_storage):
            return [{"group": g} for g in shared_storage["groups"]]

    shared = {"groups": {"A": [1, 2], "B": [3, 4]}}
    run(Outer(start=Inner(start=Item(), max_concurrency=limit), max_concurrency=limit).run_async(shared),
        clock="virtual")
    assert sorted(shared["results"]) == ["A", "B"]
    assert sorted(shared["results"]["A"]) == [2, 4] and sorted(shared["results"]["B"]) == [6, 8]


def test_a_gate_shared_by_two_nodes_caps_their_calls_together():
    llm = SimulatedLLM(latency=1.0)

    async def go():
        gate = asyncio.Semaphore(3)
        first = AskNode(llm, max_concurrency=5, shared_gate=gate)
        second = AskNode(llm, max_concurrency=5, shared_gate=gate)
        await asyncio.gather(first.run_async({"prompts": prompts(6)}),
                             second.run_async({"prompts": [f"Translate to French: {i}" for i in range(6)]}))
        return asyncio.get_running_loop().time()

    assert run(go(), clock="virtual") == 4.0  # 12 calls, 3 at a time
    assert llm.stats.peak_in_flight == 3
    with pytest.raises(TypeError, match="shared_gate"):
        AskNode(llm, shared_gate=3)


# -- durable batches: a journal of finished items ----------------------------------------------


def test_a_journaled_rerun_sends_only_what_is_missing_and_returns_the_same_answers(tmp_path):
    from pocket_parallel.journal import Journal

    items = prompts(30)
    path = tmp_path / "answers.sqlite"
    llm = SimulatedLLM(latency=1.0, jitter=0.4, seed=3)
    first = AskNode(llm, max_concurrency=4, journal=path, deadline=4.0, collect_failures=True)
    run(first.run_async({"prompts": items}), clock="virtual")
    done = len(first.outcomes.results)
    assert 0 < done < 30 and llm.stats.calls == done + 4  # the 4 in flight at the deadline were cut off
    with Journal(path, identity="pocket_parallel.experiment.AskEach") as journal:
        assert journal.counts() == {"ok": done, "failed": 0}  # deadline failures are not journaled
    llm.reset()
    second = AskNode(llm, max_concurrency=4, journal=path)
    shared = {"prompts": items}
    run(second.run_async(shared), clock="virtual")
    assert llm.stats.calls == 30 - done
    assert shared["answers"] == [llm.answer_for(p) for p in items]
    llm.reset()
    run(AskNode(llm, max_concurrency=4, journal=path).run_async({"prompts": items}), clock="virtual")
    assert llm.stats.calls == 0


def test_failures_are_journaled_and_retried_by_the_next_run(tmp_path):
    from pocket_parallel.journal import Journal

    path = tmp_path / "answers.sqlite"
    llm = SimulatedLLM(latency=1.0, failure_rate=0.5, seed=4)
    items = prompts(20)
    node = AskNode(llm, max_retries=1, journal=path, collect_failures=True)
    run(node.run_async({"prompts": items}), clock="virtual")
    failed = len(node.outcomes.failures)
    assert failed > 0
    with Journal(path, identity="pocket_parallel.experiment.AskEach") as journal:
        assert journal.counts() == {"ok": 20 - failed, "failed": failed}
    doomed = {f.item for f in node.outcomes.failures}
    llm.reset()
    run(AskNode(llm, max_retries=5, journal=path, collect_failures=True).run_async({"prompts": items}),
        clock="virtual")
    assert {r.prompt for r in llm.trace} == doomed  # only the failed items were sent again


def test_a_journal_of_another_node_is_refused_and_bad_journals_are_named(tmp_path):
    from pocket_parallel.journal import JournalMismatchError

    path = tmp_path / "answers.sqlite"
    run(AskNode(SimulatedLLM(), journal=path).run_async({"prompts": prompts(2)}), clock="virtual")

    class Other(AskNode):
        pass

    with pytest.raises(JournalMismatchError, match="Other"):
        run(Other(SimulatedLLM(), journal=path).run_async({"prompts": prompts(2)}), clock="virtual")
    with pytest.raises(TypeError, match="journal"):
        AskNode(SimulatedLLM(), journal=42)
    with pytest.raises((ValueError, FileNotFoundError), match="path"):
        run(AskNode(SimulatedLLM(), journal=tmp_path / "missing" / "x.sqlite").run_async({"prompts": prompts(1)}),
            clock="virtual")


def test_a_journaled_flow_skips_the_sub_flows_that_finished(tmp_path):
    llm = SimulatedLLM(latency=1.0)
    docs = [f"d{i}" for i in range(8)]
    path = tmp_path / "flow.sqlite"
    flow = AllDocs(start=Summarize(llm), max_concurrency=2, journal=path, deadline=2.5, collect_failures=True)
    run(flow.run_async({"docs": docs}), clock="virtual")
    assert flow.outcomes.counts()["ok"] == 4
    llm.reset()
    shared = {"docs": docs}
    run(AllDocs(start=Summarize(llm), max_concurrency=2, journal=path).run_async(shared), clock="virtual")
    assert llm.stats.calls == 4 and sorted(shared["summaries"]) == docs[4:]  # skipped sub-flows write nothing


@pytest.mark.parametrize("share", [0.1, 0.5, 0.9])
def test_after_sigkill_a_rerun_pays_only_for_what_was_not_answered(tmp_path, share):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from pocket_parallel.journal import Journal

    n, limit = 200, 10
    journal, log = tmp_path / "batch.sqlite", tmp_path / "calls.log"
    root = Path(__file__).resolve().parent.parent
    hold = int(share * n)  # after that many answers the child's calls hang until it is killed
    child = subprocess.Popen([sys.executable, "-m", "tests.journal_child", str(journal), str(log), str(n), str(limit),
                              str(hold)], cwd=root, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:  # kill it once the share of answers has arrived
            answered = log.read_text().count("end ") if log.exists() else 0
            if answered >= hold or child.poll() is not None:
                break
            assert time.monotonic() < deadline, "the child never got that far"
            time.sleep(0.005)
        os.killpg(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    lines = log.read_text().splitlines()
    ended = sum(line.startswith("end ") for line in lines)
    started = sum(line.startswith("start ") for line in lines)
    assert 0 < ended < n and started - ended <= limit  # never more than C calls in flight
    with Journal(journal, identity="__main__.main.<locals>.Logged") as record:
        journaled = record.counts()["ok"]
    assert ended - limit <= journaled <= ended  # at most the calls in flight were answered but not yet written

    llm = SimulatedLLM(latency=0.02, jitter=0.5, seed=7)

    class Logged(AskNode):  # the same class as in the child (its identity), now in this process
        pass

    Logged.__module__, Logged.__qualname__ = "__main__", "main.<locals>.Logged"
    shared = {"prompts": prompts(n)}
    run(Logged(llm, max_concurrency=limit, journal=journal).run_async(shared), clock="virtual")
    assert n - ended <= llm.stats.calls <= n - ended + limit
    assert llm.stats.calls == n - journaled
    assert shared["answers"] == [llm.answer_for(p) for p in prompts(n)]  # as a run that never crashed
    llm.reset()
    run(Logged(llm, max_concurrency=limit, journal=journal).run_async({"prompts": prompts(n)}), clock="virtual")
    assert llm.stats.calls == 0
