"""The exercise checks: every solution passes, every plausible wrong answer fails for the right reason.

The solutions are not copied here: they are the code cells of the instructor notebooks
(``instructor/exercises/``), run in a fresh namespace. The stubs are the code cells of the
committed student notebooks (``notebooks/exercises/``). Cells tagged ``check`` (the calls to the
checks) are left out. Each wrong answer below is a mistake students make; each must fail its
check with a message naming that mistake, on every fresh random workload.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from pocketflow import (
    AsyncBatchFlow,
    AsyncBatchNode,
    AsyncNode,
    AsyncParallelBatchFlow,
    AsyncParallelBatchNode,
)

from pocket_parallel import (
    Backoff,
    BoundedParallelBatchNode,
    call_llm,
    call_llm_async,
    get_default_llm,
    set_default_llm,
)
from pocket_parallel.checks import (
    CheckResult,
    check_blocking_io,
    check_cpu_work,
    check_limited_translator,
    check_makespan_prediction,
    check_parallel_summarizer,
    check_safe_flow,
    check_safe_summarizer,
)
from pocket_parallel.experiment import makespan_lower_bound

ROOT = Path(__file__).resolve().parent.parent
INSTRUCTOR = ROOT / "instructor" / "exercises"
STUDENT = ROOT / "notebooks" / "exercises"
REPEATS = 8  # fresh random workloads per solution (virtual clock: milliseconds each)


@lru_cache(maxsize=None)
def _namespace(path: Path) -> dict[str, Any]:
    """Run a notebook's code cells, except those tagged 'check', and return its globals."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    namespace: dict[str, Any] = {"__name__": f"notebook_{path.stem}"}
    previous = get_default_llm()  # the demo cells point call_llm_async at their own service
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for number, cell in enumerate(notebook["cells"], start=1):
                if cell["cell_type"] != "code" or "check" in cell["metadata"].get("tags", []):
                    continue
                source = "".join(cell["source"])
                exec(compile(source, f"<{path.name} cell {number}>", "exec"), namespace)
    finally:
        set_default_llm(previous)
    return namespace


def solution(stem: str, name: str) -> Any:
    """``name`` as the instructor notebook ``stem`` defines it (the reference solution)."""
    return _namespace(INSTRUCTOR / f"{stem}.ipynb")[name]


def stub(stem: str, name: str) -> Any:
    """``name`` as the student notebook ``stem`` defines it (still raising NotImplementedError)."""
    return _namespace(STUDENT / f"{stem}.ipynb")[name]


EX1, EX2, EX3 = "ex01_sequential_to_parallel", "ex02_bounded_concurrency", "ex03_predict_the_makespan"
EX4, EX5, EX6 = "ex04_shared_store_race", "ex05_faults_and_rate_limits", "ex06_io_or_cpu"


def quiet(check: Any, answer: Any, **kwargs: Any) -> CheckResult:
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        result = check(answer, **kwargs)
    assert printed.getvalue().strip() == result.message, "a check prints exactly the message it returns"
    return result


def assert_fails(check: Any, answer: Any, *keywords: str, runs: int = 3) -> None:
    """``answer`` fails ``check`` on ``runs`` fresh workloads, each time naming ``keywords``."""
    for _ in range(runs):
        result = quiet(check, answer)
        assert result.status == "failed", result.message
        assert result.message.startswith("Not yet: ")
        assert "Traceback" not in result.message
        for keyword in keywords:
            assert keyword in result.message, f"{keyword!r} not in: {result.message}"


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


# -- exercise 3: predict the makespan ------------------------------------------------------------


def even_share(latencies, max_concurrency):
    """Total work divided evenly over the slots: forgets that a call cannot be split."""
    if max_concurrency is None or max_concurrency >= len(latencies):
        return max(latencies)
    return max(max(latencies), sum(latencies) / max_concurrency)


def rounds_of_c(latencies, max_concurrency):
    """Rounds of C calls, each as long as its slowest call."""
    if max_concurrency is None:
        return max(latencies)
    return sum(max(latencies[i:i + max_concurrency]) for i in range(0, len(latencies), max_concurrency))


def library_ideal(latencies, max_concurrency):
    """pocket_parallel.experiment.makespan_lower_bound: exact for equal latencies, only a bound otherwise."""
    return makespan_lower_bound(latencies, max_concurrency)


def forgets_no_limit(latencies, max_concurrency):
    return math.ceil(len(latencies) / max_concurrency) * max(latencies)


def no_return(latencies, max_concurrency):
    max(latencies)


def test_ex3_solution_passes_every_time():
    for _ in range(REPEATS):
        result = quiet(check_makespan_prediction, solution(EX3, "predict_makespan"))
        assert result.passed, result.message


@pytest.mark.parametrize("answer, keywords", [
    (even_share, ("divided the work evenly", "ceil(N / C)")),
    (rounds_of_c, ("rounds of C", "does not wait for a whole round")),
    (library_ideal, ("lower bound", "input order")),
    (forgets_no_limit, ("raised TypeError", "max_concurrency=None means no limit")),
    (no_return, ("returned None", "return statement")),
], ids=["work divided evenly", "rounds of C", "the lower bound", "None not handled", "no return"])
def test_ex3_wrong_answers_fail_with_the_right_message(answer, keywords):
    assert_fails(check_makespan_prediction, answer, *keywords)


def test_ex3_stub_is_not_attempted():
    assert quiet(check_makespan_prediction, stub(EX3, "predict_makespan")).status == "not attempted"


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


# -- exercise 5: faults, rate limits, and nothing lost --------------------------------------------


def safe_subclass(**settings: Any) -> type:
    """The solution's node with other settings for BoundedParallelBatchNode.__init__."""

    class Variant(solution(EX5, "SafeSummarizer")):
        def __init__(self):
            BoundedParallelBatchNode.__init__(self, **settings)

    Variant.__name__ = Variant.__qualname__ = "SafeSummarizer"
    return Variant


LIMITS = {"max_concurrency": 4, "max_per_minute": 120}


class NoneFallback(BoundedParallelBatchNode):
    """Retries, limits, and a fallback that returns None for an item that keeps failing."""

    def __init__(self):
        super().__init__(max_retries=6, **LIMITS)

    async def prep_async(self, shared):
        return shared["documents"]

    async def exec_async(self, document):
        return await call_llm_async(f"Summarize: {document}")

    async def exec_fallback_async(self, document, exc):
        return None

    async def post_async(self, shared, prep_res, exec_res_list):
        shared["summaries"] = dict(zip(prep_res, exec_res_list))
        shared["failed"] = []


class PlaceholderFallback(NoneFallback):
    async def exec_fallback_async(self, document, exc):
        return "(no summary available)"


class FailedAsPlainItems(BoundedParallelBatchNode):
    """Right settings, but shared['failed'] lists the documents alone: the errors are thrown away."""

    def __init__(self):
        super().__init__(max_retries=6, collect_failures=True, **LIMITS)

    prep_async, exec_async = NoneFallback.prep_async, NoneFallback.exec_async

    async def post_async(self, shared, prep_res, exec_res_list):
        shared["summaries"] = {d: r for d, r in zip(prep_res, exec_res_list) if isinstance(r, str)}
        shared["failed"] = [d for d, r in zip(prep_res, exec_res_list) if not isinstance(r, str)]


class ZeroRetriesPlain(AsyncParallelBatchNode):
    """Plain PocketFlow with max_retries=0: exec_async never runs, every item silently becomes None."""

    def __init__(self):
        super().__init__(max_retries=0)

    prep_async, exec_async, post_async = NoneFallback.prep_async, NoneFallback.exec_async, NoneFallback.post_async


def test_ex5_solution_passes_every_time():
    for _ in range(REPEATS):
        result = quiet(check_safe_summarizer, solution(EX5, "SafeSummarizer"))
        assert result.passed, result.message


@pytest.mark.parametrize("answer, keywords", [
    ("plain", ("raised RateLimitError", "dropped every other result")),
    (safe_subclass(max_retries=6, backoff=Backoff(base=0.5), **LIMITS),
     ("raised TransientLLMError", "dropped every other result", "collect_failures=True")),
    (NoneFallback, ("ended with None", "neither a result nor a failure")),
    (PlaceholderFallback, ("placeholder", "shared['failed']")),
    (FailedAsPlainItems, ("failure records", "Failure(item, error, attempts)")),
    (ZeroRetriesPlain, ("ended with None", "max_retries=0")),
    (safe_subclass(max_retries=3, collect_failures=True, **LIMITS),
     ("after 3 attempts", "attempt 4 would have succeeded")),
    (safe_subclass(max_retries=30, backoff=Backoff(base=1.0, cap=30.0), collect_failures=True),
     ("refuse", "by max_concurrent", "max_concurrency=4")),
    (safe_subclass(max_retries=0), ("raised ValueError: max_retries must be an integer >= 1",)),
], ids=["plain parallel node", "no collect_failures", "fallback returns None", "placeholder string", "bare items",
        "max_retries=0 in PocketFlow", "too few retries", "no client-side limits", "max_retries=0 refused"])
def test_ex5_wrong_answers_fail_with_the_right_message(answer, keywords):
    answer = solution(EX5, "PlainSummarizer") if answer == "plain" else answer
    assert_fails(check_safe_summarizer, answer, *keywords)


def test_ex5_stub_is_not_attempted():
    assert quiet(check_safe_summarizer, stub(EX5, "SafeSummarizer")).status == "not attempted"


def test_ex5_half_done_is_still_not_attempted():
    # __init__ written (collect_failures swallows errors), exec_async still the stub.
    class HalfDone(stub(EX5, "SafeSummarizer")):
        def __init__(self):
            BoundedParallelBatchNode.__init__(self, max_retries=2, collect_failures=True, **LIMITS)

        async def prep_async(self, shared):
            return shared["documents"]

        post_async = solution(EX5, "SafeSummarizer").post_async

    result = quiet(check_safe_summarizer, HalfDone)
    assert result.status == "not attempted", result.message


# -- exercise 6: blocking I/O to threads, CPU-bound work to processes -----------------------------


async def fetch_on_the_loop(fetch, urls):
    return [fetch(url) for url in urls]


async def fetch_one_thread_at_a_time(fetch, urls):
    return [await asyncio.to_thread(fetch, url) for url in urls]


async def fetch_gathered_but_blocking(fetch, urls):
    async def one(url):
        return fetch(url)  # no await: blocks the loop

    return await asyncio.gather(*(one(url) for url in urls))


def fetch_not_async(fetch, urls):
    return [fetch(url) for url in urls]


async def crunch_on_the_loop(crunch, numbers):
    return [crunch(n) for n in numbers]


async def crunch_in_threads(crunch, numbers):
    return await asyncio.gather(*(asyncio.to_thread(crunch, n) for n in numbers))


async def crunch_with_blocking_pool_map(crunch, numbers):
    with ProcessPoolExecutor(max_workers=2) as pool:
        return list(pool.map(crunch, numbers))


def test_ex6_solutions_pass():
    for _ in range(3):
        io_result = quiet(check_blocking_io, solution(EX6, "fetch_all"))
        cpu_result = quiet(check_cpu_work, solution(EX6, "crunch_all"))
        assert io_result.passed, io_result.message
        assert cpu_result.passed, cpu_result.message


@pytest.mark.parametrize("answer, keywords", [
    (fetch_on_the_loop, ("event loop's own thread", "asyncio.to_thread")),
    (fetch_one_thread_at_a_time, ("one at a time", "asyncio.gather")),
    (fetch_gathered_but_blocking, ("event loop's own thread",)),
    (fetch_not_async, ("is a plain function", "async def")),
], ids=["blocking call in async code", "awaited one by one", "gather of blocking calls", "not async"])
def test_ex6a_wrong_answers_fail_with_the_right_message(answer, keywords):
    assert_fails(check_blocking_io, answer, *keywords, runs=1)


@pytest.mark.parametrize("answer, keywords", [
    (crunch_on_the_loop, ("event loop's own thread", "(wall clock)", "ProcessPoolExecutor")),
    (crunch_in_threads, ("GIL", "processes compute side by side")),
    (crunch_with_blocking_pool_map, ("event loop was frozen", "blocking call")),
], ids=["CPU work on the loop", "threads", "pool.map blocking the loop"])
def test_ex6b_wrong_answers_fail_with_the_right_message(answer, keywords):
    assert_fails(check_cpu_work, answer, *keywords, runs=1)


def test_ex6_stubs_are_not_attempted():
    assert quiet(check_blocking_io, stub(EX6, "fetch_all")).status == "not attempted"
    assert quiet(check_cpu_work, stub(EX6, "crunch_all")).status == "not attempted"


# -- checks never hang ----------------------------------------------------------------------------


def test_a_busy_loop_on_the_virtual_clock_is_cut_off(monkeypatch):
    from pocket_parallel.checks import _feedback

    class Spinner(solution(EX1, "ParallelSummarizer")):
        async def exec_async(self, document):
            while True:  # never lets virtual time move
                await asyncio.sleep(0)

    monkeypatch.setattr(_feedback, "WALL_LIMIT", 0.5)
    result = quiet(check_parallel_summarizer, Spinner)
    assert result.status == "failed"
    assert "still running after 0.5 s of real time" in result.message
    assert "asyncio.sleep(0)" in result.message


def test_a_rate_limited_solution_never_spins_on_float_dust():
    # aiolimiter alone spins forever on this workload's timings (see _no_float_dust_in_rate_limiters).
    result = quiet(check_safe_summarizer, solution(EX5, "SafeSummarizer"), seed=41)
    assert result.passed, result.message
