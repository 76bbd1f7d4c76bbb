"""Check for exercise 5: keep within per-minute limits, survive faults, and lose nothing.

The service in this exercise behaves like a provider on a bad day. It announces its limits in
``x-ratelimit-*`` headers, :data:`SERVICE_LIMITS`: requests and tokens per minute, each a token
bucket that holds one minute's worth, starts full and refills continuously; a request beyond
either is refused with a 429. About one call in five fails for a passing reason, one call in
each batch hangs (accepted, never answered), and a document or two is broken (every attempt at
it fails). An answer, when it comes, comes within :data:`MAX_LATENCY` seconds (one document in
each batch takes exactly that long, every time) and is at most :data:`ANSWER_TOKENS` tokens.
In the check, every fault is tied to the document a prompt is about, not to the prompt's exact
wording: a prompt spelled another way meets the same faults (and is refused by the check anyway).

Each check runs the student's node in its subprocess (:mod:`._sandbox`) on fresh batches:

- **short notes**, where the request budget binds: a node that does not pace its requests
  (a semaphore alone, at any size) is refused, whatever it does with tokens;
- **long reports**, where the token budget binds: a node that paces requests but not tokens,
  or counts fewer tokens than the service does, is refused;
- **no documents** at all.

Each batch is drawn so that its worst healthy document needs exactly
:data:`LONGEST_RUN_OF_FAILURES` + 1 attempts (the hanging call counts as a failed attempt),
so too few retries lose a healthy document every time, and a timeout below the slowest answer
cuts that document on every attempt. A correct node ends with every healthy document
summarized by the service's own answer, every broken one recorded as a failure in
``shared['failed']``, no 429 at all, every call made in the node's per-item step with the
exercise's exact prompt, and no more than :data:`REQUEST_FACTOR` times the requests and
:data:`TIME_FACTOR` times the time of the reference solution on the same batch.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pocketflow import AsyncFlow

from .. import Backoff, BoundedParallelBatchNode, Failure
from ..clock import run
from ..limits.announced import AnnouncedLimits
from ..service.model import estimate_tokens
from ._calls import Origins
from ._feedback import Check, CheckResult, Fail, Lab, NeverEnded, NotAttempted, Raised, clip, plural, raise_for_build, raise_for_run
from ._errors import stub_hint
from ._portable import Foreign, from_portable, to_portable
from ._running import BuildFailed, build_answer, default_llm, run_answer
from ._sandbox import experiment
from ._service import CheckLLM, documents, sentence
from ._trace import Call, Calls, check_origins

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
#: At most this many times the requests, and the time, of the reference solution on the same batch.
REQUEST_FACTOR = 1.5
TIME_FACTOR = 1.75

_REQUESTS = SERVICE_LIMITS["requests_per_minute"]
_TOKENS = SERVICE_LIMITS["tokens_per_minute"]


class ExerciseService(CheckLLM):
    """The exercise's service: :class:`CheckLLM` whose answers come within MAX_LATENCY, and
    where the first attempt at each prompt in ``hangs`` is accepted and never answered.

    Given ``documents``, a prompt's latency and faults are those of the document it contains,
    as if its prompt were ``f"Summarize: {document}"``, however it is spelled.
    """

    def __init__(self, *, hangs: tuple[str, ...] = (), documents: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hangs = frozenset(hangs)
        self.documents = tuple(documents)

    def key(self, prompt: str) -> str:
        """The prompt the faults are drawn for: ``f"Summarize: {document}"`` for a prompt about a known document."""
        if not prompt.startswith("Summarize: ") or prompt[len("Summarize: "):] not in self.documents:
            for document in self.documents:
                if document in prompt:
                    return f"Summarize: {document}"
        return prompt

    def latency_for(self, prompt: str, attempt: int = 1) -> float:
        return min(MAX_LATENCY, super().latency_for(self.key(prompt), attempt))

    def fails(self, prompt: str, attempt: int = 1) -> bool:
        return super().fails(self.key(prompt), attempt)

    def stalls(self, prompt: str, attempt: int = 1) -> bool:
        key = self.key(prompt)
        return (attempt == 1 and key in self.hangs) or super().stalls(key, attempt)


def _settings(seed: int, broken: tuple[str, ...], hangs: tuple[str, ...], slowest: tuple[str, ...]) -> dict[str, Any]:
    return {"latency": LATENCY, "jitter": 0.3, "seed": seed, "failure_rate": FAILURE_RATE, "broken": broken,
            "hangs": hangs, "latencies": dict.fromkeys(slowest, MAX_LATENCY),
            "requests_per_minute": _REQUESTS, "tokens_per_minute": _TOKENS}


def exercise_service(
    seed: int = 0, broken: tuple[str, ...] = (), hangs: tuple[str, ...] = (), slowest: tuple[str, ...] = ()
) -> ExerciseService:
    """The exercise's service: calls of about 1 s (at most 3 s), 20 % transient failures, and
    10 requests and 2,000 tokens per minute. Every attempt at a ``broken`` prompt fails, the
    first attempt at a prompt in ``hangs`` never answers, and every attempt at a prompt in
    ``slowest`` takes the full 3 s."""
    return ExerciseService(**_settings(seed, broken, hangs, slowest))


def check_safe_summarizer(node_class: type, *, seed: int | None = None) -> CheckResult:
    """Exercise 5: check a summarizer node class that keeps within the limits, survives faults and loses nothing.

    ``node_class()`` must build a node that summarizes every text in ``shared["documents"]``
    with ``call_llm_async(f"Summarize: {text}")`` and stores ``shared["summaries"] = {text:
    summary}`` for the documents that succeeded and ``shared["failed"]``, a list of
    :class:`~pocket_parallel.Failure` records, for those that failed for good. It runs on
    fresh batches (short notes, long reports, none) against the exercise's service, in virtual
    time, and is compared with a reference solution on the same batches.
    """
    if not isinstance(node_class, type):
        raise TypeError(f"node_class must be a class such as SafeSummarizer (the class itself, not SafeSummarizer()); "
                        f"got {type(node_class).__name__}")
    return EXERCISE_5(node_class, seed)


# -- the batches --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Batch:
    kind: str  # "short notes", "long reports" or "no documents"
    docs: list[str]
    broken: frozenset[str]
    hangs: tuple[str, ...]
    slowest: tuple[str, ...]
    seed: int

    @property
    def label(self) -> str:
        return f"the batch of {len(self.docs)} {self.kind}" if self.docs else "the batch with no documents"

    @property
    def llm(self) -> ExerciseService:
        """A fresh service for this batch, as the student's node meets it."""
        return ExerciseService(documents=self.docs, **_settings(
            self.seed, tuple(f"Summarize: {doc}" for doc in self.broken), self.hangs, self.slowest))

    def workload(self) -> dict[str, Any]:
        return {"docs": self.docs, "broken": sorted(self.broken), "hangs": list(self.hangs),
                "slowest": list(self.slowest), "seed": self.seed}


def _reports(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct long documents (30 sentences: about 400 tokens a request, prompt and answer)."""
    found: dict[str, None] = {}
    while len(found) < count:
        found[" ".join(sentence(rng) for _ in range(30))] = None
    return list(found)


def _batch(rng: random.Random, kind: str) -> _Batch:
    if kind == "no documents":
        return _Batch(kind, [], frozenset(), (), (), rng.randrange(2**31))
    if kind == "short notes":
        docs = documents(rng, rng.randint(24, 36))  # about 50 tokens each: the request budget binds
    else:
        docs = _reports(rng, rng.randint(12, 18))  # about 400 tokens each: the token budget binds
    broken = rng.sample(docs, rng.randint(1, 2))
    healthy = [doc for doc in docs if doc not in broken]
    hanging, slow = rng.sample(healthy, 2)  # one call hangs once; one document is always the slowest
    hangs, slowest = (f"Summarize: {hanging}",), (f"Summarize: {slow}",)
    while True:  # a seed whose worst healthy document needs exactly LONGEST_RUN_OF_FAILURES + 1 attempts
        batch = _Batch(kind, docs, frozenset(broken), hangs, slowest, rng.randrange(2**31))
        llm = batch.llm
        if max(_attempts_needed(llm, f"Summarize: {doc}") for doc in healthy) == LONGEST_RUN_OF_FAILURES + 1:
            return batch


def _attempts_needed(llm: ExerciseService, prompt: str) -> int:
    return next(a for a in range(1, 100) if not llm.fails(prompt, a) and not llm.stalls(prompt, a))


# -- the reference solution -------------------------------------------------------------------------------


class ReferenceSummarizer(BoundedParallelBatchNode):
    """The exercise's solution, as the check runs it beside the student's node to size what is reasonable."""

    def __init__(self) -> None:
        headers = exercise_service().rate_limit_headers(0.0)
        super().__init__(**AnnouncedLimits.from_headers(headers).node_settings(latency=LATENCY),
                         tokens_for=lambda document: estimate_tokens(f"Summarize: {document}") + ANSWER_TOKENS,
                         timeout=5.0, max_retries=6, backoff=Backoff(base=0.5, cap=8.0), collect_failures=True)

    async def prep_async(self, shared: dict[str, Any]) -> list[str]:
        return list(shared["documents"])

    async def exec_async(self, document: str) -> str:
        from ..backends.protocol import call_llm_async

        return await call_llm_async(f"Summarize: {document}")

    async def post_async(self, shared: dict[str, Any], prep_res: list[str], exec_res_list: list[Any]) -> str:
        shared["summaries"] = {d: r for d, r in zip(prep_res, exec_res_list) if not isinstance(r, Failure)}
        shared["failed"] = [r for r in exec_res_list if isinstance(r, Failure)]
        return "default"


def _reference(batch: _Batch) -> tuple[int, float]:
    """(requests, seconds) of the reference solution on ``batch``."""
    llm = batch.llm

    async def timed() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await AsyncFlow(start=ReferenceSummarizer()).run_async({"documents": list(batch.docs)})
        return loop.time() - start

    with default_llm(llm):
        seconds = run(timed(), clock="virtual")
    return len(llm.trace), seconds


# -- in the subprocess: running the node ---------------------------------------------------------------------


@experiment("exercise 5")
def _run_summarizer(node_class: Any, workload: dict[str, Any]) -> dict[str, Any]:
    origins = Origins()
    llm = ExerciseService(documents=workload["docs"], origins=origins, **_settings(
        workload["seed"], tuple(f"Summarize: {doc}" for doc in workload["broken"]), tuple(workload["hangs"]),
        tuple(workload["slowest"])))
    try:
        node = build_answer(node_class)
    except BuildFailed as failed:
        return {"build": failed.info}
    shared: dict[str, Any] = {"documents": list(workload["docs"])}
    _, report = run_answer(lambda: AsyncFlow(start=node).run_async(shared), llm=llm, origins=origins, guard=GUARD)
    longest = max(workload["docs"], key=len, default="")
    per_minute = _setting(node, "max_per_minute")
    budget = _setting(node, "max_tokens_per_minute")
    return {"run": report, "calls": llm.calls(), "blocking": llm.blocking_calls, "refused": dict(llm.refused),
            "hung": _hung(llm), "shared": to_portable({k: v for k, v in shared.items() if k != "documents"}),
            "settings": {"timeout": to_portable(_setting(node, "timeout")),
                         "requests": to_portable(getattr(per_minute, "requests", per_minute)),
                         "tokens": to_portable(getattr(budget, "tokens_per_minute", budget)),
                         "estimate": _estimate(_setting(node, "tokens_for"), longest)}}


def _hung(llm: ExerciseService) -> bool:
    """Whether a call that hung was still waiting when the run was stopped."""
    return any(r.outcome == "cancelled" and llm.stalls(r.prompt, r.attempt) for r in llm.trace)


# -- the check's side ------------------------------------------------------------------------------------


def _safe(rng: random.Random, lab: Lab) -> str:
    name = lab.name
    if not lab.facts["async_node"]:
        raise Fail(f"{name} is not a PocketFlow async node; base it on BoundedParallelBatchNode (from pocket_parallel).")
    for kind in ("short notes", "no documents", "long reports"):
        _one_batch(lab, name, _batch(rng, kind))
    return (f"{name} ran three fresh batches, 24 to 36 short notes, 12 to 18 long reports and none, against a service "
            f"that allows {_REQUESTS} requests and {_TOKENS:,} tokens a minute, fails about one call in five, "
            f"leaves one call in each batch hanging and holds a broken document or two. The service never had "
            f"to refuse a call, every healthy document got the service's own summary, every broken one ended in "
            f"shared['failed'] as a failure record, nothing was lost, and it took no more requests and time than a "
            f"careful client needs.")


def _one_batch(lab: Lab, name: str, batch: _Batch) -> None:
    docs, llm = batch.docs, batch.llm
    doing = f"summarizing {batch.label}"
    seen = lab.run("exercise 5", batch.workload(), doing=doing)
    if "build" in seen:
        raise_for_build(Raised.of(seen["build"]), name, "")
    settings = {key: from_portable(value) for key, value in seen["settings"].items()}
    calls = Calls.of(seen["calls"])
    try:
        raise_for_run(seen["run"], name, doing, advice=_advice(batch), blocking_calls=seen["blocking"])
    except NeverEnded:
        if seen["hung"] and settings["timeout"] is None:
            raise Fail(_hang_message(name, batch)) from None
        raise
    summaries, failed = _outputs(name, from_portable(seen["shared"]))
    for record in failed:
        error = record.attributes.get("error") if isinstance(record, Foreign) else None
        if isinstance(error, Foreign) and error.is_a("NotImplementedError"):
            raise NotAttempted(stub_hint(error.message, name))
    not_records = [record for record in failed if not (isinstance(record, Foreign)
                                                      and {"item", "error"} <= set(record.attributes))]
    if not_records:
        kind = not_records[0].type_name if isinstance(not_records[0], Foreign) else type(not_records[0]).__name__
        raise Fail(f"shared['failed'] should hold failure records that name the item and its last error, "
                   f"such as the Failure(item, error, attempts) that collect_failures=True puts in "
                   f"exec_res_list; it held {clip(not_records[0], 50)}, a {kind}.")
    failed_items = [record.attributes["item"] for record in failed]
    _nothing_lost(docs, summaries, failed_items, batch)
    _right_values(summaries, {doc: llm.answer_for(f"Summarize: {doc}") for doc in docs}, batch.broken)
    number = {f"Summarize: {doc}": i + 1 for i, doc in enumerate(docs)}
    check_origins(name, calls, number, item=lambda p: f"the call for document {number.get(p, '?')}",
                  prompt_form="f\"Summarize: {document}\"",
                  why="Here about one call in five fails and one hangs: BoundedParallelBatchNode's timeout, "
                      "max_retries and backoff act only there")
    _not_fabricated(name, summaries, calls)
    _broken_failed(batch, failed_items)
    _one_attempt_at_a_time(name, calls, number)
    if seen["refused"]:
        raise Fail(_refusal_message(settings, batch, seen["refused"]))
    gave_up = [record for record in failed if record.attributes["item"] not in batch.broken]
    if gave_up:
        raise Fail(_gave_up_message(gave_up, batch, settings["timeout"]))
    _within_reason(name, batch, calls, seen["run"]["seconds"])


def _broken_failed(batch: _Batch, failed_items: list[Any]) -> None:
    missing = [doc for doc in batch.broken if doc not in failed_items]
    if missing:
        raise Fail(f"every attempt at {clip(missing[0], 50)} fails (the document is broken), so it must end in "
                   f"shared['failed'] as a failure record, but it is not there. collect_failures=True hands "
                   f"post_async a Failure in its place in exec_res_list: put those in shared['failed'].")


def _not_fabricated(name: str, summaries: dict[Any, Any], calls: Calls) -> None:
    """Every summary must be the answer of a call that succeeded, with that document's prompt."""
    answered = {call.prompt for call in calls.all if call.outcome == "ok"}
    made_up = [doc for doc in summaries if f"Summarize: {doc}" not in answered]
    if made_up:
        raise Fail(f"shared['summaries'] holds a summary for {clip(made_up[0], 50)}, but no call for that document "
                   f"ever succeeded: {name} made the summary up (in a fallback, or from the prompt) instead of "
                   f"recording a failure. A summary must be the service's answer; a document with none belongs in "
                   f"shared['failed'].")


def _one_attempt_at_a_time(name: str, calls: Calls, number: dict[str, int]) -> None:
    """An item's next attempt starts only after its last one failed, and none after one succeeded."""
    for prompt, attempts in calls.by_prompt.items():
        for earlier, later in zip(attempts, attempts[1:]):
            if later.start < earlier.end - 1e-6 or later.start <= earlier.start + 1e-6:
                raise Fail(f"{name} had two calls for document {number[prompt]} in flight at once (from "
                           f"{earlier.start:g} s and from {later.start:g} s): a second request before the first has "
                           f"failed spends the budget twice. One attempt at a time per item; retry after a failure.")
            if earlier.outcome == "ok":
                raise Fail(f"{name} called again for document {number[prompt]} at {later.start:g} s, after its call "
                           f"had succeeded at {earlier.end:g} s: every call is a request against the budget, so "
                           f"ask once per document, and retry only what failed.")


def _within_reason(name: str, batch: _Batch, calls: Calls, seconds: float) -> None:
    requests, reference_seconds = _reference(batch)
    if len(calls) > REQUEST_FACTOR * max(requests, 1):
        raise Fail(f"{name} made {len(calls)} requests for {batch.label}, {len(calls) / max(requests, 1):.1f} times the "
                   f"{requests} a reference solution makes on the same batch; the check allows {REQUEST_FACTOR:g} "
                   f"times. Every attempt is a request: a broken document takes every attempt max_retries allows "
                   f"(hundreds of retries mean hundreds of requests), so give each item a few more attempts than "
                   f"the longest run of failures you expect ({LONGEST_RUN_OF_FAILURES} here), not many more.")
    if seconds > TIME_FACTOR * reference_seconds:
        raise Fail(f"{name} took {seconds:g} s (virtual) for {batch.label}, {seconds / reference_seconds:.1f} times "
                   f"the {reference_seconds:g} s a reference solution takes on the same batch; the check allows "
                   f"{TIME_FACTOR:g} times. Pace at the budgets the service announces ({_REQUESTS} requests and "
                   f"{_TOKENS:,} tokens a minute), not far below them, and keep the waits between attempts short "
                   f"(a backoff cap of seconds, not minutes).")


def _hang_message(name: str, batch: _Batch) -> str:
    return (f"{name} never finished {batch.label}: one call was accepted and never answered, and nothing "
            f"ended the wait, so the whole batch waited with it. An answer comes within "
            f"{MAX_LATENCY:g} s or not at all: give each attempt a deadline above that (timeout=... on "
            f"BoundedParallelBatchNode, in seconds). The attempt is then cancelled and counts as a failed "
            f"one, which max_retries retries.")


def _advice(batch: _Batch) -> Callable[[Raised], str]:
    def advice(error: Raised) -> str:
        lost = (f"one item's error escaped, so PocketFlow's gather dropped every other result: "
                f"{len(batch.docs)} documents, none saved.")
        if error.is_a("RateLimitError"):
            return (f"The service refused a call (HTTP 429) and {lost} Keep within its limits on your side "
                    f"({_REQUESTS} requests a minute: max_per_minute; {_TOKENS:,} tokens a minute: "
                    f"max_tokens_per_minute with tokens_for), retry what still fails, and collect the "
                    f"failures that remain (collect_failures=True).")
        if error.is_a("AttemptTimeout"):
            return (f"An attempt ran past your timeout and, out of attempts, {lost} Give each item several "
                    f"attempts (max_retries), and keep going past an item that fails for good: with "
                    f"collect_failures=True, BoundedParallelBatchNode hands post_async a Failure record in "
                    f"that item's place.")
        if error.is_a("DeadlineExceeded"):
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


def _refusal_message(settings: dict[str, Any], batch: _Batch, refused: dict[str, int]) -> str:
    by_limit = ", ".join(f"{plural(n, 'call')} by {limit}" for limit, n in sorted(refused.items()))
    head = f"nothing was lost, but on {batch.label} the service had to refuse {by_limit} (HTTP 429). "
    requests = settings["requests"]  # an int, or a RateLimiter's requests
    if refused.get("requests_per_minute"):
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
    tokens = settings["tokens"]  # an int, or a TokenBudget's budget
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
    guess = settings["estimate"]
    if isinstance(guess, int) and guess < counted:
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


_NONE = Foreign((), "")  # no error recorded


def _gave_up_message(gave_up: list[Foreign], batch: _Batch, timeout: Any) -> str:
    def error_of(record: Foreign) -> Foreign | None:
        error = record.attributes.get("error")
        return error if isinstance(error, Foreign) else None

    llm = batch.llm
    cut = [r for r in gave_up if (error_of(r) or _NONE).is_a("AttemptTimeout")
           and not llm.stalls(f"Summarize: {r.attributes['item']}", 1)]
    record = (cut or gave_up)[0]
    doc, error = record.attributes["item"], error_of(record) or _NONE
    attempts = record.attributes.get("attempts")
    tried = f" after {plural(attempts, 'attempt')}" if isinstance(attempts, int) else ""
    head = (f"nothing was lost, but on {batch.label} {plural(len(gave_up), 'healthy document')} ended in "
            f"shared['failed']{tried}, for example {clip(doc, 50)}. ")
    if error.is_a("DeadlineExceeded"):
        return head + (f"The batch deadline stopped it: this service needs minutes for a batch (it allows "
                       f"{_REQUESTS} requests a minute). Leave out deadline=, and cut only the calls that "
                       f"hang, with timeout= per attempt.")
    if error.is_a("AttemptTimeout") and isinstance(timeout, (int, float)) and timeout <= MAX_LATENCY:
        seconds = llm.latency_for(f"Summarize: {doc}", 1)
        return head + (f"Every attempt at it ran past your timeout of {timeout:g} s, and it takes "
                       f"{seconds:g} s: an answer may take up to {MAX_LATENCY:g} s here, and a slow answer is "
                       f"slow again when retried. A timeout is for calls that never answer: set it above "
                       f"{MAX_LATENCY:g} s.")
    if error is not _NONE and not (error.is_a("LLMError") or error.is_a("TimeoutError")):
        return head + (f"Its last attempt raised {error.type_name}: {error.message}: an error of your code or its "
                       f"settings, not of the service, so every retry met it again. Fix what it names.")
    needed = _attempts_needed(llm, f"Summarize: {doc}")
    return head + (f"Its errors were transient: attempt {needed} would have succeeded. In this exercise no "
                   f"healthy document fails (or hangs) more than {LONGEST_RUN_OF_FAILURES} times in a row, "
                   f"so give every item at least {LONGEST_RUN_OF_FAILURES + 1} attempts (max_retries), better "
                   f"a few more.")


def _outputs(name: str, shared: dict[str, Any]) -> tuple[dict[Any, Any], list[Any]]:
    summaries, failed = shared.get("summaries"), shared.get("failed")
    if not isinstance(summaries, dict) or not isinstance(failed, (list, tuple)):
        have = ", ".join(f"{key!r}: {value.type_name if isinstance(value, Foreign) else type(value).__name__}"
                         for key, value in shared.items() if key != "documents")
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
            if isinstance(summary, Foreign) and summary.is_exception:
                why = (f" It is an exception, {summary.type_name}, filed as if it were an answer "
                       f"(gather(..., return_exceptions=True) mixes them in). An item that fails for good "
                       f"belongs in shared['failed'], as a Failure record.")
            elif doc in broken:
                why = (" That document is broken: every attempt at it fails, so a placeholder in its place looks "
                       "like a result and hides the failure. Put it in shared['failed'] instead.")
            else:
                why = " Keep the service's answer as it is."
            raise Fail(f"shared['summaries'][{clip(doc, 40)}] held {clip(summary, 50)}, which is not the service's "
                       f"answer ({clip(expected[doc], 50)}).{why}")


EXERCISE_5 = Check("Exercise 5", _safe)
