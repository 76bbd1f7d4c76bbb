"""check_races: it catches sub-flows overwriting one shared key, and stays quiet for per-item keys."""

from __future__ import annotations

import pytest
from pocketflow import AsyncBatchFlow, AsyncFlow, AsyncNode, AsyncParallelBatchFlow

from pocket_parallel import BoundedParallelBatchFlow, SimulatedLLM, check_races
from pocket_parallel.races import Race, RaceWatch

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
