"""Call a student's function and make sure it only computes: it may not run anything.

Exercise 3 asks for a prediction by arithmetic. A function that runs the batch (the course's
node on the virtual clock, its own asyncio semaphore, the simulated LLM, sleeps in threads)
gets the right number without predicting anything, so the check has to see *how* the number
came about. While the function runs, a profile hook (``sys.setprofile``, per thread) looks at
every call it makes, and stops it at the first call into something that runs instead of
computes:

- asyncio (an event loop, a task, a sleep, a semaphore), looptime (the virtual clock) and
  :func:`pocket_parallel.run`;
- PocketFlow (building or running a node or flow) and the simulated LLM (calling it);
- ``time.sleep``, threads and processes (``Thread.start``, ``concurrent.futures``,
  ``multiprocessing``, ``subprocess``, ``os.system``, ``os.fork``);
- the check's own code (its reference schedule).

These are facts about the run, not timings, so the verdict never depends on the machine.
A trace hook (``sys.settrace``) adds a time limit, so that a loop that never ends becomes a
message instead of a hung cell. Both hooks are removed afterwards, whatever happened.
"""

from __future__ import annotations

import _thread
import asyncio
import concurrent.futures
import functools
import gc
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

import pocketflow

from ..backends.simulated import SimulatedLLM
from ..clock import run
from ..experiment import semaphore_makespan

#: Real seconds the function may compute before the check stops it (arithmetic takes microseconds).
TIME_LIMIT = 5.0


class RanSomething(Exception):
    """The function called something that runs a batch instead of computing its makespan."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class TooSlow(Exception):
    """The function was still computing after :data:`TIME_LIMIT` seconds."""


class _Stop(BaseException):
    """Raised from the hooks into the function; a BaseException, so ``except Exception`` lets it through."""


def _folder(module: Any) -> str:
    return os.path.dirname(_real(module.__file__))


def _file(module_or_function: Any) -> str:
    code = getattr(module_or_function, "__code__", None)
    return _real(code.co_filename if code is not None else module_or_function.__file__)


def _forbidden_places() -> tuple[dict[str, str], dict[str, str], dict[CodeType, str], dict[int, str]]:
    """(folders, files, code objects, builtins by id) that the function may not call, each with what it means."""
    folders = {
        _folder(asyncio): "used asyncio (an event loop, a task, a sleep or a semaphore)",
        _folder(concurrent.futures): "started threads or processes (concurrent.futures)",
        _folder(multiprocessing): "started processes (multiprocessing)",
        os.path.dirname(_real(__file__)): "called the check's own code",
    }
    try:
        import looptime
    except ImportError:  # pragma: no cover - a dependency of the course
        pass
    else:
        folders[_folder(looptime)] = "ran a virtual clock (looptime)"
    files = {
        _file(pocketflow): "built or ran a PocketFlow node",
        _file(run): "called pocket_parallel.run",
        _file(subprocess): "started a process (subprocess)",
    }
    codes = {
        SimulatedLLM.__call__.__code__: "called the simulated LLM",
        SimulatedLLM.call.__code__: "called the simulated LLM",
        threading.Thread.start.__code__: "started a thread",
        # The library's in-order schedule is the check's own truth: calling it is no prediction.
        semaphore_makespan.__code__: "called the check's own code (pocket_parallel.experiment.semaphore_makespan)",
    }
    builtins: dict[int, str] = {id(time.sleep): "slept (time.sleep)"}
    for name in ("start_new_thread", "start_joinable_thread"):
        if hasattr(_thread, name):
            builtins[id(getattr(_thread, name))] = "started a thread"
    for name in ("system", "fork", "posix_spawn"):
        if hasattr(os, name):
            builtins[id(getattr(os, name))] = "started a process"
    return folders, files, codes, builtins


# Output machinery a print() inside the function goes through (a notebook's output stream uses
# threads and asyncio of its own): calls made on its behalf are not the function running anything.
_OUTPUT_MACHINERY = ("ipykernel", "IPython", "zmq", "tornado", "jupyter_client", "traitlets", "comm")


def _output_folders() -> tuple[str, ...]:
    loaded = (sys.modules.get(name) for name in _OUTPUT_MACHINERY)
    return tuple(_folder(module) + os.sep for module in loaded if module is not None and getattr(module, "__file__", None))


def call_computing_only(function: Callable[..., Any], *args: Any, time_limit: float | None = None) -> Any:
    """``function(*args)``, or :class:`RanSomething` / :class:`TooSlow` if it did more than compute.

    Exceptions the function raises itself come out unchanged. ``time_limit`` defaults to
    :data:`TIME_LIMIT` (read at call time, so tests can shorten it).
    """
    limit = TIME_LIMIT if time_limit is None else time_limit
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
        raise ValueError(f"time_limit must be a number of seconds > 0; got {limit!r}")
    folders, files, codes, builtins = _forbidden_places()
    exempt = _output_folders()
    boundary = sys._getframe()  # frames from here up are the check's and the notebook's, not the function's
    verdict: list[str] = []  # what stopped it; kept even if the function swallows _Stop
    deadline = time.perf_counter() + limit

    def stop(what: str, frame: FrameType | None = None) -> None:
        if frame is not None and _called_for_output(frame, exempt, boundary):
            return
        if not verdict:
            verdict.append(what)
        raise _Stop(what)

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            filename = _real(code.co_filename)
            what = codes.get(code) or files.get(filename) or _in_folder(filename, folders)
            if what:
                stop(what, frame.f_back)
        elif event == "c_call" and id(arg) in builtins:
            stop(builtins[id(arg)], frame)

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        if time.perf_counter() > deadline:
            stop("too slow")
        return trace

    previous_profile, previous_trace = sys.getprofile(), sys.gettrace()
    stopped: _Stop | None = None
    try:
        sys.setprofile(profile)
        sys.settrace(trace)
        try:
            value = function(*args)
        finally:
            sys.settrace(previous_trace)
            sys.setprofile(previous_profile)
    except _Stop as error:
        stopped = error
    if stopped is not None:  # out of the except block, where Python 3.10 still holds the traceback
        _forget_quietly(stopped)
    if verdict:
        if verdict[0] == "too slow":
            raise TooSlow(f"still computing after {limit:g} s")
        raise RanSomething(verdict[0])
    return value


@functools.lru_cache(maxsize=4096)
def _real(filename: str) -> str:
    if not filename or filename.startswith("<"):
        return filename
    try:
        return os.path.realpath(filename)
    except (OSError, ValueError):
        return filename


def _called_for_output(frame: FrameType | None, exempt: tuple[str, ...], boundary: FrameType) -> bool:
    """Whether ``frame`` or a frame that called it, below ``boundary``, belongs to a notebook's output machinery."""
    while frame is not None and frame is not boundary and exempt:
        if _real(frame.f_code.co_filename).startswith(exempt):
            return True
        frame = frame.f_back
    return False


def _in_folder(filename: str, folders: dict[str, str]) -> str | None:
    if not filename or filename.startswith("<"):
        return None
    for folder, what in folders.items():
        if filename.startswith(folder + os.sep):
            return what
    return None


def _forget_quietly(stopped: BaseException) -> None:
    # Stopping a function half way can leave a coroutine it made unawaited; Python would warn
    # about it when its frame is freed. The warning is the check's doing, not the student's.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stopped.__traceback__ = None
        gc.collect(1)  # the frames it made are young; a full collection would cost a notebook tens of ms
