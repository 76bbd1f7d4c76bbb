"""Check for exercise 4: fix the shared-store race in a parallel batch flow, and stay parallel.

The student's ``build_flow()`` returns a parallel batch flow that summarizes each document and
translates the summary into French. The check runs it with :func:`~pocket_parallel.check_races`
watching the shared store (two sub-flows running at the same time must never write the same
top-level key), checks every document's result, and measures the makespan: a fix that makes the
sub-flows take turns (``AsyncBatchFlow``, a lock) is no fix.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from pocketflow import AsyncFlow

from ..races import Race, check_races_async
from ._feedback import CheckResult, Fail, build, clip, run_check, run_student, sec
from ._service import CheckLLM, documents_with_distinct_summaries, latencies, names

_TOLERANCE = 1e-6


def check_safe_flow(build_flow: Callable[[], Any], *, seed: int | None = None) -> CheckResult:
    """Exercise 4: check a function that builds the race-free document flow.

    ``build_flow()`` must return a PocketFlow parallel batch flow that, given
    ``shared["documents"] = {doc_id: text}``, fills ``shared["results"][doc_id] =
    {"summary": ..., "french": ...}`` with ``call_llm_async(f"Summarize: {text}")`` and
    ``call_llm_async(f"Translate to French: {summary}")``. It runs on two fresh batches in
    virtual time: no two concurrent sub-flows may write the same top-level key of ``shared``,
    every result must belong to its document, and the batch must take as long as its longest
    chain, no more.
    """
    if not callable(build_flow) or isinstance(build_flow, type):
        raise TypeError(f"build_flow must be a function that returns a new flow, such as build_safe_flow; "
                        f"got {type(build_flow).__name__ if not isinstance(build_flow, type) else 'the class ' + build_flow.__name__}")
    return run_check("Exercise 4", lambda rng: _flow(build_flow, rng), seed, build_flow)


def _flow(build_flow: Callable[[], Any], rng: random.Random) -> str:
    name = getattr(build_flow, "__name__", "build_flow")
    for _ in range(2):
        count = rng.randint(3, 6)
        ids, texts = names(rng, count), documents_with_distinct_summaries(rng, count)
        probe = CheckLLM()
        summaries = [probe.answer_for(f"Summarize: {text}") for text in texts]
        frenches = [probe.answer_for(f"Translate to French: {summary}") for summary in summaries]
        first, second = latencies(rng, count, 0.5, 3.0, 0.5), latencies(rng, count, 0.5, 3.0, 0.5)
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
        wrong = _wrong_results(shared, dict(zip(ids, zip(summaries, frenches))))
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
                how = "longer than the longest chain, so some sub-flows waited for others"
            raise Fail(f"every document got the right result and no race was seen, but {count} documents took "
                       f"{sec(elapsed)}, {how}. All at once they take {sec(longest)}, the longest summarize-then-"
                       f"translate chain. Keep AsyncParallelBatchFlow and fix the keys instead: per-item keys "
                       f"cost nothing.")
    return ("the flow ran two fresh batches of documents on the virtual clock while a race detector watched "
            "the shared store. No two sub-flows running at the same time wrote the same key, every document "
            "got its own summary and the French translation of that summary, and each batch took exactly as "
            "long as its longest summarize-then-translate chain: the fix cost no speed at all.")


def _wrong_results(shared: dict[str, Any], expected: dict[str, tuple[str, str]]) -> list[str]:
    """One sentence per problem with shared['results'] (empty when every document is right)."""
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
            problems.append(f"shared['results'][{doc_id!r}] should be {{'summary': {clip(summary, 40)}, 'french': "
                            f"{clip(french, 40)}}}, but it was {clip(entry, 90)}: that document was filed with "
                            f"another document's data, or in another shape.")
    extra = [key for key in results if key not in expected]
    if extra:
        problems.append(f"shared['results'] has entries for ids that are not documents: {extra[:3]}.")
    return problems


def _race_message(race: Race, wrong: list[str], count: int) -> str:
    first, second = race.first, race.second
    if race.kind == "read":
        what = (f"the sub-flow for {second} read back shared[{race.key!r}] after an await and got the value "
                f"the sub-flow for {first} had written there")
    else:
        what = (f"two sub-flows running at the same time both wrote shared[{race.key!r}] (the one for "
                f"{first} and the one for {second}), so whichever reads it back after an await may get the "
                f"other's value")
    damage = (f" In this run it went wrong for {len(wrong)} of the {count} documents."
              if wrong else " This run happened to come out right, but the next one may not.")
    return (f"{what}.{damage} All sub-flows share one shared dict. Hint: file everything a sub-flow writes "
            f"under a key of its own, built from self.params (e.g. shared['summaries'][self.params['doc_id']]), "
            f"and create those dicts once, before the sub-flows start, in the batch flow's prep_async.")
