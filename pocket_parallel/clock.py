"""Run a coroutine to the end in real or virtual time, from a script or a notebook cell.

Virtual time comes from ``looptime``: an event loop whose clock jumps straight to the next
timer whenever every task is waiting. ``asyncio.sleep(1000)`` then returns at once, while
``loop.time()`` reports exactly 1000 s later, so a day of simulated LLM calls runs in a
blink and every makespan is exact.

A notebook cell already runs inside an event loop, where ``asyncio.run`` is refused. So when
a loop is running in this thread, :func:`run` starts a fresh loop in a worker thread and
waits for it. The coroutine must not touch objects bound to the notebook's own loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

import looptime

from ._validate import check_clock

Clock = Literal["real", "virtual"]
T = TypeVar("T")

# A virtual loop with no timer left and nothing ready would wait forever (a deadlock in the
# code it runs). After this many seconds with nothing to do it gives up with a clear error.
_IDLE_TIMEOUT = 2.0


class VirtualDeadlockError(RuntimeError):
    """Every task waited on something that never came, so virtual time had nowhere to jump."""


def new_loop(clock: Clock = "real") -> asyncio.AbstractEventLoop:
    """A new event loop keeping real or virtual time (not set as the current loop)."""
    if check_clock(clock) == "virtual":
        # noop_cycles: looptime idles 42 loop turns before each jump by default, a guard for
        # I/O arriving from outside. Nothing run here waits on outside I/O, so it jumps at
        # once: the same times, with half the loop turns of even one idle turn per jump.
        return looptime.new_event_loop(start=0.0, idle_timeout=_IDLE_TIMEOUT, noop_cycles=0)
    return asyncio.new_event_loop()


def run(coro: Coroutine[Any, Any, T], clock: Clock = "real") -> T:
    """Run ``coro`` to completion on a new event loop and return its result.

    ``clock="real"`` waits for real; ``clock="virtual"`` jumps over every wait, and the
    loop's clock starts at 0 s. Works from a plain script and from a notebook cell.
    Exceptions raised by ``coro`` come back out of ``run``; a ``KeyboardInterrupt`` (the
    notebook's stop button) cancels the coroutine and every task it started.
    """
    if not asyncio.iscoroutine(coro):
        raise TypeError(
            f"coro must be a coroutine object such as flow.run_async(shared); got {type(coro).__name__}"
        )
    try:
        check_clock(clock)
    except ValueError:
        coro.close()  # never awaited: close it so Python does not warn about it
        raise
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_on_new_loop(coro, clock)
    result: T = _LoopThread(coro, clock).result()
    return result


def _run_on_new_loop(coro: Coroutine[Any, Any, T], clock: Clock, started: "_LoopThread | None" = None) -> T:
    loop = new_loop(clock)
    try:
        asyncio.set_event_loop(loop)
        main = loop.create_task(coro)
        if started is not None:
            started.attach(loop, main)
        try:
            return loop.run_until_complete(main)
        except looptime.IdleTimeoutError as error:
            raise VirtualDeadlockError(
                "virtual clock: every task is waiting and no timer is set, so nothing can ever "
                "happen (a stalled call with no timeout, a deadlock, or a wait on something "
                "outside the loop)"
            ) from error
        except KeyboardInterrupt:
            main.cancel()
            loop.run_until_complete(asyncio.gather(main, return_exceptions=True))
            raise
    finally:
        try:
            _cancel_leftover_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_leftover_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel and await tasks the coroutine started but did not wait for (as asyncio.run does)."""
    leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in leftovers:
        task.cancel()
    if leftovers:
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))


class _LoopThread:
    """Runs a coroutine on its own loop in a worker thread while the caller's thread waits."""

    def __init__(self, coro: Coroutine[Any, Any, Any], clock: Clock) -> None:
        self._coro, self._clock = coro, clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[Any] | None = None
        self._outcome: tuple[bool, Any] = (False, None)
        self._attached = threading.Event()
        # Waited on instead of Thread.join: a join interrupted by Ctrl-C can mark the thread
        # as stopped while it still runs (seen on 3.11), and we must wait for its clean-up.
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._work, name="pocket-parallel-run", daemon=True)

    def attach(self, loop: asyncio.AbstractEventLoop, main: asyncio.Task[Any]) -> None:
        self._loop, self._main = loop, main
        self._attached.set()

    def _work(self) -> None:
        try:
            self._outcome = (True, _run_on_new_loop(self._coro, self._clock, started=self))
        except BaseException as error:  # handed to the waiting thread, which re-raises it
            self._outcome = (False, error)
        finally:
            self._attached.set()
            self._finished.set()

    def result(self) -> Any:
        self._thread.start()
        try:
            while not self._finished.wait(timeout=0.1):
                pass
        except KeyboardInterrupt:
            self._attached.wait()
            if self._loop is not None and self._main is not None and not self._loop.is_closed():
                try:
                    self._loop.call_soon_threadsafe(self._main.cancel)
                except RuntimeError:
                    pass  # the loop closed in between: nothing left to cancel
            self._finished.wait()
            raise
        ok, value = self._outcome
        if ok:
            return value
        raise value


def is_virtual(loop: asyncio.AbstractEventLoop | None = None) -> bool:
    """Whether ``loop`` (by default the running one) keeps virtual time."""
    return bool(getattr(loop or asyncio.get_running_loop(), "looptime_on", False))
