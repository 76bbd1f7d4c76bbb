"""check_races: it catches sub-flows overwriting one shared place (a key, or a value inside one), and
stays quiet for per-item places."""

from __future__ import annotations

import asyncio
import dataclasses
import types

import pytest
from pocketflow import AsyncBatchFlow, AsyncFlow, AsyncNode, AsyncParallelBatchFlow, AsyncParallelBatchNode

from pocket_parallel import BoundedParallelBatchFlow, SimulatedLLM, check_races, run
from pocket_parallel.races import Attribute, Member, Race, Races, RaceWatch, check_races_async

DOCS = ["alpha report", "beta memo", "gamma notes"]


def racy_flow(llm: SimulatedLLM, base=AsyncParallelBatchFlow, **settings):
    """The race in DESIGN.md: each sub-flow stores its text under shared["text"], awaits the LLM, reads it back."""

    class LoadText(AsyncNode):
        async def prep_async(self, shared):
            shared["text"] = f"full text of {self.params['doc']}"

    class Summarize(AsyncNode):
        async def prep_async(self, shared):
            return self.params["doc"]

        async def exec_async(self, doc):
            return await llm(f"Summarize: {doc}")  # an await: the other sub-flows run meanwhile

        async def post_async(self, shared, prep_res, exec_res):
            shared["summaries"][self.params["doc"]] = shared["text"]  # read back: whose text?

    class AllDocs(base):
        async def prep_async(self, shared):
            return [{"doc": d} for d in shared["docs"]]

    start = LoadText()
    start >> Summarize()
    return AllDocs(start=start, **settings)


def fixed_flow(llm: SimulatedLLM):
    """The fix: per-item keys taken from self.params."""

    class LoadText(AsyncNode):
        async def prep_async(self, shared):
            shared[f"text:{self.params['doc']}"] = f"full text of {self.params['doc']}"

    class Summarize(AsyncNode):
        async def exec_async(self, _):
            return await llm(f"Summarize: {self.params['doc']}")

        async def post_async(self, shared, prep_res, exec_res):
            shared["summaries"][self.params["doc"]] = shared[f"text:{self.params['doc']}"]

    class AllDocs(AsyncParallelBatchFlow):
        async def prep_async(self, shared):
            return [{"doc": d} for d in shared["docs"]]

    start = LoadText()
    start >> Summarize()
    return AllDocs(start=start)


def test_the_race_is_caught_with_the_key_and_both_sub_flows():
    llm = SimulatedLLM(latency=1.0, jitter=0.5, seed=1)
    shared = {"docs": DOCS, "summaries": {}}
    races = check_races(racy_flow(llm), shared)
    # The race really happened: every document got the text the last sub-flow stored.
    assert len(set(shared["summaries"].values())) == 1
    writes = [r for r in races if r.kind == "write"]
    assert {(r.first["doc"], r.second["doc"]) for r in writes} == {
        ("alpha report", "beta memo"), ("alpha report", "gamma notes"), ("beta memo", "gamma notes"),
    }
    assert all(r.key == "text" for r in races)
    reads = [r for r in races if r.kind == "read"]
    last = shared["text"].removeprefix("full text of ")
    assert {r.first["doc"] for r in reads} == {last}  # they read the last writer's value
    assert {r.second["doc"] for r in reads} == set(DOCS) - {last}
    message = str(writes[0])
    assert "shared['text']" in message and "{'doc': 'alpha report'}" in message and "{'doc': 'beta memo'}" in message


def test_the_fixed_flow_is_quiet_and_right():
    llm = SimulatedLLM(latency=1.0, jitter=0.5, seed=1)
    shared = {"docs": DOCS, "summaries": {}}
    assert check_races(fixed_flow(llm), shared) == []
    assert shared["summaries"] == {d: f"full text of {d}" for d in DOCS}


def test_sequential_sub_flows_never_race():
    llm = SimulatedLLM(latency=1.0)
    shared = {"docs": DOCS, "summaries": {}}
    assert check_races(racy_flow(llm, base=AsyncBatchFlow), shared) == []
    assert shared["summaries"] == {d: f"full text of {d}" for d in DOCS}


@pytest.mark.parametrize("limit, racing", [(1, False), (2, True), (None, True)])
def test_the_bounded_flow_races_only_when_sub_flows_overlap(limit, racing):
    llm = SimulatedLLM(latency=1.0)
    shared = {"docs": DOCS, "summaries": {}}
    races = check_races(racy_flow(llm, base=BoundedParallelBatchFlow, max_concurrency=limit), shared)
    assert bool(races) == racing


def test_the_check_works_inside_an_outer_flow_and_leaves_the_flow_as_it_was():
    llm = SimulatedLLM(latency=1.0)
    flow = racy_flow(llm)
    shared = {"docs": DOCS, "summaries": {}}
    assert check_races(flow, shared)
    assert "_orch_async" not in vars(flow)  # the hook is removed afterwards
    shared = {"docs": DOCS, "summaries": {}}
    from pocket_parallel import run

    run(AsyncFlow(start=flow).run_async(shared), clock="virtual")  # still runs normally
    assert len(shared["summaries"]) == 3


def test_race_watch_passes_everything_through_to_the_store():
    store = {"a": 1}
    watch = RaceWatch(store)
    watch["b"] = 2
    del watch["a"]
    assert store == {"b": 2} and dict(watch) == {"b": 2} and len(watch) == 1 and "b" in watch
    assert watch.setdefault("c", []) == [] and store["c"] == []
    assert watch.races == []  # no sub-flow is running: nothing to report
    assert str(Race("k", {"doc": 1}, {"doc": 2}, "read")) == "shared['k']: sub-flow {'doc': 2} read back the value written by sub-flow {'doc': 1}"


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="flow must be a PocketFlow AsyncFlow"):
        check_races("not a flow", {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="shared must be a dict"):
        check_races(fixed_flow(SimulatedLLM()), ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="clock"):
        check_races(fixed_flow(SimulatedLLM()), {}, clock="wall")  # type: ignore[arg-type]


# -- races through values inside the store --------------------------------------------------------


def flow_keeping(keep, find, setup, llm: SimulatedLLM, base=AsyncParallelBatchFlow):
    """Each sub-flow keeps its summary with ``keep(shared, doc, summary)`` and reads it back, after
    another await, with ``find(shared, doc)``; the parent runs ``setup(shared)`` first."""

    class Summarize(AsyncNode):
        async def exec_async(self, _):
            return await llm(f"Summarize: {self.params['doc']}")

        async def post_async(self, shared, prep_res, summary):
            keep(shared, self.params["doc"], summary)

    class Translate(AsyncNode):
        async def exec_async(self, _):
            return await llm(f"Translate to French: {self.params['doc']}")

        async def post_async(self, shared, prep_res, french):
            shared["summaries"][self.params["doc"]] = find(shared, self.params["doc"])

    class AllDocs(base):
        async def prep_async(self, shared):
            shared["summaries"] = {}
            setup(shared)
            return [{"doc": d} for d in shared["docs"]]

    start = Summarize()
    start >> Translate()
    return AllDocs(start=start)


@dataclasses.dataclass
class Scratch:
    summary: str = ""


NESTED = {
    "a key of a shared dict": (lambda sh, d, s: sh["scratch"].__setitem__("summary", s),
                               lambda sh, d: sh["scratch"]["summary"], lambda sh: sh.update(scratch={}),
                               "shared['scratch']['summary']"),
    "a slot of a shared list": (lambda sh, d, s: sh["scratch"].__setitem__(0, s), lambda sh, d: sh["scratch"][0],
                                lambda sh: sh.update(scratch=[None]), "shared['scratch'][0]"),
    "a shared list appended to": (lambda sh, d, s: sh["scratch"].append(s), lambda sh, d: sh["scratch"][-1],
                                  lambda sh: sh.update(scratch=[]), "shared['scratch']"),
    "a deeper dict": (lambda sh, d, s: sh["a"]["b"].__setitem__("c", s), lambda sh, d: sh["a"]["b"]["c"],
                      lambda sh: sh.update(a={"b": {}}), "shared['a']['b']['c']"),
    "an attribute of a namespace": (lambda sh, d, s: setattr(sh["scratch"], "summary", s),
                                    lambda sh, d: sh["scratch"].summary,
                                    lambda sh: sh.update(scratch=types.SimpleNamespace()), "shared['scratch'].summary"),
    "an attribute of a dataclass": (lambda sh, d, s: setattr(sh["scratch"], "summary", s),
                                    lambda sh, d: sh["scratch"].summary, lambda sh: sh.update(scratch=Scratch()),
                                    "shared['scratch'].summary"),
    "a dict inside a tuple": (lambda sh, d, s: sh["pair"][0].__setitem__("summary", s),
                              lambda sh, d: sh["pair"][0]["summary"], lambda sh: sh.update(pair=({}, {})),
                              "shared['pair'][0]['summary']"),
    # A change shows; a write that changes nothing (adding an element already there) does not.
    "an element of a shared set, toggled": (lambda sh, d, s: (sh["seen"].symmetric_difference_update({"busy"}),
                                                             sh["scratch"].__setitem__(d, s)),
                                            lambda sh, d: sh["scratch"][d],
                                            lambda sh: sh.update(seen=set(), scratch={}),
                                            "shared['seen'] (element 'busy')"),
}


@pytest.mark.parametrize("name", NESTED)
def test_races_inside_shared_values_are_caught_with_their_path(name):
    keep, find, setup, where = NESTED[name]
    llm = SimulatedLLM(latency=1.0, jitter=0.5, seed=1)
    races = check_races(flow_keeping(keep, find, setup, llm), {"docs": DOCS})
    assert races, f"no race found through {name}"
    assert {race.where for race in races} == {where}
    assert all(race.kind == "write" and race.key == race.path[0] and not race.within for race in races)
    assert {(r.first["doc"], r.second["doc"]) for r in races} <= {
        (a, b) for a in DOCS for b in DOCS if a != b}
    assert where in str(races[0])


SAFE = {
    "per-item keys of a shared dict": (lambda sh, d, s: sh["scratch"].__setitem__(d, s),
                                       lambda sh, d: sh["scratch"][d], lambda sh: sh.update(scratch={})),
    "per-item slots of a shared list": (lambda sh, d, s: sh["scratch"].__setitem__(DOCS.index(d), s),
                                        lambda sh, d: sh["scratch"][DOCS.index(d)],
                                        lambda sh: sh.update(scratch=[None] * len(DOCS))),
    "per-item attributes": (lambda sh, d, s: setattr(sh["scratch"], d.replace(" ", "_"), s),
                            lambda sh, d: getattr(sh["scratch"], d.replace(" ", "_")),
                            lambda sh: sh.update(scratch=types.SimpleNamespace())),
    "distinct elements of a shared set": (lambda sh, d, s: (sh["done"].add(d), sh["scratch"].__setitem__(d, s)),
                                          lambda sh, d: sh["scratch"][d],
                                          lambda sh: sh.update(done=set(), scratch={})),
    "a container made by the first sub-flow": (lambda sh, d, s: sh.setdefault("drafts", {}).__setitem__(d, s),
                                               lambda sh, d: sh["drafts"][d], lambda sh: None),
    "a lock everyone shares": (lambda sh, d, s: sh["scratch"].__setitem__(d, s), lambda sh, d: sh["scratch"][d],
                               lambda sh: sh.update(scratch={}, lock=asyncio.Lock())),
}


@pytest.mark.parametrize("name", SAFE)
def test_per_item_places_inside_shared_values_are_no_race(name):
    keep, find, setup = SAFE[name]
    llm = SimulatedLLM(latency=1.0, jitter=0.5, seed=1)
    shared = {"docs": DOCS}
    assert check_races(flow_keeping(keep, find, setup, llm), shared) == []
    assert shared["summaries"] == {d: llm.answer_for(f"Summarize: {d}") for d in DOCS}


def test_replacing_a_container_another_sub_flow_filed_into_is_a_race():
    llm = SimulatedLLM(latency=1.0, jitter=0.5, seed=1)
    last = max(DOCS, key=lambda doc: llm.latency_for(f"Summarize: {doc}"))  # its summary comes last

    def keep(shared, doc, summary):
        if doc == last:
            shared["scratch"] = {}  # wipes what the others filed meanwhile
        shared["scratch"][doc] = summary

    races = check_races(flow_keeping(keep, lambda sh, d: sh["scratch"].get(d), lambda sh: sh.update(scratch={}), llm),
                        {"docs": DOCS})
    replaced = [race for race in races if race.where == "shared['scratch']"]
    assert len(replaced) == 2 and all(race.within and race.second["doc"] == last for race in replaced)
    assert "which wrote a value inside it" in str(replaced[0])


def test_filing_into_a_container_another_sub_flow_made_earlier_is_no_race():
    llm = SimulatedLLM(latency=1.0, jitter=0.5, seed=1)
    first = min(DOCS, key=lambda doc: llm.latency_for(f"Summarize: {doc}"))  # its summary comes first

    def keep(shared, doc, summary):
        if doc == first:
            shared["scratch"] = {}  # before anyone filed anything
        shared["scratch"][doc] = summary

    shared = {"docs": DOCS}
    assert check_races(flow_keeping(keep, lambda sh, d: sh["scratch"][d], lambda sh: None, llm), shared) == []
    assert len(shared["summaries"]) == len(DOCS)


def test_writes_from_tasks_a_sub_flow_starts_count_as_its_own():
    """A parallel node inside each sub-flow: its items run in tasks of their own."""

    class Chunks(AsyncParallelBatchNode):
        async def prep_async(self, shared):
            return [1, 2]

        async def exec_async(self, chunk):
            await llm(f"Summarize: {self.params['doc']} chunk {chunk}")
            self.shared["scratch"]["last chunk"] = f"{self.params['doc']} {chunk}"  # one place for all

        async def _run_async(self, shared):
            self.shared = shared
            return await super()._run_async(shared)

    class AllDocs(AsyncParallelBatchFlow):
        async def prep_async(self, shared):
            shared["scratch"] = {}
            return [{"doc": d} for d in shared["docs"]]

    llm = SimulatedLLM(latency=1.0, jitter=0.5, seed=1)
    races = check_races(AllDocs(start=Chunks()), {"docs": DOCS})
    across = [r for r in races if r.first["doc"] != r.second["doc"]]
    assert across and {r.where for r in across} == {"shared['scratch']['last chunk']"}


def test_the_check_leaves_the_loop_as_it_found_it():
    async def scenario():
        loop = asyncio.get_running_loop()
        made = []

        def factory(loop, coro, **kwargs):
            made.append(coro)
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(factory)
        llm = SimulatedLLM(latency=1.0)
        races = await check_races_async(racy_flow(llm), {"docs": DOCS, "summaries": {}})
        assert loop.get_task_factory() is factory  # restored
        assert len(made) >= len(DOCS)  # the check's tasks went through the factory already in place
        loop.set_task_factory(None)
        return races

    assert run(scenario(), clock="virtual")


def test_the_list_of_races_reads_well():
    llm = SimulatedLLM(latency=1.0, jitter=0.5, seed=1)
    races = check_races(racy_flow(llm), {"docs": DOCS, "summaries": {}})
    assert isinstance(races, Races) and isinstance(races, list)
    text = str(races)
    assert text.startswith(f"{len(races)} races found:\n- shared['text']")
    assert all(len(line) <= 88 for line in text.splitlines())
    assert "{'doc': 'alpha report'}" in text  # a params dict is never broken across lines
    assert str(Races()) == "No races: no two sub-flows running at the same time wrote the same place in shared."
    from IPython.core.formatters import PlainTextFormatter

    assert PlainTextFormatter()(races) == text


def test_a_race_is_wrapped_between_words_and_validated():
    race = Race("text", {"doc_id": "a very long document name"}, {"doc_id": "another long document name"})
    lines = str(race).splitlines()
    assert len(lines) > 1 and all(len(line) <= 88 for line in lines)
    assert all(line.startswith("    ") for line in lines[1:])
    assert "{'doc_id': 'a very long document name'}" in str(race)
    assert race.path == ("text",) and race.where == "shared['text']"
    deep = Race("a", {}, {}, path=("a", 0, Attribute("summary"), Member("x")))
    assert deep.where == "shared['a'][0].summary (element 'x')"
    with pytest.raises(ValueError, match="path must start with key 'a'"):
        Race("a", {}, {}, path=("b",))
    with pytest.raises(ValueError, match="kind must be 'write' or 'read'"):
        Race("a", {}, {}, kind="overwrite")  # type: ignore[arg-type]


def test_a_path_must_be_a_tuple():
    from pocket_parallel.races import describe_path

    assert describe_path(("a", 1)) == "shared['a'][1]"
    with pytest.raises(TypeError, match="path must be a tuple"):
        describe_path(["a"])  # type: ignore[arg-type]
