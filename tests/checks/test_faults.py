"""Exercise 5 (checks/faults.py): per-minute limits kept, faults survived, nothing lost or made up.

The solution and the starting code come from the instructor notebook, the stub from the student
notebook. The wrong answers are written as a student writes them, as a cell run after the
student notebook's own (so ``headers``, the imports and the rest are there): most change one
setting of the solution's ``BoundedParallelBatchNode``. Each is run on the 50 seeds of ``SEEDS``
(in one subprocess) and must be rejected on every one, with a message that names the mistake,
while the reference solution passes all 50.
"""

from __future__ import annotations

import random

import pytest

from pocket_parallel.checks import SERVICE_LIMITS, check_safe_summarizer, faults
from pocket_parallel.checks.faults import (
    ANSWER_TOKENS,
    EXERCISE_5,
    LONGEST_RUN_OF_FAILURES,
    MAX_LATENCY,
    _attempts_needed,
    _batch,
)
from pocket_parallel.service.model import estimate_tokens

from .notebook_code import (
    EX5,
    answer_cell,
    assert_fails,
    assert_fails_on_every_seed,
    assert_passes_on_every_seed,
    kept,
    quiet,
    solution,
    stub,
)

REQUESTS, TOKENS = SERVICE_LIMITS["requests_per_minute"], SERVICE_LIMITS["tokens_per_minute"]

#: The reference solution's settings, spelled out as a student types them.
RIGHT = {
    "max_per_minute": "10",
    "max_tokens_per_minute": "2000",
    "tokens_for": 'lambda document: estimate_tokens(f"Summarize: {document}") + 20',
    "timeout": "5.0",
    "max_retries": "6",
    "backoff": "Backoff(base=0.5, cap=8.0)",
    "collect_failures": "True",
}
UNSET = None
NO_PACING = {"max_per_minute": UNSET, "max_tokens_per_minute": UNSET, "tokens_for": UNSET}

_POST = '''
    async def post_async(self, shared, prep_res, exec_res_list):
        shared["summaries"] = {d: r for d, r in zip(prep_res, exec_res_list) if not isinstance(r, Failure)}
        shared["failed"] = [r for r in exec_res_list if isinstance(r, Failure)]
'''


def node(settings=None, *, exec_async='return await call_llm_async(f"Summarize: {document}")', body="", post=_POST):
    """A SafeSummarizer cell: the solution's settings with ``settings`` changed (UNSET leaves one out)."""
    chosen = {key: value for key, value in {**RIGHT, **(settings or {})}.items() if value is not UNSET}
    arguments = ", ".join(f"{key}={value}" for key, value in chosen.items())
    source = (f"import asyncio\n\n\nclass SafeSummarizer(BoundedParallelBatchNode):\n"
              f"    def __init__(self):\n"
              f"        super().__init__({arguments})\n\n"
              f"    async def prep_async(self, shared):\n"
              f"        return shared['documents']\n\n"
              f"    async def exec_async(self, document):\n"
              f"        {exec_async}\n"
              f"{body}{post}")
    return answer_cell(EX5, source, "SafeSummarizer")


def fallback_returning(value):
    """The solution without collect_failures, with a fallback that returns ``value`` (source) as the summary."""
    return node({"collect_failures": UNSET},
                body=f"\n    async def exec_fallback_async(self, document, exc):\n        return {value}\n",
                post="\n    async def post_async(self, shared, prep_res, exec_res_list):\n"
                     "        shared['summaries'] = dict(zip(prep_res, exec_res_list))\n"
                     "        shared['failed'] = []\n")


# -- hand-written wrong answers, as cells ------------------------------------------------------------

ANSWER_TO = '''
from pocket_parallel.service.model import answer_to


class SafeSummarizer(BoundedParallelBatchNode):
    """Everything right, and a fallback that makes up the service's answer for what keeps failing."""

    def __init__(self):
        super().__init__(max_per_minute=10, max_tokens_per_minute=2000, timeout=5.0, max_retries=6,
                         tokens_for=lambda d: estimate_tokens(f"Summarize: {d}") + 20, backoff=Backoff())

    async def prep_async(self, shared):
        return shared["documents"]

    async def exec_async(self, document):
        return await call_llm_async(f"Summarize: {document}")

    async def exec_fallback_async(self, document, exc):
        return answer_to(f"Summarize: {document}")

    async def post_async(self, shared, prep_res, exec_res_list):
        shared["summaries"] = dict(zip(prep_res, exec_res_list))
        shared["failed"] = []
'''

CALLS_IN_PREP = '''
import asyncio


class SafeSummarizer(BoundedParallelBatchNode):
    """Paced, but every call made in prep_async with a retry loop of its own: no timeout, no step."""

    def __init__(self):
        super().__init__(max_per_minute=10, collect_failures=True)

    async def prep_async(self, shared):
        self.answers = {}
        for document in shared["documents"]:
            for _ in range(8):
                try:
                    self.answers[document] = await asyncio.wait_for(call_llm_async(f"Summarize: {document}"), 5)
                    break
                except Exception:
                    await asyncio.sleep(7)
        return shared["documents"]

    async def exec_async(self, document):
        if document not in self.answers:
            raise RuntimeError("no answer")
        return self.answers[document]
''' + _POST

HEDGED = '''answers = await asyncio.gather(*(call_llm_async(f"Summarize: {document}") for _ in range(2)),
                                      return_exceptions=True)
        good = [answer for answer in answers if isinstance(answer, str)]
        if good:
            return good[0]
        raise answers[0]'''

PREP = '''
    async def prep_async(self, shared):
        return shared["documents"]
'''

GATHER_RETURN_EXCEPTIONS = '''
import asyncio


class SafeSummarizer(AsyncParallelBatchNode):
    """PocketFlow's per-item retry loop under gather(..., return_exceptions=True): exceptions become entries."""

    def __init__(self):
        super().__init__(max_retries=6)
''' + PREP + '''
    async def exec_async(self, document):  # a timeout of its own, so the call that hangs is cut
        return await asyncio.wait_for(call_llm_async(f"Summarize: {document}"), timeout=5.0)

    async def _exec(self, items):
        from pocketflow import AsyncNode
        return await asyncio.gather(*(AsyncNode._exec(self, item) for item in items), return_exceptions=True)

    async def post_async(self, shared, prep_res, exec_res_list):
        shared["summaries"] = {d: r for d, r in zip(prep_res, exec_res_list) if not isinstance(r, Exception)}
        shared["failed"] = [r for r in exec_res_list if isinstance(r, Exception)]
'''

ZERO_RETRIES_PLAIN = '''
class SafeSummarizer(AsyncParallelBatchNode):
    """Plain PocketFlow with max_retries=0: exec_async never runs, every item silently becomes None."""

    def __init__(self):
        super().__init__(max_retries=0)
''' + PREP + '''
    async def exec_async(self, document):
        return await call_llm_async(f"Summarize: {document}")

    async def post_async(self, shared, prep_res, exec_res_list):
        shared["summaries"] = dict(zip(prep_res, exec_res_list))
        shared["failed"] = []
'''

PATCHING_CELL = '''
import pocket_parallel.checks.faults as judge

judge._refusal_message = lambda *args, **kwargs: ""
judge._within_reason = lambda *args, **kwargs: None
judge._nothing_lost = lambda *args, **kwargs: None

''' + ZERO_RETRIES_PLAIN

FAILED_AS_ITEMS = '''
    async def post_async(self, shared, prep_res, exec_res_list):
        shared["summaries"] = {d: r for d, r in zip(prep_res, exec_res_list) if isinstance(r, str)}
        shared["failed"] = [d for d, r in zip(prep_res, exec_res_list) if not isinstance(r, str)]
'''

FAILURES_DROPPED = '''
    async def post_async(self, shared, prep_res, exec_res_list):
        shared["summaries"] = {d: r for d, r in zip(prep_res, exec_res_list) if not isinstance(r, Failure)}
        shared["failed"] = [r for r in exec_res_list if isinstance(r, Failure) and "broken" in str(r)]
'''


def wrong_answers():
    """Every wrong answer, by what is wrong with it, with words its message must contain."""
    return {
        "plain parallel node": (lambda: solution(EX5, "PlainSummarizer"),
                                ("raised RateLimitError", "dropped every other result", "max_per_minute")),
        "a semaphore only": (lambda: node({**NO_PACING, "max_concurrency": "4"}),
                             ("by requests_per_minute", "not a limit per minute", "max_per_minute=10")),
        "a semaphore of 1 only": (lambda: node({**NO_PACING, "max_concurrency": "1"}),
                                  ("by requests_per_minute", "not a limit per minute")),
        "retrying 429s instead of pacing": (lambda: node({**NO_PACING, "max_concurrency": "4", "max_retries": "30",
                                                          "backoff": "Backoff(base=1.0, cap=30.0)"}),
                                            ("refuse", "by requests_per_minute")),
        "tokens paced, requests not": (lambda: node({"max_per_minute": UNSET, "max_concurrency": "1"}),
                                       ("short notes", "by requests_per_minute", "max_per_minute=10")),
        "requests paced, tokens not": (lambda: node({"max_tokens_per_minute": UNSET, "tokens_for": UNSET}),
                                       ("long reports", "by tokens_per_minute", "Pace the tokens too")),
        "requests paced at twice the budget": (lambda: node({"max_per_minute": "20"}),
                                               ("by requests_per_minute", "max_per_minute=20 lets through more")),
        "tokens paced at twice the budget": (lambda: node({"max_tokens_per_minute": "4000"}),
                                             ("by tokens_per_minute", "max_tokens_per_minute=4000 is above")),
        "token estimate without the answer": (lambda: node({"tokens_for": 'lambda d: estimate_tokens(f"Summarize: {d}")'}),
                                              ("by tokens_per_minute", "estimated", "plus the answer")),
        "token estimate of the document alone": (lambda: node({"tokens_for": "lambda d: estimate_tokens(d)"}),
                                                 ("by tokens_per_minute", "estimated", "plus the answer")),
        "no timeout": (lambda: node({"timeout": UNSET}), ("never answered", "timeout=")),
        "a timeout below the slowest answer": (lambda: node({"timeout": "2.5"}),
                                               ("ran past your timeout of 2.5 s", "above 3 s")),
        "a timeout of exactly the slowest answer": (lambda: node({"timeout": "3.0"}),
                                                    ("ran past your timeout of 3 s", "above 3 s")),
        "a batch deadline instead of a timeout": (lambda: node({"timeout": UNSET, "deadline": "120.0"}),
                                                  ("deadline", "timeout=")),
        "no retries": (lambda: node({"max_retries": "1"}), ("healthy document", "attempts (max_retries)")),
        "too few retries": (lambda: node({"max_retries": "3"}), ("after 3 attempts", "attempt 4 would have succeeded")),
        "300 retries per item": (lambda: node({"max_retries": "300"}), ("requests", "times the")),
        "one call a minute": (lambda: node({"max_per_minute": "1"}), ("times the", "reference solution takes")),
        "no collect_failures": (lambda: node({"collect_failures": UNSET}),
                                ("raised TransientLLMError", "dropped every other result", "collect_failures=True")),
        "gather with return_exceptions=True": (lambda: answer_cell(EX5, GATHER_RETURN_EXCEPTIONS, "SafeSummarizer"),
                                               ("failure records", "Failure(item, error, attempts)")),
        "fallback returns None": (lambda: fallback_returning("None"), ("ended with None", "neither a result nor a failure")),
        "placeholder string": (lambda: fallback_returning("'(no summary)'"), ("placeholder", "shared['failed']")),
        "a fallback that makes the answer up": (lambda: answer_cell(EX5, ANSWER_TO, "SafeSummarizer"),
                                                ("no call for that document ever succeeded", "made the summary up")),
        "failed listed as bare items": (lambda: node(post=FAILED_AS_ITEMS), ("failure records", "Failure(item, error, attempts)")),
        "broken documents left out of failed": (lambda: node(post=FAILURES_DROPPED),
                                                ("ended neither in shared['summaries'] nor in shared['failed']",)),
        "max_retries=0 in PocketFlow": (lambda: answer_cell(EX5, ZERO_RETRIES_PLAIN, "SafeSummarizer"),
                                        ("ended with None", "max_retries=0")),
        "another spelling of the prompt": (lambda: node(exec_async='return await call_llm_async(f"Summarise: {document}")'),
                                           ("'Summarise: ", "character for character")),
        "two requests per document at once": (lambda: node(exec_async=HEDGED), ("in flight at once", "spends the budget twice")),
        "calls made in prep_async": (lambda: answer_cell(EX5, CALLS_IN_PREP, "SafeSummarizer"),
                                     ("outside PocketFlow's per-item step", "from prep_async")),
        "a cell that patches the check": (lambda: answer_cell(EX5, PATCHING_CELL, "SafeSummarizer"),
                                          ("ended with None",)),
    }


WRONG = wrong_answers()


def test_ex5_solution_passes_on_every_seed():
    assert_passes_on_every_seed(EXERCISE_5, solution(EX5, "SafeSummarizer"))


def test_ex5_the_settings_spelled_out_and_other_right_variants_pass():
    # The wrong answers change one of these settings at a time: unchanged, they pass; so do sensible variants.
    for settings in ({}, {"max_retries": "8"}, {"timeout": "10.0"}, {"max_concurrency": "2"},
                     {"backoff": "Backoff()"}, {"backoff": UNSET, "wait": "1.0"}):
        assert_passes_on_every_seed(EXERCISE_5, node(settings), seeds=range(5))


@pytest.mark.parametrize("case", list(WRONG))
def test_ex5_wrong_answer_fails_on_every_seed(case):
    make, keywords = WRONG[case]
    with kept(faults):  # a patching cell patches this very process: put the module back afterwards
        assert_fails_on_every_seed(EXERCISE_5, make(), *keywords)


def test_ex5_wrong_answers_fail_fresh_workloads_quietly():
    make, keywords = WRONG["no timeout"]
    assert_fails(check_safe_summarizer, make(), *keywords)


def test_ex5_the_starting_codes_message_names_the_per_minute_limits():
    result = quiet(check_safe_summarizer, solution(EX5, "PlainSummarizer"), seed=1)
    assert result.status == "failed"
    for words in ("429", "10 requests a minute: max_per_minute", "2,000 tokens a minute", "collect_failures=True"):
        assert words in result.message, result.message


# -- the workloads hold what the check relies on ----------------------------------------------------


def estimate(document: str) -> int:
    """The right estimate: the whole prompt plus the longest answer."""
    return estimate_tokens(f"Summarize: {document}") + ANSWER_TOKENS


@pytest.mark.parametrize("kind", ["short notes", "long reports"])
def test_every_batch_has_a_hang_a_slowest_answer_a_broken_document_and_a_worst_case_of_four_attempts(kind):
    for seed in range(20):
        batch = _batch(random.Random(seed), kind)
        llm = batch.llm
        prompts = [f"Summarize: {doc}" for doc in batch.docs]
        healthy = [p for p, doc in zip(prompts, batch.docs) if doc not in batch.broken]
        assert 1 <= len(batch.broken) <= 2
        assert sum(llm.stalls(p, 1) for p in healthy) >= 1
        assert max(llm.latency_for(p, 1) for p in healthy) == MAX_LATENCY
        assert max(_attempts_needed(llm, p) for p in healthy) == LONGEST_RUN_OF_FAILURES + 1
        tokens = sum(llm.tokens_for(p) for p in prompts) / len(prompts)
        if kind == "short notes":  # paced at the request budget, tokens never bind
            assert tokens * REQUESTS < TOKENS / 2
        else:  # the token budget binds: at the request budget it would spend twice as much
            assert tokens * REQUESTS > 1.5 * TOKENS
        assert all(estimate(doc) >= llm.tokens_for(p) for doc, p in zip(batch.docs, prompts))


def test_faults_follow_the_document_not_the_prompts_spelling():
    batch = _batch(random.Random(3), "short notes")
    llm = batch.llm
    broken = next(iter(batch.broken))
    for prompt in (f"Summarise: {broken}", f"summarize:  {broken}", f"Please summarize this text: {broken}"):
        assert all(llm.fails(prompt, attempt) for attempt in range(1, 8))
    healthy = next(doc for doc in batch.docs if doc not in batch.broken)
    for attempt in range(1, 6):
        assert llm.fails(f"Summarise: {healthy}", attempt) == llm.fails(f"Summarize: {healthy}", attempt)
        assert llm.latency_for(f"Summarise: {healthy}", attempt) == llm.latency_for(f"Summarize: {healthy}", attempt)


def test_the_service_announces_its_limits_in_headers():
    from pocket_parallel.checks import exercise_service as service
    from pocket_parallel.limits.announced import AnnouncedLimits

    limits = AnnouncedLimits.from_headers(service().rate_limit_headers(0.0))
    assert (limits.requests_per_minute, limits.tokens_per_minute) == (REQUESTS, TOKENS)


# -- stubs --------------------------------------------------------------------------------------------

HALF_DONE = '''
class HalfDone(SafeSummarizer):
    """__init__ written (collect_failures swallows errors), exec_async still the stub."""

    def __init__(self):
        BoundedParallelBatchNode.__init__(self, max_per_minute=10, max_tokens_per_minute=2000, timeout=5.0,
                                          tokens_for=lambda d: estimate_tokens(f"Summarize: {d}") + 20,
                                          max_retries=6, backoff=Backoff(), collect_failures=True)

    async def prep_async(self, shared):
        return shared["documents"]

    async def post_async(self, shared, prep_res, exec_res_list):
        shared["summaries"] = {d: r for d, r in zip(prep_res, exec_res_list) if not isinstance(r, Failure)}
        shared["failed"] = [r for r in exec_res_list if isinstance(r, Failure)]
'''


def test_ex5_stub_is_not_attempted():
    assert quiet(check_safe_summarizer, stub(EX5, "SafeSummarizer")).status == "not attempted"


def test_ex5_half_done_is_still_not_attempted():
    result = quiet(check_safe_summarizer, answer_cell(EX5, HALF_DONE, "HalfDone"))
    assert result.status == "not attempted", result.message


def test_a_check_refuses_an_instance_instead_of_a_class():
    with pytest.raises(TypeError, match="the class itself"):
        check_safe_summarizer(solution(EX5, "SafeSummarizer")())
