"""Shared fixtures (helpers to import live in tests/support.py), and the leak check every test passes.

Everything a test starts, it stops: after each test, no thread, child process or socket it
started may still be alive (a short grace period lets clean shutdowns finish).
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Iterator

import pytest

from pocket_parallel import run
from tests.processes import descendants, kill, multiprocessing_helpers, open_sockets

_GRACE = 5.0  # seconds a stopped server, cluster or kernel may take to finish going away


@pytest.fixture
def virtual():
    """Run a coroutine on the virtual clock and return its result."""
    return lambda coro: run(coro, clock="virtual")


def _cached_loop_sockets() -> set[str]:
    """Sockets of the event loop jupyter_core keeps for its threads' sync calls (one per thread, for good)."""
    import sys

    utils = sys.modules.get("jupyter_core.utils")
    loop = getattr(utils, "_loop", None)
    cached = loop.get() if loop is not None else None
    found = set()
    for sock in (getattr(cached, "_ssock", None), getattr(cached, "_csock", None)):
        if sock is not None and sock.fileno() >= 0:
            try:
                found.add(os.readlink(f"/proc/self/fd/{sock.fileno()}"))
            except OSError:
                pass
    return found


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Fail a test that forks this process while it runs threads: the child can deadlock on a lock one held.

    Python 3.12+ warns then, but cannot raise (the fork has happened), so the warning is caught
    here; every other warning goes on to pytest as usual.
    """
    with warnings.catch_warnings(record=True) as caught:
        result = yield
    forked = False
    for warning in caught:
        if "is multi-threaded, use of fork()" in str(warning.message):
            forked = True
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno,
                                   source=warning.source)
    if forked:
        pytest.fail("this test forked the process while it ran threads: start process pools with "
                    "multiprocessing.get_context('forkserver') or 'spawn'", pytrace=False)
    return result


@pytest.fixture(autouse=True)
def nothing_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a thread, a child process or a socket of its own behind."""
    threads, children, sockets = set(threading.enumerate()), set(descendants()), open_sockets()
    yield
    if request.node.get_closest_marker("shares_resources"):
        return  # a module-scoped server or cluster outlives each of its tests; its module checks itself
    deadline = time.monotonic() + _GRACE
    while True:
        new_threads = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
        helpers = multiprocessing_helpers()  # a process pool's fork server lives as long as this process, by design
        new_children = {pid: command for pid, command in descendants().items()
                        if pid not in children and pid not in helpers}
        new_sockets = open_sockets() - sockets - _cached_loop_sockets()
        if not (new_threads or new_children or new_sockets) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    kill(new_children)  # so that one leak does not spill into the next test
    problems = [f"thread {t.name!r}" for t in new_threads]
    problems += [f"process {pid}: {command}" for pid, command in new_children.items()]
    problems += [f"{len(new_sockets)} socket(s)"] if new_sockets else []
    if problems:
        pytest.fail("left running after the test: " + "; ".join(problems), pytrace=False)
