"""count_primes: the CPU-bound job of the GIL notebook, checked against a sieve; count_primes_measured."""

from __future__ import annotations

import multiprocessing
import os
import pickle
from concurrent.futures import ProcessPoolExecutor

import pytest

from pocket_parallel.cpu_work import Measured, count_primes, count_primes_measured


def _sieve_count(limit: int) -> int:
    if limit < 3:
        return 0
    flags = bytearray([1]) * limit
    flags[0:2] = b"\x00\x00"
    for n in range(2, int(limit**0.5) + 1):
        if flags[n]:
            flags[n * n :: n] = bytearray(len(range(n * n, limit, n)))
    return sum(flags)


@pytest.mark.parametrize("limit", [0, 1, 2, 3, 4, 100, 1000, 7919, 7920, 20_000])
def test_counts_primes_below_limit(limit):
    assert count_primes(limit) == _sieve_count(limit)


def test_known_value():
    assert count_primes(100) == 25  # 2, 3, 5, ..., 97


@pytest.mark.parametrize("bad", [-1, 10_000_001, 2.5, "100", True, None])
def test_bad_limit_is_refused_with_its_name(bad):
    with pytest.raises(ValueError, match="limit"):
        count_primes(bad)


def test_pickles_by_reference_so_any_process_pool_start_method_finds_it():
    assert pickle.loads(pickle.dumps(count_primes)) is count_primes


def test_measured_reports_value_process_and_times():
    result = count_primes_measured(20_000)
    assert isinstance(result, Measured)
    assert result.value == count_primes(20_000) and result.worker == os.getpid()
    assert 0 < result.cpu and 0 < result.wall
    assert result.cpu <= result.wall * 1.05 + 0.01  # one thread cannot use more than one core's time


def test_measured_runs_in_a_worker_process_and_names_it():
    # forkserver, not fork: this process runs threads, and a forked child can deadlock on their locks.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("forkserver")) as pool:
        result = pool.submit(count_primes_measured, 100).result()
    assert result.value == 25 and result.worker != os.getpid()


def test_measured_refuses_a_bad_limit_like_count_primes():
    with pytest.raises(ValueError, match="limit"):
        count_primes_measured(-1)
