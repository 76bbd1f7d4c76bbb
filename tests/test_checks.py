"""The exercise checks still tested here (the others moved to tests/checks/, one module per check module).

Every solution passes, every plausible wrong answer fails for the right reason. The solutions are
the code cells of the instructor notebooks; see tests/checks/notebook_code.py.
"""

from __future__ import annotations

import asyncio
import math

import pytest
from checks.notebook_code import EX1, EX2, EX3, EX4, REPEATS, assert_fails, quiet, solution, stub
from pocketflow import AsyncBatchFlow, AsyncBatchNode, AsyncNode, AsyncParallelBatchFlow, AsyncParallelBatchNode

from pocket_parallel import BoundedParallelBatchNode, call_llm, call_llm_async, ideal_makespan
from pocket_parallel.checks import (
    check_limited_translator,
    check_makespan_prediction,
    check_parallel_summarizer,
    check_safe_flow,
)


# -- exercise 4: the shared-store race ------------------------------------------------------------


def build_sequential_flow():
    """The racy nodes, made safe by running the sub-flows one after another."""

    class OneAfterAnother(AsyncBatchFlow):
        async def prep_async(self, shared):
            shared["results"] = {}
            return [{"doc_id": doc_id} for doc_id in shared["documents"]]

    summarize = solution(EX4, "Summarize")()
    summarize >> solution(EX4, "Translate")()
    return OneAfterAnother(start=summarize)


def build_locked_flow():
    """The racy flow with a lock held across each whole sub-flow: safe, and serial."""

    class Locked(AsyncParallelBatchFlow):
        async def prep_async(self, shared):
            shared["results"] = {}
            self.lock = asyncio.Lock()
            return [{"doc_id": doc_id} for doc_id in shared["documents"]]

        async def _orch_async(self, shared, params=None):
            async with self.lock:
                return await super()._orch_async(shared, params)

    summarize = solution(EX4, "Summarize")()
    summarize >> solution(EX4, "Translate")()
    return Locked(start=summarize)


def build_containers_in_subflows():
    """Per-item keys, but every sub-flow creates the shared dict it files into, wiping the others'."""

    class SummarizeAndCreate(solution(EX4, "SafeSummarize")):
        async def post_async(self, shared, prep_res, summary):
            shared["summaries"] = {}
            shared["summaries"][self.params["doc_id"]] = summary

    class ResultsOnly(AsyncParallelBatchFlow):
        async def prep_async(self, shared):
            shared["results"] = {}
            return [{"doc_id": doc_id} for doc_id in shared["documents"]]

    summarize = SummarizeAndCreate()
    summarize >> solution(EX4, "SafeTranslate")()
    return ResultsOnly(start=summarize)


def test_ex4_solution_passes_every_time():
    for _ in range(REPEATS):
        result = quiet(check_safe_flow, solution(EX4, "build_safe_flow"))
        assert result.passed, result.message


@pytest.mark.parametrize("answer, keywords", [
    ("racy", ("both wrote shared['summary']", "self.params")),
    (build_sequential_flow, ("one after another", "the longest summarize-then-translate chain")),
    (build_locked_flow, ("one after another", "a lock")),
    (build_containers_in_subflows, ("both wrote shared['summaries']", "prep_async")),
], ids=["the racy flow", "AsyncBatchFlow", "a lock", "containers made in each sub-flow"])
def test_ex4_wrong_answers_fail_with_the_right_message(answer, keywords):
    answer = solution(EX4, "build_racy_flow") if answer == "racy" else answer
    assert_fails(check_safe_flow, answer, *keywords)


def test_ex4_stub_is_not_attempted():
    assert quiet(check_safe_flow, stub(EX4, "build_safe_flow")).status == "not attempted"


def test_ex4_wants_a_builder_function():
    with pytest.raises(TypeError, match="build_flow must be a function that returns a new flow"):
        check_safe_flow(solution(EX4, "build_safe_flow")())
