"""Exercise 3 (checks/makespan.py): predictions are checked to the microsecond, and made by arithmetic.

Every shortcut a student might take is wrong on at least one workload of every seed. The
prediction runs in a process of its own that gets only the latencies and C, where nothing that
runs a batch can be imported (an audit hook, which no code can remove, refuses it), the check's
frames are out of reach, and the list it is given must come back unchanged.
"""

from __future__ import annotations

import asyncio
import heapq
import importlib
import math
import sys
import time

import pytest

import pocket_parallel.experiment
from pocket_parallel import BoundedParallelBatchNode, SimulatedLLM, compare, run
from pocket_parallel.checks import check_makespan_prediction
from pocket_parallel.checks.makespan import EXERCISE_3
from pocket_parallel.experiment import makespan_lower_bound, semaphore_makespan

from .notebook_code import (
    EX3,
    assert_fails,
    assert_fails_on_every_seed,
    assert_passes_on_every_seed,
    quiet,
    solution,
    stub,
)


def first_free_slot(latencies, max_concurrency):
    """Right, written another way: a heap of the times the slots free up."""
    if max_concurrency is None or max_concurrency >= len(latencies):
        return max(latencies, default=0.0)
    slots = [0.0] * max_concurrency
    for latency in latencies:
        heapq.heappush(slots, heapq.heappop(slots) + latency)
    return max(slots)


def chatty(latencies, max_concurrency):
    """Right, and prints while it works: printing is not running anything."""
    print("predicting", latencies, max_concurrency)
    return first_free_slot(latencies, max_concurrency)


# -- shortcuts: formulas and schedules that are wrong ------------------------------------------


def even_share(latencies, max_concurrency):
    """Total work divided evenly over the slots: forgets that a call cannot be split."""
    if max_concurrency is None or max_concurrency >= len(latencies):
        return max(latencies, default=0.0)
    return max(max(latencies), sum(latencies) / max_concurrency)


def rounds_of_c(latencies, max_concurrency):
    """Rounds of C calls, each as long as its slowest call."""
    if max_concurrency is None:
        return max(latencies, default=0.0)
    return sum(max(latencies[i:i + max_concurrency]) for i in range(0, len(latencies), max_concurrency))


def library_ideal(latencies, max_concurrency):
    """pocket_parallel.experiment.makespan_lower_bound: exact for equal latencies, only a bound otherwise."""
    return makespan_lower_bound(latencies, max_concurrency)


def dealt_in_turn(latencies, max_concurrency):
    """Static slots: call i goes to slot i % C, each slot runs its own calls one after another."""
    if max_concurrency is None or max_concurrency >= len(latencies):
        return max(latencies, default=0.0)
    return max(sum(latencies[slot::max_concurrency]) for slot in range(max_concurrency))


def blocks(latencies, max_concurrency):
    """Static slots: each slot takes one block of ceil(N / C) consecutive calls."""
    if max_concurrency is None or max_concurrency >= len(latencies):
        return max(latencies, default=0.0)
    size = math.ceil(len(latencies) / max_concurrency)
    return max(sum(latencies[i:i + size]) for i in range(0, len(latencies), size))


def longest_first(latencies, max_concurrency):
    return first_free_slot(sorted(latencies, reverse=True), max_concurrency)


def shortest_first(latencies, max_concurrency):
    return first_free_slot(sorted(latencies), max_concurrency)


def back_to_front(latencies, max_concurrency):
    return first_free_slot(latencies[::-1], max_concurrency)


ANSWERED = {}


def order_blind(latencies, max_concurrency):
    """Any answer that ignores the input order: right for the first order of each set of latencies
    it sees, so that only the check's second order of the same latencies can show the mistake."""
    key = (tuple(sorted(latencies)), max_concurrency)
    return ANSWERED.setdefault(key, first_free_slot(latencies, max_concurrency))


def forgets_no_limit(latencies, max_concurrency):
    return math.ceil(len(latencies) / max_concurrency) * max(latencies, default=0.0)


def forgets_the_empty_batch(latencies, max_concurrency):
    """Right, except that max() of no latencies raises."""
    if max_concurrency is None or max_concurrency >= len(latencies):
        return max(latencies)
    return first_free_slot(latencies, max_concurrency)


def no_return(latencies, max_concurrency):
    max(latencies, default=0.0)


def ticks(latencies, max_concurrency, dt=0.5):
    """A simulation of the semaphore in ticks of dt seconds: exact only when every latency is a multiple of dt."""
    if not latencies:
        return 0.0
    slots = max_concurrency or len(latencies)
    left = [math.ceil(x / dt - 1e-9) for x in latencies]
    running, waiting, now = [], list(range(len(latencies))), 0
    while waiting or running:
        while waiting and len(running) < slots:
            running.append(waiting.pop(0))
        now += 1
        for item in running:
            left[item] -= 1
        running = [item for item in running if left[item] > 0]
    return now * dt


def fine_ticks(latencies, max_concurrency):
    """The same in ticks of a millisecond: close, never exact."""
    return ticks(latencies, max_concurrency, dt=0.001)


def pops_the_input(latencies, max_concurrency):
    """Right numbers, but it empties the caller's list as it goes."""
    if max_concurrency is None or max_concurrency >= len(latencies):
        return max(latencies, default=0.0)
    free_at = [0.0] * max_concurrency
    while latencies:
        latency = latencies.pop(0)
        free_at[free_at.index(min(free_at))] += latency
    return max(free_at)


def sorts_the_input(latencies, max_concurrency):
    """Right numbers from a copy it reads, and the caller's list sorted in place 'for later'."""
    answer = first_free_slot(list(latencies), max_concurrency)
    latencies.sort()
    return answer


async def async_prediction(latencies, max_concurrency):
    return first_free_slot(latencies, max_concurrency)


def endless(latencies, max_concurrency):
    free_at = [0.0] * (max_concurrency or 1)
    while True:  # the student meant to stop when every latency was placed
        free_at[0] += 0.0


# -- answers that run the batch, or copy the check's truth, instead of predicting it ---------------


class _Ask(BoundedParallelBatchNode):
    async def prep_async(self, shared):
        return shared["prompts"]

    async def exec_async(self, prompt):
        return await self.llm(prompt)


class _Scripted(SimulatedLLM):
    def latency_for(self, prompt, attempt=1):
        return float(prompt.split(" takes ")[1])


def runs_the_node(latencies, max_concurrency):
    """The notebook's own workbench: the course's node on the virtual clock (the right number, measured)."""
    node = _Ask(max_concurrency=max_concurrency)
    node.llm = _Scripted()

    async def timed():
        loop = asyncio.get_running_loop()
        start = loop.time()
        await node.run_async({"prompts": [f"{i} takes {x}" for i, x in enumerate(latencies)]})
        return loop.time() - start

    return run(timed(), clock="virtual")


def own_semaphore_on_the_virtual_clock(latencies, max_concurrency):
    async def simulate():
        slots = asyncio.Semaphore(max_concurrency or len(latencies))
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def one(seconds):
            async with slots:
                await asyncio.sleep(seconds)

        await asyncio.gather(*(one(x) for x in latencies))
        return loop.time() - start

    return run(simulate(), clock="virtual")


def own_event_loop(latencies, max_concurrency):
    """asyncio.run on a semaphore with the latencies scaled down (real time, then scaled back)."""
    async def simulate():
        slots = asyncio.Semaphore(max_concurrency or len(latencies))

        async def one(seconds):
            async with slots:
                await asyncio.sleep(seconds / 1000)

        start = time.perf_counter()
        await asyncio.gather(*(one(x) for x in latencies))
        return (time.perf_counter() - start) * 1000

    return asyncio.run(simulate())


def calls_the_llm(latencies, max_concurrency):
    llm = SimulatedLLM(latency=0.001)
    llm.call("Summarize: how long?")
    return first_free_slot(latencies, max_concurrency)


def threads(latencies, max_concurrency):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        return pool.submit(first_free_slot, latencies, max_concurrency).result()


def uses_compare(latencies, max_concurrency):
    compare(len(latencies), max_concurrency=max_concurrency, latency=latencies[0])
    return first_free_slot(latencies, max_concurrency)


def uses_the_checks_own_schedule(latencies, max_concurrency):
    return semaphore_makespan(latencies, max_concurrency)


def hides_the_simulation(latencies, max_concurrency):
    """Runs the node, and falls back on a shortcut if anything at all goes wrong."""
    try:
        return runs_the_node(latencies, max_concurrency)
    except BaseException:
        return rounds_of_c(latencies, max_concurrency)


def switches_the_guard_off(latencies, max_concurrency):
    """Turns off the hooks an in-kernel guard used, then runs the course's node on the virtual clock."""
    sys.setprofile(None)
    sys.settrace(None)
    return runs_the_node(latencies, max_concurrency)


def imports_through_importlib(latencies, max_concurrency):
    """importlib.import_module raises no 'import' audit event: the schedule, imported that way."""
    experiment = importlib.import_module("pocket_parallel.experiment")
    return experiment.semaphore_makespan(latencies, max_concurrency)


def clones_the_schedule(latencies, max_concurrency):
    """A copy of the library's own schedule, made from its code object: no name of the library is called."""
    import types

    clone = types.FunctionType(semaphore_makespan.__code__, semaphore_makespan.__globals__)
    return clone(latencies, max_concurrency)


SCHEDULE_FILE = pocket_parallel.experiment.__file__


def copies_the_schedule_source(latencies, max_concurrency):
    """The library's source, read at run time and executed: a fresh clone, not arithmetic of its own."""
    namespace = {}
    exec(open(SCHEDULE_FILE).read(), namespace)
    return namespace["semaphore_makespan"](latencies, max_concurrency)


def reads_the_check_frames(latencies, max_concurrency):
    """Looks up the call stack for the measured truth; falls back on a shortcut when it finds none."""
    frame = sys._getframe(1)
    while frame is not None:
        for name in ("truth", "measured", "expected"):
            value = frame.f_locals.get(name)
            if isinstance(value, float):
                return value
        frame = frame.f_back
    return rounds_of_c(latencies, max_concurrency)


# -- the tests ------------------------------------------------------------------------------------


def test_ex3_solution_passes_on_every_seed():
    assert_passes_on_every_seed(EXERCISE_3, solution(EX3, "predict_makespan"))


@pytest.mark.parametrize("answer", [first_free_slot, chatty], ids=["a heap", "printing"])
def test_ex3_other_right_answers_pass(answer):
    assert_passes_on_every_seed(EXERCISE_3, answer, seeds=range(10))


SHORTCUTS = {
    "work divided evenly": (even_share, ("divided the work evenly", "ceil(N / C)")),
    "rounds of C": (rounds_of_c, ("rounds of C",)),
    "dealt in turn": (dealt_in_turn, ("its own fixed share of the calls", "one queue for all slots")),
    "blocks": (blocks, ("its own fixed share of the calls", "one queue for all slots")),
    "longest first": (longest_first, ("You reordered the calls", "input order")),
    "shortest first": (shortest_first, ("You reordered the calls", "input order")),
    "back to front": (back_to_front, ("You reordered the calls", "input order")),
    "the order ignored": (order_blind, ("does not depend on the order of the calls",)),
    "None not handled": (forgets_no_limit, ("raised TypeError", "max_concurrency=None means no limit")),
    "the empty batch not handled": (forgets_the_empty_batch, ("raised ValueError", "takes 0 s")),
    "no return": (no_return, ("returned None", "return statement")),
    "ticks of 0.5 s": (ticks, ("the run took",)),
    "ticks of a millisecond": (fine_ticks, ("the run took",)),
    "the input emptied": (pops_the_input, ("changed the list it was given",)),
    "the input sorted in place": (sorts_the_input, ("changed the list it was given",)),
    "async def": (async_prediction, ("returned a coroutine",)),
}


@pytest.mark.parametrize("case", list(SHORTCUTS))
def test_ex3_wrong_answer_fails_on_every_seed(case):
    answer, keywords = SHORTCUTS[case]
    assert_fails_on_every_seed(EXERCISE_3, answer, *keywords)


RUNS_OR_COPIES = {
    "the course's node": runs_the_node,
    "own semaphore, virtual clock": own_semaphore_on_the_virtual_clock,
    "asyncio.run": own_event_loop,
    "the simulated LLM": calls_the_llm,
    "a thread pool": threads,
    "compare()": uses_compare,
    "the check's schedule": uses_the_checks_own_schedule,
    "the library's lower bound": library_ideal,
    "a simulation behind except": hides_the_simulation,
    "the guard switched off": switches_the_guard_off,
    "importlib.import_module": imports_through_importlib,
    "a clone of the schedule's code": clones_the_schedule,
    "the schedule's source copied at run time": copies_the_schedule_source,
    "the check's frames read": reads_the_check_frames,
}


@pytest.mark.parametrize("case", list(RUNS_OR_COPIES))
def test_ex3_answers_that_run_or_copy_something_fail_on_every_seed(case):
    assert_fails_on_every_seed(EXERCISE_3, RUNS_OR_COPIES[case])


@pytest.mark.parametrize("case, what", [
    ("the course's node", "tried import pocket_parallel"),
    ("asyncio.run", "tried import asyncio, which is an event loop"),
    ("a thread pool", "tried import concurrent.futures, which is threads or processes"),
    ("importlib.import_module", "tried import pocket_parallel"),
    ("the schedule's source copied at run time", "tried import pocket_parallel"),
], ids=["node", "asyncio", "threads", "importlib", "source"])
def test_ex3_what_was_refused_is_named(case, what):
    result = quiet(check_makespan_prediction, RUNS_OR_COPIES[case])
    assert result.status == "failed" and what in result.message and "arithmetic only" in result.message


def test_ex3_a_callable_object_is_refused_with_a_reason():
    result = quiet(check_makespan_prediction, CallablePredictor())
    assert result.status == "failed" and "neither a class nor a function" in result.message


class CallablePredictor:
    __name__ = "predict_makespan"

    def __call__(self, latencies, max_concurrency):
        return first_free_slot(latencies, max_concurrency)


def test_ex3_an_endless_loop_is_stopped():
    start = time.perf_counter()
    [result] = EXERCISE_3.on_seeds(endless, [1], {"time_limit": 1.0})
    assert time.perf_counter() - start < 30
    assert result.status == "failed" and "was still computing after 1 s of real time" in result.message


def test_ex3_wrong_answers_fail_fresh_workloads_quietly():
    assert_fails(check_makespan_prediction, rounds_of_c, "rounds of C")


def test_ex3_stub_is_not_attempted():
    assert quiet(check_makespan_prediction, stub(EX3, "predict_makespan")).status == "not attempted"


def test_ex3_wants_a_function():
    with pytest.raises(TypeError, match="predict_makespan must be a function"):
        check_makespan_prediction(4.5)  # type: ignore[arg-type]
