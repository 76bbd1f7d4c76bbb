"""Checks for exercises 1 and 2: a parallel batch node, then a bounded one that holds inside a flow."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from pocketflow import AsyncFlow, AsyncNode

from ..backends.simulated import TransientLLMError
from ..experiment import semaphore_makespan
from ._feedback import CheckResult, Fail, build, clip, plural, run_check, run_student, sec
from ._service import LANGUAGES, CheckLLM, documents_with_distinct_summaries, latencies, rounds_schedule, sentence

_TOLERANCE = 1e-6  # seconds: the virtual clock ticks in microseconds


def check_parallel_summarizer(node_class: type, *, seed: int | None = None) -> CheckResult:
    """Exercise 1: check a parallel summarizer node class.

    ``node_class()`` must build a PocketFlow async node that reads ``shared["documents"]`` (a
    list of texts), asks ``call_llm_async(f"Summarize: {text}")`` for each, and stores the
    summaries in input order in ``shared["summaries"]``. It runs inside an ``AsyncFlow`` on
    three fresh random batches (5 to 10 documents, the last always 10) in virtual time; every
    call must be in flight at once, so a batch takes exactly as long as its slowest call.
    ``seed`` reproduces a workload.
    """
    _require_class("node_class", node_class, "ParallelSummarizer")
    return run_check("Exercise 1", lambda rng: _summarizer(node_class, rng), seed, node_class)


def check_limited_translator(node_class: type, *, seed: int | None = None) -> CheckResult:
    """Exercise 2: check a translator node class that keeps at most ``max_concurrency`` calls in flight.

    ``node_class(max_concurrency=C)`` must build a node that translates ``shared["text"]`` into
    every language of ``shared["languages"]`` with ``call_llm_async(f"Translate to {language}:
    {text}")`` and stores ``shared["translations"] = {language: translation}``. It runs inside
    an ``AsyncFlow`` on four fresh workloads, each with its own C (2 to 5, each once). The
    service must never see more than C calls at once, and no slot may sit idle while an item
    waits. In the last workload some calls fail once and one fails every time, and the check
    sets ``max_retries`` and ``exec_fallback_async`` on the node: PocketFlow's per-item step
    must still run, so that failed calls are retried and the last one gets the fallback.
    """
    _require_class("node_class", node_class, "LimitedTranslator")
    return run_check("Exercise 2", lambda rng: _translator(node_class, rng), seed, node_class)


def _require_class(parameter: str, value: Any, example: str) -> None:
    if not isinstance(value, type):
        got = f"an instance of {type(value).__name__}" if not callable(value) else f"{type(value).__name__}"
        raise TypeError(f"{parameter} must be a class such as {example} (the class itself, not {example}()); got {got}")


def _require_async_node(node_class: type) -> None:
    if not issubclass(node_class, AsyncNode):
        bases = ", ".join(base.__name__ for base in node_class.__bases__)
        raise Fail(f"{node_class.__name__} derives from {bases}, which is not a PocketFlow async node, so an "
                   f"AsyncFlow cannot await it. Base it on AsyncParallelBatchNode (from pocketflow).")


# -- exercise 1 -----------------------------------------------------------------------------------


def _summarizer(node_class: type, rng: random.Random) -> str:
    name = node_class.__name__
    _require_async_node(node_class)
    for batch in range(3):
        count = rng.randint(5, 10) if batch < 2 else 10  # a limit below 10 shows in the last batch
        docs = _unsorted(rng, count)
        prompts = [f"Summarize: {doc}" for doc in docs]
        seconds = latencies(rng, count, 0.5, 3.0, 0.25)
        while seconds == sorted(seconds):  # completion order must differ from input order
            seconds = latencies(rng, count, 0.5, 3.0, 0.25)
        llm = CheckLLM(latencies=dict(zip(prompts, seconds)), latency=1.0, jitter=0.5, seed=rng.randrange(2**31))
        shared: dict[str, Any] = {"documents": list(docs)}
        node = build(node_class, name)
        _, elapsed = run_student(AsyncFlow(start=node).run_async(shared), name,
                                 f"summarizing {count} documents inside an AsyncFlow",
                                 llm=llm, guard=60 + 10 * sum(seconds))
        expected = [llm.answer_for(prompt) for prompt in prompts]
        _check_summaries(name, shared, expected, llm)
        durations = [record.duration for record in llm.trace]
        slowest, peak = max(durations), llm.stats.peak_in_flight
        if abs(elapsed - slowest) > _TOLERANCE or peak != count:
            if peak == 1:
                raise Fail(f"{name} returned all {count} summaries in the right order, but it took {sec(elapsed)}, "
                           f"the sum of the {count} latencies, because only one call was in flight at a time. All at once, the batch takes as long as its slowest call, {sec(slowest)}. "
                           f"Hint: AsyncBatchNode awaits each item before it starts the next one; "
                           f"AsyncParallelBatchNode starts every item's exec_async at once. Which one is "
                           f"{name} based on?")
            raise Fail(f"{name} returned all {count} summaries in the right order, but it took {sec(elapsed)} with "
                       f"at most {peak} of its {count} calls in flight at once. With every call in flight "
                       f"together, the batch takes as long as its slowest call, {sec(slowest)}. Hint: let "
                       f"PocketFlow start every item (AsyncParallelBatchNode) and do not make the calls wait "
                       f"for each other.")
    return (f"{name} ran inside an AsyncFlow on three fresh batches of documents. Every call was in "
            f"flight at the same time, so each batch took exactly as long as its slowest call, and the "
            f"summaries came back in the order of the documents although the calls finished in another "
            f"order. That is the whole trick of AsyncParallelBatchNode.")


def _unsorted(rng: random.Random, count: int) -> list[str]:
    """Documents whose summaries, in input order, are sorted neither up nor down (so sorting them shows)."""
    probe = CheckLLM()
    while True:
        docs = documents_with_distinct_summaries(rng, count)
        summaries = [probe.answer_for(f"Summarize: {doc}") for doc in docs]
        if summaries not in (sorted(summaries), sorted(summaries, reverse=True)):
            return docs


def _check_summaries(name: str, shared: dict[str, Any], expected: list[str], llm: CheckLLM) -> None:
    count = len(expected)
    if llm.stats.calls == 0:
        raise Fail(f"{name} ran, but the service the check provides received no calls. The check points "
                   f"call_llm_async at its own simulated service: call 'await call_llm_async(f\"Summarize: "
                   f"{{document}}\")' once per document in exec_async.")
    if "summaries" not in shared:
        raise Fail(f"after {name} ran, shared had no 'summaries' key (it had {sorted(map(str, shared))}). "
                   f"Store the list of summaries as shared['summaries'] in post_async.")
    got = shared["summaries"]
    if not isinstance(got, (list, tuple)):
        raise Fail(f"shared['summaries'] should be a list of {count} summaries, one per document; it was "
                   f"a {type(got).__name__}. In post_async, store the exec_res_list PocketFlow hands you.")
    got = list(got)
    if llm.stats.calls != count:
        raise Fail(f"{name} made {plural(llm.stats.calls, 'call')} to the service for {count} documents; "
                   f"it should make exactly one per document.")
    if got == expected:
        return
    if len(got) == count and Counter(map(repr, got)) == Counter(map(repr, expected)):
        first = got.index(expected[0])
        raise Fail(f"all {count} summaries are in shared['summaries'], but in the order the calls finished "
                   f"rather than the order of the documents: the first document's summary is at position "
                   f"{first + 1}. Anything exec_async does on the side (appending to a list, say) happens "
                   f"in completion order; the exec_res_list PocketFlow hands to post_async is in input "
                   f"order. Hint: return each summary from exec_async and store exec_res_list in post_async.")
    if len(got) != count:
        raise Fail(f"shared['summaries'] held {plural(len(got), 'item')} for {count} documents; it should "
                   f"hold exactly one summary per document, in their order.")
    index = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
    raise Fail(f"the summary of document {index + 1} should be the service's answer to 'Summarize: "
               f"<document {index + 1}>', {clip(expected[index])}, but shared['summaries'] held "
               f"{clip(got[index])} there. Send exactly the prompt f\"Summarize: {{document}}\" and keep "
               f"the answer as it is.")


# -- exercise 2 -----------------------------------------------------------------------------------


#: What the check's ``exec_fallback_async`` returns for an item whose every attempt fails.
FALLBACK = "(no translation: every attempt failed)"
#: The ``max_retries`` the check sets on the node in its workload with failing calls.
RETRIES = 3


async def _fallback(prep_res: Any, error: Exception) -> str:
    return FALLBACK


def _translator(node_class: type, rng: random.Random) -> str:
    name = node_class.__name__
    _require_async_node(node_class)
    # Each round its own C, every C from 2 to 5 once: a semaphore of any fixed size shows.
    for round_number, limit in enumerate(rng.sample(range(2, 6), 4)):
        count = rng.randint(7, 14)
        if round_number == 0:
            while count % limit == 0:  # a last round that is not full
                count = rng.randint(7, 14)
        languages = rng.sample(LANGUAGES, count)
        while languages == sorted(languages):  # filing translations in sorted order must show
            languages = rng.sample(LANGUAGES, count)
        text = sentence(rng)
        prompts = [f"Translate to {language}: {text}" for language in languages]
        if round_number != 2:  # every call takes the same time: ceil(N / C) * L
            seconds = [rng.choice((0.5, 1.0, 1.5, 2.0, 2.5, 3.0))] * count
        else:  # uneven, and drawn so that waiting for whole rounds of C would be measurably slower
            seconds = latencies(rng, count, 0.5, 3.0, 0.5)
            while rounds_schedule(seconds, limit) - semaphore_makespan(seconds, limit) < 0.25:
                seconds = latencies(rng, count, 0.5, 3.0, 0.5)
        doing = f"translating into {count} languages with max_concurrency={limit} inside an AsyncFlow"
        shared: dict[str, Any] = {"text": text, "languages": list(languages)}
        if round_number < 3:
            llm = CheckLLM(latencies=dict(zip(prompts, seconds)), latency=1.0, seed=rng.randrange(2**31))
            node = build(node_class, name, max_concurrency=limit)
            _, elapsed = run_student(AsyncFlow(start=node).run_async(shared), name, doing, llm=llm,
                                     guard=60 + 10 * sum(seconds))
            _check_translations(name, shared, {lang: llm.answer_for(p) for lang, p in zip(languages, prompts)}, llm)
            _check_limit(node_class, elapsed, llm, prompts, limit, equal=round_number != 2)
        else:
            _faulty_round(node_class, rng, shared, languages, prompts, seconds, limit, doing)
    return (f"{name} ran inside an AsyncFlow on four fresh workloads, each with its own limit C. The "
            f"service never saw more than C calls at once, no slot sat idle while a call was waiting, so "
            f"each batch took exactly the time a semaphore of C allows (ceil(N / C) x L when every call "
            f"takes L), and every translation landed under its own language. With max_retries={RETRIES} and "
            f"a fallback set, calls that failed once were retried and the call that always failed got the "
            f"fallback: PocketFlow's per-item step, retries and all, still runs inside your limit.")


def _faulty_round(node_class: type, rng: random.Random, shared: dict[str, Any], languages: list[str],
                  prompts: list[str], seconds: list[float], limit: int, doing: str) -> None:
    """Some calls fail once, one fails every time; the node, with max_retries and a fallback set
    as any PocketFlow node may have them, must retry the first and fall back for the last."""
    name = node_class.__name__
    broken, *flaky = rng.sample(range(len(prompts)), 3)
    llm = CheckLLM(latencies=dict(zip(prompts, seconds)), latency=1.0, seed=rng.randrange(2**31),
                   broken=[prompts[broken]])
    llm.flaky.update({prompts[i]: 1 for i in flaky})
    node = build(node_class, name, max_concurrency=limit)
    node.max_retries, node.wait = RETRIES, 0
    node.exec_fallback_async = _fallback  # an instance attribute: PocketFlow's _exec reads it from self
    run_student(AsyncFlow(start=node).run_async(shared), name,
                f"{doing}, with max_retries={RETRIES} and an exec_fallback_async set on it",
                llm=llm, guard=60 + 10 * RETRIES * sum(seconds), advice=_retry_advice(node_class))
    expected = {lang: llm.answer_for(p) for lang, p in zip(languages, prompts)}
    expected[languages[broken]] = FALLBACK
    _check_translations(name, shared, expected, llm, fallback=languages[broken], retried=[languages[i] for i in flaky],
                        skipped=_skipped_step(node_class))
    peak = llm.stats.peak_in_flight
    if peak > limit:
        raise Fail(f"at most C = {limit} calls may be in flight at once, but with calls failing and being "
                   f"retried the service saw {peak} at the same time ({len(prompts)} languages, inside an "
                   f"AsyncFlow). A retry is a call too: it must wait for a slot like any other.")
    attempts = Counter(record.prompt for record in llm.trace)
    if attempts[prompts[broken]] != RETRIES:
        raise Fail(f"the call for {languages[broken]} fails every time, and with max_retries={RETRIES} PocketFlow "
                   f"makes exactly {RETRIES} attempts before it calls exec_fallback_async, but {name} made "
                   f"{plural(attempts[prompts[broken]], 'attempt')}. Leave retrying to PocketFlow's per-item step "
                   f"(AsyncNode._exec), which reads max_retries from the node.")


def _retry_advice(node_class: type) -> Callable[[Exception], str]:
    def advice(error: Exception) -> str:
        if not isinstance(error, TransientLLMError):
            return "Read the error, fix the line it points to, and run the check again."
        return (f"In this batch a few calls fail once and one fails every time, and the check set "
                f"max_retries={RETRIES} and an exec_fallback_async on your node, as any PocketFlow node may "
                f"have them. PocketFlow handles both in its per-item step, AsyncNode._exec: it runs "
                f"exec_async up to max_retries times, then calls exec_fallback_async. "
                + _skipped_step(node_class))
    return advice


def _skipped_step(node_class: type) -> str:
    """Why retries and fallback were lost, judged from what the class overrides."""
    if _overrides(node_class, "_run_async"):
        return ("Your class overrides _run_async and calls exec_async itself, so that step never runs: no "
                "retries, no fallback (moving the chapter's run_async override to _run_async makes the limit "
                "hold inside a flow, and loses these). Keep PocketFlow's _run_async and _exec, and put the "
                "semaphore in exec_async.")
    if _overrides(node_class, "_exec"):
        return ("Your class overrides _exec and calls exec_async directly, so that step never runs: no "
                "retries, no fallback. To limit in _exec, hold the semaphore around AsyncNode._exec(self, item) "
                "for each item; simpler, put the semaphore in exec_async.")
    return ("Let an error from call_llm_async leave exec_async (PocketFlow's step retries it), and catch "
            "nothing around the whole batch.")


def _check_translations(name: str, shared: dict[str, Any], expected: dict[str, str], llm: CheckLLM, *,
                        fallback: str | None = None, retried: Sequence[str] = (), skipped: str = "") -> None:
    """Every language filed with its own translation; with ``fallback`` given, that language with
    :data:`FALLBACK` and the ``retried`` ones with their answers (``skipped`` says why they may not be)."""
    if llm.stats.calls == 0:
        raise Fail(f"{name} ran, but the service the check provides received no calls. The check points "
                   f"call_llm_async at its own simulated service: call 'await call_llm_async(f\"Translate "
                   f"to {{language}}: {{text}}\")' once per language in exec_async.")
    got = shared.get("translations")
    if not isinstance(got, dict):
        what = "no 'translations' key" if got is None else f"a {type(got).__name__} under 'translations'"
        raise Fail(f"after {name} ran, shared had {what}. Store a dict from each language to its "
                   f"translation as shared['translations'] in post_async (zip prep_res with exec_res_list).")
    missing = [lang for lang in expected if lang not in got]
    if missing:
        raise Fail(f"shared['translations'] has no entry for {plural(len(missing), 'language')} "
                   f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}) of the {len(expected)} asked "
                   f"for. Every language in shared['languages'] needs its translation.")
    errors = [lang for lang in expected if isinstance(got[lang], BaseException)]
    if errors:
        lang = errors[0]
        raise Fail(f"shared['translations'][{lang!r}] held an exception, {type(got[lang]).__name__}: {got[lang]}, "
                   f"instead of a translation. asyncio.gather(..., return_exceptions=True) hands errors back as "
                   f"if they were results; PocketFlow's own per-item step (AsyncNode._exec) would have retried "
                   f"the call (max_retries={RETRIES} was set) and then called exec_fallback_async. " + skipped)
    if fallback is not None and got[fallback] != FALLBACK:
        raise Fail(f"every attempt at the call for {fallback} fails, so after max_retries={RETRIES} attempts "
                   f"PocketFlow calls exec_fallback_async, which the check set to return {FALLBACK!r}; but "
                   f"shared['translations'][{fallback!r}] held {clip(got[fallback])}: the fallback was skipped. "
                   + skipped)
    wrong = [lang for lang in expected if got[lang] != expected[lang]]
    if wrong:
        lang = wrong[0]
        if lang in retried:
            raise Fail(f"the call for {lang} failed once and should have been retried (max_retries={RETRIES}), "
                       f"so shared['translations'][{lang!r}] should hold {clip(expected[lang])}, but it held "
                       f"{clip(got[lang])}. " + skipped)
        raise Fail(f"shared['translations'][{lang!r}] should be the service's answer to 'Translate to {lang}: "
                   f"<text>', {clip(expected[lang])}, but it held {clip(got[lang])}. Pair each language "
                   f"with its own result: zip(prep_res, exec_res_list) in post_async keeps them together.")


def _check_limit(node_class: type, elapsed: float, llm: CheckLLM, prompts: list[str], limit: int, *, equal: bool) -> None:
    name = node_class.__name__
    count, peak = len(prompts), llm.stats.peak_in_flight
    # The order in which the node handed its items to the semaphore: by start time, and among
    # calls that started together, in input order (a FIFO semaphore wakes waiters that way).
    # A node may order its items as it likes; what it may not do is leave a slot idle.
    position = {prompt: index for index, prompt in enumerate(prompts)}
    trace = sorted(llm.trace, key=lambda record: (record.start, position.get(record.prompt, count)))
    durations = [record.duration for record in trace]
    best = semaphore_makespan(durations, limit)
    latency = durations[0]
    rule = (f"ceil({count} / {limit}) x {sec(latency)} = {sec(best)}" if equal
            else f"{sec(best)} for these uneven latencies")
    if peak > limit:
        if peak < count:
            why = (f"Your node does limit, but to {peak}, not to the C it was given: build the semaphore from "
                   f"self.max_concurrency rather than from a fixed number.")
        elif _overrides(node_class, "run_async"):
            why = ("Your class overrides run_async. Inside an AsyncFlow PocketFlow never calls a node's "
                   "run_async: it calls _run_async, so a limit set up in run_async is skipped (the chapter's "
                   "RateLimitedParallelNode has exactly this bug). Put the semaphore around each item's "
                   "work instead: create it once per run in prep_async and use 'async with' in exec_async.")
        else:
            why = ("Every item must pass through one and the same semaphore of size C: a semaphore created "
                   "inside exec_async is a new gate for each item and limits nothing. Create it once per run "
                   "(in prep_async, from self.max_concurrency) and use 'async with' in exec_async.")
        raise Fail(f"at most C = {limit} calls may be in flight at once, but the service saw {peak} at the "
                   f"same time ({count} languages, run inside an AsyncFlow). {why}")
    if abs(elapsed - best) <= _TOLERANCE:
        return
    if peak < limit:
        size = (" Is your semaphore built from self.max_concurrency, or from a fixed number?" if peak > 1
                else " With one call at a time, is the base class still AsyncBatchNode, or does the semaphore "
                     "hold a single slot?")
        raise Fail(f"{name} never had more than {peak} of the allowed C = {limit} calls in flight, so {count} "
                   f"translations took {sec(elapsed)} instead of {rule}.{size}")
    raise Fail(f"{name} kept to C = {limit} calls in flight (good), but {count} translations took "
               f"{sec(elapsed)} instead of {rule}: some slots sat idle while items were waiting. A "
               f"semaphore lets the next item start the moment any call ends; do not wait for a whole "
               f"group of C to finish, and hold the semaphore only around the call itself.")


def _overrides(node_class: type, method: str) -> bool:
    import pocketflow

    return any(method in vars(klass) for klass in node_class.__mro__
               if klass.__module__ != pocketflow.__name__ and klass is not object)


