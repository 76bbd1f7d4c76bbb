"""CPU-bound work for the GIL notebook: pure-Python loops that keep one core busy.

Functions sent to a ``ProcessPoolExecutor`` are pickled by reference (module and name)
and looked up again in the worker process. A function defined in a notebook cell lives in
``__main__``, which a worker started with ``spawn`` (the default on macOS and Windows) or
``forkserver`` (the default on Linux from Python 3.14) does not have. Functions in this
importable module work with every start method.

**Did the jobs compute at the same time?** An average (CPU seconds over elapsed seconds) cannot
tell: four threads taking turns on a quiet machine and two processes sharing a busy one can
show the same average. So :func:`count_primes_measured` also records *when* its job was
computing: the job reads two clocks after every fixed amount of its own work, the elapsed time
(``time.perf_counter``) and its thread's processor time (``time.thread_time``). A stretch between
two readings in which the thread had the processor nearly all along was spent computing; one
that lasted far longer than the thread computed was spent waiting, for the GIL or for a core.
:func:`peak_computing` then counts the most jobs computing at the same instant, and
:func:`overlap_seconds` how long two or more did. ``time.perf_counter`` reads one clock for every
process of the machine (on Linux, macOS and Windows), so jobs run in different processes compare.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from ._validate import check_int

# Trial divisions between two readings of the clocks: a few hundred microseconds of work on a
# laptop, far shorter than a GIL turn (5 ms) or an operating-system time slice.
_STRIDE = 4_000
# A stretch counts as computing when the thread had the processor for this share of it...
_COMPUTING_SHARE = 0.9
# ...or, where the thread's clock is too coarse to tell (Windows ticks every 15.6 ms), when it
# lasted at most this many times the job's usual stride.
_GAP_FACTOR = 3.0
_FINE_CLOCK = 1e-4  # seconds: a thread clock this fine tells a stretch of a few hundred microseconds
# Two jobs must compute together at least this long to count as computing at once: far below a
# GIL turn or a time slice, far above the instant of a hand-over between threads.
_AT_ONCE = 0.001


def _count_primes(limit: int, stamps: list[tuple[float, float]] | None) -> int:
    """Trial division below ``limit``; with ``stamps``, both clocks are read after every ``_STRIDE`` divisions."""
    count = 0
    work, next_stamp = 0, _STRIDE
    for n in range(2, limit):
        divisor = 2
        while divisor * divisor <= n:
            if n % divisor == 0:
                break
            divisor += 1
        else:
            count += 1
        if stamps is not None:
            work += divisor
            if work >= next_stamp:
                stamps.append((time.perf_counter(), time.thread_time()))
                next_stamp += _STRIDE
    return count


def count_primes(limit: int) -> int:
    """How many primes are below ``limit``, by trial division in pure Python.

    Deliberately slow: every step is a Python bytecode that holds the GIL, so the call
    is CPU-bound from start to end. ``limit`` is an integer in ``[0, 10_000_000]``;
    ``count_primes(100)`` is 25.
    """
    limit = check_int("limit", limit, low=0, high=10_000_000)
    return _count_primes(limit, None)


@dataclass(frozen=True)
class Measured:
    """A result with the facts of how it was computed, measured where it ran.

    ``worker`` is the process id that ran it and ``thread`` its thread's id; ``cpu`` the
    seconds of processor time that thread used for it (``time.thread_time``); ``start`` and
    ``end`` its first and last moment (``time.perf_counter``, seconds) and ``wall`` the time
    between. ``computing`` holds the ``(start, end)`` stretches in which the job was computing,
    on the same clock: between them it waited, for the GIL or for a core.
    """

    value: int
    worker: int
    thread: int
    cpu: float
    start: float
    end: float
    computing: tuple[tuple[float, float], ...]

    @property
    def wall(self) -> float:
        """Seconds from the job's start to its end."""
        return self.end - self.start

    @property
    def computing_seconds(self) -> float:
        """Seconds the job spent computing: the stretches of :attr:`computing`, added up."""
        return sum(end - start for start, end in self.computing)

    def __repr__(self) -> str:
        return (f"<Measured {self.value:,} in {self.wall:.3f} s: computing {self.computing_seconds:.3f} s "
                f"in {len(self.computing)} stretches, {self.cpu:.3f} s CPU, process {self.worker}>")


def _computing(stamps: list[tuple[float, float]], fine_clock: bool) -> tuple[tuple[float, float], ...]:
    """The stretches between readings in which the job computed, adjacent ones merged."""
    gaps = [later[0] - earlier[0] for earlier, later in zip(stamps, stamps[1:])]
    if not gaps:
        return ()
    longest_stride = _GAP_FACTOR * statistics.median(gaps)
    stretches: list[tuple[float, float]] = []
    for (start, cpu_start), (end, cpu_end), gap in zip(stamps, stamps[1:], gaps):
        computed = cpu_end - cpu_start >= _COMPUTING_SHARE * gap if fine_clock else gap <= longest_stride
        if not computed:
            continue
        if stretches and stretches[-1][1] == start:
            stretches[-1] = (stretches[-1][0], end)
        else:
            stretches.append((start, end))
    return tuple(stretches)


def count_primes_measured(limit: int) -> Measured:
    """:func:`count_primes`, returned with where it ran, its CPU time, and when it was computing.

    Run in a thread or sent to a process pool, it tells the caller what each job saw: how
    long it took there, how much processor time its thread had, and the stretches of time in
    which it was computing rather than waiting (see :func:`peak_computing`).
    """
    limit = check_int("limit", limit, low=0, high=10_000_000)
    stamps = [(time.perf_counter(), time.thread_time())]
    value = _count_primes(limit, stamps)
    stamps.append((time.perf_counter(), time.thread_time()))
    fine_clock = time.get_clock_info("thread_time").resolution <= _FINE_CLOCK
    (start, cpu_start), (end, cpu_end) = stamps[0], stamps[-1]
    return Measured(value, os.getpid(), threading.get_ident(), cpu_end - cpu_start, start, end,
                    _computing(stamps, fine_clock))


def _check_jobs(jobs: Iterable[Measured]) -> list[Measured]:
    found = list(jobs)
    for job in found:
        if not isinstance(job, Measured):
            raise TypeError(f"jobs must be results of count_primes_measured; got a {type(job).__name__}")
    return found


def _edges(jobs: list[Measured]) -> list[tuple[float, int]]:
    """Every computing stretch's start (+1) and end (-1), in time order, ends first at a tie."""
    return sorted((moment, step) for job in jobs for start, end in job.computing for moment, step in ((start, 1), (end, -1)))


def peak_computing(jobs: Iterable[Measured]) -> int:
    """The most jobs computing at the same time, for at least a millisecond.

    1 for jobs that took turns (threads under the GIL), up to the number of cores for jobs that
    overlapped (processes, or threads on a free-threaded build); 0 for jobs too short to tell.
    """
    edges = _edges(_check_jobs(jobs))
    peak = now = 0
    for (moment, step), (following, _) in zip(edges, edges[1:]):
        now += step
        if following - moment >= _AT_ONCE:
            peak = max(peak, now)
    return peak


def overlap_seconds(jobs: Iterable[Measured]) -> float:
    """Seconds during which two or more of the jobs were computing at the same time."""
    total, now, since = 0.0, 0, 0.0
    for moment, step in _edges(_check_jobs(jobs)):
        if now >= 2:
            total += moment - since
        now, since = now + step, moment
    return total
