"""Checks for exercise 6: blocking I/O goes to threads, CPU-bound work goes to processes.

These two checks run on the real clock, because threads, processes and the GIL are real. They
are built to be decided by facts, not by timing, so they never flap on a loaded machine:

- :func:`check_blocking_io` gives the student's ``fetch_all`` a blocking ``fetch(url)`` (it
  sleeps 0.2 s) that records which thread ran it and how many calls overlapped. Calls on the
  event loop's own thread, or fewer overlapping calls than URLs, are facts, not estimates.
- :func:`check_cpu_work` gives ``crunch_all`` a CPU-bound ``crunch(n)`` (counting primes) that
  records every call made in this process. A call on the loop's thread, or in a thread of this
  process, is again a fact; a call in another process leaves no record here. A heartbeat task
  ticking on the loop every 5 ms shows whether the loop stayed free while the student's code
  waited for the processes: a loop blocked by ``pool.map`` misses every tick.

Each check takes well under a second when the answer is right (about 0.2 s of downloads; about
0.3 s of prime counting spread over the cores).
"""

from __future__ import annotations

import asyncio
import inspect
import math
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from ..cpu_work import count_primes
from ._feedback import CheckResult, Fail, clip, run_check, run_student, sec

FETCH_SECONDS = 0.2
_HEARTBEAT = 0.005  # seconds between heartbeat ticks
_GUARD = 5.0  # wall-clock seconds a student's coroutine may take before the check gives up


def check_blocking_io(fetch_all: Callable[..., Any], *, seed: int | None = None) -> CheckResult:
    """Exercise 6a: check ``async def fetch_all(fetch, urls) -> list``.

    ``fetch(url)`` is a blocking download that takes 0.2 s. ``fetch_all`` must run one call per
    URL, all at once, without blocking the event loop (each call in a worker thread), and
    return the pages in the order of ``urls``.
    """
    _require_async_function("fetch_all", fetch_all)
    return run_check("Exercise 6a", lambda rng: _io(fetch_all, rng), seed, fetch_all)


def check_cpu_work(crunch_all: Callable[..., Any], *, seed: int | None = None) -> CheckResult:
    """Exercise 6b: check ``async def crunch_all(crunch, numbers) -> list``.

    ``crunch(n)`` is CPU-bound (it counts the primes below ``n`` in pure Python). ``crunch_all``
    must compute ``crunch(n)`` for every number in worker processes (so several cores can work
    at once) while the event loop stays free, and return the results in input order.
    """
    _require_async_function("crunch_all", crunch_all)
    return run_check("Exercise 6b", lambda rng: _cpu(crunch_all, rng), seed, crunch_all)


def _require_async_function(parameter: str, value: Any) -> None:
    if not callable(value) or isinstance(value, type):
        raise TypeError(f"{parameter} must be the async function {parameter} itself; got {type(value).__name__}")


def _must_be_async(function: Callable[..., Any], name: str) -> None:
    if not inspect.iscoroutinefunction(function):
        raise Fail(f"{name} is a plain function; the exercise asks for 'async def {name}(...)', so that it can "
                   f"await work running elsewhere while the event loop goes on with other tasks.")


# -- 6a: blocking I/O -----------------------------------------------------------------------------


class _BlockingFetch:
    """A blocking download: sleeps, then returns the page. Records threads and overlap."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.threads: list[int] = []
        self.in_flight = 0
        self.peak = 0

    def __call__(self, url: str) -> str:
        with self._lock:
            self.threads.append(threading.get_ident())
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            time.sleep(FETCH_SECONDS)
        finally:
            with self._lock:
                self.in_flight -= 1
        return page_of(url)


def page_of(url: str) -> str:
    """The page the simulated web server returns for ``url``."""
    return f"<html>{len(url)} bytes of {url}</html>"


async def _io_run(fetch_all: Callable[..., Any], fetch: _BlockingFetch, urls: list[str]) -> tuple[Any, int]:
    loop_thread = threading.get_ident()
    pages = await fetch_all(fetch, list(urls))
    return pages, loop_thread


def _io(fetch_all: Callable[..., Any], rng: random.Random) -> str:
    name = getattr(fetch_all, "__name__", "fetch_all")
    _must_be_async(fetch_all, name)
    count = rng.randint(3, 5)
    urls = [f"https://example.org/{rng.choice(('news', 'wiki', 'shop', 'docs'))}/{rng.randint(100, 999)}-{i}"
            for i in range(count)]
    fetch = _BlockingFetch()
    (pages, loop_thread), elapsed = run_student(_io_run(fetch_all, fetch, urls), name,
                                                f"fetching {count} URLs", clock="real", guard=_GUARD)
    expected = [page_of(url) for url in urls]
    if not isinstance(pages, (list, tuple)) or list(pages) != expected:
        raise Fail(f"{name} returned {clip(pages, 80)}; it should return the list of the {count} pages, "
                   f"fetch(url) for each URL, in the order of the URLs. asyncio.gather keeps that order.")
    on_loop = fetch.threads.count(loop_thread)
    if on_loop:
        raise Fail(f"{name} called the blocking fetch on the event loop's own thread ({on_loop} of {count} calls), "
                   f"so the loop stood still during each {sec(FETCH_SECONDS)} download: nothing else could run "
                   f"and the downloads could not overlap ({elapsed:.2f} s (wall clock) for {count} of them). "
                   f"Hint: 'await asyncio.to_thread(fetch, url)' runs the call in a worker thread and frees the "
                   f"loop while it waits; gather one of those per URL.")
    if not fetch.threads:
        raise Fail(f"{name} returned the right pages, but no call to fetch ran in this process: it used other "
                   f"processes. That works, but a whole interpreter per download is the most expensive way to "
                   f"wait: waiting needs no CPU, so threads (asyncio.to_thread) are enough.")
    if fetch.peak < count:
        how = ("one at a time: each call was awaited before the next one started"
               if fetch.peak == 1 else f"at most {fetch.peak} at a time")
        raise Fail(f"{name} ran fetch in worker threads (good: the loop stayed free), but {how}, so {count} "
                   f"downloads took {elapsed:.2f} s (wall clock) instead of about {sec(FETCH_SECONDS)}. Hint: "
                   f"create one asyncio.to_thread(fetch, url) per URL and await them together with "
                   f"asyncio.gather.")
    return (f"{name} ran a fresh batch of blocking downloads. Every call ran in a worker thread while the "
            f"event loop stayed free, all of them overlapped, so the batch took about as long as one "
            f"download, and the pages came back in the order of the URLs. asyncio.to_thread is the tool for "
            f"blocking I/O inside async code.")


# -- 6b: CPU-bound work ---------------------------------------------------------------------------

_CALLS_HERE: list[tuple[int, int]] = []  # (pid, thread) of every crunch call made in this process
_CALLS_LOCK = threading.Lock()


def crunch(n: int) -> int:
    """CPU-bound work for exercise 6b: the number of primes below ``n`` (pure Python).

    Importable from this module, so a process pool can send it to its workers with any start
    method. Each call made in this process is recorded for the check.
    """
    with _CALLS_LOCK:
        _CALLS_HERE.append((os.getpid(), threading.get_ident()))
    return count_primes(n)


def _primes_below(limit: int) -> int:
    """The same count as :func:`~pocket_parallel.cpu_work.count_primes`, fast (a sieve)."""
    if limit < 3:
        return 0
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\x00\x00"
    for n in range(2, math.isqrt(limit - 1) + 1):
        if sieve[n]:
            sieve[n * n::n] = bytes(len(range(n * n, limit, n)))
    return sum(sieve)


async def _cpu_run(crunch_all: Callable[..., Any], numbers: list[int]) -> tuple[Any, int, float]:
    loop_thread = threading.get_ident()
    ticks: list[float] = []

    async def heartbeat() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(_HEARTBEAT)

    beat = asyncio.ensure_future(heartbeat())
    await asyncio.sleep(0)  # the first tick
    start = time.perf_counter()
    try:
        results = await crunch_all(crunch, list(numbers))
    finally:
        end = time.perf_counter()
        beat.cancel()
        await asyncio.gather(beat, return_exceptions=True)
    moments = [start, *(t for t in ticks if start < t < end), end]
    frozen = max(b - a for a, b in zip(moments, moments[1:]))
    return results, loop_thread, frozen


def _cpu(crunch_all: Callable[..., Any], rng: random.Random) -> str:
    name = getattr(crunch_all, "__name__", "crunch_all")
    _must_be_async(crunch_all, name)
    numbers = [rng.randint(60_000, 80_000) for _ in range(4)]
    with _CALLS_LOCK:
        _CALLS_HERE.clear()
    (results, loop_thread, frozen), elapsed = run_student(_cpu_run(crunch_all, numbers), name,
                                                          f"crunching {len(numbers)} numbers", clock="real", guard=_GUARD)
    with _CALLS_LOCK:
        here = [thread for pid, thread in _CALLS_HERE if pid == os.getpid()]
    expected = [_primes_below(n) for n in numbers]
    if not isinstance(results, (list, tuple)) or list(results) != expected:
        raise Fail(f"{name} returned {clip(results, 80)}; it should return [crunch(n) for n in numbers], in "
                   f"the order of the numbers ({expected}). asyncio.gather keeps that order.")
    if loop_thread in here:
        raise Fail(f"{name} ran crunch on the event loop's own thread, so the loop was frozen for "
                   f"{frozen:.2f} s (wall clock): no other task could run, and the jobs ran one after another "
                   f"on one core. CPU-bound work never reaches an await that waits, so async alone cannot "
                   f"overlap it. Hint: run each call in a process pool, "
                   f"'await loop.run_in_executor(pool, crunch, n)' with pool a ProcessPoolExecutor.")
    if here:
        raise Fail(f"{name} kept the event loop free (good) by running crunch in threads of this process. But "
                   f"threads take turns holding the GIL, so {len(numbers)} CPU-bound jobs still ran one at a "
                   f"time, on one core. Hint: use a concurrent.futures.ProcessPoolExecutor and "
                   f"'await loop.run_in_executor(pool, crunch, n)' for each number: processes compute side by side.")
    if elapsed > 0.05 and frozen > 0.5 * elapsed:
        raise Fail(f"{name} ran crunch in other processes (good), but the event loop was frozen for {frozen:.2f} s "
                   f"(wall clock) of the {elapsed:.2f} s (wall clock) it took: it waited for the pool with a "
                   f"blocking call (pool.map(...) or future.result()), so no other task could run meanwhile. "
                   f"Hint: 'await loop.run_in_executor(pool, crunch, n)' per number, gathered, waits without "
                   f"blocking the loop.")
    return (f"{name} computed a fresh batch of CPU-bound jobs in worker processes, so several cores could work "
            f"at once, while the event loop kept ticking the whole time; the results came back in the order of "
            f"the numbers. For CPU-bound work, asyncio and threads only take turns under the GIL; processes "
            f"compute side by side.")
