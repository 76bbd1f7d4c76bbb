"""Check for exercise 5: survive transient failures and rate limits, and lose nothing.

The service in this exercise behaves like a real provider on a bad day: about one call in five
fails for a passing reason, more than :data:`SERVICE_LIMITS` ``max_concurrent`` calls in flight or
``requests_per_minute`` requests in any minute are refused with a 429, and a few documents are
broken (every attempt at them fails). The workload is drawn so that no healthy document fails
more than three times in a row: four attempts always save it. A correct node ends with every
healthy document summarized, every broken one recorded as a failure, and no 429 at all.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from pocketflow import AsyncFlow, AsyncNode

from ..llm import RateLimitError
from ._feedback import (
    CheckResult,
    Fail,
    NotAttempted,
    build,
    clip,
    plural,
    run_check,
    run_student,
    stub_hint,
)
from ._service import CheckLLM, documents

#: The service of exercise 5, as its documentation would state it.
SERVICE_LIMITS = {"max_concurrent": 4, "requests_per_minute": 120}
FAILURE_RATE = 0.2
#: No healthy document fails more than this many times in a row in the exercise's workloads.
LONGEST_RUN_OF_FAILURES = 3


def check_safe_summarizer(node_class: type, *, seed: int | None = None) -> CheckResult:
    """Exercise 5: check a summarizer node class that survives faults and limits and loses nothing.

    ``node_class()`` must build a node that summarizes every text in ``shared["documents"]``
    with ``call_llm_async(f"Summarize: {text}")`` and stores ``shared["summaries"] = {text:
    summary}`` for the documents that succeeded and ``shared["failed"]``, a list of
    :class:`~pocket_parallel.Failure` records, for those that failed for good. It runs on a
    fresh batch against the exercise's faulty, rate-limited service, in virtual time.
    """
    if not isinstance(node_class, type):
        raise TypeError(f"node_class must be a class such as SafeSummarizer (the class itself, not SafeSummarizer()); "
                        f"got {type(node_class).__name__}")
    return run_check("Exercise 5", lambda rng: _safe(node_class, rng), seed, node_class)


def service(seed: int = 0, broken: tuple[str, ...] = ()) -> CheckLLM:
    """The exercise's service: 1 s calls (30 % jitter), 20 % transient failures, 4 in flight, 120 per minute."""
    return CheckLLM(latency=1.0, jitter=0.3, seed=seed, failure_rate=FAILURE_RATE, broken=broken, **SERVICE_LIMITS)


def _workload(rng: random.Random) -> tuple[list[str], set[str], CheckLLM]:
    count = rng.randint(20, 40)
    docs = documents(rng, count)
    broken = set(rng.sample(docs, rng.randint(1, 2)))
    healthy = [f"Summarize: {doc}" for doc in docs if doc not in broken]
    while True:  # a seed whose worst healthy document needs exactly LONGEST_RUN_OF_FAILURES + 1 attempts
        llm = service(rng.randrange(2**31), tuple(f"Summarize: {doc}" for doc in broken))
        if max(_attempts_needed(llm, prompt) for prompt in healthy) == LONGEST_RUN_OF_FAILURES + 1:
            return docs, broken, llm


def _attempts_needed(llm: CheckLLM, prompt: str) -> int:
    return next(attempt for attempt in range(1, 100) if not llm.fails(prompt, attempt))


def _advice(count: int) -> Callable[[Exception], str]:
    def advice(error: Exception) -> str:
        lost = f"one item's error escaped, so PocketFlow's gather dropped every other result: {count} documents, none saved."
        if isinstance(error, RateLimitError):
            return (f"The service refused a call (HTTP 429) and {lost} Keep within its limits on your side "
                    f"(at most {SERVICE_LIMITS['max_concurrent']} calls in flight: max_concurrency; at most "
                    f"{SERVICE_LIMITS['requests_per_minute']} a minute: max_per_minute), retry what still fails, "
                    f"and collect the failures that remain (collect_failures=True).")
        return (f"Transient errors are normal here, and {lost} Give each item several attempts (max_retries), and "
                f"keep going past an item that fails for good: with collect_failures=True, "
                f"BoundedParallelBatchNode hands post_async a Failure record in that item's place.")
    return advice


def _safe(node_class: type, rng: random.Random) -> str:
    name = node_class.__name__
    if not issubclass(node_class, AsyncNode):
        raise Fail(f"{name} is not a PocketFlow async node; base it on BoundedParallelBatchNode (from pocket_parallel).")
    docs, broken, llm = _workload(rng)
    count = len(docs)
    node = build(node_class, name)
    shared: dict[str, Any] = {"documents": list(docs)}
    run_student(AsyncFlow(start=node).run_async(shared), name, f"summarizing {count} documents", llm=llm,
                advice=_advice(count))
    summaries, failed = _outputs(name, shared, count)
    for record in failed:
        if isinstance(getattr(record, "error", None), NotImplementedError):
            raise NotAttempted(stub_hint(record.error, name))
    not_records = [record for record in failed if not (hasattr(record, "item") and hasattr(record, "error"))]
    if not_records:
        raise Fail(f"shared['failed'] should hold failure records that name the item and its last error, "
                   f"such as the Failure(item, error, attempts) that collect_failures=True puts in "
                   f"exec_res_list; it held {clip(not_records[0], 50)}, a {type(not_records[0]).__name__}.")
    expected = {doc: llm.answer_for(f"Summarize: {doc}") for doc in docs}
    failed_items = [record.item for record in failed]
    _nothing_lost(name, docs, summaries, failed_items, count)
    _right_values(summaries, expected, broken)
    if llm.refused:
        by_limit = ", ".join(f"{plural(n, 'call')} by {limit}" for limit, n in sorted(llm.refused.items()))
        raise Fail(f"nothing was lost, but the service had to refuse {by_limit} (HTTP 429). Each refusal "
                   f"costs a request and one of the item's attempts. Keep within the documented limits on "
                   f"your side: max_concurrency={SERVICE_LIMITS['max_concurrent']} and "
                   f"max_per_minute={SERVICE_LIMITS['requests_per_minute']} on BoundedParallelBatchNode; then "
                   f"the service never says no.")
    gave_up = [item for item in failed_items if item not in broken]
    if gave_up:
        doc = gave_up[0]
        record = failed[failed_items.index(doc)]
        attempts = getattr(record, "attempts", None)
        tried = f" after {plural(attempts, 'attempt')}" if isinstance(attempts, int) else ""
        raise Fail(f"nothing was lost, but {plural(len(gave_up), 'healthy document')} ended in shared['failed']"
                   f"{tried}, for example {clip(doc, 50)}. Its errors were transient: attempt "
                   f"{_attempts_needed(llm, f'Summarize: {doc}')} would have succeeded. In this exercise no "
                   f"healthy document fails more than {LONGEST_RUN_OF_FAILURES} times in a row, so give every "
                   f"item at least {LONGEST_RUN_OF_FAILURES + 1} attempts (max_retries), better a few more.")
    return (f"{name} ran a fresh batch of 20 to 40 documents against a service that fails about one call in "
            f"five, refuses more than {SERVICE_LIMITS['max_concurrent']} calls in flight or "
            f"{SERVICE_LIMITS['requests_per_minute']} requests a minute, and holds a broken document or two. "
            f"The service never had to refuse a call, every healthy document got its summary, every broken one "
            f"ended in shared['failed'] as a failure record, and nothing was lost.")


def _outputs(name: str, shared: dict[str, Any], count: int) -> tuple[dict[Any, Any], list[Any]]:
    summaries, failed = shared.get("summaries"), shared.get("failed")
    if not isinstance(summaries, dict) or not isinstance(failed, (list, tuple)):
        have = ", ".join(f"{key!r}: {type(value).__name__}" for key, value in shared.items() if key != "documents")
        raise Fail(f"after {name} ran, shared should hold 'summaries' (a dict from document to summary) and "
                   f"'failed' (a list of Failure records), but it held {{{have}}}. Build both in post_async from "
                   f"prep_res and exec_res_list; with collect_failures=True a failed item's place in "
                   f"exec_res_list holds a Failure.")
    return summaries, list(failed)


def _nothing_lost(name: str, docs: list[str], summaries: dict[Any, Any], failed: list[Any], count: int) -> None:
    none_values = [doc for doc in docs if doc in summaries and summaries[doc] is None]
    if none_values:
        its = "its" if len(none_values) == 1 else "their"
        raise Fail(f"{plural(len(none_values), 'document')} ended with None as {its} summary, for example "
                   f"{clip(none_values[0], 50)}. None is neither a result nor a failure: the item is lost "
                   f"without a trace (an exec_fallback_async that returns None, or max_retries=0, does this). "
                   f"Record a Failure instead: collect_failures=True keeps the item, its last error and its "
                   f"attempts.")
    lost = [doc for doc in docs if doc not in summaries and doc not in failed]
    if lost:
        raise Fail(f"{plural(len(lost), 'document')} of {count} ended neither in shared['summaries'] nor in "
                   f"shared['failed'], for example {clip(lost[0], 50)}: lost without a trace. Every item "
                   f"must end as a result or as an explicit failure record naming the item.")
    both = [doc for doc in docs if doc in summaries and doc in failed]
    if both:
        raise Fail(f"{plural(len(both), 'document')} appear in both shared['summaries'] and shared['failed'], "
                   f"for example {clip(both[0], 50)}; each item should end exactly one way.")
    strangers = [key for key in summaries if key not in docs] + [item for item in failed if item not in docs]
    if strangers:
        raise Fail(f"shared['summaries'] or shared['failed'] names {clip(strangers[0], 50)}, which is not one of "
                   f"the documents: key summaries by the document text itself, and let each Failure's item be "
                   f"the document.")


def _right_values(summaries: dict[Any, Any], expected: dict[str, str], broken: set[str]) -> None:
    for doc, summary in summaries.items():
        if summary != expected[doc]:
            why = (" That document is broken: every attempt at it fails, so a placeholder in its place looks "
                   "like a result and hides the failure. Put it in shared['failed'] instead." if doc in broken else
                   " Keep the service's answer as it is.")
            raise Fail(f"shared['summaries'][{clip(doc, 40)}] held {clip(summary, 50)}, which is not the service's "
                       f"answer ({clip(expected[doc], 50)}).{why}")
