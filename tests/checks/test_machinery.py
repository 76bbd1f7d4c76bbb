"""What every check stands on (checks/_shipping.py, _portable.py, _trace.py): the answer's source
shipped out of the kernel, what comes back as plain data, and the calls read back."""

from __future__ import annotations

import asyncio
import importlib.util
import sys

import pytest

from pocket_parallel.checks import check_parallel_summarizer
from pocket_parallel.checks._portable import Foreign, from_portable, to_portable
from pocket_parallel.checks._shipping import CannotShip, ship
from pocket_parallel.checks._trace import Call, Calls
from pocket_parallel.outcomes import Failure

from .notebook_code import EX1, answer_cell, quiet, run_cell

# -- shipping -------------------------------------------------------------------------------------------

CELLS = [
    "import asyncio\nfrom pocketflow import AsyncParallelBatchNode\nfrom pocket_parallel import SimulatedLLM, call_llm_async\n",
    "LIMIT = 3\nSETTINGS = {'prefix': 'Summarize: ', 'tags': ('a', 'b')}\nGATE = asyncio.Semaphore(LIMIT)\n"
    "demo = SimulatedLLM(latency=1.0)\nprint('a cell that also prints')\n",
    "def prompt_for(text):\n    return SETTINGS['prefix'] + text\n\n\nclass Base(AsyncParallelBatchNode):\n"
    "    async def prep_async(self, shared):\n        return shared['documents']\n",
    "class Answer(Base):\n    size = LIMIT\n\n    async def exec_async(self, document):\n"
    "        async with GATE:\n            return await call_llm_async(prompt_for(document))\n",
]


def notebook(*cells):
    namespace = {"__name__": "__main__", "_ih": [""]}
    for cell in cells:
        run_cell(namespace, cell, "machinery")
    return namespace


def rebuilt(shipment, tmp_path, name="rebuilt_answer"):
    path = tmp_path / f"{name}.py"
    path.write_text(shipment.source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_class_from_a_cell_is_rebuilt_with_what_earlier_cells_gave_it(tmp_path):
    namespace = notebook(*CELLS)
    shipment = ship(namespace["Answer"])
    module = rebuilt(shipment, tmp_path)
    answer = module.Answer
    assert answer.__name__ == "Answer" and answer.size == 3
    assert module.prompt_for("x") == "Summarize: x" and module.SETTINGS == namespace["SETTINGS"]
    assert isinstance(module.GATE, asyncio.Semaphore)  # rebuilt by its own statement, not copied
    assert "a cell that also prints" not in shipment.source  # only what the answer uses
    assert "demo" not in shipment.source
    assert shipment.missing == {}


def test_a_rebuilt_function_keeps_its_cells_name_and_line(tmp_path):
    namespace = notebook("x = 1\n\n\ndef broken(value):\n    return value / 0\n")
    module = rebuilt(ship(namespace["broken"]), tmp_path, "rebuilt_broken")
    with pytest.raises(ZeroDivisionError) as raised:
        module.broken(1)
    frame = raised.traceback[-1]
    assert frame.lineno + 1 == 5 and "machinery cell" in str(frame.path)


def test_names_no_cell_defines_are_reported_not_invented():
    namespace = notebook("def answer():\n    return helper_nobody_wrote()\n")
    assert ship(namespace["answer"]).missing == {"helper_nobody_wrote": "a name no cell defines"}


@pytest.mark.parametrize("make, reason", [
    (lambda: type("Made", (), {}), "could not find the 'class' or 'def' statement"),
    (lambda: (lambda x: x), "at the top level of a cell"),
    (lambda: notebook("answer = lambda x: x\n")["answer"], "could not find the 'class' or 'def' statement"),
    (lambda: notebook("def outer():\n    class Inner:\n        pass\n    return Inner\n")["outer"](),
     "at the top level of a cell"),
    (lambda: 4.5, "neither a class nor a function"),
])
def test_what_cannot_be_rebuilt_from_source_is_refused_with_a_reason(make, reason):
    with pytest.raises(CannotShip, match=reason):
        ship(make())


def test_a_check_explains_a_name_it_could_not_copy():
    cell = ("class ParallelSummarizer(AsyncParallelBatchNode):\n"
            "    async def prep_async(self, shared):\n        return shared['documents']\n\n"
            "    async def exec_async(self, document):\n        return await ask_somehow(document)\n")
    result = quiet(check_parallel_summarizer, answer_cell(EX1, cell, "ParallelSummarizer"), seed=2)
    assert result.status == "failed"
    assert "NameError" in result.message or "ask_somehow" in result.message


# -- portable values ------------------------------------------------------------------------------------


def test_plain_values_travel_as_they_are_and_others_as_foreign():
    error = ValueError("bad")
    value = {"a": (1, 2.5, None), 3: [True, "x"], frozenset({1}): {2}, "failure": Failure("doc", error, 3),
             "error": error, "nan": float("nan")}
    back = from_portable(to_portable(value))
    assert back["a"] == (1, 2.5, None) and back[3] == [True, "x"] and back[frozenset({1})] == {2}
    failure = back["failure"]
    assert isinstance(failure, Foreign) and failure.type_name == "Failure"
    assert failure.attributes["item"] == "doc" and failure.attributes["attempts"] == 3
    assert failure.attributes["error"].is_a("ValueError") and failure.attributes["error"].is_exception
    assert back["error"].message == "bad" and back["nan"] != back["nan"]


def test_hostile_values_come_back_bounded():
    circle = []
    circle.append(circle)
    assert isinstance(from_portable(to_portable(circle))[0], Foreign)
    deep = current = []
    for _ in range(100):
        current.append([])
        current = current[0]
    back, depth = from_portable(to_portable(deep)), 0
    while isinstance(back, list):
        back, depth = back[0], depth + 1
    assert isinstance(back, Foreign) and back.type_name == "list" and depth < 20
    assert len(from_portable(to_portable(list(range(100_000))))) == 100_000
    assert isinstance(from_portable(to_portable(list(range(100_000))))[-1], Foreign)  # past the budget


# -- reading calls back ---------------------------------------------------------------------------------


def call(prompt, start, end, outcome="ok", attempt=1):
    return Call(prompt, attempt, start, end, outcome, True, ("exec_async",))


def test_an_idle_slot_is_found_and_a_busy_schedule_is_not():
    # C = 2: a and b start at once; a ends at 1, c starts then; b ends at 3 while c runs: no idle slot.
    busy = Calls([call("a", 0, 1), call("b", 0, 3), call("c", 1, 2)])
    assert busy.idle(["a", "b", "c"], 2, wait=0.0) is None and busy.peak() == 2
    # c waits for b instead (rounds of C): from 1 to 3 one slot sits idle while c is ready.
    rounds = Calls([call("a", 0, 1), call("b", 0, 3), call("c", 3, 4)])
    idle = rounds.idle(["a", "b", "c"], 2, wait=0.0)
    assert (idle.start, idle.end, idle.busy, idle.ready) == (1, 3, 1, 1)


def test_a_retry_may_keep_its_slot_through_its_wait_or_give_it_up():
    # a fails at 1, waits 0.5 s, retries at 1.5; b runs from 0 to 2: C = 2 kept busy either way.
    calls = Calls([call("a", 0, 1, "error"), call("a", 1.5, 2.5, attempt=2), call("b", 0, 2)])
    assert calls.idle(["a", "b"], 2, wait=0.5) is None
    assert calls.early_retries(0.5) == []
    assert calls.early_retries(0.7)[0][1].attempt == 2
