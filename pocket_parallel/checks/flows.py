"""Check for exercise 4: fix the shared-store race in a parallel batch flow, and stay parallel.

The student's ``build_flow()`` returns a parallel batch flow that summarizes each document and
translates the summary into French. The check runs it with :func:`~pocket_parallel.check_races`
watching the shared store (two sub-flows running at the same time must never write the same
place: a top-level key, or a value inside one, such as ``shared['scratch']['summary']``),
checks every document's result, and measures the makespan: a fix that makes the sub-flows take
turns (``AsyncBatchFlow``, a lock, a limit on the flow) is no fix.

The latencies are drawn so that each kind of wrong answer shows on every workload:

- every summarize-then-translate chain is longer than half the longest, so any two sub-flows
  that take turns end later than the longest chain;
- the summaries are ready at distinct times, and while each document's translation is in flight
  (but the last one's) another document's summary arrives, so a summary kept in any one place
  all sub-flows share (even outside ``shared``: a global, a class attribute) is overwritten;
- the second batch has 6 to 8 documents, more than any small limit on the flow lets run at once.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from pocketflow import AsyncFlow

from ..races import Race, check_races_async, describe_path
from ._feedback import CheckResult, Fail, build, clip, run_check, run_student, sec
from ._service import CheckLLM, documents_with_distinct_summaries, names

_TOLERANCE = 1e-6


def check_safe_flow(build_flow: Callable[[], Any], *, seed: int | None = None) -> CheckResult:
    """Exercise 4: check a function that builds the race-free document flow.

    ``build_flow()`` must return a PocketFlow parallel batch flow that, given
    ``shared["documents"] = {doc_id: text}``, fills ``shared["results"][doc_id] =
    {"summary": ..., "french": ...}`` with ``call_llm_async(f"Summarize: {text}")`` and
    ``call_llm_async(f"Translate to French: {summary}")``. It runs on two fresh batches (3 to
    5, then 6 to 8 documents) in virtual time: no two concurrent sub-flows may write the same
    place in ``shared`` (a top-level key, or a value inside one), every result must belong to
    its document, and the batch must take as long as its longest chain, no more.
    """
    if not callable(build_flow) or isinstance(build_flow, type):
        raise TypeError(f"build_flow must be a function that returns a new flow, such as build_safe_flow; "
                        f"got {type(build_flow).__name__ if not isinstance(build_flow, type) else 'the class ' + build_flow.__name__}")
    return run_check("Exercise 4", lambda rng: _flow(build_flow, rng), seed, build_flow)


def _flow(build_flow: Callable[[], Any], rng: random.Random) -> str:
    name = getattr(build_flow, "__name__", "build_flow")
    for low, high in ((3, 5), (6, 8)):
        count = rng.randint(low, high)
        ids, texts = names(rng, count), documents_with_distinct_summaries(rng, count)
        probe = CheckLLM()
        summaries = [probe.answer_for(f"Summarize: {text}") for text in texts]
        frenches = [probe.answer_for(f"Translate to French: {summary}") for summary in summaries]
        first, second = _chain_latencies(rng, count)
        script = {f"Summarize: {t}": a for t, a in zip(texts, first)}
        script.update({f"Translate to French: {s}": b for s, b in zip(summaries, second)})
        llm = CheckLLM(latencies=script, latency=1.0, jitter=0.5, seed=rng.randrange(2**31))
        flow = build(build_flow, name)
        if not isinstance(flow, AsyncFlow):
            raise Fail(f"{name}() returned {clip(flow)}, not a PocketFlow flow. It should return the whole "
                       f"parallel batch flow (an AsyncParallelBatchFlow whose start is the summarize node), "
                       f"built fresh on each call.")
        shared: dict[str, Any] = {"documents": dict(zip(ids, texts))}
        chains = [a + b for a, b in zip(first, second)]
        races, elapsed = run_student(check_races_async(flow, shared), f"the flow from {name}()",
                                     f"processing {count} documents", llm=llm, guard=60 + 10 * sum(chains))
        wrong = _wrong_results(shared, dict(zip(ids, zip(summaries, frenches))), dict(zip(summaries, ids)))
        if races:
            raise Fail(_race_message(races[0], wrong, count))
        if wrong:
            raise Fail(wrong[0])
        longest, total = max(chains), math.fsum(chains)
        if abs(elapsed - longest) > _TOLERANCE:
            if abs(elapsed - total) <= _TOLERANCE:
                how = (f"the sum of the {count} documents' chains: the sub-flows ran one after another "
                       f"(an AsyncBatchFlow, or a lock held across a whole sub-flow, does that)")
            else:
                how = ("longer than the longest chain, so some sub-flows waited for others (a limit on the "
                       "flow, such as max_concurrency, or a lock held across a step, does that)")
            raise Fail(f"every document got the right result and no race was seen, but {count} documents took "
                       f"{sec(elapsed)}, {how}. All at once they take {sec(longest)}, the longest summarize-then-"
                       f"translate chain. Keep AsyncParallelBatchFlow and fix the keys instead: per-item keys "
                       f"cost nothing.")
    return ("the flow ran two fresh batches of documents on the virtual clock while a race detector watched "
            "the shared store. No two sub-flows running at the same time wrote the same place in it, every document "
            "got its own summary and the French translation of that summary, and each batch took exactly as "
            "long as its longest summarize-then-translate chain: the fix cost no speed at all.")


def _chain_latencies(rng: random.Random, count: int) -> tuple[list[float], list[float]]:
    """Summarize and translate latencies for ``count`` documents, drawn as the module's notes say."""
    while True:
        first = rng.sample(_SUMMARIZE_SECONDS, count)  # distinct: the summaries are ready at distinct times
        second = [rng.choice(_TRANSLATE_SECONDS) for _ in range(count)]
        chains = [a + b for a, b in zip(first, second)]
        if 2 * min(chains) <= max(chains) + _TOLERANCE:
            continue
        last = max(first)
        if all(any(a < other < a + b for other in first) for a, b in zip(first, second) if a != last):
            return first, second


_SUMMARIZE_SECONDS = [0.5 + 0.25 * step for step in range(11)]  # 0.5 s to 3 s
_TRANSLATE_SECONDS = [1.0 + 0.25 * step for step in range(9)]  # 1 s to 3 s


def _wrong_results(shared: dict[str, Any], expected: dict[str, tuple[str, str]], owner: dict[str, str]) -> list[str]:
    """One sentence per problem with shared['results'] (empty when every document is right).

    ``owner`` maps each summary to the id of its document, to say whose summary a document got.
    """
    results = shared.get("results")
    if not isinstance(results, dict):
        what = "no 'results' key" if results is None else f"a {type(results).__name__} under 'results'"
        return [f"after the flow ran, shared had {what}. shared['results'] should map every document id to "
                f"{{'summary': ..., 'french': ...}}; create it once in the batch flow's prep_async."]
    problems = []
    for doc_id, (summary, french) in expected.items():
        entry = results.get(doc_id)
        if entry is None:
            problems.append(f"shared['results'] has no entry for document {doc_id!r}. Every document in "
                            f"shared['documents'] needs one, filed under its own id (self.params['doc_id']).")
        elif not isinstance(entry, dict) or entry.get("summary") != summary or entry.get("french") != french:
            got = entry.get("summary") if isinstance(entry, dict) else None
            other = owner.get(got) if isinstance(got, str) else None
            whose = (f" It holds the summary of document {other!r}: the summary was kept in one place that every "
                     f"sub-flow shares (a fixed key of shared or of a dict inside it, a global variable, a class "
                     f"attribute), and another sub-flow overwrote it while this one waited for its translation. "
                     f"Keep each document's summary under a key of its own, built from self.params['doc_id']."
                     if other not in (None, doc_id) else "")
            problems.append(f"shared['results'][{doc_id!r}] should be {{'summary': {clip(summary, 40)}, 'french': "
                            f"{clip(french, 40)}}}, but it was {clip(entry, 90)}: that document was filed with "
                            f"another document's data, or in another shape.{whose}")
    extra = [key for key in results if key not in expected]
    if extra:
        problems.append(f"shared['results'] has entries for ids that are not documents: {extra[:3]}.")
    return problems


def _race_message(race: Race, wrong: list[str], count: int) -> str:
    first, second = race.first, race.second
    if race.kind == "read":
        what = (f"the sub-flow for {second} read back {race.where} after an await and got the value "
                f"the sub-flow for {first} had written there")
    else:
        what = (f"two sub-flows running at the same time both wrote {race.where} (the one for "
                f"{first} and the one for {second}), so whichever reads it back after an await may get the "
                f"other's value")
    damage = (f" In this run it went wrong for {len(wrong)} of the {count} documents."
              if wrong else " This run happened to come out right, but the next one may not.")
    inside = (f" A fixed key inside a container is as shared as a top-level key: {describe_path(race.path[:-1])} "
              f"is one and the same object for every sub-flow." if len(race.path) > 1 else "")
    return (f"{what}.{damage} All sub-flows share one shared dict, and everything in it.{inside} Hint: file "
            f"everything a sub-flow writes under a key of its own, built from self.params (e.g. "
            f"shared['summaries'][self.params['doc_id']]), and create those dicts once, before the sub-flows "
            f"start, in the batch flow's prep_async.")
