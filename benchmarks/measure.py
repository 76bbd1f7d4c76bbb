"""Measure one contender: a timed run in this process, a memory run in a fresh one.

Timing: each async run gets a new event loop (``pocket_parallel.run``), and the clock is
read inside it, just around the contender, so loop set-up and tear-down are left out; the
thread pool is timed from creating the pool to its shutdown, since starting threads is part
of its cost. The cyclic garbage collector stays on (users run with it on); a full collection
runs before each timed run so no run pays for the previous one's garbage.

Memory: growth of the resident set (RSS) from just before the run to its peak, in a child
forked for that run alone from a clean helper process that has imported the contenders but
never run one, so a run never reuses memory an earlier run freed. RSS, unlike ``tracemalloc``, also counts thread
stacks and C-level allocations, which matters for the thread pool. It is a separate run
from the timed ones: nothing measured for memory slows the clock.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pocket_parallel import run
from pocket_parallel.clock import Clock, check_clock

from . import contenders
from .contenders import Contender


@dataclass(frozen=True)
class Timing:
    """One run: real seconds it took, and seconds on the event loop's clock (virtual or real)."""

    wall: float
    loop: float


async def _timed(
    contender: Contender, n: int, limit: int | None, latency: float, timeout: float
) -> tuple[Timing, Any]:
    loop = asyncio.get_running_loop()
    this = asyncio.current_task()
    assert this is not None
    # A timer that cancels this task, rather than asyncio.wait_for, which would add a task per run.
    guard = loop.call_later(timeout, this.cancel)
    loop_start, wall_start = loop.time(), time.perf_counter()
    try:
        results = await contender.run(n, limit, latency)
    except asyncio.CancelledError:
        if loop.time() - loop_start >= timeout:
            raise RuntimeError(f"{contender.label} at N = {n} took over {timeout:g} s: stopped") from None
        raise
    finally:
        guard.cancel()
    wall, on_loop = time.perf_counter() - wall_start, loop.time() - loop_start
    return Timing(wall, on_loop), results


def time_once(
    contender: Contender, n: int, limit: int | None, latency: float, clock: Clock = "real", timeout: float = 600.0
) -> Timing:
    """Run ``contender`` once over ``n`` items and return how long it took; checks its results.

    An async run still going after ``timeout`` seconds (on the loop's clock) is cancelled
    with a RuntimeError, so a contender that deadlocks cannot hang the benchmark.
    """
    check_clock(clock)
    gc.collect()
    if contender.blocking:
        if clock != "real":
            raise ValueError(f"clock must be 'real' for {contender.label}: threads cannot run on a virtual clock")
        start = time.perf_counter()
        results = contender.run(n, limit, latency)
        elapsed = time.perf_counter() - start
        timing = Timing(elapsed, elapsed)
    else:
        timing, results = run(_timed(contender, n, limit, latency, timeout), clock=clock)
    contenders.check_results(contender, n, results)
    return timing


# -- memory: RSS growth in a fresh process ------------------------------------------------------

_STATUS = "/proc/self/status"


def _status_kib(field: str) -> int:
    with open(_STATUS) as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from {_STATUS}")


def _reset_peak() -> None:
    # Writing 5 to clear_refs resets this process's peak RSS (VmHWM) to its current RSS
    # (Linux 4.0 and later); without it the peak would include the server's start-up.
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass  # older kernels: the peak may include start-up memory, an overestimate


def memory_supported() -> bool:
    """Whether RSS can be read here (Linux ``/proc``); elsewhere memory is reported as n/a."""
    return os.path.exists(_STATUS)


def _measure_here(key: str, n: int, limit: int | None, latency: float, clock: str) -> dict[str, float]:
    """One run in this process (meant for a freshly forked child): its peak RSS growth in bytes,
    real seconds (``wall``) and seconds on its loop's clock (``loop``), timed as :func:`time_once` times."""
    contender = contenders.get(key)
    gc.collect()
    _reset_peak()
    before = _status_kib("VmRSS")
    if contender.blocking:
        start = time.perf_counter()
        results = contender.run(n, limit, latency)
        timing = Timing(time.perf_counter() - start, time.perf_counter() - start)
    else:
        timing, results = run(_timed(contender, n, limit, latency, 86_400.0), clock=clock)  # type: ignore[arg-type]
    peak = _status_kib("VmHWM")
    contenders.check_results(contender, n, results)
    return {"rss": max(0, peak - before) * 1024, "wall": timing.wall, "loop": timing.loop, "peak": peak * 1024}


def serve() -> None:
    """The memory server's loop: one JSON request per stdin line, one forked child per request.

    The server itself never runs a workload, so every child starts from the same clean heap
    and cannot reuse memory an earlier run freed. Answers ``["ok", bytes]`` or
    ``["error", text]``, one JSON line each, on stdout.
    """
    for line in sys.stdin:
        request = json.loads(line)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: measure, report through the pipe, and leave without cleanup
            os.close(read_end)
            try:
                answer: list[Any] = ["ok", _measure_here(**request)]
            except BaseException as error:
                answer = ["error", f"{type(error).__name__}: {error}"]
            os.write(write_end, json.dumps(answer).encode())
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            data = pipe.read()
        os.waitpid(pid, 0)
        print(data.decode() if data else json.dumps(["error", "the measuring process died"]), flush=True)


class MemoryServer:
    """A clean helper process (``python -m benchmarks.measure``) that forks one child per memory run."""

    def __init__(self) -> None:
        root = Path(__file__).resolve().parent.parent
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.measure"], cwd=root, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, start_new_session=True,
        )

    def measure(
        self, key: str, n: int, limit: int | None, latency: float, clock: str, timeout: float
    ) -> dict[str, float]:
        """Send one request and wait at most ``timeout`` seconds for the answer."""
        assert self._process.stdin is not None and self._process.stdout is not None
        request = {"key": key, "n": n, "limit": limit, "latency": latency, "clock": clock}
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        ready, _, _ = select.select([self._process.stdout], [], [], timeout)
        if not ready:
            self.close()
            raise RuntimeError(f"memory run of {key} at N = {n} took over {timeout:g} s: stopped")
        line = self._process.stdout.readline()
        if not line:
            self.close()
            raise RuntimeError(f"the memory server stopped (exit code {self._process.poll()})")
        status, value = json.loads(line)
        if status != "ok":
            raise RuntimeError(f"memory run of {key} at N = {n} failed: {value}")
        answer: dict[str, float] = value
        return answer

    def alive(self) -> bool:
        """Whether the server still runs."""
        return self._process.poll() is None

    def close(self) -> None:
        """Stop the server and any run it has going (they share a process group)."""
        if self._process.poll() is None:
            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()


_server: MemoryServer | None = None


def memory_once(
    contender: Contender, n: int, limit: int | None, latency: float, clock: Clock = "real", timeout: float = 600.0
) -> int | None:
    """Peak RSS growth in bytes of one run in a freshly forked process, or None where RSS cannot be read.

    Raises RuntimeError if the run fails, loses items, or takes longer than ``timeout`` seconds.
    """
    fresh = fresh_once(contender, n, limit, latency, clock, timeout)
    return None if fresh is None else fresh.rss


@dataclass(frozen=True)
class FreshRun:
    """One run in a freshly forked process: real and loop seconds, RSS growth and peak RSS in bytes."""

    wall: float
    loop: float
    rss: int
    peak: int


def fresh_once(
    contender: Contender, n: int, limit: int | None, latency: float, clock: Clock = "real", timeout: float = 600.0
) -> FreshRun | None:
    """Time one run and its memory in a freshly forked process (None where that is not possible here).

    Each run starts from the same clean heap, so no run benefits from memory an earlier one
    left allocated, nor pays for garbage an earlier one left behind.
    """
    global _server
    check_clock(clock)
    if not memory_supported() or not hasattr(os, "fork"):
        return None
    if _server is None or not _server.alive():
        _server = MemoryServer()
        atexit.register(_server.close)
    answer = _server.measure(contender.key, n, limit, latency, clock, timeout)
    return FreshRun(answer["wall"], answer["loop"], int(answer["rss"]), int(answer["peak"]))


def stop_fresh_processes() -> None:
    """Stop the helper process that forks the fresh runs (started again on the next run if needed)."""
    global _server
    if _server is not None:
        _server.close()
        _server = None


if __name__ == "__main__":
    serve()
