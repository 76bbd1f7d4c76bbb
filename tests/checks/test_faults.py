"""Exercise 5 (checks/faults.py): per-minute limits kept, faults survived, nothing lost.

The solution and the starting code come from the instructor notebook, the stub from the student
notebook. Every wrong answer below is a class of mistakes a student plausibly makes; each is run
on the 50 seeds of :data:`~tests.checks.notebook_code.SEEDS` and must be rejected on every one,
with a message that names the mistake, while the reference solution passes all 50.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pocketflow import AsyncNode, AsyncParallelBatchNode

from pocket_parallel import Backoff, BoundedParallelBatchNode, Failure, call_llm_async
from pocket_parallel.checks import SERVICE_LIMITS, check_safe_summarizer
from pocket_parallel.checks.faults import ANSWER_TOKENS, LONGEST_RUN_OF_FAILURES, MAX_LATENCY, _attempts_needed, _batch
from pocket_parallel.service.model import estimate_tokens

from .notebook_code import (
    EX5,
    REPEATS,
    assert_fails,
    assert_fails_on_every_seed,
    assert_passes_on_every_seed,
    quiet,
    solution,
    stub,
)

REQUESTS, TOKENS = SERVICE_LIMITS["requests_per_minute"], SERVICE_LIMITS["tokens_per_minute"]


def estimate(document: str) -> int:
    """The right estimate: the whole prompt plus the longest answer."""
    return estimate_tokens(f"Summarize: {document}") + ANSWER_TOKENS


#: The reference solution's settings, spelled out, so that each wrong answer changes one thing.
RIGHT: dict[str, Any] = {
    "max_per_minute": REQUESTS,
    "max_tokens_per_minute": TOKENS,
    "tokens_for": estimate,
    "timeout": 5.0,
    "max_retries": 6,
    "backoff": Backoff(base=0.5, cap=8.0),
    "collect_failures": True,
}
UNSET: Any = object()


def safe_subclass(**changes: Any) -> type:
    """The solution's node with the settings of :data:`RIGHT`, some changed (UNSET leaves one out)."""
    settings = {name: value for name, value in {**RIGHT, **changes}.items() if value is not UNSET}

    class Variant(solution(EX5, "SafeSummarizer")):
        def __init__(self):
            BoundedParallelBatchNode.__init__(self, **settings)

    Variant.__name__ = Variant.__qualname__ = "SafeSummarizer"
    return Variant


NO_PACING = {"max_per_minute": UNSET, "max_tokens_per_minute": UNSET, "tokens_for": UNSET}


# -- hand-written wrong answers -------------------------------------------------------------------


class NoneFallback(BoundedParallelBatchNode):
    """Pacing, timeout and retries right, and a fallback that returns None for an item that keeps failing."""

    def __init__(self):
        super().__init__(**{k: v for k, v in RIGHT.items() if k != "collect_failures"})

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
        super().__init__(**RIGHT)

    prep_async, exec_async = NoneFallback.prep_async, NoneFallback.exec_async

    async def post_async(self, shared, prep_res, exec_res_list):
        shared["summaries"] = {d: r for d, r in zip(prep_res, exec_res_list) if isinstance(r, str)}
        shared["failed"] = [d for d, r in zip(prep_res, exec_res_list) if not isinstance(r, str)]


class ZeroRetriesPlain(AsyncParallelBatchNode):
    """Plain PocketFlow with max_retries=0: exec_async never runs, every item silently becomes None."""

    def __init__(self):
        super().__init__(max_retries=0)

    prep_async, exec_async, post_async = NoneFallback.prep_async, NoneFallback.exec_async, NoneFallback.post_async


class SemaphorePerItem(BoundedParallelBatchNode):
    """Retries, timeout and failure records, and a semaphore of 4 made inside exec_async: one per item."""

    def __init__(self):
        super().__init__(**{k: v for k, v in RIGHT.items() if k not in NO_PACING})

    prep_async, post_async = NoneFallback.prep_async, solution(EX5, "SafeSummarizer").post_async

    async def exec_async(self, document):
        async with asyncio.Semaphore(4):
            return await call_llm_async(f"Summarize: {document}")


class GatherReturnExceptions(AsyncParallelBatchNode):
    """PocketFlow's per-item retry loop under gather(..., return_exceptions=True): exceptions become entries."""

    def __init__(self):
        super().__init__(max_retries=6)

    prep_async = NoneFallback.prep_async

    async def exec_async(self, document):  # a timeout of its own, so the call that hangs is cut
        return await asyncio.wait_for(call_llm_async(f"Summarize: {document}"), timeout=5.0)

    async def _exec(self, items):
        return await asyncio.gather(*(AsyncNode._exec(self, item) for item in items), return_exceptions=True)

    async def post_async(self, shared, prep_res, exec_res_list):
        shared["summaries"] = {d: r for d, r in zip(prep_res, exec_res_list) if not isinstance(r, Exception)}
        shared["failed"] = [r for r in exec_res_list if isinstance(r, Exception)]


class GatherReturnExceptionsAllFiled(GatherReturnExceptions):
    """The same, with every entry filed as a summary: the exceptions pass for answers."""

    async def post_async(self, shared, prep_res, exec_res_list):
        shared["summaries"] = dict(zip(prep_res, exec_res_list))
        shared["failed"] = []


WRONG_ANSWERS = {
    "plain parallel node": ("plain", ("raised RateLimitError", "dropped every other result", "max_per_minute")),
    "a semaphore only": (safe_subclass(**NO_PACING, max_concurrency=4),
                         ("by requests_per_minute", "not a limit per minute", "max_per_minute=10")),
    "a semaphore of Little's law only (C = 1)": (safe_subclass(**NO_PACING, max_concurrency=1),
                                                 ("by requests_per_minute", "not a limit per minute")),
    "a semaphore per item": (SemaphorePerItem, ("by requests_per_minute", "not a limit per minute")),
    "retrying 429s instead of pacing": (safe_subclass(**NO_PACING, max_concurrency=4, max_retries=30,
                                                      backoff=Backoff(base=1.0, cap=30.0)),
                                        ("refuse", "by requests_per_minute", "max_per_minute=10")),
    "tokens paced, requests not": (safe_subclass(max_per_minute=UNSET, max_concurrency=1),
                                   ("short notes", "by requests_per_minute", "max_per_minute=10")),
    "requests paced, tokens not": (safe_subclass(max_tokens_per_minute=UNSET, tokens_for=UNSET),
                                   ("long reports", "by tokens_per_minute", "Pace the tokens too")),
    "requests paced at twice the budget": (safe_subclass(max_per_minute=2 * REQUESTS),
                                           ("by requests_per_minute", "max_per_minute=20 lets through more")),
    "tokens paced at twice the budget": (safe_subclass(max_tokens_per_minute=2 * TOKENS),
                                         ("by tokens_per_minute", "max_tokens_per_minute=4000 is above")),
    "token estimate without the answer": (safe_subclass(tokens_for=lambda d: estimate_tokens(f"Summarize: {d}")),
                                          ("by tokens_per_minute", "estimated", "plus the answer")),
    "token estimate of the document alone": (safe_subclass(tokens_for=lambda d: estimate_tokens(d)),
                                             ("by tokens_per_minute", "estimated", "plus the answer")),
    "the two budgets swapped": (safe_subclass(max_per_minute=TOKENS, max_tokens_per_minute=REQUESTS),
                                ("raised ValueError", "tokens must be at most tokens_per_minute", "your code")),
    "no timeout": (safe_subclass(timeout=UNSET), ("never answered", "timeout=")),
    "a timeout below the slowest answer": (safe_subclass(timeout=2.5), ("ran past your timeout of 2.5 s", "above 3 s")),
    "a timeout of exactly the slowest answer": (safe_subclass(timeout=MAX_LATENCY),
                                                ("ran past your timeout of 3 s", "above 3 s")),
    "a batch deadline instead of a timeout": (safe_subclass(timeout=UNSET, deadline=120.0),
                                              ("deadline", "timeout=")),
    "no retries": (safe_subclass(max_retries=1), ("healthy document", "attempts (max_retries)")),
    "too few retries": (safe_subclass(max_retries=LONGEST_RUN_OF_FAILURES),
                        ("after 3 attempts", "attempt 4 would have succeeded")),
    "no collect_failures": (safe_subclass(collect_failures=UNSET),
                            ("raised TransientLLMError", "dropped every other result", "collect_failures=True")),
    "gather with return_exceptions=True": (GatherReturnExceptions, ("failure records", "Failure(item, error, attempts)")),
    "return_exceptions=True, every entry filed": (GatherReturnExceptionsAllFiled, ("It is an exception",
                                                                                   "return_exceptions=True")),
    "fallback returns None": (NoneFallback, ("ended with None", "neither a result nor a failure")),
    "placeholder string": (PlaceholderFallback, ("placeholder", "shared['failed']")),
    "failed listed as bare items": (FailedAsPlainItems, ("failure records", "Failure(item, error, attempts)")),
    "max_retries=0 in PocketFlow": (ZeroRetriesPlain, ("ended with None", "max_retries=0")),
    "max_retries=0 on the bounded node": (safe_subclass(max_retries=0),
                                          ("raised ValueError: max_retries must be an integer >= 1",)),
}


def _answer(answer: Any) -> Any:
    return solution(EX5, "PlainSummarizer") if answer == "plain" else answer


# -- the solution ---------------------------------------------------------------------------------


def test_ex5_solution_passes_every_time():
    for _ in range(REPEATS):
        result = quiet(check_safe_summarizer, solution(EX5, "SafeSummarizer"))
        assert result.passed, result.message


def test_ex5_solution_passes_on_every_seed():
    assert_passes_on_every_seed(check_safe_summarizer, solution(EX5, "SafeSummarizer"))


def test_ex5_the_settings_spelled_out_pass_on_every_seed():
    # The wrong answers below change one of these settings at a time: unchanged, they pass.
    assert_passes_on_every_seed(check_safe_summarizer, safe_subclass())


# -- every wrong answer, on every seed --------------------------------------------------------------


@pytest.mark.parametrize("case", list(WRONG_ANSWERS))
def test_ex5_wrong_answer_fails_on_every_seed(case):
    answer, keywords = WRONG_ANSWERS[case]
    assert_fails_on_every_seed(check_safe_summarizer, _answer(answer), *keywords)


@pytest.mark.parametrize("case", ["plain parallel node", "a semaphore only", "requests paced, tokens not",
                                  "no timeout", "too few retries"])
def test_ex5_wrong_answers_fail_on_fresh_workloads_too(case):
    answer, keywords = WRONG_ANSWERS[case]
    assert_fails(check_safe_summarizer, _answer(answer), *keywords)


def test_ex5_the_starting_codes_message_names_the_per_minute_limits():
    result = quiet(check_safe_summarizer, solution(EX5, "PlainSummarizer"), seed=1)
    assert result.status == "failed"
    for words in ("429", "10 requests a minute: max_per_minute", "2,000 tokens a minute", "collect_failures=True"):
        assert words in result.message, result.message


# -- the workloads hold what the check relies on ----------------------------------------------------


@pytest.mark.parametrize("kind", ["short notes", "long reports"])
def test_every_batch_has_a_hang_a_slowest_answer_a_broken_document_and_a_worst_case_of_four_attempts(kind):
    import random

    for seed in range(20):
        batch = _batch(random.Random(seed), kind)
        prompts = [f"Summarize: {doc}" for doc in batch.docs]
        healthy = [p for p, doc in zip(prompts, batch.docs) if doc not in batch.broken]
        assert 1 <= len(batch.broken) <= 2
        assert sum(batch.llm.stalls(p, 1) for p in healthy) >= 1
        assert max(batch.llm.latency_for(p, 1) for p in healthy) == MAX_LATENCY
        assert max(_attempts_needed(batch.llm, p) for p in healthy) == LONGEST_RUN_OF_FAILURES + 1
        tokens = sum(batch.llm.tokens_for(p) for p in prompts) / len(prompts)
        if kind == "short notes":  # paced at the request budget, tokens never bind
            assert tokens * REQUESTS < TOKENS / 2
        else:  # the token budget binds: at the request budget it would spend twice as much
            assert tokens * REQUESTS > 1.5 * TOKENS
        assert all(estimate(doc) >= batch.llm.tokens_for(p) for doc, p in zip(batch.docs, prompts))


def test_the_service_announces_its_limits_in_headers():
    from pocket_parallel.checks import exercise_service as service
    from pocket_parallel.limits.announced import AnnouncedLimits

    limits = AnnouncedLimits.from_headers(service().rate_limit_headers(0.0))
    assert (limits.requests_per_minute, limits.tokens_per_minute) == (REQUESTS, TOKENS)


# -- stubs --------------------------------------------------------------------------------------------


def test_ex5_stub_is_not_attempted():
    assert quiet(check_safe_summarizer, stub(EX5, "SafeSummarizer")).status == "not attempted"


def test_ex5_half_done_is_still_not_attempted():
    # __init__ written (collect_failures swallows errors), exec_async still the stub.
    class HalfDone(stub(EX5, "SafeSummarizer")):
        def __init__(self):
            BoundedParallelBatchNode.__init__(self, **RIGHT)

        async def prep_async(self, shared):
            return shared["documents"]

        post_async = solution(EX5, "SafeSummarizer").post_async

    result = quiet(check_safe_summarizer, HalfDone)
    assert result.status == "not attempted", result.message


def test_a_check_refuses_an_instance_instead_of_a_class():
    with pytest.raises(TypeError, match="the class itself"):
        check_safe_summarizer(safe_subclass()())


def test_failure_is_the_record_the_solution_files():
    assert solution(EX5, "Failure") is Failure
