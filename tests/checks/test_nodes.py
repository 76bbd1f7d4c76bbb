"""Exercises 1 and 2 (checks/nodes.py): every solution passes, every plausible wrong answer fails.

Each wrong answer below is a mistake students make, or a shortcut that used to pass: calls made
outside PocketFlow's per-item step, prompts spelled differently, a limit of a fixed size, limits
shared between nodes, retries that skip ``wait``, items dealt to the slots in advance, a cell
that patches the check. Each is run on the 50 seeds of ``SEEDS`` (in one subprocess) and must be
rejected on every one, with a message that names the mistake; the solutions pass the same 50.
"""

from __future__ import annotations

import asyncio
import functools
import inspect

import pytest
from pocketflow import AsyncBatchNode, AsyncNode, AsyncParallelBatchNode

from pocket_parallel import BoundedParallelBatchNode, call_llm, call_llm_async
from pocket_parallel.checks import check_limited_translator, check_parallel_summarizer
from pocket_parallel.checks import _trace as trace
from pocket_parallel.checks import nodes
from pocket_parallel.checks.nodes import EXERCISE_1, EXERCISE_2

from .notebook_code import (
    EX1,
    EX2,
    REPEATS,
    answer_cell,
    assert_fails,
    assert_fails_on_every_seed,
    assert_passes_on_every_seed,
    kept,
    quiet,
    solution,
    stub,
)

# -- exercise 1: a sequential node made parallel ----------------------------------------------------


class Summarizer(AsyncParallelBatchNode):
    """Right: the exercise's solution, written out here so that the wrong answers can change one part."""

    async def prep_async(self, shared):
        return shared["documents"]

    async def exec_async(self, document):
        return await call_llm_async(f"Summarize: {document}")

    async def post_async(self, shared, prep_res, exec_res_list):
        shared["summaries"] = exec_res_list


class UnlimitedBoundedNode(BoundedParallelBatchNode):
    """Right: the course's bounded node with no limit."""

    prep_async, exec_async, post_async = Summarizer.prep_async, Summarizer.exec_async, Summarizer.post_async


class CompletionOrderSummarizer(Summarizer):
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


class BlockingSummarizer(Summarizer):
    """Parallel in name, but calls the blocking call_llm from exec_async."""

    async def exec_async(self, document):
        return call_llm(f"Summarize: {document}")


class CrashingSummarizer(Summarizer):
    async def exec_async(self, document):
        return len(document) / 0


class SortedSummaries(Summarizer):
    """Stores the summaries sorted, which looks tidy and loses the pairing with the documents."""

    async def post_async(self, shared, prep_res, exec_res_list):
        shared["summaries"] = sorted(exec_res_list)


class LimitedSummarizer(BoundedParallelBatchNode):
    """Parallel, with a limit nobody asked for, larger than the batches used to be (10): 30 in flight."""

    max_concurrency = 30
    prep_async, exec_async, post_async = Summarizer.prep_async, Summarizer.exec_async, Summarizer.post_async


class NeverAwaited(Summarizer):
    """Forgets the await: every summary is a coroutine object, and Python warns about it."""

    async def exec_async(self, document):
        return call_llm_async(f"Summarize: {document}")


class CallsInPrep(Summarizer):
    """Every call made in prep_async, with retries of its own: exec_async only hands the answers on."""

    async def prep_async(self, shared):
        async def ask(document):
            for _ in range(5):
                try:
                    return await call_llm_async(f"Summarize: {document}")
                except Exception:
                    pass
            return "(failed)"

        return await asyncio.gather(*(ask(document) for document in shared["documents"]))

    async def exec_async(self, summary):
        return summary


class TasksStartedInPrep(Summarizer):
    """Starts every call as a task in prep_async and awaits it in exec_async: PocketFlow's retries
    await the same failed task again."""

    async def prep_async(self, shared):
        return [asyncio.ensure_future(call_llm_async(f"Summarize: {d}")) for d in shared["documents"]]

    async def exec_async(self, task):
        return await task


class CallsInPost(Summarizer):
    """The calls made in post_async, after PocketFlow's per-item step has finished."""

    async def exec_async(self, document):
        return document

    async def post_async(self, shared, prep_res, exec_res_list):
        async def ask(document):
            try:
                return await call_llm_async(f"Summarize: {document}")
            except Exception:
                return await call_llm_async(f"Summarize: {document}")

        shared["summaries"] = list(await asyncio.gather(*(ask(d) for d in exec_res_list)))


class BritishSpelling(Summarizer):
    """'Summarise:' gets the very same answer from the simulated service, and is not the exercise's prompt."""

    async def exec_async(self, document):
        return await call_llm_async(f"Summarise: {document}")


class AsksTwice(Summarizer):
    """A second call per document 'to be sure': twice the calls, the same summaries."""

    async def exec_async(self, document):
        first = await call_llm_async(f"Summarize: {document}")
        second = await call_llm_async(f"Summarize: {document}")
        return second if second == first else first


class PlaceholderOnError(Summarizer):
    """Catches every error in exec_async and returns a placeholder: PocketFlow never retries."""

    async def exec_async(self, document):
        try:
            return await call_llm_async(f"Summarize: {document}")
        except Exception:
            return "(no summary)"


# A cell that patches the check's judge and its trace reader in the kernel before defining a wrong
# answer (all in flight, completion order). The check judges in a process of its own: no effect.
PATCHING_CELL = '''
import pocket_parallel.checks.nodes as judge
import pocket_parallel.checks._trace as trace

judge._check_summaries = lambda *args, **kwargs: None
judge._check_all_at_once = lambda *args, **kwargs: None
trace.check_calls = lambda *args, **kwargs: None
judge.check_calls = lambda *args, **kwargs: None


''' + inspect.getsource(CompletionOrderSummarizer).replace("CompletionOrderSummarizer(Summarizer)",
                                                             "ParallelSummarizer(AsyncParallelBatchNode)")


def test_ex1_solution_passes_on_every_seed():
    assert_passes_on_every_seed(EXERCISE_1, solution(EX1, "ParallelSummarizer"))


@pytest.mark.parametrize("answer", [Summarizer, UnlimitedBoundedNode], ids=["written out", "bounded node, no limit"])
def test_ex1_other_right_answers_pass(answer):
    assert_passes_on_every_seed(EXERCISE_1, answer, seeds=range(10))


EX1_WRONG = {
    "the sequential node": ("sequential", ("only one call in flight at a time", "AsyncBatchNode")),
    "completion order": (CompletionOrderSummarizer, ("another order than the documents", "exec_res_list")),
    "sorted": (SortedSummaries, ("another order than the documents", "exec_res_list")),
    "a limit of 30": (LimitedSummarizer, ("did not get its first call at 0 s", "at most 30 calls in flight")),
    "blocking call": (BlockingSummarizer, ("blocking call_llm", "await call_llm_async")),
    "no await": (NeverAwaited, ("coroutine", "never awaited")),
    "a crash": (CrashingSummarizer, ("raised ZeroDivisionError: division by zero (in exec_async, line",)),
    "calls in prep_async": (CallsInPrep, ("outside PocketFlow's per-item step", "from prep_async")),
    "tasks started in prep_async": (TasksStartedInPrep, ("outside PocketFlow's per-item step", "prep_async")),
    "calls in post_async": (CallsInPost, ("outside PocketFlow's per-item step", "from post_async")),
    "another spelling of the prompt": (BritishSpelling, ("'Summarise: ", "character for character")),
    "two calls per document": (AsksTwice, ("2 times, although its first attempt succeeded",)),
    "a placeholder instead of retries": (PlaceholderOnError, ("made 1 attempt", "max_retries=3")),
    "a cell that patches the check": ("patching", ("another order than the documents",)),
}


def _ex1(answer):
    if answer == "sequential":
        return solution(EX1, "SequentialSummarizer")
    if answer == "patching":
        return answer_cell(EX1, PATCHING_CELL, "ParallelSummarizer")
    return answer


@pytest.mark.parametrize("case", list(EX1_WRONG))
def test_ex1_wrong_answer_fails_on_every_seed(case):
    answer, keywords = EX1_WRONG[case]
    with kept(nodes, trace):  # a patching cell patches this very process: put the modules back afterwards
        assert_fails_on_every_seed(EXERCISE_1, _ex1(answer), *keywords)


def test_ex1_check_function_fails_fresh_workloads_quietly():
    assert_fails(check_parallel_summarizer, CompletionOrderSummarizer, "another order than the documents")


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


def test_a_class_made_without_a_class_statement_is_refused_with_a_reason():
    made = type("ParallelSummarizer", (Summarizer,), {})
    result = quiet(check_parallel_summarizer, made, seed=1)
    assert result.status == "failed"
    assert "could not find the 'class' or 'def' statement" in result.message


# -- exercise 2: a limit that holds inside a flow --------------------------------------------------


class Translator(AsyncParallelBatchNode):
    """The exercise's solution written out: one semaphore per run, made in prep_async."""

    def __init__(self, max_concurrency):
        super().__init__()
        self.max_concurrency = max_concurrency

    async def prep_async(self, shared):
        self.slots = asyncio.Semaphore(self.max_concurrency)
        return [(language, shared["text"]) for language in shared["languages"]]

    async def exec_async(self, item):
        language, text = item
        async with self.slots:
            return await call_llm_async(f"Translate to {language}: {text}")

    async def post_async(self, shared, prep_res, exec_res_list):
        shared["translations"] = {language: result for (language, _), result in zip(prep_res, exec_res_list)}


class PerItemSemaphore(Translator):
    """Creates the semaphore inside exec_async: one gate per item."""

    async def exec_async(self, item):
        language, text = item
        async with asyncio.Semaphore(self.max_concurrency):
            return await call_llm_async(f"Translate to {language}: {text}")


class FixedSize(Translator):
    """One semaphore per run, of a size typed in by hand rather than max_concurrency."""

    size = 4

    async def prep_async(self, shared):
        items = await super().prep_async(shared)
        self.slots = asyncio.Semaphore(self.size)
        return items


class OffByOne(Translator):
    """One semaphore per run, from max_concurrency, one slot short."""

    async def prep_async(self, shared):
        items = await super().prep_async(shared)
        self.slots = asyncio.Semaphore(self.max_concurrency - 1)
        return items


class OneTooMany(Translator):
    async def prep_async(self, shared):
        items = await super().prep_async(shared)
        self.slots = asyncio.Semaphore(self.max_concurrency + 1)
        return items


class SequentialTranslator(AsyncBatchNode):
    """Still the sequential base class: one call at a time."""

    def __init__(self, max_concurrency):
        super().__init__()
        self.max_concurrency = max_concurrency

    async def prep_async(self, shared):
        return [(language, shared["text"]) for language in shared["languages"]]

    async def exec_async(self, item):
        return await call_llm_async(f"Translate to {item[0]}: {item[1]}")

    post_async = Translator.post_async


class NoLimit(Translator):
    """AsyncParallelBatchNode as it is: gather with no limit at all."""

    exec_async = SequentialTranslator.exec_async


class LockAroundCall(Translator):
    """An asyncio.Lock instead of a semaphore: one call at a time."""

    async def prep_async(self, shared):
        items = await super().prep_async(shared)
        self.slots = asyncio.Lock()
        return items


class SortedLanguages(Translator):
    """The limit is right, but post_async pairs the results with the languages sorted."""

    async def post_async(self, shared, prep_res, exec_res_list):
        shared["translations"] = dict(zip(sorted(language for language, _ in prep_res), exec_res_list))


class RoundsOfC(Translator):
    """Bounded, but in rounds: each group of C waits for its slowest item before the next starts."""

    async def _exec(self, items):
        results = []
        for start in range(0, len(items), self.max_concurrency):
            group = items[start:start + self.max_concurrency]
            results += await asyncio.gather(*(AsyncNode._exec(self, item) for item in group))
        return results

    exec_async = SequentialTranslator.exec_async


class DealtInTurn(Translator):
    """C workers, each with its own queue dealt in advance (item i to worker i % C): a worker whose
    queue is empty sits idle while another's still holds items."""

    async def _exec(self, items):
        results = [None] * len(items)

        async def worker(slot):
            for index in range(slot, len(items), self.max_concurrency):
                results[index] = await AsyncNode._exec(self, items[index])

        await asyncio.gather(*(worker(slot) for slot in range(self.max_concurrency)))
        return results

    exec_async = SequentialTranslator.exec_async


class FixedBlocks(DealtInTurn):
    """C workers, each with one block of consecutive items."""

    async def _exec(self, items):
        results = [None] * len(items)
        size = -(-len(items) // self.max_concurrency)

        async def worker(slot):
            for index in range(slot * size, min(len(items), (slot + 1) * size)):
                results[index] = await AsyncNode._exec(self, items[index])

        await asyncio.gather(*(worker(slot) for slot in range(self.max_concurrency)))
        return results


class NeverReleases(Translator):
    async def exec_async(self, item):
        await self.slots.acquire()  # and never released
        return await call_llm_async(f"Translate to {item[0]}: {item[1]}")


class GatherInExec(Translator):
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


class ClassAttributeSemaphore(Translator):
    """One semaphore for the class, made by the first node that runs: every node shares it, in every loop."""

    gate = None

    async def prep_async(self, shared):
        if ClassAttributeSemaphore.gate is None:
            ClassAttributeSemaphore.gate = asyncio.Semaphore(self.max_concurrency)
        self.slots = ClassAttributeSemaphore.gate
        return [(language, shared["text"]) for language in shared["languages"]]


@functools.lru_cache(maxsize=None)
def gate_of_size(size):
    return asyncio.Semaphore(size)


class CachedBySize(Translator):
    """A semaphore cached by its size at module level: nodes with the same C share one."""

    async def prep_async(self, shared):
        self.slots = gate_of_size(self.max_concurrency)
        return [(language, shared["text"]) for language in shared["languages"]]


GATES = {}


class ModuleLevelGates(Translator):
    """A module-level dict of semaphores by size, filled on first use: shared across nodes and loops."""

    async def prep_async(self, shared):
        self.slots = GATES.setdefault(self.max_concurrency, asyncio.Semaphore(self.max_concurrency))
        return [(language, shared["text"]) for language in shared["languages"]]


class QuickRetry(Translator):
    """Retries a failed call at once, inside exec_async: no wait, and twice the attempts PocketFlow makes."""

    async def exec_async(self, item):
        language, text = item
        async with self.slots:
            try:
                return await call_llm_async(f"Translate to {language}: {text}")
            except Exception:
                return await call_llm_async(f"Translate to {language}: {text}")


class NoWait(Translator):
    """PocketFlow's step, with the node's wait turned off: retries come at once."""

    async def prep_async(self, shared):
        self.wait = 0
        return await super().prep_async(shared)


class SemaphoreFromInit(Translator):
    """Right: the semaphore made in __init__ from max_concurrency (each check builds a new node)."""

    def __init__(self, max_concurrency):
        super().__init__(max_concurrency)
        self.gate = asyncio.Semaphore(max_concurrency)

    async def prep_async(self, shared):
        self.slots = self.gate
        return [(language, shared["text"]) for language in shared["languages"]]


class SemaphoreAroundEachItemsStep(Translator):
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
    """Right: the course's own bounded node (it keeps an item's slot through the wait between attempts)."""

    async def prep_async(self, shared):
        return [(language, shared["text"]) for language in shared["languages"]]

    exec_async, post_async = SequentialTranslator.exec_async, Translator.post_async


MOVED_CELL = '''
class LimitedTranslator(ChapterTranslator):
    """The chapter's override moved from run_async to _run_async: the limit now holds in a flow, but
    PocketFlow's per-item _exec (max_retries, exec_fallback_async) is skipped."""

    async def _run_async(self, shared):
        return await ChapterTranslator.run_async(self, shared)
'''


def test_ex2_solution_passes_on_every_seed():
    assert_passes_on_every_seed(EXERCISE_2, solution(EX2, "LimitedTranslator"))


@pytest.mark.parametrize("answer", [Translator, Library, SemaphoreFromInit, SemaphoreAroundEachItemsStep],
                         ids=["written out", "library node", "semaphore from __init__", "semaphore around AsyncNode._exec"])
def test_ex2_other_right_answers_pass(answer):
    assert_passes_on_every_seed(EXERCISE_2, answer, seeds=range(20))


EX2_WRONG = {
    "the chapter's run_async override": ("chapter", ("overrides run_async", "_run_async")),
    "the override moved to _run_async": ("moved", ("outside PocketFlow's per-item step",)),
    "a semaphore per item": (PerItemSemaphore, ("new gate for each item",)),
    "a fixed size": (FixedSize, ("max_concurrency",)),
    "one slot short": (OffByOne, ("of the allowed C",)),
    "one slot too many": (OneTooMany, ("does limit, but to",)),
    "sequential": (SequentialTranslator, ("never had more than 1 of the allowed", "AsyncBatchNode")),
    "no limit": (NoLimit, ("may be in flight at once", "new gate for each item")),
    "a lock": (LockAroundCall, ("never had more than 1 of the allowed",)),
    "sorted languages": (SortedLanguages, ("Pair each language with its own result",)),
    "rounds of C": (RoundsOfC, ("slots were busy while",)),
    "per-worker queues, dealt in turn": (DealtInTurn, ("slots were busy while", "deal the items to the slots")),
    "fixed blocks": (FixedBlocks, ("slots were busy while", "deal the items to the slots")),
    "a deadlock": (NeverReleases, ("still running after", "semaphore acquired and never released")),
    "gather in _exec": (GatherInExec, ("outside PocketFlow's per-item step", "from _exec")),
    "return_exceptions": (ReturnExceptions, ("outside PocketFlow's per-item step",)),
    "own retries, no fallback": (OwnRetriesNoFallback, ("outside PocketFlow's per-item step",)),
    "a class attribute semaphore": (ClassAttributeSemaphore, ("shared",)),
    "a semaphore cached by size": (CachedBySize, ("shared",)),
    "module-level semaphores by size": (ModuleLevelGates, ("shared",)),
    "an immediate retry inside exec_async": (QuickRetry, ()),
    "retries that skip node.wait": (NoWait, ("tried again at", "wait=")),
}


def _ex2(answer):
    if answer == "chapter":
        return solution(EX2, "ChapterTranslator")
    if answer == "moved":
        return answer_cell(EX2, MOVED_CELL, "LimitedTranslator")
    return answer


@pytest.mark.parametrize("case", list(EX2_WRONG))
def test_ex2_wrong_answer_fails_on_every_seed(case):
    answer, keywords = EX2_WRONG[case]
    assert_fails_on_every_seed(EXERCISE_2, _ex2(answer), *keywords)


def test_ex2_shared_limits_are_named():
    result = quiet(check_limited_translator, ClassAttributeSemaphore, seed=3)
    assert result.status == "failed"
    assert "shared" in result.message, result.message


def test_ex2_the_check_run_twice_in_one_kernel_gives_the_same_verdicts():
    for _ in range(2):
        assert quiet(check_limited_translator, solution(EX2, "LimitedTranslator")).passed
        assert quiet(check_limited_translator, ClassAttributeSemaphore).status == "failed"


def test_ex2_stub_is_not_attempted():
    assert quiet(check_limited_translator, stub(EX2, "LimitedTranslator")).status == "not attempted"
