"""Which code made each call to the check's service: PocketFlow's per-item step, or something else.

PocketFlow retries an item and falls back for it in one place, ``AsyncNode._exec``, the
per-item step that calls ``exec_async``. A call made anywhere else (from ``prep_async`` or
``post_async``, or from a task started in ``prep_async`` and merely awaited in ``exec_async``)
gets no retries and no fallback, whatever ``max_retries`` says. So for every call the check's
service asks :meth:`Origins.here`: was that step on the way to this call, and which of the
student's functions were (innermost first)?

Within one task the way is the chain of frames (each awaiting coroutine is the caller of the
one it awaits). Across tasks it is remembered: a task factory notes, for every task started
while the student's code runs, the way to the code that started it, and a call inside that
task continues along it.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import weakref
from dataclasses import dataclass
from types import FrameType
from typing import Any

from pocketflow import AsyncNode

from ._errors import library_file

_STEP = AsyncNode._exec.__code__
_TASK_STEP = asyncio.events.Handle._run.__code__
_MAX_NAMES = 12


@dataclass(frozen=True)
class Origin:
    """How a call came about: ``step`` is True when PocketFlow's per-item step led to it;
    ``functions`` names the student's functions on the way, innermost first."""

    step: bool
    functions: tuple[str, ...]

    def joined(self, earlier: Origin | None) -> Origin:
        """This origin continued by ``earlier``, the origin of the code that started its task."""
        if earlier is None:
            return self
        return Origin(self.step or earlier.step, (self.functions + earlier.functions)[:_MAX_NAMES])

    def as_data(self) -> dict[str, Any]:
        """As JSON-safe data."""
        return {"step": self.step, "functions": list(self.functions)}


class Origins:
    """Remembers, for each task started on a loop, the origin of the code that started it."""

    def __init__(self) -> None:
        self._by_task: weakref.WeakKeyDictionary[asyncio.Future[Any], Origin] = weakref.WeakKeyDictionary()

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Note the origin of every task started on ``loop`` from now on (keeping any task factory it had)."""
        previous = loop.get_task_factory()

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future[Any]:
            origin = self._of(sys._getframe(1))
            task: asyncio.Future[Any] = (previous(loop, coro, **kwargs) if previous is not None
                                         else asyncio.Task(coro, loop=loop, **kwargs))
            self._by_task[task] = origin
            return task

        loop.set_task_factory(factory)

    def here(self) -> Origin:
        """The origin of the code that called this method's caller."""
        return self._of(sys._getframe(2))

    def _of(self, frame: FrameType | None) -> Origin:
        step, names = False, list[str]()
        while frame is not None and frame.f_code is not _TASK_STEP:  # below it: the event loop, not the way here
            code = frame.f_code
            if code is _STEP:
                step = True
            elif not _library(code.co_filename) and len(names) < _MAX_NAMES:
                names.append(code.co_name)
            frame = frame.f_back
        try:
            task = asyncio.current_task()
        except RuntimeError:
            task = None
        return Origin(step, tuple(names)).joined(self._by_task.get(task) if task is not None else None)


@functools.lru_cache(maxsize=4096)
def _library(filename: str) -> bool:
    return filename == "<string>" or library_file(filename)  # "<string>": the subprocess's own "-c" code
