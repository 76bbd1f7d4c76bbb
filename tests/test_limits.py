"""BoundedParallelBatchNode / BoundedParallelBatchFlow: the limit holds everywhere, retries survive."""

from __future__ import annotations

import asyncio

import pytest
from conftest import AskNode, ChapterRateLimitedNode, prompts
from pocketflow import AsyncFlow, AsyncNode

from pocket_parallel import BoundedParallelBatchFlow, BoundedParallelBatchNode, SimulatedLLM, TransientLLMError


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


async def _timed(coro):
    loop = asyncio.get_running_loop()
    start = loop.time()
    await coro
    return loop.time() - start
