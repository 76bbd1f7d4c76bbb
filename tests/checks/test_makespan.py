"""Exercise 3 (checks/makespan.py): predictions are checked to the microsecond, and made by arithmetic.

Every shortcut a student might take is wrong on at least one workload of every seed; answers
that run the batch instead of predicting it are stopped and told so.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import sys
import time

import pytest
from pocketflow import AsyncParallelBatchNode

from pocket_parallel import BoundedParallelBatchNode, SimulatedLLM, compare, run
from pocket_parallel.checks import _compute_only, check_makespan_prediction
from pocket_parallel.experiment import makespan_lower_bound, semaphore_makespan

from .notebook_code import (
    EX3,
    REPEATS,
    SEEDS,
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
        return max(latencies)
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
        return max(latencies)
    return max(max(latencies), sum(latencies) / max_concurrency)


def rounds_of_c(latencies, max_concurrency):
    """Rounds of C calls, each as long as its slowest call."""
    if max_concurrency is None:
        return max(latencies)
    return sum(max(latencies[i:i + max_concurrency]) for i in range(0, len(latencies), max_concurrency))


def library_ideal(latencies, max_concurrency):
    """pocket_parallel.experiment.makespan_lower_bound: exact for equal latencies, only a bound otherwise."""
    return makespan_lower_bound(latencies, max_concurrency)


def dealt_in_turn(latencies, max_concurrency):
    """Static slots: call i goes to slot i % C, each slot runs its own calls one after another."""
    if max_concurrency is None or max_concurrency >= len(latencies):
        return max(latencies)
    return max(sum(latencies[slot::max_concurrency]) for slot in range(max_concurrency))


def blocks(latencies, max_concurrency):
    """Static slots: each slot takes one block of ceil(N / C) consecutive calls."""
    if max_concurrency is None or max_concurrency >= len(latencies):
        return max(latencies)
    size = math.ceil(len(latencies) / max_concurrency)
    return max(sum(latencies[i:i + size]) for i in range(0, len(latencies), size))


def longest_first(latencies, max_concurrency):
    return first_free_slot(sorted(latencies, reverse=True), max_concurrency)


def shortest_first(latencies, max_concurrency):
    return first_free_slot(sorted(latencies), max_concurrency)


def back_to_front(latencies, max_concurrency):
    return first_free_slot(latencies[::-1], max_concurrency)


def make_order_blind():
    """Any answer that ignores the input order: right for the first order of each set of latencies
    it sees, so that only the check's second order of the same latencies can show the mistake."""
    answers = {}

    def order_blind(latencies, max_concurrency):
        key = (tuple(sorted(latencies)), max_concurrency)
        return answers.setdefault(key, first_free_slot(latencies, max_concurrency))

    return order_blind


def forgets_no_limit(latencies, max_concurrency):
    return math.ceil(len(latencies) / max_concurrency) * max(latencies)


def no_return(latencies, max_concurrency):
    max(latencies)


# -- answers that run the batch instead of predicting it -----------------------------------------


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


def sleeps(latencies, max_concurrency):
    time.sleep(0.001)
    return first_free_slot(latencies, max_concurrency)


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
    """Runs the node, and falls back on arithmetic if anything at all goes wrong."""
    try:
        return runs_the_node(latencies, max_concurrency)
    except BaseException:
        return first_free_slot(latencies, max_concurrency)


class ParallelNodeBuilt:
    """Builds a PocketFlow node (never runs it): still not arithmetic."""

    __name__ = "predict_makespan"

    def __call__(self, latencies, max_concurrency):
        AsyncParallelBatchNode()
        return first_free_slot(latencies, max_concurrency)


async def async_prediction(latencies, max_concurrency):
    return first_free_slot(latencies, max_concurrency)


def endless(latencies, max_concurrency):
    free_at = [0.0] * (max_concurrency or 1)
    while True:  # the student meant to stop when every latency was placed
        free_at[0] += 0.0


# -- the tests ------------------------------------------------------------------------------------


def test_ex3_solution_passes_every_time():
    for _ in range(REPEATS):
        result = quiet(check_makespan_prediction, solution(EX3, "predict_makespan"))
        assert result.passed, result.message


@pytest.mark.parametrize("answer", [first_free_slot, chatty], ids=["a heap", "printing"])
def test_ex3_other_right_answers_pass(answer, capsys):
    assert check_makespan_prediction(answer).passed


@pytest.mark.parametrize("answer, keywords", [
    (even_share, ("divided the work evenly", "ceil(N / C)")),
    (rounds_of_c, ("rounds of C", "does not wait for a whole round")),
    (library_ideal, ("lower bound", "input order")),
    (dealt_in_turn, ("its own fixed share of the calls", "one queue for all slots")),
    (blocks, ("its own fixed share of the calls", "one queue for all slots")),
    (longest_first, ("You reordered the calls", "input order")),
    (shortest_first, ("You reordered the calls", "input order")),
    (back_to_front, ("You reordered the calls", "input order")),
    (forgets_no_limit, ("raised TypeError", "max_concurrency=None means no limit")),
    (no_return, ("returned None", "return statement")),
], ids=["work divided evenly", "rounds of C", "the lower bound", "dealt in turn", "blocks", "longest first",
        "shortest first", "back to front", "None not handled", "no return"])
def test_ex3_wrong_answers_fail_with_the_right_message(answer, keywords):
    assert_fails(check_makespan_prediction, answer, *keywords)


def test_ex3_an_answer_that_ignores_the_order_fails_on_the_second_order():
    result = quiet(check_makespan_prediction, make_order_blind())
    assert result.status == "failed"
    assert "the same as for these very latencies in the order" in result.message
    assert "does not depend on the order of the calls" in result.message


@pytest.mark.parametrize("answer, what", [
    (runs_the_node, "built or ran a PocketFlow node"),
    (own_semaphore_on_the_virtual_clock, "called pocket_parallel.run"),
    (own_event_loop, "used asyncio"),
    (sleeps, "slept (time.sleep)"),
    (calls_the_llm, "called the simulated LLM"),
    (threads, "started threads or processes"),
    (uses_compare, "called pocket_parallel.run"),
    (uses_the_checks_own_schedule, "called the check's own code"),
    (hides_the_simulation, "built or ran a PocketFlow node"),
    (ParallelNodeBuilt(), "built or ran a PocketFlow node"),
], ids=["the course's node", "own semaphore, virtual clock", "asyncio.run", "time.sleep", "the simulated LLM",
        "a thread pool", "compare()", "the check's schedule", "a simulation behind except", "a node built"])
def test_ex3_answers_that_run_something_are_stopped(answer, what):
    result = quiet(check_makespan_prediction, answer)
    assert result.status == "failed", result.message
    assert what in result.message and "arithmetic only" in result.message
    assert "Python also reported" not in result.message  # stopping it half way is the check's doing
    assert sys.getprofile() is None and sys.gettrace() is None  # both hooks removed


def test_ex3_async_def_is_refused_without_a_warning():
    result = quiet(check_makespan_prediction, async_prediction)
    assert result.status == "failed" and "is an async function ('async def')" in result.message


def test_ex3_an_endless_loop_is_stopped(monkeypatch):
    monkeypatch.setattr(_compute_only, "TIME_LIMIT", 0.2)
    start = time.perf_counter()
    result = quiet(check_makespan_prediction, endless)
    assert time.perf_counter() - start < 5
    assert result.status == "failed" and "was still computing after 0.2 s of real time" in result.message
    assert sys.getprofile() is None and sys.gettrace() is None


def test_ex3_solution_passes_and_wrong_answers_fail_on_every_seed():
    assert_passes_on_every_seed(check_makespan_prediction, solution(EX3, "predict_makespan"))
    assert_passes_on_every_seed(check_makespan_prediction, first_free_slot)
    for answer in (even_share, rounds_of_c, library_ideal, dealt_in_turn, blocks, longest_first, shortest_first,
                   back_to_front, forgets_no_limit, no_return, async_prediction):
        assert_fails_on_every_seed(check_makespan_prediction, answer)
    for answer in (runs_the_node, own_semaphore_on_the_virtual_clock, own_event_loop, sleeps, calls_the_llm, threads,
                   uses_compare, uses_the_checks_own_schedule, hides_the_simulation, ParallelNodeBuilt()):
        assert_fails_on_every_seed(check_makespan_prediction, answer, "arithmetic only")
    for seed in SEEDS:  # a fresh memory for each seed: the two orders of every seed must catch it
        result = quiet(check_makespan_prediction, make_order_blind(), seed=seed)
        assert result.status == "failed" and "does not depend on the order" in result.message, (seed, result.message)


def test_ex3_stub_is_not_attempted():
    assert quiet(check_makespan_prediction, stub(EX3, "predict_makespan")).status == "not attempted"


def test_ex3_wants_a_function():
    with pytest.raises(TypeError, match="predict_makespan must be a function"):
        check_makespan_prediction(4.5)  # type: ignore[arg-type]


def test_the_hooks_that_were_there_before_are_put_back():
    def tracer(frame, event, arg):
        return None

    def profiler(frame, event, arg):
        return None

    sys.settrace(tracer)
    sys.setprofile(profiler)
    try:
        failed = quiet(check_makespan_prediction, runs_the_node)
        passed = quiet(check_makespan_prediction, first_free_slot)
        assert (sys.gettrace(), sys.getprofile()) == (tracer, profiler)
    finally:
        sys.settrace(None)
        sys.setprofile(None)
    assert failed.status == "failed" and passed.passed


def test_compute_only_refuses_a_silly_time_limit():
    with pytest.raises(ValueError, match="time_limit must be a number of seconds > 0; got 0"):
        _compute_only.call_computing_only(first_free_slot, [1.0], 1, time_limit=0)
    assert _compute_only.call_computing_only(first_free_slot, [1.0, 2.0, 3.0], 2, time_limit=1.0) == 4.0
