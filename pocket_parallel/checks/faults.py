"""Check for exercise 5: keep within per-minute limits, survive faults, and lose nothing.

The service in this exercise behaves like a provider on a bad day. It announces its limits in
``x-ratelimit-*`` headers, :data:`SERVICE_LIMITS`: requests and tokens per minute, each a token
bucket that holds one minute's worth, starts full and refills continuously; a request beyond
either is refused with a 429. About one call in five fails for a passing reason, one call in
each batch hangs (accepted, never answered), and a document or two is broken (every attempt at
it fails). An answer, when it comes, comes within :data:`MAX_LATENCY` seconds (one document in
each batch takes exactly that long, every time) and is at most :data:`ANSWER_TOKENS` tokens.

Each check runs the student's node on two fresh batches against that service:

- **short notes**, where the request budget binds: a node that does not pace its requests
  (a semaphore alone, at any size) is refused, whatever it does with tokens;
- **long reports**, where the token budget binds: a node that paces requests but not tokens,
  or counts fewer tokens than the service does, is refused.

Each batch is drawn so that its worst healthy document needs exactly
:data:`LONGEST_RUN_OF_FAILURES` + 1 attempts (the hanging call counts as a failed attempt),
so too few retries lose a healthy document every time, and a timeout below the slowest answer
cuts that document on every attempt. A correct node ends with every healthy
document summarized, every broken one recorded as a failure, and no 429 at all.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pocketflow import AsyncFlow, AsyncNode

from ..backends.simulated import LLMError, RateLimitError
from ..nodes import AttemptTimeout
from ..outcomes import DeadlineExceeded
from ..service.model import estimate_tokens
from ._feedback import (
    CheckResult,
    Fail,
    NeverEnded,
    NotAttempted,
    build,
    clip,
    describe,
    plural,
    run_check,
    run_student,
    stub_hint,
)
from ._service import CheckLLM, documents, sentence

#: The limits the exercise's service announces in its headers (per minute, token buckets).
SERVICE_LIMITS = {"requests_per_minute": 10, "tokens_per_minute": 2_000}
FAILURE_RATE = 0.2
#: Mean seconds per call; an answer, when it comes, never takes longer than MAX_LATENCY.
LATENCY = 1.0
MAX_LATENCY = 3.0
#: An answer is at most this many tokens; the service counts a request's prompt plus its answer.
ANSWER_TOKENS = 20
#: No healthy document fails (or hangs) more than this many times in a row in the exercise's batches.
LONGEST_RUN_OF_FAILURES = 3
#: Virtual seconds a batch may take before the check gives up on it (a correct node needs minutes).
GUARD = 4 * 3600.0

_REQUESTS = SERVICE_LIMITS["requests_per_minute"]
_TOKENS = SERVICE_LIMITS["tokens_per_minute"]


class ExerciseService(CheckLLM):
    """The exercise's service: :class:`CheckLLM` whose answers come within MAX_LATENCY, and
    where the first attempt at each prompt in ``hangs`` is accepted and never answered."""

    def __init__(self, *, hangs: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hangs = frozenset(hangs)

    def latency_for(self, prompt: str, attempt: int = 1) -> float:
        return min(MAX_LATENCY, super().latency_for(prompt, attempt))

    def stalls(self, prompt: str, attempt: int = 1) -> bool:
        return (attempt == 1 and prompt in self.hangs) or super().stalls(prompt, attempt)


def exercise_service(
    seed: int = 0, broken: tuple[str, ...] = (), hangs: tuple[str, ...] = (), slowest: tuple[str, ...] = ()
) -> ExerciseService:
    """The exercise's service: calls of about 1 s (at most 3 s), 20 % transient failures, and
    10 requests and 2,000 tokens per minute. Every attempt at a ``broken`` prompt fails, the
    first attempt at a prompt in ``hangs`` never answers, and every attempt at a prompt in
    ``slowest`` takes the full 3 s."""
    return ExerciseService(latency=LATENCY, jitter=0.3, seed=seed, failure_rate=FAILURE_RATE, broken=broken,
                           hangs=hangs, latencies=dict.fromkeys(slowest, MAX_LATENCY),
                           requests_per_minute=_REQUESTS, tokens_per_minute=_TOKENS)


def check_safe_summarizer(node_class: type, *, seed: int | None = None) -> CheckResult:
    """Exercise 5: check a summarizer node class that keeps within the limits, survives faults and loses nothing.

    ``node_class()`` must build a node that summarizes every text in ``shared["documents"]``
    with ``call_llm_async(f"Summarize: {text}")`` and stores ``shared["summaries"] = {text:
    summary}`` for the documents that succeeded and ``shared["failed"]``, a list of
    :class:`~pocket_parallel.Failure` records, for those that failed for good. It runs on two
    fresh batches (short notes, then long reports) against the exercise's service, in virtual
    time.
    """
    if not isinstance(node_class, type):
        raise TypeError(f"node_class must be a class such as SafeSummarizer (the class itself, not SafeSummarizer()); "
                        f"got {type(node_class).__name__}")
    return run_check("Exercise 5", lambda rng: _safe(node_class, rng), seed, node_class)


# -- the two batches ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Batch:
    kind: str  # "short notes" or "long reports"
    docs: list[str]
    broken: frozenset[str]
    llm: ExerciseService

    @property
    def label(self) -> str:
        return f"the batch of {len(self.docs)} {self.kind}"


def _reports(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct long documents (30 sentences: about 400 tokens a request, prompt and answer)."""
    found: dict[str, None] = {}
    while len(found) < count:
        found[" ".join(sentence(rng) for _ in range(30))] = None
    return list(found)


def _batch(rng: random.Random, kind: str) -> _Batch:
    if kind == "short notes":
        docs = documents(rng, rng.randint(24, 36))  # about 50 tokens each: the request budget binds
    else:
        docs = _reports(rng, rng.randint(12, 18))  # about 400 tokens each: the token budget binds
    broken = rng.sample(docs, rng.randint(1, 2))
    healthy = [doc for doc in docs if doc not in broken]
    hanging, slow = rng.sample(healthy, 2)  # one call hangs once; one document is always the slowest
    hangs, slowest = (f"Summarize: {hanging}",), (f"Summarize: {slow}",)
    while True:  # a seed whose worst healthy document needs exactly LONGEST_RUN_OF_FAILURES + 1 attempts
        llm = exercise_service(rng.randrange(2**31), tuple(f"Summarize: {doc}" for doc in broken), hangs, slowest)
        if max(_attempts_needed(llm, f"Summarize: {doc}") for doc in healthy) == LONGEST_RUN_OF_FAILURES + 1:
            return _Batch(kind, docs, frozenset(broken), llm)


def _attempts_needed(llm: ExerciseService, prompt: str) -> int:
    return next(a for a in range(1, 100) if not llm.fails(prompt, a) and not llm.stalls(prompt, a))


# -- the check ----------------------------------------------------------------------------------


def _safe(node_class: type, rng: random.Random) -> str:
    name = node_class.__name__
    if not issubclass(node_class, AsyncNode):
        raise Fail(f"{name} is not a PocketFlow async node; base it on BoundedParallelBatchNode (from pocket_parallel).")
    for kind in ("short notes", "long reports"):
        _one_batch(node_class, name, _batch(rng, kind))
    return (f"{name} ran two fresh batches, 24 to 36 short notes and 12 to 18 long reports, against a service "
            f"that allows {_REQUESTS} requests and {_TOKENS:,} tokens a minute, fails about one call in five, "
            f"leaves one call in each batch hanging and holds a broken document or two. The service never had "
            f"to refuse a call, every healthy document got its summary, every broken one ended in "
            f"shared['failed'] as a failure record, and nothing was lost.")


def _one_batch(node_class: type, name: str, batch: _Batch) -> None:
    docs, llm = batch.docs, batch.llm
    node = build(node_class, name)
    shared: dict[str, Any] = {"documents": list(docs)}
    doing = f"summarizing {batch.label}"
    try:
        run_student(AsyncFlow(start=node).run_async(shared), name, doing, llm=llm, guard=GUARD,
                    advice=_advice(batch))
    except NeverEnded:
        if _hung(llm) and _setting(node, "timeout") is None:
            raise Fail(_hang_message(name, batch)) from None
        raise
    summaries, failed = _outputs(name, shared)
    for record in failed:
        if isinstance(getattr(record, "error", None), NotImplementedError):
            raise NotAttempted(stub_hint(record.error, name))
    not_records = [record for record in failed if not (hasattr(record, "item") and hasattr(record, "error"))]
    if not_records:
        raise Fail(f"shared['failed'] should hold failure records that name the item and its last error, "
                   f"such as the Failure(item, error, attempts) that collect_failures=True puts in "
                   f"exec_res_list; it held {clip(not_records[0], 50)}, a {type(not_records[0]).__name__}.")
    failed_items = [record.item for record in failed]
    _nothing_lost(docs, summaries, failed_items, batch)
    _right_values(summaries, {doc: llm.answer_for(f"Summarize: {doc}") for doc in docs}, batch.broken)
    if llm.refused:
        raise Fail(_refusal_message(node, batch))
    gave_up = [record for record in failed if record.item not in batch.broken]
    if gave_up:
        raise Fail(_gave_up_message(gave_up, batch, _setting(node, "timeout")))


def _hung(llm: ExerciseService) -> bool:
    """Whether a call that hung was still waiting when the run was stopped."""
    return any(r.outcome == "cancelled" and llm.stalls(r.prompt, r.attempt) for r in llm.trace)


def _hang_message(name: str, batch: _Batch) -> str:
    return (f"{name} never finished {batch.label}: one call was accepted and never answered, and nothing "
            f"ended the wait, so the whole batch waited with it. An answer comes within "
            f"{MAX_LATENCY:g} s or not at all: give each attempt a deadline above that (timeout=... on "
            f"BoundedParallelBatchNode, in seconds). The attempt is then cancelled and counts as a failed "
            f"one, which max_retries retries.")


def _advice(batch: _Batch) -> Callable[[Exception], str]:
    def advice(error: Exception) -> str:
        lost = (f"one item's error escaped, so PocketFlow's gather dropped every other result: "
                f"{len(batch.docs)} documents, none saved.")
        if isinstance(error, RateLimitError):
            return (f"The service refused a call (HTTP 429) and {lost} Keep within its limits on your side "
                    f"({_REQUESTS} requests a minute: max_per_minute; {_TOKENS:,} tokens a minute: "
                    f"max_tokens_per_minute with tokens_for), retry what still fails, and collect the "
                    f"failures that remain (collect_failures=True).")
        if isinstance(error, AttemptTimeout):
            return (f"An attempt ran past your timeout and, out of attempts, {lost} Give each item several "
                    f"attempts (max_retries), and keep going past an item that fails for good: with "
                    f"collect_failures=True, BoundedParallelBatchNode hands post_async a Failure record in "
                    f"that item's place.")
        if isinstance(error, DeadlineExceeded):
            return (f"The batch deadline passed before every document was done, and {lost} This service "
                    f"needs minutes for a batch (its budget allows {_REQUESTS} requests a minute): leave "
                    f"out deadline=, and cut only the calls that hang, with timeout=.")
        return (f"Transient errors are normal here, and {lost} Give each item several attempts (max_retries), and "
                f"keep going past an item that fails for good: with collect_failures=True, "
                f"BoundedParallelBatchNode hands post_async a Failure record in that item's place.")
    return advice


def _setting(node: Any, name: str) -> Any:
    try:
        return getattr(node, name, None)
    except Exception:  # a student's property may raise anything
        return None


def _refusal_message(node: Any, batch: _Batch) -> str:
    refused = batch.llm.refused
    by_limit = ", ".join(f"{plural(n, 'call')} by {limit}" for limit, n in sorted(refused.items()))
    head = f"nothing was lost, but on {batch.label} the service had to refuse {by_limit} (HTTP 429). "
    per_minute = _setting(node, "max_per_minute")
    requests = getattr(per_minute, "requests", per_minute)  # an int, or a RateLimiter's requests
    if refused["requests_per_minute"]:
        if not isinstance(requests, int):
            return head + (f"A cap on calls in flight is not a limit per minute: C calls of about {LATENCY:g} s "
                           f"each send about 60 × C requests a minute, and the service allows {_REQUESTS}. "
                           f"Pace the requests: max_per_minute={_REQUESTS} (every attempt counts, retries too).")
        if requests > _REQUESTS:
            return head + (f"max_per_minute={requests} lets through more than the {_REQUESTS} requests a "
                           f"minute the service announces (x-ratelimit-limit-requests). Pace at the "
                           f"announced budget.")
        return head + (f"Every request counts, retries included: keep all of them within {_REQUESTS} a minute, "
                       f"with max_per_minute={_REQUESTS} on BoundedParallelBatchNode.")
    budget = _setting(node, "max_tokens_per_minute")
    tokens = getattr(budget, "tokens_per_minute", budget)  # an int, or a TokenBudget's budget
    estimate = _setting(node, "tokens_for")
    doc = max(batch.docs, key=len)
    counted = batch.llm.tokens_for(f"Summarize: {doc}")
    if not isinstance(tokens, int):
        return head + (f"Each report costs about {counted} tokens (its prompt plus its answer), so "
                       f"{_REQUESTS} requests a minute would spend about {counted * _REQUESTS:,} tokens a "
                       f"minute, and the service allows {_TOKENS:,} (x-ratelimit-limit-tokens). Pace the tokens "
                       f"too: max_tokens_per_minute={_TOKENS} with tokens_for, your estimate of each "
                       f"request's tokens.")
    if tokens > _TOKENS:
        return head + (f"max_tokens_per_minute={tokens} is above the {_TOKENS:,} tokens a minute the service "
                       f"announces (x-ratelimit-limit-tokens). Pace at the announced budget.")
    guess = _estimate(estimate, doc)
    if guess is not None and guess < counted:
        prompt_tokens = estimate_tokens(f"Summarize: {doc}")
        return head + (f"Your tokens_for estimated {guess} tokens for the longest document, but the service "
                       f"counted {counted}: its whole prompt, {prompt_tokens} tokens, plus the answer (up to "
                       f"{ANSWER_TOKENS}). An estimate below the count overdraws the budget. Estimate the "
                       f"prompt you send (f'Summarize: {{document}}', with estimate_tokens) plus "
                       f"{ANSWER_TOKENS} for the answer.")
    return head + (f"Every attempt spends its tokens, retries included: keep them within {_TOKENS:,} a minute "
                   f"with max_tokens_per_minute={_TOKENS} and a tokens_for that never counts fewer tokens "
                   f"than the service does (prompt plus answer).")


def _estimate(tokens_for: Any, doc: str) -> int | None:
    if not callable(tokens_for):
        return None
    try:
        value = tokens_for(doc)
    except Exception:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _gave_up_message(gave_up: list[Any], batch: _Batch, timeout: Any) -> str:
    cut = [r for r in gave_up if isinstance(getattr(r, "error", None), AttemptTimeout)
           and not batch.llm.stalls(f"Summarize: {r.item}", 1)]
    record = (cut or gave_up)[0]
    doc, error = record.item, getattr(record, "error", None)
    attempts = getattr(record, "attempts", None)
    tried = f" after {plural(attempts, 'attempt')}" if isinstance(attempts, int) else ""
    head = (f"nothing was lost, but on {batch.label} {plural(len(gave_up), 'healthy document')} ended in "
            f"shared['failed']{tried}, for example {clip(doc, 50)}. ")
    if isinstance(error, DeadlineExceeded):
        return head + (f"The batch deadline stopped it: this service needs minutes for a batch (it allows "
                       f"{_REQUESTS} requests a minute). Leave out deadline=, and cut only the calls that "
                       f"hang, with timeout= per attempt.")
    if isinstance(error, AttemptTimeout) and isinstance(timeout, (int, float)) and timeout <= MAX_LATENCY:
        seconds = batch.llm.latency_for(f"Summarize: {doc}", 1)
        return head + (f"Every attempt at it ran past your timeout of {timeout:g} s, and it takes "
                       f"{seconds:g} s: an answer may take up to {MAX_LATENCY:g} s here, and a slow answer is "
                       f"slow again when retried. A timeout is for calls that never answer: set it above "
                       f"{MAX_LATENCY:g} s.")
    if error is not None and not isinstance(error, (LLMError, TimeoutError)):
        return head + (f"Its last attempt raised {describe(error)}: an error of your code or its settings, not "
                       f"of the service, so every retry met it again. Fix what it names.")
    needed = _attempts_needed(batch.llm, f"Summarize: {doc}")
    return head + (f"Its errors were transient: attempt {needed} would have succeeded. In this exercise no "
                   f"healthy document fails (or hangs) more than {LONGEST_RUN_OF_FAILURES} times in a row, "
                   f"so give every item at least {LONGEST_RUN_OF_FAILURES + 1} attempts (max_retries), better "
                   f"a few more.")


def _outputs(name: str, shared: dict[str, Any]) -> tuple[dict[Any, Any], list[Any]]:
    summaries, failed = shared.get("summaries"), shared.get("failed")
    if not isinstance(summaries, dict) or not isinstance(failed, (list, tuple)):
        have = ", ".join(f"{key!r}: {type(value).__name__}" for key, value in shared.items() if key != "documents")
        raise Fail(f"after {name} ran, shared should hold 'summaries' (a dict from document to summary) and "
                   f"'failed' (a list of Failure records), but it held {{{have}}}. Build both in post_async from "
                   f"prep_res and exec_res_list; with collect_failures=True a failed item's place in "
                   f"exec_res_list holds a Failure.")
    return summaries, list(failed)


def _nothing_lost(docs: list[str], summaries: dict[Any, Any], failed: list[Any], batch: _Batch) -> None:
    count = len(docs)
    none_values = [doc for doc in docs if doc in summaries and summaries[doc] is None]
    if none_values:
        its = "its" if len(none_values) == 1 else "their"
        raise Fail(f"{plural(len(none_values), 'document')} of {batch.label} ended with None as {its} summary, "
                   f"for example {clip(none_values[0], 50)}. None is neither a result nor a failure: the item is "
                   f"lost without a trace (an exec_fallback_async that returns None, or max_retries=0, does "
                   f"this). Record a Failure instead: collect_failures=True keeps the item, its last error and "
                   f"its attempts.")
    lost = [doc for doc in docs if doc not in summaries and doc not in failed]
    if lost:
        raise Fail(f"{plural(len(lost), 'document')} of {count} in {batch.label} ended neither in "
                   f"shared['summaries'] nor in shared['failed'], for example {clip(lost[0], 50)}: lost without a "
                   f"trace. Every item must end as a result or as an explicit failure record naming the item.")
    both = [doc for doc in docs if doc in summaries and doc in failed]
    if both:
        raise Fail(f"{plural(len(both), 'document')} appear in both shared['summaries'] and shared['failed'], "
                   f"for example {clip(both[0], 50)}; each item should end exactly one way.")
    strangers = [key for key in summaries if key not in docs] + [item for item in failed if item not in docs]
    if strangers:
        raise Fail(f"shared['summaries'] or shared['failed'] names {clip(strangers[0], 50)}, which is not one of "
                   f"the documents: key summaries by the document text itself, and let each Failure's item be "
                   f"the document.")


def _right_values(summaries: dict[Any, Any], expected: dict[str, str], broken: frozenset[str]) -> None:
    for doc, summary in summaries.items():
        if summary != expected[doc]:
            if isinstance(summary, BaseException):
                why = (f" It is an exception, {type(summary).__name__}, filed as if it were an answer "
                       f"(gather(..., return_exceptions=True) mixes them in). An item that fails for good "
                       f"belongs in shared['failed'], as a Failure record.")
            elif doc in broken:
                why = (" That document is broken: every attempt at it fails, so a placeholder in its place looks "
                       "like a result and hides the failure. Put it in shared['failed'] instead.")
            else:
                why = " Keep the service's answer as it is."
            raise Fail(f"shared['summaries'][{clip(doc, 40)}] held {clip(summary, 50)}, which is not the service's "
                       f"answer ({clip(expected[doc], 50)}).{why}")
