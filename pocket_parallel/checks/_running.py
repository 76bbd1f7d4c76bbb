"""Running the student's code inside the check's subprocess, and reporting how it went as plain data.

Everything here runs in the subprocess of :mod:`._sandbox`, never in the notebook's kernel.
:func:`run_answer` runs a coroutine that drives the student's code on the real or the virtual
clock and says how it ended: normally, with an exception (described by :func:`error_info`:
its type names, a one-line description naming the function and line of the student's code,
the stub's hint if it was a ``NotImplementedError``), by waiting forever (on the virtual clock a
deadlock ends at once, since virtual time jumps straight to the guard), or by keeping a
virtual loop busy for :data:`WALL_LIMIT` real seconds (a watchdog thread cancels it). The check
in the kernel turns that into a sentence (:func:`._feedback.failure_for`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from ..backends.protocol import set_default_llm
from ..clock import Clock, VirtualDeadlockError, run
from ._calls import Origins
from ._errors import error_info

#: Real seconds a virtual-clock run may take before it is cancelled (normally milliseconds); the
#: check sends its own value with each subprocess it starts.
WALL_LIMIT = 10.0
#: The folder the check gave this subprocess to work in (it removes it afterwards).
FOLDER = "."


class BuildFailed(Exception):
    """The student's class or factory raised while the check built it; ``info`` describes the error."""

    def __init__(self, info: dict[str, Any]) -> None:
        super().__init__(info["text"])
        self.info = info


def build_answer(factory: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``factory(*args, **kwargs)``, or :class:`BuildFailed` describing what it raised."""
    try:
        return factory(*args, **kwargs)
    except Exception as error:  # a student's constructor can raise anything
        raise BuildFailed(error_info(error)) from None


def run_answer(
    make: Callable[[], Coroutine[Any, Any, Any]],
    *,
    clock: Clock = "virtual",
    guard: float = 3600.0,
    llm: Any = None,
    origins: Origins | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Run the coroutine ``make()`` returns and report ``(its value or None, how it ended)``.

    How it ended is a dict: ``ended`` (``"ok"``, ``"raised"``, ``"timeout"``, ``"deadlock"`` or
    ``"wall_limit"``), ``seconds`` (on ``clock``; rounded to the microsecond on the virtual
    clock), ``error`` (:func:`error_info`, or None) and ``guard``. While it runs, ``llm`` is the
    backend behind ``call_llm_async`` and ``origins`` notes which task started which.
    """
    fired = threading.Event()
    started: list[float] = []

    async def timed() -> Any:
        loop = asyncio.get_running_loop()
        if origins is not None:
            origins.install(loop)
        with _watchdog(loop, asyncio.current_task(), WALL_LIMIT if clock == "virtual" else None, fired):
            started.append(loop.time())
            try:
                value = await asyncio.wait_for(make(), timeout=guard)
            except asyncio.CancelledError:
                if fired.is_set():
                    raise _WallLimit() from None
                raise
            return value, loop.time() - started[0]

    report: dict[str, Any] = {"ended": "ok", "seconds": None, "error": None, "guard": guard}
    value = None
    try:
        with default_llm(llm):
            value, seconds = run(timed(), clock=clock)
        report["seconds"] = round(seconds, 6) if clock == "virtual" else seconds
    except _WallLimit:
        report["ended"] = "wall_limit"
        report["wall_limit"] = WALL_LIMIT
    except asyncio.TimeoutError:
        report["ended"] = "timeout"
    except VirtualDeadlockError:
        report["ended"] = "deadlock"
    except Exception as error:
        report["ended"], report["error"] = "raised", error_info(error)
    return value, report


class _WallLimit(Exception):
    """The watchdog cancelled a virtual-clock run that kept the loop busy for WALL_LIMIT real seconds."""


@contextmanager
def _watchdog(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any] | None, seconds: float | None,
              fired: threading.Event) -> Iterator[None]:
    """After ``seconds`` of real time, cancel ``task`` from another thread and set ``fired``.

    A virtual clock only moves when every task waits. Code that keeps the loop busy (a task
    that awaits ``asyncio.sleep(0)`` forever) never lets it move, so no timer inside the loop,
    not even the run's guard, can end it; a thread can. (Code that never returns to the loop
    at all is stopped from outside: the check ends the whole subprocess.)
    """

    def fire() -> None:
        fired.set()
        try:
            loop.call_soon_threadsafe(task.cancel)  # type: ignore[union-attr]
        except RuntimeError:
            pass  # the loop has closed meanwhile: the run is over anyway

    timer = threading.Timer(seconds, fire) if seconds is not None and task is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()


@contextmanager
def default_llm(llm: Any) -> Iterator[None]:
    """Make ``llm`` the service behind ``call_llm_async`` for the duration (no-op for None)."""
    if llm is None:
        yield
        return
    previous = set_default_llm(llm)
    try:
        yield
    finally:
        set_default_llm(previous)
