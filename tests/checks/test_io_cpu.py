"""Exercise 6 (checks/io_cpu.py): blocking I/O to threads, CPU-bound work to processes.

These checks run on the real clock (threads, processes and the GIL are real) and decide by facts:
which thread or process ran each call, whether the event loop ticked while each call ran (every
call waits for a tick before it returns), how many calls were in flight together, and whether
two worker processes computed at the same time. The wrong answers of the issue's classes run on
50 seeds with a short patience (how long a call waits for a tick or for company), which only
makes a wrong answer fail sooner; the solutions run with the check's own patience.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from pocket_parallel.checks import check_blocking_io, check_cpu_work
from pocket_parallel.checks.io_cpu import EXERCISE_6A, EXERCISE_6B
from pocket_parallel.cpu_work import count_primes

from .notebook_code import EX6, SEEDS, assert_fails, assert_fails_on_every_seed, assert_passes_on_every_seed, quiet, solution, stub

#: Seconds a call waits for a tick or for company in the wrong answers' runs (the check's own is longer).
SHORT = {"patience": 0.3}
FEW = range(5)

# -- 6a ------------------------------------------------------------------------------------------------


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


async def fetch_with_a_blocking_map(fetch, urls):
    """Threads for every URL, all at once, and the loop blocked in pool.map until they are done."""
    with ThreadPoolExecutor(max_workers=max(1, len(urls))) as pool:
        return list(pool.map(fetch, urls))


async def fetch_joining_threads(fetch, urls):
    """A thread per URL, started together, and joined inside the coroutine: the loop waits with them."""
    pages = [None] * len(urls)

    def work(index):
        pages[index] = fetch(urls[index])

    threads = [threading.Thread(target=work, args=(index,)) for index in range(len(urls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return pages


async def fetch_five_at_a_time(fetch, urls):
    """At most five downloads at once, as if five were plenty: the large batches show it."""
    gate = asyncio.Semaphore(5)

    async def one(url):
        async with gate:
            return await asyncio.to_thread(fetch, url)

    return await asyncio.gather(*(one(url) for url in urls))


async def fetch_in_a_pool_of_eight(fetch, urls):
    pool = ThreadPoolExecutor(max_workers=8)
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.gather(*(loop.run_in_executor(pool, fetch, url) for url in urls))
    finally:
        pool.shutdown(wait=False)


async def fetch_sorted(fetch, urls):
    """All at once, then the pages sorted 'for readability'."""
    return sorted(await asyncio.gather(*(asyncio.to_thread(fetch, url) for url in urls)))


def test_ex6a_solution_passes():
    assert_passes_on_every_seed(EXERCISE_6A, solution(EX6, "fetch_all"), seeds=range(10))


#: Wrong answers, and the seeds each runs on: all 50 for the classes of the issue's gaps (no heartbeat,
#: sorted results, a small fixed number of workers), a few for the others (their mistakes were caught before).
EX6A_WRONG = {
    "blocking call in async code": (fetch_on_the_loop, ("event loop's own thread", "asyncio.to_thread"), FEW),
    "awaited one by one": (fetch_one_thread_at_a_time, ("one at a time", "asyncio.gather"), FEW),
    "gather of blocking calls": (fetch_gathered_but_blocking, ("event loop's own thread",), FEW),
    "not async": (fetch_not_async, ("is a plain function", "async def"), FEW),
    "pool.map inside async def": (fetch_with_a_blocking_map, ("did not tick once", "pool.map"), SEEDS),
    "threads joined inside async def": (fetch_joining_threads, ("did not tick once", "thread.join()"), FEW),
    "a semaphore of 5": (fetch_five_at_a_time, ("at most 5 at a time",), SEEDS),
    "a pool of 8 threads": (fetch_in_a_pool_of_eight, ("at most 8 at a time",), FEW),
    "sorted pages": (fetch_sorted, ("in another order",), SEEDS),
}


@pytest.mark.parametrize("case", list(EX6A_WRONG))
def test_ex6a_wrong_answer_fails_on_every_seed(case):
    answer, keywords, seeds = EX6A_WRONG[case]
    assert_fails_on_every_seed(EXERCISE_6A, answer, *keywords, seeds=seeds, **SHORT)


# -- 6b ------------------------------------------------------------------------------------------------


async def crunch_on_the_loop(crunch, numbers):
    return [crunch(n) for n in numbers]


async def crunch_in_threads(crunch, numbers):
    return await asyncio.gather(*(asyncio.to_thread(crunch, n) for n in numbers))


async def crunch_with_blocking_pool_map(crunch, numbers):
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("forkserver")) as pool:
        return list(pool.map(crunch, numbers))


async def crunch_in_one_worker(crunch, numbers):
    """Processes, and the loop free, but a single worker: the jobs run one after another."""
    loop = asyncio.get_running_loop()
    pool = ProcessPoolExecutor(max_workers=1)
    try:
        return await asyncio.gather(*(loop.run_in_executor(pool, crunch, n) for n in numbers))
    finally:
        await asyncio.to_thread(pool.shutdown)


async def crunch_its_own_way(crunch, numbers):
    """The counts computed on the loop by the library's own function, crunch never called."""
    return [count_primes(n) for n in numbers]


async def crunch_sorted(crunch, numbers):
    loop = asyncio.get_running_loop()
    pool = ProcessPoolExecutor()
    try:
        return sorted(await asyncio.gather(*(loop.run_in_executor(pool, crunch, n) for n in numbers)))
    finally:
        await asyncio.to_thread(pool.shutdown)


async def crunch_waiting_on_the_first(crunch, numbers):
    """A pool, and the first result fetched with future.result(): the loop stands still until it is done."""
    loop = asyncio.get_running_loop()
    pool = ProcessPoolExecutor()
    try:
        first = [pool.submit(crunch, numbers[0]).result()] if numbers else []
        return first + list(await asyncio.gather(*(loop.run_in_executor(pool, crunch, n) for n in numbers[1:])))
    finally:
        await asyncio.to_thread(pool.shutdown)


def test_ex6b_solution_passes():
    assert_passes_on_every_seed(EXERCISE_6B, solution(EX6, "crunch_all"), seeds=range(5))


EX6B_WRONG = {
    "CPU work on the loop": (crunch_on_the_loop, ("event loop's own thread", "ProcessPoolExecutor"), FEW),
    "threads": (crunch_in_threads, ("GIL", "processes compute side by side"), FEW),
    "pool.map blocking the loop": (crunch_with_blocking_pool_map, ("did not tick once", "blocking call"), SEEDS),
    "one worker": (crunch_in_one_worker, ("never in two at the same time",), SEEDS),
    "computing on the loop without crunch": (crunch_its_own_way, ("called crunch 0 times",), SEEDS),
    "sorted results": (crunch_sorted, ("in the order of the numbers",), FEW),
    "future.result() for the first": (crunch_waiting_on_the_first, ("did not tick once",), FEW),
}


@pytest.mark.parametrize("case", list(EX6B_WRONG))
def test_ex6b_wrong_answer_fails_on_every_seed(case):
    answer, keywords, seeds = EX6B_WRONG[case]
    assert_fails_on_every_seed(EXERCISE_6B, answer, *keywords, seeds=seeds, **SHORT)


def test_ex6_wrong_answers_fail_fresh_workloads_quietly():
    assert_fails(check_blocking_io, fetch_on_the_loop, "event loop's own thread", runs=1)
    assert_fails(check_cpu_work, crunch_in_threads, "GIL", runs=1)


def test_ex6_stubs_are_not_attempted():
    assert quiet(check_blocking_io, stub(EX6, "fetch_all")).status == "not attempted"
    assert quiet(check_cpu_work, stub(EX6, "crunch_all")).status == "not attempted"


def crunch_twice_over(crunch, n):
    """A helper of the answer's own, sent to the worker processes: they import it from the answer's module."""
    return crunch(n)


async def crunch_through_a_helper(crunch, numbers):
    loop = asyncio.get_running_loop()
    pool = ProcessPoolExecutor(max_workers=2)
    try:
        return await asyncio.gather(*(loop.run_in_executor(pool, crunch_twice_over, crunch, n) for n in numbers))
    finally:
        await asyncio.to_thread(pool.shutdown)


def test_ex6b_a_helper_of_the_answer_travels_to_forkserver_workers():
    # Workers started by forkserver (or spawn) import what they run by module and name: the check
    # writes the answer's code to a module file, so a helper defined beside crunch_all works too.
    assert_passes_on_every_seed(EXERCISE_6B, crunch_through_a_helper, seeds=range(2))
