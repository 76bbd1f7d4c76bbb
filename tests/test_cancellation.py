"""Cancelling a running parallel node or flow: every call stopped, no task left, finished results kept."""

from __future__ import annotations

import _thread
import asyncio
import gc
import logging
import threading
import time

import pytest
from conftest import AskNode, prompts
from pocketflow import AsyncFlow, AsyncNode

from pocket_parallel import BoundedParallelBatchFlow, SimulatedLLM, run


def others() -> list[asyncio.Task]:
    """Every task of this loop but the one asking: what a cancelled run must not leave behind."""
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


async def cancel_after(seconds: float, coro) -> list[asyncio.Task]:
    task = asyncio.ensure_future(coro)
    await asyncio.sleep(seconds)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return others()


@pytest.mark.parametrize("inside_flow", [False, True], ids=["node alone", "inside AsyncFlow"])
def test_task_cancel_stops_every_call_leaves_no_task_and_keeps_finished_results(virtual, inside_flow):
    llm = SimulatedLLM(latency=1.0, jitter=0.5, seed=3)
    node = AskNode(llm, max_concurrency=4)
    runner = AsyncFlow(start=node) if inside_flow else node
    leftovers = virtual(cancel_after(1.5, runner.run_async({"prompts": prompts(12)})))
    assert leftovers == []
    stats, outcomes = llm.stats, node.outcomes  # the original node shows the flow copy's run too
    assert stats.in_flight == 0 and stats.cancelled == 4  # all 4 slots were busy at t = 1.5
    finished = {r.prompt for r in llm.trace if r.outcome == "ok"}
    assert finished and all(r.end <= 1.5 for r in llm.trace if r.outcome == "ok")
    assert all(r.end == 1.5 for r in llm.trace if r.outcome == "cancelled")
    assert outcomes.succeeded == [(p, llm.answer_for(p)) for p in prompts(12) if p in finished]
    assert len(outcomes.cancelled) == 12 - len(finished) and outcomes.pending == []


def test_cancelling_a_parallel_flow_cancels_its_sub_flows_and_keeps_their_work(virtual):
    llm = SimulatedLLM(latency=1.0)

    class Summarize(AsyncNode):
        async def exec_async(self, _):
            return await llm(f"Summarize: {self.params['doc']}")

        async def post_async(self, shared, prep_res, exec_res):
            shared["summaries"][self.params["doc"]] = exec_res

    class Docs(BoundedParallelBatchFlow):
        async def prep_async(self, shared):
            return [{"doc": d} for d in shared["docs"]]

    docs = [f"d{i}" for i in range(10)]
    shared = {"docs": docs, "summaries": {}}
    flow = Docs(start=Summarize(), max_concurrency=3)
    assert virtual(cancel_after(2.5, flow.run_async(shared))) == []
    assert list(shared["summaries"]) == docs[:6]  # two rounds of three finished
    assert flow.outcomes.counts() == {"ok": 6, "failed": 0, "cancelled": 4, "pending": 0}
    assert llm.stats.cancelled == 3 and llm.stats.in_flight == 0


def _wait_for_run_workers(timeout: float = 5.0) -> None:
    """Wait until run()'s worker threads have really ended.

    On Python 3.11, a ``Thread.join`` interrupted by KeyboardInterrupt marks the thread as
    stopped while it still runs (the bpo-45274 fix releases a lock the worker holds), so
    ``run()``'s own join after the interrupt returns at once. The worker still cancels
    everything; this waits for it by watching ``threading.enumerate()``, which lists a
    thread until it truly ends.
    """
    deadline = time.monotonic() + timeout
    while any(t.name == "pocket-parallel-run" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "run()'s worker thread did not end"
        time.sleep(0.01)


def _interrupt_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, _thread.interrupt_main)  # what Ctrl-C or a kernel interrupt does
    timer.start()
    return timer


@pytest.mark.parametrize("where", ["script", "notebook cell"])
def test_keyboard_interrupt_through_run_stops_cleanly(where, caplog, capfd):
    llm = SimulatedLLM(latency=0.1)
    node = AskNode(llm, max_concurrency=2)
    coro = node.run_async({"prompts": prompts(10)})  # 5 rounds of 0.1 s, real clock
    caplog.set_level(logging.DEBUG, logger="asyncio")
    timer = _interrupt_after(0.15)  # in the second round
    try:
        if where == "script":
            with pytest.raises(KeyboardInterrupt):
                run(coro, clock="real")
        else:
            # A notebook cell: a loop is already running in this thread, so run() uses a worker.
            async def cell():
                return run(coro, clock="real")

            loop = asyncio.new_event_loop()
            try:
                task = loop.create_task(cell())
                with pytest.raises(KeyboardInterrupt):
                    loop.run_until_complete(task)
                assert isinstance(task.exception(), KeyboardInterrupt)
            finally:
                loop.close()
    finally:
        timer.cancel()
    _wait_for_run_workers()
    gc.collect()
    outcomes = node.outcomes
    assert llm.stats.in_flight == 0 and llm.stats.cancelled >= 1
    assert 1 <= len(outcomes.results) <= 8 and outcomes.pending == []
    assert len(outcomes.results) + len(outcomes.cancelled) == 10
    assert outcomes.results == [llm.answer_for(p) for p, _ in outcomes.succeeded]
    assert "destroyed but it is pending" not in caplog.text + capfd.readouterr().err
    assert "never retrieved" not in caplog.text
