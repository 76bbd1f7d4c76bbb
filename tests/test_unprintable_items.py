"""An item whose repr raises never hides the real error: in the engine, a Failure, the journal."""

from __future__ import annotations

import pytest

from pocket_parallel import BoundedParallelBatchNode, run
from pocket_parallel.collect import gather_outcomes
from pocket_parallel.journal import Journal


class Unprintable:
    """An item as a learner may write one: its repr is broken."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        raise RuntimeError("the item's own repr is broken")

    def __str__(self) -> str:
        raise RuntimeError("the item's own str is broken")


class RealProblem(Exception):
    """What really went wrong."""


class Process(BoundedParallelBatchNode):
    async def prep_async(self, shared):
        return shared["items"]

    async def exec_async(self, item):
        if item.name == "bad":
            raise RealProblem(f"cannot process {item.name}")
        return item.name

    async def post_async(self, shared, prep_res, exec_res):
        shared["results"] = exec_res


def test_the_node_raises_the_real_error():
    node = Process(max_concurrency=2)
    with pytest.raises(RealProblem, match="cannot process bad"):
        run(node.run_async({"items": [Unprintable("good"), Unprintable("bad")]}), clock="virtual")
    failure = node.outcomes.failures[0]
    assert isinstance(failure.error, RealProblem)
    assert str(failure) == ("<Unprintable object, whose repr raised RuntimeError> failed after 1 attempt: "
                            "RealProblem: cannot process bad")


def test_collected_failures_and_the_journal_keep_the_real_error(tmp_path):
    journal = Journal(tmp_path / "j.sqlite", "unprintable", key=lambda item: item.name)
    node = Process(max_concurrency=2, collect_failures=True, journal=journal)
    shared = {"items": [Unprintable("good"), Unprintable("bad")]}
    run(node.run_async(shared), clock="virtual")
    with journal:
        assert shared["results"][0] == "good" and isinstance(shared["results"][1].error, RealProblem)
        recorded = journal.failed(["bad"])["bad"]
    assert recorded.message == "cannot process bad" and recorded.error_type.endswith("RealProblem")


def test_gather_outcomes_keeps_the_real_error():
    async def fail(item):
        raise RealProblem("real")

    outcomes = run(gather_outcomes(fail, [Unprintable("a")]), clock="virtual")
    assert isinstance(outcomes.failures[0].error, RealProblem) and "RealProblem: real" in str(outcomes.failures[0])


def test_the_journals_messages_show_such_an_item(tmp_path):
    with Journal(tmp_path / "j.sqlite", "unprintable") as journal:
        with pytest.raises(TypeError, match="item_key cannot hash a Unprintable"):
            journal.key_of(Unprintable("x"))
    with Journal(tmp_path / "k.sqlite", "unprintable", key=lambda item: None) as journal:
        with pytest.raises(TypeError, match="for <Unprintable object, whose repr raised RuntimeError> it returned None"):
            journal.key_of(Unprintable("x"))
