"""run(): real and virtual clocks, from a script and from inside a running loop (as in a notebook)."""

from __future__ import annotations

import asyncio
import time

import pytest

from pocket_parallel import SimulatedLLM, VirtualDeadlockError, run


async def slept(seconds: float) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.sleep(seconds)
    return loop.time() - start


def test_virtual_clock_jumps_over_waits():
    wall = time.perf_counter()
    assert run(slept(3600), clock="virtual") == pytest.approx(3600, abs=1e-6)
    assert time.perf_counter() - wall < 600  # an hour of virtual time, not an hour of waiting


def test_virtual_clock_starts_at_zero():
    async def now():
        return asyncio.get_running_loop().time()

    assert run(now(), clock="virtual") == 0.0


def test_real_clock_really_waits():
    wall = time.perf_counter()
    elapsed = run(slept(0.05), clock="real")
    assert elapsed >= 0.05 and time.perf_counter() - wall >= 0.05


@pytest.mark.parametrize("clock", ["real", "virtual"])
def test_works_inside_a_running_loop_like_a_notebook_cell(clock):
    async def cell():
        # A notebook cell: a loop is already running in this thread.
        return run(slept(0.01), clock=clock)

    assert asyncio.run(cell()) == pytest.approx(0.01, abs=0.05)


def test_exceptions_come_back_out():
    async def boom():
        raise KeyError("lost item")

    with pytest.raises(KeyError, match="lost item"):
        run(boom(), clock="virtual")

    async def cell():
        return run(boom(), clock="virtual")

    with pytest.raises(KeyError, match="lost item"):
        asyncio.run(cell())


def test_leftover_tasks_are_cancelled_not_leaked():
    started = []

    async def forgets_a_task():
        async def background():
            started.append(True)
            await asyncio.sleep(10**6)

        asyncio.ensure_future(background())
        await asyncio.sleep(0)
        return "done"

    assert run(forgets_a_task(), clock="virtual") == "done"
    assert started == [True]


def test_bad_clock_and_bad_coroutine_are_refused():
    with pytest.raises(ValueError, match="clock must be one of 'real', 'virtual'"):
        run(slept(1), clock="wall")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="coro must be a coroutine"):
        run(slept, clock="virtual")  # type: ignore[arg-type]


def test_virtual_deadlock_is_an_error_not_a_hang():
    async def waits_forever():
        await asyncio.Event().wait()

    wall = time.perf_counter()
    with pytest.raises(VirtualDeadlockError, match="deadlock"):
        run(waits_forever(), clock="virtual")
    assert time.perf_counter() - wall < 15


import gc
import logging
import signal
import threading

import pytest

from tests.support import AskNode, prompts


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


def _interrupt_when(event: threading.Event, unless: threading.Event) -> threading.Thread:
    """Interrupt the main thread, as Ctrl-C or a kernel interrupt does, once ``event`` is set (unless ``unless`` is)."""

    main = threading.main_thread().ident
    assert main is not None

    def interrupt() -> None:
        if event.wait(60) and not unless.is_set():
            # A real SIGINT to the main thread: it wakes a blocked select() as Ctrl-C does
            # (_thread.interrupt_main only sets a flag, seen when the loop next wakes up).
            signal.pthread_kill(main, signal.SIGINT)

    thread = threading.Thread(target=interrupt, name="interrupter")
    thread.start()
    return thread


@pytest.mark.parametrize("where", ["script", "notebook cell"])
def test_keyboard_interrupt_through_run_stops_cleanly(where, caplog, capfd):
    # Two quick calls, then calls that last until the interrupt: it comes when the third item
    # starts, whatever the machine's speed, while calls are in flight.
    quick, slow = SimulatedLLM(latency=0.05), SimulatedLLM(latency=3600)
    third_started, finished = threading.Event(), threading.Event()

    class Interrupted(AskNode):
        async def exec_async(self, prompt):
            if prompt in items[:2]:
                return await quick(prompt)
            third_started.set()
            return await slow(prompt)

    items = prompts(10)
    node = Interrupted(quick, max_concurrency=2)
    coro = node.run_async({"prompts": items})
    caplog.set_level(logging.DEBUG, logger="asyncio")
    # Python's own Ctrl-C handler, even where the suite was started in the background (then
    # the shell made SIGINT ignored, and Python kept it so).
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupter = _interrupt_when(third_started, unless=finished)
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
        finished.set()
        third_started.set()
        interrupter.join()
        signal.signal(signal.SIGINT, handler)
    _wait_for_run_workers()
    gc.collect()
    outcomes = node.outcomes
    assert quick.stats.in_flight == slow.stats.in_flight == 0 and slow.stats.cancelled >= 1
    assert 1 <= len(outcomes.results) <= 2 and outcomes.pending == []
    assert len(outcomes.results) + len(outcomes.cancelled) == 10
    assert outcomes.results == [quick.answer_for(p) for p, _ in outcomes.succeeded]
    assert "destroyed but it is pending" not in caplog.text + capfd.readouterr().err
    assert "never retrieved" not in caplog.text
