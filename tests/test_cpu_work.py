"""count_primes: the CPU-bound job of the GIL notebook, checked against a sieve."""

from __future__ import annotations

import pickle

import pytest

from pocket_parallel.cpu_work import count_primes


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
