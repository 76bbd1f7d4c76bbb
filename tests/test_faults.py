"""Nothing lost: retries with backoff, per-item outcomes instead of gather's first-exception-wins."""

from __future__ import annotations

import asyncio
import math

import pytest
from conftest import AskNode, prompts
from pocketflow import AsyncNode, AsyncParallelBatchNode

from pocket_parallel import (
    Backoff,
    BoundedParallelBatchFlow,
    BoundedParallelBatchNode,
    Failure,
    Outcomes,
    RateLimitError,
    SimulatedLLM,
    TransientLLMError,
    gather_outcomes,
)
from pocket_parallel import experiment


def test_failure_keeps_its_home_in_experiment_too():
    assert experiment.Failure is Failure
    failure = Failure("Summarize: x", TransientLLMError("Summarize: x", 2), 2)
    assert str(failure).startswith("'Summarize: x' failed after 2 attempts: TransientLLMError")


# -- acceptance: 1,000 items with failure_rate = 0.2 --------------------------------------------


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


# -- gather_outcomes: the same idea for plain asyncio code ------------------------------------------


def test_gather_outcomes_against_gathers_two_behaviours(virtual):
    llm = SimulatedLLM(latency=1.0, failure_rate=0.3, seed=1)
    items = prompts(10)
    failing = [p for p in items if llm.fails(p)]
    assert failing

    async def scenario():
        with pytest.raises(TransientLLMError):
            await asyncio.gather(*(llm(p, attempt=1) for p in items))  # the other nine answers: gone
        mixed = await asyncio.gather(*(llm(p, attempt=1) for p in items), return_exceptions=True)
        outcomes = await gather_outcomes(lambda p: llm(p, attempt=1), items, max_concurrency=3)
        return mixed, outcomes

    mixed, outcomes = virtual(scenario())
    assert [p for p, v in zip(items, mixed) if isinstance(v, Exception)] == failing  # you must sort them out
    assert isinstance(outcomes, Outcomes)
    assert [f.item for f in outcomes.failures] == failing
    assert outcomes.succeeded == [(p, llm.answer_for(p)) for p in items if p not in failing]
    assert outcomes.ordered()[items.index(failing[0])].item == failing[0]
    assert outcomes.summary() == f"10 items: {10 - len(failing)} ok, {len(failing)} failed"


def test_outcomes_refuse_an_ordered_list_before_every_item_is_done():
    outcomes = Outcomes(["a", "b"])
    outcomes._settle(0, "ok", 1)
    assert outcomes.pending == ["b"] and repr(outcomes) == "<Outcomes 2 items: 1 ok, 0 failed, 1 pending>"
    with pytest.raises(RuntimeError, match="not every item has finished"):
        outcomes.ordered()


# -- Backoff -----------------------------------------------------------------------------------


def test_backoff_is_exponential_capped_jittered_and_repeatable():
    backoff = Backoff(base=1.0, cap=10.0, factor=2.0, seed=7)
    assert [backoff.ceiling(n) for n in (1, 2, 3, 4, 5, 50, 10_000)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    delays = [backoff.delay(n, key="item") for n in range(1, 8)]
    assert all(0 <= d <= backoff.ceiling(n) for n, d in zip(range(1, 8), delays))
    assert delays == [Backoff(base=1.0, cap=10.0, factor=2.0, seed=7).delay(n, key="item") for n in range(1, 8)]
    assert delays != [Backoff(seed=8, cap=10.0).delay(n, key="item") for n in range(1, 8)]
    assert len({backoff.delay(3, key=k) for k in range(50)}) > 40  # items spread out, not in lockstep
    samples = [backoff.delay(1, key=k) for k in range(4000)]
    assert sum(samples) / len(samples) == pytest.approx(0.5, abs=0.03)  # uniform on [0, 1]


def test_backoff_honours_retry_after():
    backoff = Backoff(base=0.1, cap=1.0)
    refused = RateLimitError("Summarize: x", 1, 5.0, "max_concurrent")
    assert backoff.delay(1, refused) == 5.0
    assert backoff.delay(1, RateLimitError("p", 1, 0.01, "max_concurrent"), key=3) == max(0.01, backoff.delay(1, key=3))
    assert math.isinf(backoff.delay(1, RateLimitError("p", 1, math.inf, "tokens_per_minute")))
    assert backoff.delay(2, ValueError("no retry_after")) == backoff.delay(2)


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


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"base": 0}, "base"),
        ({"base": -1}, "base"),
        ({"base": math.nan}, "base"),
        ({"base": 2.0, "cap": 1.0}, "cap"),
        ({"cap": math.inf}, "cap"),
        ({"factor": 0.5}, "factor"),
        ({"factor": "2"}, "factor"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_backoff_settings_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Backoff(**kwargs)
    with pytest.raises(ValueError, match="failures"):
        Backoff().delay(0)


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


def test_bad_gather_outcomes_arguments_name_the_parameter(virtual):
    with pytest.raises(TypeError, match="function"):
        virtual(gather_outcomes("not callable", [1]))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_concurrency"):
        virtual(gather_outcomes(SimulatedLLM(), ["Summarize: a"], max_concurrency=0))
    with pytest.raises(TypeError, match="items"):
        virtual(gather_outcomes(SimulatedLLM(), "Summarize: a"))
