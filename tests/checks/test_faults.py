"""Exercise 5 (checks/faults.py): faults and rate limits survived, nothing lost.

The check's logic is left as it is here (it is to be re-based on per-minute rate limits); these
are the existing tests of its solution, stub and wrong answers, moved from tests/test_checks.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from pocketflow import AsyncParallelBatchNode

from pocket_parallel import Backoff, BoundedParallelBatchNode, call_llm_async
from pocket_parallel.checks import check_safe_summarizer

from .notebook_code import EX5, REPEATS, assert_fails, quiet, solution, stub


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


def test_a_rate_limited_solution_never_spins_on_float_dust():
    # aiolimiter alone spins forever on this workload's timings (see _no_float_dust_in_rate_limiters).
    result = quiet(check_safe_summarizer, solution(EX5, "SafeSummarizer"), seed=41)
    assert result.passed, result.message
