"""Exercises 1 and 2 (checks/nodes.py): every solution passes, every plausible wrong answer fails.

Each wrong answer below is a mistake students make. The quick tests check that it fails with a
message naming that mistake; the ``every_seed`` tests that it fails on each of 50 seeds while the
solution passes on the same 50.
"""

from __future__ import annotations

import asyncio

import pytest
from pocketflow import AsyncBatchNode, AsyncNode, AsyncParallelBatchNode

from pocket_parallel import BoundedParallelBatchNode, call_llm, call_llm_async
from pocket_parallel.checks import check_limited_translator, check_parallel_summarizer

from .notebook_code import (
    EX1,
    EX2,
    REPEATS,
    assert_fails,
    assert_fails_on_every_seed,
    assert_passes_on_every_seed,
    quiet,
    solution,
    stub,
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


class SortedSummaries(CompletionOrderSummarizer):
    """Stores the summaries sorted, which looks tidy and loses the pairing with the documents."""

    async def post_async(self, shared, prep_res, exec_res_list):
        shared["summaries"] = sorted(exec_res_list)


class LimitedSummarizer(BoundedParallelBatchNode):
    """Parallel, with a limit nobody asked for: at most 8 calls in flight."""

    max_concurrency = 8

    async def prep_async(self, shared):
        return shared["documents"]

    async def exec_async(self, document):
        return await call_llm_async(f"Summarize: {document}")

    async def post_async(self, shared, prep_res, exec_res_list):
        shared["summaries"] = exec_res_list


class NeverAwaited(BlockingSummarizer):
    """Forgets the await: every summary is a coroutine object, and Python warns about it."""

    async def exec_async(self, document):
        return call_llm_async(f"Summarize: {document}")


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
    (SortedSummaries, ("in the order the calls finished", "exec_res_list")),
    (LimitedSummarizer, ("with at most 8 of its",)),
    (NeverAwaited, ("coroutine", "never awaited")),
], ids=["the sequential node", "completion order", "blocking call", "a crash", "sorted", "a limit", "no await"])
def test_ex1_wrong_answers_fail_with_the_right_message(answer, keywords):
    answer = solution(EX1, "SequentialSummarizer") if answer == "sequential" else answer
    assert_fails(check_parallel_summarizer, answer, *keywords)


def test_ex1_solution_passes_and_wrong_answers_fail_on_every_seed():
    assert_passes_on_every_seed(check_parallel_summarizer, solution(EX1, "ParallelSummarizer"))
    for answer in (solution(EX1, "SequentialSummarizer"), CompletionOrderSummarizer, SortedSummaries,
                   LimitedSummarizer, BlockingSummarizer, NeverAwaited, CrashingSummarizer):
        assert_fails_on_every_seed(check_parallel_summarizer, answer)


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
    with pytest.raises(TypeError, match=r"node_class must be a class such as LimitedTranslator"):
        check_limited_translator("LimitedTranslator")


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

    size = 6

    async def prep_async(self, shared):
        self.slots = asyncio.Semaphore(self.size)
        return await super().prep_async(shared)

    async def exec_async(self, item):
        language, text = item
        async with self.slots:
            return await call_llm_async(f"Translate to {language}: {text}")


def fixed_size(size: int) -> type:
    return type("LimitedTranslator", (FixedSizeSemaphore,), {"size": size})


class OffByOne(FixedSizeSemaphore):
    """One semaphore per run, from max_concurrency, but one slot short (or, with +1, one too many)."""

    delta = -1

    async def prep_async(self, shared):
        items = await super().prep_async(shared)
        self.slots = asyncio.Semaphore(self.max_concurrency + self.delta)
        return items


class OneTooMany(OffByOne):
    delta = 1


class SequentialTranslator(AsyncBatchNode):
    """Still the sequential base class: one call at a time."""

    def __init__(self, max_concurrency):
        super().__init__()
        self.max_concurrency = max_concurrency

    prep_async, post_async = PerItemSemaphore.prep_async, PerItemSemaphore.post_async

    async def exec_async(self, item):
        language, text = item
        return await call_llm_async(f"Translate to {language}: {text}")


class NoLimit(PerItemSemaphore):
    """AsyncParallelBatchNode as it is: gather with no limit at all."""

    exec_async = SequentialTranslator.exec_async


class LockAroundCall(FixedSizeSemaphore):
    """An asyncio.Lock instead of a semaphore: one call at a time."""

    async def prep_async(self, shared):
        items = await super().prep_async(shared)
        self.slots = asyncio.Lock()
        return items


class SortedLanguages(FixedSizeSemaphore):
    """The limit is right, but post_async pairs the results with the languages sorted."""

    async def prep_async(self, shared):
        items = await super().prep_async(shared)
        self.slots = asyncio.Semaphore(self.max_concurrency)
        return items

    async def post_async(self, shared, prep_res, exec_res_list):
        shared["translations"] = dict(zip(sorted(language for language, _ in prep_res), exec_res_list))


class RoundsOfC(FixedSizeSemaphore):
    """Bounded, but in rounds: each group of C waits for its slowest call before the next starts."""

    async def _exec(self, items):
        results = []
        for start in range(0, len(items), self.max_concurrency):
            group = items[start:start + self.max_concurrency]
            results += await asyncio.gather(*(AsyncNode._exec(self, item) for item in group))
        return results

    exec_async = SequentialTranslator.exec_async


class NeverReleases(FixedSizeSemaphore):
    async def prep_async(self, shared):
        items = await super().prep_async(shared)
        self.slots = asyncio.Semaphore(self.max_concurrency)
        return items

    async def exec_async(self, item):
        await self.slots.acquire()  # and never released
        return await call_llm_async(f"Translate to {item[0]}: {item[1]}")


def chapter_moved_to_run_async_underscore() -> type:
    """The chapter's override moved from run_async to _run_async: the limit now holds in a flow,
    but PocketFlow's per-item _exec (max_retries, exec_fallback_async) is skipped."""
    chapter = solution(EX2, "ChapterTranslator")
    return type("LimitedTranslator", (chapter,), {"_run_async": chapter.run_async})


class GatherInExec(PerItemSemaphore):
    """The semaphore in an _exec override that gathers exec_async: PocketFlow's per-item step is skipped."""

    async def _exec(self, items):
        slots = asyncio.Semaphore(self.max_concurrency)

        async def one(item):
            async with slots:
                return await self.exec_async(item)

        return await asyncio.gather(*(one(item) for item in items))

    exec_async = SequentialTranslator.exec_async


class ReturnExceptions(GatherInExec):
    """As above, with return_exceptions=True: errors end up among the translations."""

    async def _exec(self, items):
        slots = asyncio.Semaphore(self.max_concurrency)

        async def one(item):
            async with slots:
                return await self.exec_async(item)

        return await asyncio.gather(*(one(item) for item in items), return_exceptions=True)


class OwnRetriesNoFallback(GatherInExec):
    """Retries by hand in an _exec override (three attempts), but never calls exec_fallback_async."""

    async def _exec(self, items):
        slots = asyncio.Semaphore(self.max_concurrency)

        async def one(item):
            for attempt in range(3):
                async with slots:
                    try:
                        return await self.exec_async(item)
                    except Exception:
                        if attempt == 2:
                            return "(failed)"

        return await asyncio.gather(*(one(item) for item in items))


class SemaphoreFromInit(PerItemSemaphore):
    """Right: the semaphore made in __init__ from max_concurrency (each check builds a new node)."""

    def __init__(self, max_concurrency):
        super().__init__(max_concurrency)
        self.slots = asyncio.Semaphore(max_concurrency)

    exec_async = FixedSizeSemaphore.exec_async


class SemaphoreAroundEachItemsStep(PerItemSemaphore):
    """Right, as the feedback suggests for an _exec override: the semaphore around PocketFlow's own
    per-item step, AsyncNode._exec, so that retries and the fallback run inside the limit."""

    async def _exec(self, items):
        slots = asyncio.Semaphore(self.max_concurrency)

        async def one(item):
            async with slots:
                return await AsyncNode._exec(self, item)

        return await asyncio.gather(*(one(item) for item in items))

    exec_async = SequentialTranslator.exec_async


class Library(BoundedParallelBatchNode):
    """Right: the course's own bounded node."""

    async def prep_async(self, shared):
        return [(language, shared["text"]) for language in shared["languages"]]

    async def exec_async(self, item):
        return await call_llm_async(f"Translate to {item[0]}: {item[1]}")

    async def post_async(self, shared, prep_res, exec_res_list):
        shared["translations"] = {language: r for (language, _), r in zip(prep_res, exec_res_list)}


def test_ex2_solution_passes_every_time():
    for _ in range(REPEATS):
        result = quiet(check_limited_translator, solution(EX2, "LimitedTranslator"))
        assert result.passed, result.message


@pytest.mark.parametrize("answer", [Library, SemaphoreFromInit, SemaphoreAroundEachItemsStep],
                         ids=["library node", "semaphore from __init__", "semaphore around AsyncNode._exec"])
def test_ex2_other_right_answers_pass_too(answer):
    assert_passes_on_every_seed(check_limited_translator, answer)


@pytest.mark.parametrize("answer, keywords", [
    ("chapter", ("overrides run_async", "_run_async")),
    ("moved", ("raised TransientLLMError", "overrides _run_async", "no retries, no fallback")),
    (PerItemSemaphore, ("new gate for each item",)),
    (FixedSizeSemaphore, ("does limit, but to 6", "self.max_concurrency")),
    (OneTooMany, ("does limit, but to",)),
    (SequentialTranslator, ("never had more than 1 of the allowed", "AsyncBatchNode")),
    (NoLimit, ("may be in flight at once", "new gate for each item")),
    (LockAroundCall, ("never had more than 1 of the allowed",)),
    (SortedLanguages, ("Pair each language with its own result",)),
    (RoundsOfC, ("some slots sat idle",)),
    (NeverReleases, ("still running after", "semaphore acquired and never released")),
    (GatherInExec, ("raised TransientLLMError", "overrides _exec", "AsyncNode._exec(self, item)")),
    (ReturnExceptions, ("held an exception", "return_exceptions=True")),
    (OwnRetriesNoFallback, ("the fallback was skipped", "overrides _exec")),
], ids=["chapter's run_async override", "the override moved to _run_async", "semaphore per item", "fixed size",
        "one slot too many", "sequential", "no limit", "a lock", "sorted languages", "rounds of C", "deadlock",
        "gather in _exec", "return_exceptions", "own retries, no fallback"])
def test_ex2_wrong_answers_fail_with_the_right_message(answer, keywords):
    answer = {"chapter": solution(EX2, "ChapterTranslator"), "moved": chapter_moved_to_run_async_underscore()}.get(answer, answer)
    assert_fails(check_limited_translator, answer, *keywords)


def test_ex2_solution_passes_and_wrong_answers_fail_on_every_seed():
    assert_passes_on_every_seed(check_limited_translator, solution(EX2, "LimitedTranslator"))
    assert_passes_on_every_seed(check_limited_translator, Library)
    wrong = [solution(EX2, "ChapterTranslator"), chapter_moved_to_run_async_underscore(), PerItemSemaphore,
             OffByOne, OneTooMany, SequentialTranslator, NoLimit, LockAroundCall, SortedLanguages, RoundsOfC,
             NeverReleases, GatherInExec, ReturnExceptions, OwnRetriesNoFallback,
             *(fixed_size(size) for size in range(1, 7))]
    for answer in wrong:
        assert_fails_on_every_seed(check_limited_translator, answer)


def test_ex2_stub_is_not_attempted():
    assert quiet(check_limited_translator, stub(EX2, "LimitedTranslator")).status == "not attempted"
