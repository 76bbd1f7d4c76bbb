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


# -- exercise 1: a sequential node made parallel ----------------------------------------------------


class CompletionOrderSummarizer(AsyncParallelBatchNode):
    """Parallel, but collects summaries as they arrive, as the sequential version did."""

    async def prep_async(self, shared):
        self.finished = []
        return shared["documents"]

    async def exec_async(self, document):
        summary = await call_llm_async(f"Summarize: {document}")
        self.finished.append(summary)
        return summary

    async def post_async(self, shared, prep_res, exec_res_list):
        shared["summaries"] = self.finished


class BlockingSummarizer(AsyncParallelBatchNode):
    """Parallel in name, but calls the blocking call_llm from exec_async."""

    async def prep_async(self, shared):
        return shared["documents"]

    async def exec_async(self, document):
        return call_llm(f"Summarize: {document}")

    async def post_async(self, shared, prep_res, exec_res_list):
        shared["summaries"] = exec_res_list


class CrashingSummarizer(BlockingSummarizer):
    async def exec_async(self, document):
        return len(document) / 0


def test_ex1_solution_passes_every_time():
    for _ in range(REPEATS):
        result = quiet(check_parallel_summarizer, solution(EX1, "ParallelSummarizer"))
        assert result.passed, result.message
        assert result.message.startswith("Passed: ")


@pytest.mark.parametrize("answer, keywords", [
    ("sequential", ("one call was in flight at a time", "AsyncBatchNode")),
    (CompletionOrderSummarizer, ("in the order the calls finished", "exec_res_list")),
    (BlockingSummarizer, ("blocking call_llm", "await call_llm_async")),
    (CrashingSummarizer, ("raised ZeroDivisionError: division by zero (in exec_async, line",)),
], ids=["the sequential node", "completion order", "blocking call", "a crash"])
def test_ex1_wrong_answers_fail_with_the_right_message(answer, keywords):
    answer = solution(EX1, "SequentialSummarizer") if answer == "sequential" else answer
    assert_fails(check_parallel_summarizer, answer, *keywords)


def test_ex1_stub_is_not_attempted():
    result = quiet(check_parallel_summarizer, stub(EX1, "ParallelSummarizer"))
    assert result.status == "not attempted" and not result.passed
    assert result.message.startswith("Not attempted yet: ParallelSummarizer still raises NotImplementedError")
    assert "Its hint: Return the list of documents" in result.message


def test_a_check_wants_the_class_not_an_instance():
    with pytest.raises(TypeError, match=r"node_class must be a class such as ParallelSummarizer"):
        check_parallel_summarizer(solution(EX1, "ParallelSummarizer")())
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        check_parallel_summarizer(solution(EX1, "ParallelSummarizer"), seed=-1)


def test_the_same_seed_replays_the_same_workload():
    first = quiet(check_parallel_summarizer, solution(EX1, "SequentialSummarizer"), seed=11)
    again = quiet(check_parallel_summarizer, solution(EX1, "SequentialSummarizer"), seed=11)
    assert first == again
    assert repr(first) == "CheckResult('Exercise 1', status='failed')"


# -- exercise 2: a limit that holds inside a flow --------------------------------------------------


class PerItemSemaphore(AsyncParallelBatchNode):
    """Creates the semaphore inside exec_async: one gate per item."""

    def __init__(self, max_concurrency):
        super().__init__()
        self.max_concurrency = max_concurrency

    async def prep_async(self, shared):
        return [(language, shared["text"]) for language in shared["languages"]]

    async def exec_async(self, item):
        language, text = item
        async with asyncio.Semaphore(self.max_concurrency):
            return await call_llm_async(f"Translate to {language}: {text}")

    async def post_async(self, shared, prep_res, exec_res_list):
        shared["translations"] = {language: result for (language, _), result in zip(prep_res, exec_res_list)}


class FixedSizeSemaphore(PerItemSemaphore):
    """One shared semaphore, but of a size typed in by hand (6) rather than max_concurrency."""

    async def prep_async(self, shared):
        self.slots = asyncio.Semaphore(6)
        return await super().prep_async(shared)

    async def exec_async(self, item):
        language, text = item
        async with self.slots:
            return await call_llm_async(f"Translate to {language}: {text}")


class SequentialTranslator(AsyncBatchNode):
    """Still the sequential base class: one call at a time."""

    def __init__(self, max_concurrency):
        super().__init__()
        self.max_concurrency = max_concurrency

    prep_async, post_async = PerItemSemaphore.prep_async, PerItemSemaphore.post_async

    async def exec_async(self, item):
        language, text = item
        return await call_llm_async(f"Translate to {language}: {text}")


class RoundsOfC(FixedSizeSemaphore):
    """Bounded, but in rounds: each group of C waits for its slowest call before the next starts."""

    async def _exec(self, items):
        results = []
        for start in range(0, len(items), self.max_concurrency):
            group = items[start:start + self.max_concurrency]
            results += await asyncio.gather(*(AsyncNode._exec(self, item) for item in group))
        return results

    async def exec_async(self, item):
        language, text = item
        return await call_llm_async(f"Translate to {language}: {text}")


class NeverReleases(FixedSizeSemaphore):
    async def prep_async(self, shared):
        items = await super().prep_async(shared)
        self.slots = asyncio.Semaphore(self.max_concurrency)
        return items

    async def exec_async(self, item):
        await self.slots.acquire()  # and never released
        return await call_llm_async(f"Translate to {item[0]}: {item[1]}")


def test_ex2_solution_passes_every_time():
    for _ in range(REPEATS):
        result = quiet(check_limited_translator, solution(EX2, "LimitedTranslator"))
        assert result.passed, result.message


def test_ex2_library_node_passes_too():
    class Library(BoundedParallelBatchNode):
        async def prep_async(self, shared):
            return [(language, shared["text"]) for language in shared["languages"]]

        async def exec_async(self, item):
            return await call_llm_async(f"Translate to {item[0]}: {item[1]}")

        async def post_async(self, shared, prep_res, exec_res_list):
            shared["translations"] = {language: r for (language, _), r in zip(prep_res, exec_res_list)}

    assert quiet(check_limited_translator, Library).passed


@pytest.mark.parametrize("answer, keywords", [
    ("chapter", ("overrides run_async", "_run_async")),
    (PerItemSemaphore, ("new gate for each item",)),
    (FixedSizeSemaphore, ("does limit, but to 6", "self.max_concurrency")),
    (SequentialTranslator, ("never had more than 1 of the allowed", "AsyncBatchNode")),
    (RoundsOfC, ("some slots sat idle",)),
    (NeverReleases, ("still running after", "semaphore acquired and never released")),
], ids=["chapter's run_async override", "semaphore per item", "fixed size", "sequential", "rounds of C",
        "deadlock"])
def test_ex2_wrong_answers_fail_with_the_right_message(answer, keywords):
    answer = solution(EX2, "ChapterTranslator") if answer == "chapter" else answer
    assert_fails(check_limited_translator, answer, *keywords)


def test_ex2_stub_is_not_attempted():
    assert quiet(check_limited_translator, stub(EX2, "LimitedTranslator")).status == "not attempted"


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
