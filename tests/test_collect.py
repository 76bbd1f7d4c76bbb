"""Failure, Outcomes and gather_outcomes: every item ends as a result or an explicit failure."""


from __future__ import annotations

import asyncio

import pytest

from pocket_parallel import Failure, SimulatedLLM, TransientLLMError, experiment
from pocket_parallel.collect import gather_outcomes
from pocket_parallel.outcomes import Outcomes
from tests.support import prompts


def test_failure_keeps_its_home_in_experiment_too():
    assert experiment.Failure is Failure
    failure = Failure("Summarize: x", TransientLLMError("Summarize: x", 2), 2)
    assert str(failure).startswith("'Summarize: x' failed after 2 attempts: TransientLLMError")


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
    outcomes._record(0, "ok", 1)
    assert outcomes.pending == ["b"] and repr(outcomes) == "<Outcomes 2 items: 1 ok, 0 failed, 1 pending>"
    with pytest.raises(RuntimeError, match="not every item has finished"):
        outcomes.ordered()


def test_bad_gather_outcomes_arguments_name_the_parameter(virtual):
    with pytest.raises(TypeError, match="function"):
        virtual(gather_outcomes("not callable", [1]))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_concurrency"):
        virtual(gather_outcomes(SimulatedLLM(), ["Summarize: a"], max_concurrency=0))
    with pytest.raises(TypeError, match="items"):
        virtual(gather_outcomes(SimulatedLLM(), "Summarize: a"))
