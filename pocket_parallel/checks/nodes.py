"""Checks for exercises 1 and 2: a parallel batch node, then a bounded one that holds inside a flow.

Both run the student's node class in the check's subprocess (:mod:`._sandbox`), inside an
``AsyncFlow``, on the virtual clock, against a service that fails some calls once and one
call every time. The check sets ``max_retries``, ``wait`` and ``exec_fallback_async`` on the
node, as any PocketFlow node may have them, so only a node that keeps PocketFlow's per-item
step (``AsyncNode._exec``) gets every item right. Then it compares the calls with the
exercise's contract: the exact prompts, the attempts per item, the method that made each call,
and the time each one started.

Workloads are drawn to defeat constants and coincidences: latencies to the microsecond
(never on a grid, never already sorted), batches from a handful to 60 items, an empty batch;
in exercise 2, every limit C from 2 to 9, and two nodes with their own limits running at once
in one event loop, each round in a fresh loop.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable, Sequence
from typing import Any

from pocketflow import AsyncFlow

from ..backends.simulated import TransientLLMError

from ._feedback import Check, CheckResult, Fail, Lab, Raised, clip, plural, raise_for_build, raise_for_run, sec
from ._portable import Foreign, from_portable, to_portable
from ._errors import error_info
from ._running import BuildFailed, build_answer, run_answer
from ._sandbox import experiment
from ._service import LANGUAGES, CheckLLM, documents_with_distinct_summaries, sentence, uneven
from ._calls import Origins
from ._trace import TOLERANCE, Calls, check_calls

#: What the check's ``exec_fallback_async`` returns for an item whose every attempt fails.
FALLBACK = "(no answer: every attempt failed)"
#: The ``max_retries`` the check sets on the node.
RETRIES = 3


def check_parallel_summarizer(node_class: type, *, seed: int | None = None) -> CheckResult:
    """Exercise 1: check a parallel summarizer node class.

    ``node_class()`` must build a PocketFlow async node that reads ``shared["documents"]`` (a
    list of texts), asks ``call_llm_async(f"Summarize: {text}")`` for each, and stores the
    summaries in input order in ``shared["summaries"]``. It runs inside an ``AsyncFlow`` on
    four fresh batches (5 to 12, 13 to 30 and 40 to 60 documents, and an empty one) in
    virtual time, with ``max_retries``, ``wait`` and a fallback set on it and some calls
    failing: every first call must start at once, every retry ``wait`` seconds after its
    failure, so a batch takes exactly as long as its slowest item. ``seed`` reproduces a workload.
    """
    _require_class("node_class", node_class, "ParallelSummarizer")
    return EXERCISE_1(node_class, seed)


def check_limited_translator(node_class: type, *, seed: int | None = None) -> CheckResult:
    """Exercise 2: check a translator node class that keeps at most ``max_concurrency`` calls in flight.

    ``node_class(max_concurrency=C)`` must build a node that translates ``shared["text"]`` into
    every language of ``shared["languages"]`` with ``call_llm_async(f"Translate to {language}:
    {text}")`` and stores ``shared["translations"] = {language: translation}``. Each round runs
    in a fresh event loop, inside ``AsyncFlow``\\ s: one node; two nodes with different limits
    at once; two with the same limit at once; 40 to 60 languages; no languages. Some calls
    fail once and one fails every time, with ``max_retries``, a nonzero ``wait`` and a fallback
    set on each node. Each node must keep its own C calls in flight, never leave a slot idle
    while a language is ready, retry through PocketFlow's per-item step and file every
    translation under its language.
    """
    _require_class("node_class", node_class, "LimitedTranslator")
    return EXERCISE_2(node_class, seed)


def _require_class(parameter: str, value: Any, example: str) -> None:
    if not isinstance(value, type):
        got = f"an instance of {type(value).__name__}" if not callable(value) else f"{type(value).__name__}"
        raise TypeError(f"{parameter} must be a class such as {example} (the class itself, not {example}()); got {got}")


def _require_async_node(lab: Lab) -> None:
    if not lab.facts["async_node"]:
        bases = ", ".join(lab.facts["bases"])
        raise Fail(f"{lab.name} derives from {bases}, which is not a PocketFlow async node, so an "
                   f"AsyncFlow cannot await it. Base it on AsyncParallelBatchNode (from pocketflow).")


# -- in the subprocess: running the node ------------------------------------------------------------


def _fallback(errors: list[dict[str, Any]]) -> Callable[[Any, Exception], Any]:
    """The check's ``exec_fallback_async``: returns :data:`FALLBACK`, and keeps what the student's own code raised."""

    async def fallback(prep_res: Any, error: Exception) -> str:
        if not isinstance(error, TransientLLMError) and len(errors) < 5:
            errors.append(error_info(error))
        return FALLBACK

    return fallback


def _service(workload: dict[str, Any], origins: Origins) -> CheckLLM:
    llm = CheckLLM(latencies=workload["latencies"], broken=workload["broken"], origins=origins, latency=1.0,
                   jitter=0.5, seed=workload["seed"])
    llm.flaky.update(workload["flaky"])
    return llm


def _with_retries(node: Any, workload: dict[str, Any], errors: list[dict[str, Any]]) -> None:
    """What any PocketFlow node may have: retries, a pause between them, a fallback."""
    node.max_retries, node.wait = workload["max_retries"], workload["wait"]
    node.exec_fallback_async = _fallback(errors)  # an instance attribute: PocketFlow's _exec reads it from self


@experiment("exercise 1")
def _run_summarizer(node_class: Any, workload: dict[str, Any]) -> dict[str, Any]:
    origins = Origins()
    llm = _service(workload, origins)
    try:
        node = build_answer(node_class)
    except BuildFailed as failed:
        return {"build": failed.info}
    errors: list[dict[str, Any]] = []
    _with_retries(node, workload, errors)
    shared: dict[str, Any] = {"documents": list(workload["documents"])}
    _, report = run_answer(lambda: AsyncFlow(start=node).run_async(shared), llm=llm, origins=origins,
                           guard=workload["guard"])
    return {"run": report, "calls": llm.calls(), "blocking": llm.blocking_calls, "shared": to_portable(shared),
            "fallback_errors": errors}


@experiment("exercise 2")
def _run_translators(node_class: Any, workload: dict[str, Any]) -> dict[str, Any]:
    origins = Origins()
    llm = _service(workload, origins)
    nodes: list[Any] = []
    errors: list[dict[str, Any]] = []
    for spec in workload["nodes"]:
        try:
            nodes.append(build_answer(node_class, max_concurrency=spec["limit"]))
        except BuildFailed as failed:
            return {"build": failed.info, "limit": spec["limit"]}
        _with_retries(nodes[-1], workload, errors)
    stores: list[dict[str, Any]] = [{"text": spec["text"], "languages": list(spec["languages"])}
                                    for spec in workload["nodes"]]
    finished: list[float | None] = [None] * len(nodes)

    async def one(index: int) -> None:
        await AsyncFlow(start=nodes[index]).run_async(stores[index])
        finished[index] = asyncio.get_running_loop().time()

    async def together() -> None:
        await asyncio.gather(*(one(index) for index in range(len(nodes))))

    _, report = run_answer(together, llm=llm, origins=origins, guard=workload["guard"])
    return {"run": report, "calls": llm.calls(), "blocking": llm.blocking_calls,
            "shared": [to_portable(store) for store in stores], "finished": finished, "fallback_errors": errors}


# -- the check's side: exercise 1 -------------------------------------------------------------------


def _summarizer(rng: random.Random, lab: Lab) -> str:
    name = lab.name
    _require_async_node(lab)
    for count in (rng.randint(5, 12), 0, rng.randint(13, 30), rng.randint(40, 60)):
        _summarizer_round(lab, name, rng, count)
    return (f"{name} ran inside an AsyncFlow on four fresh batches, from none to dozens of documents, while some "
            f"calls failed. Every first call started at once, and every retry the node's wait after its failure, so "
            f"each batch took exactly as long as its slowest document. The "
            f"summaries came back in the order of the documents although the calls finished in another order, "
            f"and the document whose every call failed got the fallback. That is the whole trick of "
            f"AsyncParallelBatchNode, and PocketFlow's per-item step still does the retrying.")


def _faults(rng: random.Random, prompts: Sequence[str]) -> tuple[dict[str, int], list[str]]:
    """Some prompts that fail once, one that fails twice, one that always fails (for batches of 5 or more)."""
    if len(prompts) < 5:
        return {}, []
    broken, twice, *once = rng.sample(list(prompts), 2 + max(1, len(prompts) // 6))
    return {twice: 2, **dict.fromkeys(once, 1)}, [broken]


def _expected_attempts(prompts: Sequence[str], flaky: dict[str, int], broken: Sequence[str]) -> dict[str, int]:
    return {p: RETRIES if p in broken else flaky.get(p, 0) + 1 for p in prompts}


def _chain(latency: float, failures: int, wait: float) -> float:
    """When an item that fails ``failures`` times (each attempt as long as the first) ends, started at 0."""
    return (failures + 1) * latency + failures * wait


def _summarizer_round(lab: Lab, name: str, rng: random.Random, count: int) -> None:
    docs = _unsorted(rng, count)
    prompts = [f"Summarize: {doc}" for doc in docs]
    seconds = uneven(rng, count, 0.4, 3.2)
    flaky, broken = _faults(rng, prompts)
    wait = round(rng.uniform(0.2, 0.9), 6)
    workload = {"documents": docs, "latencies": dict(zip(prompts, seconds)), "flaky": flaky, "broken": broken,
                "max_retries": RETRIES, "wait": wait, "seed": rng.randrange(2**31),
                "guard": 60 + 10 * RETRIES * (sum(seconds) + wait)}
    doing = f"summarizing {plural(count, 'document')} inside an AsyncFlow"
    seen = lab.run("exercise 1", workload, doing=doing)
    if "build" in seen:
        raise_for_build(Raised.of(seen["build"]), name, "")
    calls = Calls.of(seen["calls"])
    raise_for_run(seen["run"], name, doing, advice=_retry_advice(lab, calls, "summarize"), blocking_calls=seen["blocking"])
    _own_errors(name, seen, doing)
    shared = from_portable(seen["shared"])
    probe = CheckLLM()
    expected = [FALLBACK if p in broken else probe.answer_for(p) for p in prompts]
    if count and not len(calls):
        raise Fail(f"{name} ran, but the service the check provides received no calls. The check points "
                   f"call_llm_async at its own simulated service: call 'await call_llm_async(f\"Summarize: "
                   f"{{document}}\")' once per document in exec_async.")
    attempts = _expected_attempts(prompts, flaky, broken)
    number = {p: i + 1 for i, p in enumerate(prompts)}
    check_calls(name, calls, attempts, item=lambda p: f"the call for document {number[p]}",
                prompt_form="f\"Summarize: {document}\"", max_retries=RETRIES, wait=wait)
    elapsed = seen["run"]["seconds"]
    _check_all_at_once(name, calls, prompts, seconds, attempts, wait, elapsed, final=False)
    _check_summaries(name, shared, expected, number[broken[0]] if broken else None)
    _check_all_at_once(name, calls, prompts, seconds, attempts, wait, elapsed, final=True)


def _unsorted(rng: random.Random, count: int) -> list[str]:
    """Documents whose summaries, in input order, are sorted neither up nor down (so sorting them shows)."""
    probe = CheckLLM()
    while True:
        docs = documents_with_distinct_summaries(rng, count)
        summaries = [probe.answer_for(f"Summarize: {doc}") for doc in docs]
        if count < 2 or summaries not in (sorted(summaries), sorted(summaries, reverse=True)):
            return docs


def _check_summaries(name: str, shared: dict[str, Any], expected: list[str], broken: int | None) -> None:
    count = len(expected)
    if "summaries" not in shared:
        raise Fail(f"after {name} ran, shared had no 'summaries' key (it had {sorted(map(str, shared))}). "
                   f"Store the list of summaries as shared['summaries'] in post_async.")
    got = shared["summaries"]
    if not isinstance(got, (list, tuple)):
        raise Fail(f"shared['summaries'] should be a list of {count} summaries, one per document; it was "
                   f"a {_type(got)}. In post_async, store the exec_res_list PocketFlow hands you.")
    got = list(got)
    if got == expected:
        return
    if len(got) == count and sorted(map(repr, got)) == sorted(map(repr, expected)):
        first = got.index(expected[0])
        raise Fail(f"all {count} summaries are in shared['summaries'], but in another order than the documents "
                   f"(the order the calls finished, or sorted): the first document's summary is at position "
                   f"{first + 1}. Anything exec_async does on the side (appending to a list, say) happens in "
                   f"completion order; the exec_res_list PocketFlow hands to post_async is in input order. Hint: "
                   f"return each summary from exec_async and store exec_res_list in post_async.")
    kept = [summary for summary in expected if summary != FALLBACK]
    if broken is not None and len(got) == count - 1 and sorted(map(repr, got)) == sorted(map(repr, kept)):
        order = ("" if got == kept else " The others are in another order than the documents, the order the calls "
                 "finished in.")
        raise Fail(f"shared['summaries'] held {len(got)} summaries for {count} documents: the fallback for document "
                   f"{broken}, whose every call fails, is missing.{order} PocketFlow puts exec_fallback_async's value "
                   f"in exec_res_list, in the item's place, in input order; a list filled in exec_async (appending "
                   f"each answer as it arrives) never sees it. Hint: return each summary from exec_async and store "
                   f"exec_res_list in post_async.")
    if len(got) != count:
        raise Fail(f"shared['summaries'] held {plural(len(got), 'item')} for {count} documents; it should "
                   f"hold exactly one summary per document, in their order.")
    index = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
    if broken == index + 1:
        raise Fail(f"every call for document {index + 1} fails, so after max_retries={RETRIES} attempts PocketFlow "
                   f"calls exec_fallback_async, which the check set to return {FALLBACK!r}; but shared['summaries'] "
                   f"held {clip(got[index])} there: the fallback was skipped. Keep PocketFlow's per-item step: make "
                   f"the call in exec_async, and let its error leave exec_async.")
    raise Fail(f"the summary of document {index + 1} should be the service's answer to 'Summarize: "
               f"<document {index + 1}>', {clip(expected[index])}, but shared['summaries'] held "
               f"{clip(got[index])} there. Send exactly the prompt f\"Summarize: {{document}}\" and keep "
               f"the answer as it is.")


def _type(value: Any) -> str:
    return value.type_name if isinstance(value, Foreign) else type(value).__name__


def _check_all_at_once(name: str, calls: Calls, prompts: list[str], seconds: list[float], attempts: dict[str, int],
                       wait: float, elapsed: float, *, final: bool) -> None:
    """Every first call at 0 s; and, ``final``ly (once the summaries are known to be right), the batch
    ending with its slowest item's chain of attempts."""
    if not prompts:
        if final and elapsed > TOLERANCE:
            raise Fail(f"with no documents at all, {name} took {sec(elapsed)}: an empty batch has nothing to wait for.")
        return
    chains = [_chain(s, attempts[p] - 1, wait) for p, s in zip(prompts, seconds)]
    slowest = max(chains)
    late = [p for p in prompts if calls.attempts(p)[0].start > TOLERANCE]
    if late or (final and abs(elapsed - slowest) > TOLERANCE):
        peak, count = calls.peak(), len(prompts)
        if peak == 1:
            raise Fail(f"{name} had only one call in flight at a time, so {count} documents took {sec(elapsed)}. "
                       f"All at once, the batch takes as long as its "
                       f"slowest document, {sec(slowest)}. Hint: AsyncBatchNode awaits each item before it starts the "
                       f"next one; AsyncParallelBatchNode starts every item's exec_async at once. Which one is "
                       f"{name} based on?")
        if late:
            raise Fail(f"{plural(len(late), 'document')} of {count} did not get its first call at 0 s: {name} had "
                       f"at most {peak} calls in flight at once, "
                       f"so the batch took {sec(elapsed)} instead of {sec(slowest)}, its slowest document. A limit "
                       f"nobody asked for (a semaphore, max_concurrency) shows only when a batch is larger than it: "
                       f"let PocketFlow start every item at once (AsyncParallelBatchNode) and do not make the calls "
                       f"wait for each other.")
        raise Fail(f"every call of {name} started when it should, but the batch took {sec(elapsed)} instead of "
                   f"{sec(slowest)}, the end of its slowest document: something after the calls (in post_async?) "
                   f"kept it waiting.")


def _own_errors(name: str, seen: dict[str, Any], doing: str) -> None:
    """Fail (or NotAttempted) if the student's own code raised where the check's fallback caught it."""
    errors = seen.get("fallback_errors") or []
    if errors:
        raise_for_run({"ended": "raised", "error": errors[0]}, name, doing, advice=lambda error: (
            f"It raised that on every attempt at an item (PocketFlow tried max_retries={RETRIES} times, then called "
            f"the fallback the check set). " + (_OTHER_LOOP if _other_loop(error) else
                                                "Read the error, fix the line it points to, and run the check again.")))


_OTHER_LOOP = ("An asyncio semaphore belongs to the event loop that first waited on it, and every run of a flow "
               "(every run of a cell, and each round of this check) may have a new loop. A semaphore made once and "
               "shared by every run and every node (a class attribute, one made at module level, or a cached one) "
               "breaks on the next loop, and mixes the limits of different nodes before that. Create it per run, "
               "in prep_async, from self.max_concurrency.")


def _other_loop(error: Raised) -> bool:
    return error.is_a("RuntimeError") and "bound to a different event loop" in error.text


def _retry_advice(lab: Lab, calls: Calls, verb: str) -> Callable[[Raised], str]:
    def advice(error: Raised) -> str:
        if _other_loop(error):
            return _OTHER_LOOP
        if not error.is_a("TransientLLMError"):
            return "Read the error, fix the line it points to, and run the check again."
        outside = [call for call in calls.all if call.failed and not call.step]
        where_ = (f"The call that failed was made from {outside[0].made_in}, outside PocketFlow's per-item step, so "
                  f"nothing retried it: make each item's call in exec_async." if outside else "")
        return (f"In this batch a few calls fail once and one fails every time, and the check set "
                f"max_retries={RETRIES}, a wait and an exec_fallback_async on your node, as any PocketFlow node may "
                f"have them. PocketFlow handles both in its per-item step, AsyncNode._exec: it runs exec_async up to "
                f"max_retries times, then calls exec_fallback_async. {where_ or _skipped_step(lab)}").rstrip()
    return advice


def _skipped_step(lab: Lab) -> str:
    """Why retries and fallback were lost, judged from what the class overrides."""
    overrides = lab.facts["overrides"]
    if "_run_async" in overrides:
        return ("Your class overrides _run_async and calls exec_async itself, so that step never runs: no "
                "retries, no fallback (moving the chapter's run_async override to _run_async makes the limit "
                "hold inside a flow, and loses these). Keep PocketFlow's _run_async and _exec, and put the "
                "semaphore in exec_async.")
    if "_exec" in overrides:
        return ("Your class overrides _exec and calls exec_async directly, so that step never runs: no "
                "retries, no fallback. To limit in _exec, hold the semaphore around AsyncNode._exec(self, item) "
                "for each item; simpler, put the semaphore in exec_async.")
    return ("Let an error from call_llm_async leave exec_async (PocketFlow's step retries it), and catch "
            "nothing around the whole batch.")


# -- the check's side: exercise 2 --------------------------------------------------------------------


def _translator(rng: random.Random, lab: Lab) -> str:
    name = lab.name
    _require_async_node(lab)
    alone, same, low, high, large = _limits(rng)
    seen: set[int] = set()
    _translator_round(lab, name, rng, [alone], seen, equal=True)
    _translator_round(lab, name, rng, [same, same], seen)
    _translator_round(lab, name, rng, [low, high], seen)
    _translator_round(lab, name, rng, [large], seen, sizes=(40, 60))
    _translator_round(lab, name, rng, [rng.randint(2, 6)], seen, sizes=(0, 0))
    return (f"{name} ran inside AsyncFlows in five fresh event loops: alone, two nodes with the same limit at once, "
            f"two with different limits at once, 40 to 60 languages, and none. Each node kept its own C calls "
            f"in flight, never more, and no slot sat idle while a language was ready, so each batch took exactly "
            f"the time its semaphore allows (ceil(N / C) x L when every call takes L). Failed calls were retried "
            f"after the node's wait, by PocketFlow's per-item step and within the limit, and the language whose "
            f"every call failed got the fallback.")


def _limits(rng: random.Random) -> tuple[int, int, int, int, int]:
    """C for each round: alone; twice side by side; two others side by side; for a large batch. The first
    three rounds never repeat a C, so a semaphore kept from one round to the next shows as what it is."""
    alone = rng.randint(2, 5)
    same = rng.choice([c for c in range(2, 5) if c != alone])
    low, high = sorted(rng.sample([c for c in range(2, 9) if c not in (alone, same)], 2))
    return alone, same, low, high, rng.randint(3, 9)


def _translator_round(lab: Lab, name: str, rng: random.Random, limits: list[int], seen_limits: set[int], *,
                      equal: bool = False, sizes: tuple[int, int] = (7, 16)) -> None:
    unused = rng.sample(LANGUAGES, len(LANGUAGES))
    specs: list[dict[str, Any]] = []
    seconds_of: dict[str, float] = {}
    for limit in limits:
        count = rng.randint(*sizes)
        while equal and count % limit == 0:  # a last round of calls that is not full
            count = rng.randint(*sizes)
        languages, unused = unused[:count], unused[count:]
        text = sentence(rng)
        prompts = [f"Translate to {language}: {text}" for language in languages]
        lats = [round(rng.uniform(0.5, 3.0), 6)] * count if equal else _exposing(rng, count, limit)
        seconds_of.update(zip(prompts, lats))
        specs.append({"limit": limit, "text": text, "languages": languages, "prompts": prompts})
    all_prompts = [p for spec in specs for p in spec["prompts"]]
    flaky, broken = ({}, []) if equal else _faults(rng, all_prompts)
    wait = round(rng.uniform(0.3, 1.2), 6)
    workload = {"nodes": [{k: s[k] for k in ("limit", "text", "languages")} for s in specs],
                "latencies": seconds_of, "flaky": flaky, "broken": broken, "max_retries": RETRIES, "wait": wait,
                "seed": rng.randrange(2**31), "guard": 60 + 10 * RETRIES * (sum(seconds_of.values()) + wait)}
    together = " and ".join(f"C = {s['limit']} ({plural(len(s['languages']), 'language')})" for s in specs)
    doing = (f"translating with max_concurrency {together}" + (", two nodes at once in one event loop"
                                                               if len(specs) > 1 else "") + ", inside AsyncFlows")
    seen = lab.run("exercise 2", workload, doing=doing)
    if "build" in seen:
        raise_for_build(Raised.of(seen["build"]), name, f"max_concurrency={seen['limit']}")
    every = Calls.of(seen["calls"])
    raise_for_run(seen["run"], name, doing, advice=_retry_advice(lab, every, "translate"), blocking_calls=seen["blocking"])
    _own_errors(name, seen, doing)
    stores = [from_portable(store) for store in seen["shared"]]
    probe = CheckLLM()
    if all_prompts and not len(every):
        raise Fail(f"{name} ran, but the service the check provides received no calls. The check points "
                   f"call_llm_async at its own simulated service: call 'await call_llm_async(f\"Translate "
                   f"to {{language}}: {{text}}\")' once per language in exec_async.")
    attempts = _expected_attempts(all_prompts, flaky, broken)
    language_of = {p: lang for s in specs for lang, p in zip(s["languages"], s["prompts"])}
    check_calls(name, every, attempts, item=lambda p: f"the call for {language_of[p]}",
                prompt_form="f\"Translate to {language}: {text}\"", max_retries=RETRIES, wait=wait)
    for spec, store in zip(specs, stores):
        expected = {lang: FALLBACK if p in broken else probe.answer_for(p)
                    for lang, p in zip(spec["languages"], spec["prompts"])}
        _check_translations(name, store, expected, fallback=next((language_of[p] for p in broken
                                                                  if p in spec["prompts"]), None),
                            retried=[language_of[p] for p in flaky if p in spec["prompts"]], lab=lab)
    for index, (spec, finished) in enumerate(zip(specs, seen["finished"])):
        others = [s for i, s in enumerate(specs) if i != index]
        _check_limit(name, lab, every, spec, others, wait, finished, equal=equal, seconds=seconds_of,
                     earlier=seen_limits)
    seen_limits.update(limits)


def _exposing(rng: random.Random, count: int, limit: int) -> list[float]:
    """Uneven latencies on which items dealt to the slots in advance (in turn, in blocks, in rounds
    of C) would leave a slot idle while an item waits, whatever the answer's fixed plan."""
    while True:
        lats = uneven(rng, count, 0.5, 3.0)
        if count <= limit or all(_static_plan_idles(lats, limit, plan) for plan in ("turn", "blocks", "rounds")):
            return lats


def _static_plan_idles(lats: list[float], limit: int, plan: str) -> bool:
    """Whether a fixed plan leaves a slot idle for over 0.1 s while an item has not started yet.

    ``"rounds"``: groups of C, each waiting for its slowest call; ``"turn"``: item i to slot
    i % C; ``"blocks"``: each slot one block of consecutive items.
    """
    count = len(lats)
    if plan == "rounds":
        groups = [lats[first:first + limit] for first in range(0, count, limit)]
        return any(min(group) + 0.1 < max(group) for group in groups[:-1])
    size = math.ceil(count / limit)
    queues = [list(range(slot, count, limit)) if plan == "turn" else list(range(slot * size, min(count, (slot + 1) * size)))
              for slot in range(limit)]
    queues = [queue for queue in queues if queue]
    finish = [math.fsum(lats[i] for i in queue) for queue in queues]
    last_start = [end - lats[queue[-1]] for end, queue in zip(finish, queues)]
    return any(finish[a] + 0.1 < last_start[b] for a in range(len(queues)) for b in range(len(queues)) if a != b)


def _check_translations(name: str, got: dict[str, Any], expected: dict[str, str], *, fallback: str | None,
                        retried: Sequence[str], lab: Lab) -> None:
    """Every language filed with its own translation, the ``fallback`` one with :data:`FALLBACK`."""
    skipped = _skipped_step(lab)
    found = got.get("translations")
    if not isinstance(found, dict):
        what = "no 'translations' key" if found is None else f"a {_type(found)} under 'translations'"
        raise Fail(f"after {name} ran, shared had {what}. Store a dict from each language to its "
                   f"translation as shared['translations'] in post_async (zip prep_res with exec_res_list).")
    missing = [lang for lang in expected if lang not in found]
    if missing:
        raise Fail(f"shared['translations'] has no entry for {plural(len(missing), 'language')} "
                   f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}) of the {len(expected)} asked "
                   f"for. Every language in shared['languages'] needs its translation.")
    extra = [lang for lang in found if lang not in expected]
    if extra:
        raise Fail(f"shared['translations'] has an entry for {clip(extra[0], 40)}, which is not one of the languages "
                   f"asked for: file each translation under its own language, and nothing else.")
    errors = [lang for lang in expected if isinstance(found[lang], Foreign) and found[lang].is_exception]
    if errors:
        lang = errors[0]
        raise Fail(f"shared['translations'][{lang!r}] held an exception, {found[lang].type_name}: "
                   f"{found[lang].message}, instead of a translation. asyncio.gather(..., return_exceptions=True) hands "
                   f"errors back as if they were results; PocketFlow's own per-item step (AsyncNode._exec) would have "
                   f"retried the call (max_retries={RETRIES} was set) and then called exec_fallback_async. " + skipped)
    if fallback is not None and found[fallback] != FALLBACK:
        raise Fail(f"every attempt at the call for {fallback} fails, so after max_retries={RETRIES} attempts "
                   f"PocketFlow calls exec_fallback_async, which the check set to return {FALLBACK!r}; but "
                   f"shared['translations'][{fallback!r}] held {clip(found[fallback])}: the fallback was skipped. "
                   + skipped)
    wrong = [lang for lang in expected if found[lang] != expected[lang]]
    if wrong:
        lang = wrong[0]
        if lang in retried:
            raise Fail(f"the call for {lang} failed once and should have been retried (max_retries={RETRIES}), "
                       f"so shared['translations'][{lang!r}] should hold {clip(expected[lang])}, but it held "
                       f"{clip(found[lang])}. " + skipped)
        raise Fail(f"shared['translations'][{lang!r}] should be the service's answer to 'Translate to {lang}: "
                   f"<text>', {clip(expected[lang])}, but it held {clip(found[lang])}. Pair each language "
                   f"with its own result: zip(prep_res, exec_res_list) in post_async keeps them together.")


def _check_limit(name: str, lab: Lab, every: Calls, spec: dict[str, Any], others: list[dict[str, Any]], wait: float,
                 finished: float | None, *, equal: bool, seconds: dict[str, float], earlier: set[int]) -> None:
    limit, prompts = spec["limit"], spec["prompts"]
    count = len(prompts)
    mine = Calls(call for call in every.all if call.prompt in set(prompts))
    theirs = Calls(call for call in every.all if call.prompt not in set(prompts))
    peak = mine.peak()
    side_by_side = (f" (while another node with C = {', '.join(str(o['limit']) for o in others)} ran in the same "
                    f"event loop)" if others else "")
    if peak > limit:
        raise Fail(f"at most C = {limit} calls may be in flight at once, but the node built with "
                   f"max_concurrency={limit} had {peak} of its {count} calls in flight at the same time{side_by_side}. "
                   + _too_many(lab, peak, limit, count, others, earlier))
    idle = mine.idle(prompts, limit, wait)
    end = mine.last_end()
    if idle is None and finished is not None and abs(finished - end) <= TOLERANCE:
        return
    if idle is None:
        raise Fail(f"the node built with max_concurrency={limit} made every call on time, but its flow ended at "
                   f"{sec(finished or 0.0)}, after its last call had ended at {sec(end)}: something after the calls "
                   f"kept it waiting.")
    # Nodes with a limit each have up to the sum in flight; one gate between them, at most the largest.
    shared_gate = bool(others) and every.peak() <= max([limit, *(o["limit"] for o in others)])
    took = ""
    if equal and count:
        latency = seconds[prompts[0]]
        best = math.ceil(count / limit) * latency
        if abs((finished or end) - best) > TOLERANCE:
            took = (f"; the {count} translations took {sec(finished or end)} instead of ceil({count} / {limit}) x "
                    f"{sec(latency)} = {sec(best)}")
    stretch = (f"from {sec(idle.start)} to {sec(idle.end)} only {idle.busy} of its {limit} slots were busy while "
               f"{plural(idle.ready, 'language')} waited{took}")
    if shared_gate:
        raise Fail(f"{stretch}: the node built with max_concurrency={limit} and the other one{side_by_side} never had "
                   f"more calls in flight together than one of them may have alone, so they shared one limit. Two "
                   f"nodes with their own C need a semaphore each: a class attribute, a semaphore made at module "
                   f"level, or one cached by size is shared by every node. Create it per run, in prep_async, from "
                   f"self.max_concurrency.")
    if peak <= 1:
        raise Fail(f"{name} never had more than {peak} of the allowed C = {limit} calls in flight: {stretch}. With one "
                   f"call at a time, is the base class still AsyncBatchNode, or does the semaphore hold a single "
                   f"slot?")
    if peak < limit:
        raise Fail(f"{name} never had more than {peak} of the allowed C = {limit} calls in flight: {stretch}. Build "
                   f"the semaphore from self.max_concurrency, not from a fixed number, and do not deal the items to "
                   f"the slots in advance (C workers with a queue each, or a block each): the next item must go to "
                   f"whichever slot frees up first.")
    raise Fail(f"{name} kept to C = {limit} calls in flight (good), but {stretch}. A semaphore lets the next item "
               f"start the moment any call ends: do not wait for a whole group of C to finish, do not deal the items "
               f"to the slots in advance, and hold the semaphore only around the call itself.")


def _too_many(lab: Lab, peak: int, limit: int, count: int, others: list[dict[str, Any]], earlier: set[int]) -> str:
    if peak in {o["limit"] for o in others} | earlier:
        whose = "the other node's" if peak in {o["limit"] for o in others} else "an earlier round's"
        return (f"It reached {whose} limit, {peak}: the nodes shared one semaphore (a class attribute, one made at "
                f"module level, or one cached), made with another node's C. Each node needs its own: create it per "
                f"run, in prep_async, from self.max_concurrency.")
    if peak < count:
        return (f"Your node does limit, but to {peak}, not to the C it was given: build the semaphore from "
                f"self.max_concurrency rather than from a fixed number.")
    if "run_async" in lab.facts["overrides"]:
        return ("Your class overrides run_async. Inside an AsyncFlow PocketFlow never calls a node's run_async: it "
                "calls _run_async, so a limit set up in run_async is skipped (the chapter's RateLimitedParallelNode "
                "has exactly this bug). Put the semaphore around each item's work instead: create it once per run "
                "in prep_async and use 'async with' in exec_async.")
    return ("Every item must pass through one and the same semaphore of size C: a semaphore created inside "
            "exec_async is a new gate for each item and limits nothing. Create it once per run (in prep_async, "
            "from self.max_concurrency) and use 'async with' in exec_async.")


EXERCISE_1 = Check("Exercise 1", _summarizer)
EXERCISE_2 = Check("Exercise 2", _translator)
