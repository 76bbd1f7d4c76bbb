"""count_primes: the CPU-bound job of the GIL notebook, checked against a sieve; count_primes_measured,
and the two measures of jobs computing at once (peak_computing, overlap_seconds)."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from pocket_parallel.cpu_work import (
    Measured,
    _computing,
    count_primes,
    count_primes_measured,
    overlap_seconds,
    peak_computing,
)


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
    assert result.computing and all(result.start <= a < b <= result.end for a, b in result.computing)
    assert result.computing_seconds <= result.wall + 1e-9
    assert repr(result).startswith("<Measured 2,262 in ") and len(repr(result)) < 120


def test_a_job_alone_is_computing_most_of_the_time_it_has_the_processor():
    result = count_primes_measured(100_000)
    # Stretches cut by a wait are left out, so a little goes missing on a busy machine, never more
    # than the processor time the thread really had.
    assert 0.5 * result.cpu <= result.computing_seconds <= result.cpu * 1.1 + 0.002


@pytest.mark.skipif(not getattr(sys, "_is_gil_enabled", lambda: True)(), reason="a free-threaded build has no GIL")
def test_threads_under_the_gil_never_compute_at_once():
    with ThreadPoolExecutor(max_workers=3) as pool:
        jobs = list(pool.map(count_primes_measured, [60_000] * 3))
    assert len({job.thread for job in jobs}) == 3
    assert peak_computing(jobs) == 1
    assert overlap_seconds(jobs) < 0.001


def _job(*stretches: tuple[float, float]) -> Measured:
    return Measured(1, 1, 1, 0.0, stretches[0][0], stretches[-1][1], tuple(stretches))


def test_peak_and_overlap_count_jobs_computing_together():
    turns = [_job((0.00, 0.01), (0.02, 0.03)), _job((0.01, 0.02), (0.03, 0.04))]  # one after the other
    assert peak_computing(turns) == 1 and overlap_seconds(turns) == 0
    together = [_job((0.0, 0.5)), _job((0.1, 0.3), (0.4, 0.6)), _job((0.2, 0.25))]
    assert peak_computing(together) == 3
    assert overlap_seconds(together) == pytest.approx(0.2 + 0.1)  # 0.1-0.3 and 0.4-0.5


def test_a_hand_over_shorter_than_a_millisecond_is_not_computing_at_once():
    handing_over = [_job((0.0, 0.0104)), _job((0.0100, 0.02))]  # 0.4 ms together
    assert peak_computing(handing_over) == 1 and overlap_seconds(handing_over) == pytest.approx(0.0004)
    assert peak_computing([]) == 0


def test_stretches_leave_out_the_waits():
    # Readings (elapsed, thread's processor time): computing 0-2 ms, waiting 2-8 ms, computing 8-10 ms.
    stamps = [(0.000, 0.0), (0.001, 0.001), (0.002, 0.002), (0.008, 0.0021), (0.009, 0.0031), (0.010, 0.0041)]
    assert _computing(stamps, fine_clock=True) == ((0.0, 0.002), (0.008, 0.010))
    # With a coarse thread clock the length of the gap decides: 6 ms against a usual 1 ms.
    coarse = [(moment, 0.0) for moment, _ in stamps]
    assert _computing(coarse, fine_clock=False) == ((0.0, 0.002), (0.008, 0.010))


@pytest.mark.parametrize("bad", [[1], [None], ["job"]])
def test_peak_and_overlap_refuse_what_is_not_a_measured_job(bad):
    for measure in (peak_computing, overlap_seconds):
        with pytest.raises(TypeError, match="count_primes_measured"):
            measure(bad)


def test_measured_runs_in_a_worker_process_and_names_it():
    # forkserver, not fork: this process runs threads, and a forked child can deadlock on their locks.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("forkserver")) as pool:
        result = pool.submit(count_primes_measured, 100).result()
    assert result.value == 25 and result.worker != os.getpid()


def test_measured_refuses_a_bad_limit_like_count_primes():
    with pytest.raises(ValueError, match="limit"):
        count_primes_measured(-1)
