"""Check for exercise 4: fix the shared-store race in a parallel batch flow, and stay parallel.

The student's ``build_flow()`` returns a parallel batch flow that summarizes each document and
translates the summary into French. The check runs it in its subprocess (:mod:`._sandbox`) and
judges what happened by behaviour, and by the race detector as well:

- every document must end with its own summary and the French translation of that summary,
  and ``shared['documents']`` must end as it began;
- the service fails some calls once, and the check sets ``max_retries`` and ``wait`` on every
  node of the flow: only calls made in a node's per-item step (``exec_async``) are retried;
- in some rounds a random delay is injected before and after every step of every node (schedule
  fuzzing), with a long pause after each step, so that every sub-flow finishes a step before any
  starts its next; and two flows run at once in one event loop, with the same document ids and
  other texts: whatever all sub-flows share, in ``shared`` or not (a global, a default argument,
  a plain object, a node's attribute, a class attribute), mixes documents up there;
- in the other rounds the race detector (:func:`~pocket_parallel.check_races`) watches the
  shared store, and the batch must take exactly as long as its longest summarize-then-translate
  chain: a fix that makes the sub-flows take turns (``AsyncBatchFlow``, a lock, a limit on the
  flow, even one above a few dozen) is no fix.

The latencies are drawn so that each kind of wrong answer shows on every workload: every chain
is longer than half the longest, so any two sub-flows that take turns end later than the
longest chain; the summaries are ready at distinct times, and while each document's
translation is in flight (but the last one's) another document's summary arrives.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable, Iterator
from typing import Any

from pocketflow import AsyncFlow, AsyncNode, BaseNode, Flow

from ..races import check_races_async, describe_path
from ._calls import Origins
from ._feedback import Check, CheckResult, Fail, Lab, Raised, clip, plural, raise_for_build, raise_for_run, sec
from ._portable import from_portable, to_portable
from ._running import BuildFailed, build_answer, run_answer
from ._sandbox import experiment
from ._service import CheckLLM, documents_with_distinct_summaries, names, uneven
from ._trace import TOLERANCE, Calls, check_calls

#: The ``max_retries`` the check sets on every node of the flow.
RETRIES = 3
#: Seconds of the pause after every step in the rounds with delays: longer than the spread of the
#: moments at which the sub-flows finish any one step, retries included, so that each step of every
#: sub-flow ends before any sub-flow starts its next (a value kept in one place is overwritten then).
_PHASE = 8.0


def check_safe_flow(build_flow: Callable[[], Any], *, seed: int | None = None) -> CheckResult:
    """Exercise 4: check a function that builds the race-free document flow.

    ``build_flow()`` must return a PocketFlow parallel batch flow that, given
    ``shared["documents"] = {doc_id: text}``, fills ``shared["results"][doc_id] =
    {"summary": ..., "french": ...}`` with ``call_llm_async(f"Summarize: {text}")`` and
    ``call_llm_async(f"Translate to French: {summary}")``, and leaves ``shared["documents"]`` as
    it was. It runs on fresh batches of 0 to 60 documents in virtual time, some with random
    delays at every step, some with two flows at once, with some calls failing once and
    ``max_retries`` and ``wait`` set on every node: every result must belong to its document, no
    two concurrent sub-flows may write the same place in ``shared``, and a batch without delays
    must take exactly as long as its longest chain.
    """
    if not callable(build_flow) or isinstance(build_flow, type):
        raise TypeError(f"build_flow must be a function that returns a new flow, such as build_safe_flow; "
                        f"got {type(build_flow).__name__ if not isinstance(build_flow, type) else 'the class ' + build_flow.__name__}")
    return EXERCISE_4(build_flow, seed)


# -- in the subprocess: running the flows -----------------------------------------------------------


def _nodes(flow: BaseNode) -> Iterator[BaseNode]:
    """Every node reachable in ``flow``: its start, their successors, and the nodes of nested flows."""
    seen: set[int] = set()
    pending = [getattr(flow, "start_node", None)]
    while pending:
        node = pending.pop()
        if not isinstance(node, BaseNode) or id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        pending.extend(node.successors.values())
        if isinstance(node, Flow):
            pending.append(node.start_node)


_FUZZED: dict[type, type] = {}


def _fuzzed(kind: type, pause: Callable[[bool], Any]) -> type:
    """A subclass of ``kind`` that waits ``await pause(False)`` before each of its steps and
    ``await pause(True)`` after each."""
    if kind not in _FUZZED:
        class Fuzzed(kind):
            async def prep_async(self, shared: Any) -> Any:
                await pause(False)
                result = await super().prep_async(shared)
                await pause(True)
                return result

            async def exec_async(self, prep_res: Any) -> Any:
                await pause(False)
                result = await super().exec_async(prep_res)
                await pause(True)
                return result

            async def post_async(self, shared: Any, prep_res: Any, exec_res: Any) -> Any:
                await pause(False)
                result = await super().post_async(shared, prep_res, exec_res)
                await pause(True)
                return result

        Fuzzed.__name__, Fuzzed.__qualname__, Fuzzed.__module__ = kind.__name__, kind.__qualname__, kind.__module__
        _FUZZED[kind] = Fuzzed
    return _FUZZED[kind]


@experiment("exercise 4")
def _run_flows(build_flow: Any, workload: dict[str, Any]) -> dict[str, Any]:
    origins = Origins()
    llm = CheckLLM(latencies=workload["latencies"], origins=origins, latency=1.0, jitter=0.5, seed=workload["seed"])
    llm.flaky.update(workload["flaky"])
    fuzz = workload["fuzz"]
    rng = random.Random(fuzz["seed"] if fuzz else 0)

    async def pause(after: bool) -> None:
        # A random delay, and after each step a long one: every sub-flow's step ends before any starts its next.
        await asyncio.sleep(round(rng.uniform(0.0, fuzz["most"]) + (fuzz["after"] if after else 0.0), 6))

    _FUZZED.clear()
    flows = []
    for _ in workload["flows"]:
        try:
            flow = build_answer(build_flow)
        except BuildFailed as failed:
            return {"build": failed.info}
        if not isinstance(flow, AsyncFlow):
            return {"not_a_flow": to_portable(flow)}
        for node in _nodes(flow):
            if isinstance(node, AsyncNode) and not isinstance(node, Flow):
                node.max_retries, node.wait = workload["max_retries"], workload["wait"]
                if fuzz:
                    try:
                        node.__class__ = _fuzzed(type(node), pause)
                    except TypeError:  # a class with __slots__ of its own: it runs without the delays
                        pass
        flows.append(flow)
    stores = [{"documents": dict(spec["documents"])} for spec in workload["flows"]]
    originals = [dict(spec["documents"]) for spec in workload["flows"]]
    given = [store["documents"] for store in stores]
    races: list[Any] = []
    finished: list[float | None] = [None] * len(flows)

    async def one(index: int) -> None:
        if workload["races"]:
            races.extend(await check_races_async(flows[index], stores[index]))
        else:
            await flows[index].run_async(stores[index])
        finished[index] = asyncio.get_running_loop().time()

    async def together() -> None:
        await asyncio.gather(*(one(index) for index in range(len(flows))))

    _, report = run_answer(together, llm=llm, origins=origins, guard=workload["guard"])
    return {"run": report, "calls": llm.calls(), "blocking": llm.blocking_calls, "finished": finished,
            "shared": [to_portable({k: v for k, v in store.items() if k != "documents"}) for store in stores],
            "documents": [to_portable(store.get("documents")) for store in stores],
            "input_changed": [given[i] != originals[i] for i in range(len(flows))],
            "races": [{"kind": race.kind, "where": race.where, "first": to_portable(race.first),
                       "second": to_portable(race.second),
                       "container": describe_path(race.path[:-1]) if len(race.path) > 1 else None} for race in races]}


# -- the check's side --------------------------------------------------------------------------------


def _flow(rng: random.Random, lab: Lab) -> str:
    name = lab.name
    rounds = [(rng.randint(3, 6), 1, False), (rng.randint(4, 8), 2, True), (rng.randint(40, 60), 1, False),
              (rng.randint(8, 15), 1, True), (0, 1, False)]
    for count, flows, fuzz in rounds:
        _flow_round(lab, name, rng, count, flows, fuzz)
    return ("the flow ran five fresh batches of documents on the virtual clock, from none to 60, while some calls "
            "failed once: two with random delays at every step of every node, one of those with two flows at once, "
            "and the others with a race detector watching the shared store. Every document got its own summary and "
            "the French translation of that summary, shared['documents'] ended as it began, no two sub-flows "
            "running at the same time wrote the same place, failed calls were retried by each node's own step, and "
            "each batch without delays took exactly as long as its longest summarize-then-translate chain: the fix "
            "cost no speed at all.")


def _flow_round(lab: Lab, name: str, rng: random.Random, count: int, flows: int, fuzz: bool) -> None:
    ids = names(rng, count)
    probe = CheckLLM()
    specs: list[dict[str, Any]] = []
    latencies: dict[str, float] = {}
    for _ in range(flows):  # the same ids, other texts
        texts = documents_with_distinct_summaries(rng, count)
        summaries = [probe.answer_for(f"Summarize: {text}") for text in texts]
        frenches = [probe.answer_for(f"Translate to French: {summary}") for summary in summaries]
        first, second = _chain_latencies(rng, count)
        latencies.update({f"Summarize: {t}": a for t, a in zip(texts, first)})
        latencies.update({f"Translate to French: {s}": b for s, b in zip(summaries, second)})
        specs.append({"ids": ids, "texts": texts, "summaries": summaries, "frenches": frenches})
    prompts = list(latencies)
    flaky = dict.fromkeys(rng.sample(prompts, min(len(prompts), max(1, len(prompts) // 8))) if prompts else [], 1)
    wait = round(rng.uniform(0.2, 0.8), 6)
    workload = {"flows": [{"documents": dict(zip(spec["ids"], spec["texts"]))} for spec in specs],
                "latencies": latencies, "flaky": flaky, "max_retries": RETRIES, "wait": wait,
                "seed": rng.randrange(2**31), "fuzz": {"seed": rng.randrange(2**31), "most": 0.4, "after": _PHASE} if fuzz else None,
                "races": not fuzz and count <= 10,
                "guard": 60 + 10 * RETRIES * (sum(latencies.values()) + wait)}
    doing = (f"processing {plural(count, 'document')}" + (" in each of two flows at once" if flows > 1 else "")
             + (", with random delays at every step" if fuzz else ""))
    seen = lab.run("exercise 4", workload, doing=doing)
    who = f"the flow from {name}()"
    if "build" in seen:
        raise_for_build(Raised.of(seen["build"]), name, "")
    if "not_a_flow" in seen:
        raise Fail(f"{name}() returned {clip(from_portable(seen['not_a_flow']))}, not a PocketFlow flow. It should "
                   f"return the whole parallel batch flow (an AsyncParallelBatchFlow whose start is the summarize "
                   f"node), built fresh on each call.")
    calls = Calls.of(seen["calls"])
    raise_for_run(seen["run"], who, doing, advice=_retry_advice(calls), blocking_calls=seen["blocking"])
    races = seen["races"]
    for index, spec in enumerate(specs):
        shared = from_portable(seen["shared"][index])
        expected = dict(zip(spec["ids"], zip(spec["summaries"], spec["frenches"])))
        owner = {summary: doc_id for s in specs for doc_id, summary in zip(s["ids"], s["summaries"])}
        wrong = _wrong_results(shared, expected, owner, others=flows > 1)
        if races:
            raise Fail(_race_message(races[0], wrong, count))
        if wrong:
            raise Fail(wrong[0] + (" (Two flows ran at once, with the same document ids and other texts: whatever "
                                   "all sub-flows share outside shared is shared by both flows too.)" if flows > 1 else ""))
        if seen["input_changed"][index] or from_portable(seen["documents"][index]) != dict(zip(spec["ids"], spec["texts"])):
            raise Fail(f"every document got the right result, but shared['documents'] did not end as it began: the "
                       f"flow changed its input (it overwrote, replaced or emptied the dict of documents). The "
                       f"documents are the caller's: read them, and keep what the flow produces under keys of its own.")
    check_calls(who, calls, {p: flaky.get(p, 0) + 1 for p in prompts}, item=_item_name(specs),
                prompt_form="f\"Summarize: {text}\" and f\"Translate to French: {summary}\"", max_retries=RETRIES,
                wait=wait)
    if not fuzz:
        _check_speed(name, seen, specs, latencies, flaky, wait, count)


def _item_name(specs: list[dict[str, Any]]) -> Callable[[str], str]:
    names_of: dict[str, str] = {}
    for spec in specs:
        for doc_id, text, summary in zip(spec["ids"], spec["texts"], spec["summaries"]):
            names_of[f"Summarize: {text}"] = f"the summary of document {doc_id!r}"
            names_of[f"Translate to French: {summary}"] = f"the translation of document {doc_id!r}"
    return lambda prompt: names_of.get(prompt, f"the call {clip(prompt, 40)}")


def _retry_advice(calls: Calls) -> Callable[[Raised], str]:
    def advice(error: Raised) -> str:
        if error.is_a("KeyError"):
            return ("A key was missing that the flow expected to be there. With sub-flows running at once, look for "
                    "a sub-flow that replaces a dict the others file into (shared['summaries'] = {} in a node: create "
                    "it once, in the batch flow's prep_async), or one that reads a key before it is written.")
        if not error.is_a("TransientLLMError"):
            return "Read the error, fix the line it points to, and run the check again."
        outside = [call for call in calls.all if call.failed and not call.step]
        where_ = (f"The call that failed was made from {outside[0].made_in}, outside PocketFlow's per-item step, so "
                  f"nothing retried it: make each node's call in its exec_async." if outside else
                  "Let an error from call_llm_async leave exec_async: PocketFlow's step retries it.")
        return (f"In this batch a few calls fail once, and the check set max_retries={RETRIES} and a wait on every node "
                f"of the flow, as any PocketFlow node may have them: PocketFlow retries exec_async. {where_}")
    return advice


def _check_speed(name: str, seen: dict[str, Any], specs: list[dict[str, Any]], latencies: dict[str, float],
                 flaky: dict[str, int], wait: float, count: int) -> None:
    """The batch must end with its longest chain of attempts, every sub-flow starting at 0 s."""
    if not count:
        return

    def chain(prompt: str) -> float:
        failures = flaky.get(prompt, 0)
        return (failures + 1) * latencies[prompt] + failures * wait

    chains = [chain(f"Summarize: {t}") + chain(f"Translate to French: {s}")
              for spec in specs for t, s in zip(spec["texts"], spec["summaries"])]
    longest, total = max(chains), math.fsum(chains)
    elapsed = max(t for t in seen["finished"] if t is not None)
    if abs(elapsed - longest) <= TOLERANCE:
        return
    if abs(elapsed - total) <= TOLERANCE:
        how = (f"the sum of the {count} documents' chains: the sub-flows ran one after another "
               f"(an AsyncBatchFlow, or a lock held across a whole sub-flow, does that)")
    else:
        how = ("longer than the longest chain, so some sub-flows waited for others (a limit on the flow, such as "
               "max_concurrency, even a large one, or a lock held across a step, does that)")
    raise Fail(f"every document got the right result and no race was seen, but {count} documents took {sec(elapsed)}, "
               f"{how}. All at once they take {sec(longest)}, the longest summarize-then-translate chain (retries "
               f"included). Keep AsyncParallelBatchFlow and fix the keys instead: per-item keys cost nothing.")


def _chain_latencies(rng: random.Random, count: int) -> tuple[list[float], list[float]]:
    """Summarize and translate latencies for ``count`` documents, drawn as the module's notes say.

    From these ranges every chain (2.6 s to 4.8 s) is longer than half the longest, and every
    translation (1.4 s or more) outlasts the spread of the summaries (1.2 s), whatever the count.
    """
    if count < 2:
        return [round(rng.uniform(1.2, 2.4), 6) for _ in range(count)], [round(rng.uniform(1.4, 2.4), 6) for _ in range(count)]
    while True:
        first = uneven(rng, count, 1.2, 2.4)  # distinct: the summaries are ready at distinct times
        second = [round(rng.uniform(1.4, 2.4), 6) for _ in range(count)]
        chains = [a + b for a, b in zip(first, second)]
        if 2 * min(chains) <= max(chains) + TOLERANCE:
            continue
        last = max(first)
        if all(any(a < other < a + b for other in first) for a, b in zip(first, second) if a != last):
            return first, second




def _wrong_results(shared: dict[str, Any], expected: dict[str, tuple[str, str]], owner: dict[str, str], *,
                   others: bool = False) -> list[str]:
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
            whose = (f" It holds the summary of document {other!r}{' of the other flow' if other == doc_id else ''}: "
                     f"the summary was kept in one place that every sub-flow shares (a fixed key of shared or of a "
                     f"dict inside it, a global variable, a class attribute, a default argument, an attribute of a "
                     f"node or of an object all sub-flows use), and another sub-flow overwrote it while this one "
                     f"waited. Keep each document's summary under a key of its own, built from "
                     f"self.params['doc_id'], in shared."
                     if other is not None and (other != doc_id or (others and got != summary)) else "")
            problems.append(f"shared['results'][{doc_id!r}] should be {{'summary': {clip(summary, 40)}, 'french': "
                            f"{clip(french, 40)}}}, but it was {clip(entry, 90)}: that document was filed with "
                            f"another document's data, or in another shape.{whose}")
    extra = [key for key in results if key not in expected]
    if extra:
        problems.append(f"shared['results'] has entries for ids that are not documents: {extra[:3]}.")
    return problems


def _race_message(race: dict[str, Any], wrong: list[str], count: int) -> str:
    first, second = from_portable(race["first"]), from_portable(race["second"])
    if race["kind"] == "read":
        what = (f"the sub-flow for {second} read back {race['where']} after an await and got the value "
                f"the sub-flow for {first} had written there")
    else:
        what = (f"two sub-flows running at the same time both wrote {race['where']} (the one for "
                f"{first} and the one for {second}), so whichever reads it back after an await may get the "
                f"other's value")
    damage = (f" In this run it went wrong for {len(wrong)} of the {count} documents."
              if wrong else " This run happened to come out right, but the next one may not.")
    inside = (f" A fixed key inside a container is as shared as a top-level key: {race['container']} "
              f"is one and the same object for every sub-flow." if race["container"] else "")
    return (f"{what}.{damage} All sub-flows share one shared dict, and everything in it.{inside} Hint: file "
            f"everything a sub-flow writes under a key of its own, built from self.params (e.g. "
            f"shared['summaries'][self.params['doc_id']]), and create those dicts once, before the sub-flows "
            f"start, in the batch flow's prep_async.")


EXERCISE_4 = Check("Exercise 4", _flow)
