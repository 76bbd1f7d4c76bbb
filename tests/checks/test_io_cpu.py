"""Exercise 6 (checks/io_cpu.py): blocking I/O to threads, CPU-bound work to processes.

These checks run on the real clock (threads, processes and the GIL are real) and decide by facts:
which thread or process ran each call, how many calls overlapped, whether the loop kept ticking.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

from pocket_parallel.checks import check_blocking_io, check_cpu_work

from .notebook_code import EX6, assert_fails, quiet, solution, stub


async def fetch_on_the_loop(fetch, urls):
    return [fetch(url) for url in urls]


async def fetch_one_thread_at_a_time(fetch, urls):
    return [await asyncio.to_thread(fetch, url) for url in urls]


async def fetch_gathered_but_blocking(fetch, urls):
    async def one(url):
        return fetch(url)  # no await: blocks the loop

    return await asyncio.gather(*(one(url) for url in urls))


def fetch_not_async(fetch, urls):
    return [fetch(url) for url in urls]


async def crunch_on_the_loop(crunch, numbers):
    return [crunch(n) for n in numbers]


async def crunch_in_threads(crunch, numbers):
    return await asyncio.gather(*(asyncio.to_thread(crunch, n) for n in numbers))


async def crunch_with_blocking_pool_map(crunch, numbers):
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("forkserver")) as pool:
        return list(pool.map(crunch, numbers))


def test_ex6_solutions_pass():
    for _ in range(3):
        io_result = quiet(check_blocking_io, solution(EX6, "fetch_all"))
        cpu_result = quiet(check_cpu_work, solution(EX6, "crunch_all"))
        assert io_result.passed, io_result.message
        assert cpu_result.passed, cpu_result.message


@pytest.mark.parametrize("answer, keywords", [
    (fetch_on_the_loop, ("event loop's own thread", "asyncio.to_thread")),
    (fetch_one_thread_at_a_time, ("one at a time", "asyncio.gather")),
    (fetch_gathered_but_blocking, ("event loop's own thread",)),
    (fetch_not_async, ("is a plain function", "async def")),
], ids=["blocking call in async code", "awaited one by one", "gather of blocking calls", "not async"])
def test_ex6a_wrong_answers_fail_with_the_right_message(answer, keywords):
    assert_fails(check_blocking_io, answer, *keywords, runs=1)


@pytest.mark.parametrize("answer, keywords", [
    (crunch_on_the_loop, ("event loop's own thread", "(wall clock)", "ProcessPoolExecutor")),
    (crunch_in_threads, ("GIL", "processes compute side by side")),
    (crunch_with_blocking_pool_map, ("event loop was frozen", "blocking call")),
], ids=["CPU work on the loop", "threads", "pool.map blocking the loop"])
def test_ex6b_wrong_answers_fail_with_the_right_message(answer, keywords):
    assert_fails(check_cpu_work, answer, *keywords, runs=1)


def test_ex6_stubs_are_not_attempted():
    assert quiet(check_blocking_io, stub(EX6, "fetch_all")).status == "not attempted"
    assert quiet(check_cpu_work, stub(EX6, "crunch_all")).status == "not attempted"
