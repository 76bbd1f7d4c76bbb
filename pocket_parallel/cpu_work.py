"""CPU-bound work for the GIL notebook: pure-Python loops that keep one core busy.

Functions sent to a ``ProcessPoolExecutor`` are pickled by reference (module and name)
and looked up again in the worker process. A function defined in a notebook cell lives in
``__main__``, which a worker started with ``spawn`` (the default on macOS and Windows) or
``forkserver`` (the default on Linux from Python 3.14) does not have. Functions in this
importable module work with every start method.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from ._validate import check_int


def count_primes(limit: int) -> int:
    """How many primes are below ``limit``, by trial division in pure Python.

    Deliberately slow: every step is a Python bytecode that holds the GIL, so the call
    is CPU-bound from start to end. ``limit`` is an integer in ``[0, 10_000_000]``;
    ``count_primes(100)`` is 25.
    """
    limit = check_int("limit", limit, low=0, high=10_000_000)
    count = 0
    for n in range(2, limit):
        divisor = 2
        while divisor * divisor <= n:
            if n % divisor == 0:
                break
            divisor += 1
        else:
            count += 1
    return count


@dataclass(frozen=True)
class Measured:
    """A result with the facts of how it was computed, measured where it ran.

    ``worker`` is the process id that ran it; ``cpu`` the seconds of processor time that
    process used for it (``time.process_time``); ``wall`` the seconds that passed meanwhile
    (``time.perf_counter``). ``cpu`` well below ``wall`` means the process was waiting for a
    core: other programs had it.
    """

    value: int
    worker: int
    cpu: float
    wall: float


def count_primes_measured(limit: int) -> Measured:
    """:func:`count_primes`, returned with the worker's process id, CPU time and elapsed time.

    Sent to a process pool, it tells the parent what each worker saw: how long the job took
    there, and how much of that time the worker actually had a core.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    value = count_primes(limit)
    return Measured(value, os.getpid(), time.process_time() - cpu, time.perf_counter() - wall)
