"""A real LocalCluster of 2 worker processes against a real local server: the server's counters are the judge.

One cluster and one server serve the module (starting a cluster takes seconds); each test
resets the server's counters first, and the module checks at its end that nothing it started
is left (thread, socket or process). The server also counts answers per prompt here, so a
test can tell exactly which prompts were paid for twice.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from typing import Any

import psutil
import pytest

from pocket_parallel.cluster import AskOverHTTP, Cluster
from pocket_parallel.journal import Journal
from pocket_parallel.server import LocalServer
from tests.processes import multiprocessing_helpers, open_sockets

pytestmark = pytest.mark.shares_resources

CAP = 8
LATENCY = 0.05


def descendants() -> set[int]:
    """Every process started under this one (workers are grandchildren via the nanny or forkserver)."""
    return {child.pid for child in psutil.Process().children(recursive=True) if child.is_running()}


def left_behind(before: set[int], timeout: float = 20.0) -> set[int]:
    """Processes started since ``before`` still alive after ``timeout`` (multiprocessing's helpers excepted)."""
    deadline = time.monotonic() + timeout
    while True:
        extra = descendants() - before - multiprocessing_helpers()
        if not extra or time.monotonic() > deadline:
            return extra
        time.sleep(0.2)


class AnswerCounts:
    """Wraps the server's service so that every answered prompt is counted (ground truth per prompt)."""

    def __init__(self, server: LocalServer) -> None:
        service = server._service
        assert service is not None
        inner = service.call
        self.counts: Counter[str] = Counter()

        def call(request: Any) -> Any:
            served = inner(request)
            finish = served.finish

            async def counted() -> Any:
                reply = await finish()
                self.counts[request.prompt] += 1
                return reply

            served.finish = counted  # type: ignore[method-assign]
            return served

        service.call = call  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def module_leak_check():
    """After the module's server and cluster stop: no thread, socket or process of theirs is left."""
    threads, sockets, processes = set(threading.enumerate()), open_sockets(), descendants()
    yield
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        # Dask-Offload: distributed's one process-wide executor thread, made on first use, by design never stopped
        extra_threads = [t for t in threading.enumerate()
                         if t not in threads and t.is_alive() and not t.name.startswith("Dask-Offload")]
        extra_sockets = open_sockets() - sockets
        if not extra_threads and not extra_sockets:
            break
        time.sleep(0.1)
    assert not extra_threads, f"threads left running: {extra_threads}"
    assert not extra_sockets, f"sockets left open: {len(extra_sockets)}"
    assert not left_behind(processes), "the cluster left worker processes running"


@pytest.fixture(scope="module")
def server(module_leak_check):
    with LocalServer(latency=LATENCY, max_concurrent=CAP) as running:
        running.answered = AnswerCounts(running)
        yield running


@pytest.fixture(scope="module")
def cluster(module_leak_check):
    with Cluster(workers=2) as running:
        yield running


@pytest.fixture
def fresh(server, cluster):
    cluster.wait_for_workers(2)
    server.reset()
    server.answered.counts.clear()
    return server


def prompts(n: int, tag: str = "doc") -> list[str]:
    return [f"Summarize: {tag} {i}" for i in range(n)]


def test_the_cluster_cap_holds_at_the_server_with_no_429(fresh, cluster):
    items = prompts(240)
    run = cluster.run(items, AskOverHTTP(fresh.base_url), max_in_flight=CAP)
    stats = fresh.stats()
    assert stats.peak_in_flight <= CAP and stats.rate_limited == 0
    assert run.complete and not run.failures
    assert run.answers == [f"Summary (2 words): doc {i}" for i in range(240)]  # input order
    assert stats.ok == 240 and set(fresh.answered.counts.values()) == {1}
    assert run.ledger is not None and run.ledger["peak_leases_out"] <= CAP and run.ledger["leases_out"] == 0
    # Leases travel in blocks: far fewer messages than calls
    assert run.ledger["messages_in"] < 240 / 2


def running_semaphore_timers() -> int:
    """On a worker: distributed.Semaphore objects whose lease-refresh timer still fires."""
    import gc

    from distributed import Semaphore

    return sum(1 for o in gc.get_objects() if isinstance(o, Semaphore) and o.refresh_callback.is_running())


@pytest.mark.parametrize("cap", ["dask_semaphore", "static_split"])
def test_the_reference_caps_hold_and_leave_no_timer_behind(fresh, cluster, cap):
    run = cluster.run(prompts(96), AskOverHTTP(fresh.base_url), max_in_flight=CAP, cap=cap)
    stats = fresh.stats()
    assert stats.peak_in_flight <= CAP and stats.rate_limited == 0
    assert run.complete and not run.failures and stats.ok == 96
    assert sum(cluster.client.run(running_semaphore_timers).values()) == 0


def test_a_semaphore_in_each_worker_overshoots_and_the_server_refuses(fresh, cluster):
    run = cluster.run(prompts(240), AskOverHTTP(fresh.base_url, max_retries=20), max_in_flight=CAP, cap="per_worker")
    stats = fresh.stats()
    assert stats.rate_limited > 0, "two workers with a semaphore of C each never went past C"
    assert run.complete  # retried with backoff, nothing lost


def test_a_killed_worker_loses_no_item_and_repays_no_finished_one(fresh, cluster, tmp_path):
    items = prompts(300, "kill")
    path = tmp_path / "journal.sqlite"
    identity = "test-kill"
    outcome: dict[str, Any] = {}

    def run_batch() -> None:
        # Two chunks, one per worker: the kill lands in the middle of one
        outcome["run"] = cluster.run(items, AskOverHTTP(fresh.base_url), max_in_flight=CAP, journal=path,
                                     journal_identity=identity, chunk_size=150, timeout=120)

    worker = threading.Thread(target=run_batch)
    worker.start()
    keys: list[str] = []
    finished_before_kill: set[str] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and worker.is_alive():
        if not path.exists():
            time.sleep(0.01)
            continue
        with Journal(path, identity) as journal:
            keys = keys or [journal.key_of(item) for item in items]
            answered = journal.answered(keys)
        if len(answered) >= 80:
            finished_before_kill = {item for item, key in zip(items, keys) if key in answered}
            cluster.kill_worker()
            break
        time.sleep(0.01)
    worker.join(150)
    assert not worker.is_alive()
    run = outcome["run"]
    assert finished_before_kill, "the kill never happened"
    assert run.complete and not run.failures
    assert run.answers == [f"Summary (2 words): kill {i}" for i in range(300)]
    counts = fresh.answered.counts
    assert all(counts[item] >= 1 for item in items)
    repaid = [item for item in finished_before_kill if counts[item] > 1]
    assert not repaid, f"{len(repaid)} items journaled before the kill were paid for again"
    # Only calls cut off by the kill can be answered twice: at most the cap
    assert sum(counts.values()) - len(items) <= CAP
    assert run.from_journal > 0  # the rescheduled chunk found its finished items in the journal
    assert fresh.stats().peak_in_flight <= CAP


def test_the_cluster_wide_per_minute_budget_holds(cluster):
    per_minute = 600
    with LocalServer(latency=LATENCY, requests_per_minute=per_minute) as limited:
        items = prompts(640, "rpm")  # more than the first minute's bucket holds: the refill is paced
        began = time.perf_counter()
        run = cluster.run(items, AskOverHTTP(limited.base_url, max_retries=1), max_per_minute=per_minute)
        elapsed = time.perf_counter() - began
        stats = limited.stats()
    assert stats.rate_limited == 0 and run.complete and not run.failures
    assert stats.ok == 640
    assert elapsed >= (640 - per_minute) / (per_minute / 60)  # it had to wait for the refill


def test_bad_arguments_are_refused_with_the_parameter_named(cluster, server):
    recipe = AskOverHTTP(server.base_url)
    with pytest.raises(ValueError, match="cap must be one of"):
        cluster.run(["a"], recipe, cap="global")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_in_flight must be an integer >= 1"):
        cluster.run(["a"], recipe, max_in_flight=0)
    with pytest.raises(ValueError, match=r"max_per_minute must be an integer in \[2, "):
        cluster.run(["a"], recipe, max_per_minute=1)
    with pytest.raises(ValueError, match="needs max_in_flight"):
        cluster.run(["a"], recipe, cap="static_split")
    with pytest.raises(ValueError, match="at least the number of workers"):
        cluster.run(["a"], recipe, max_in_flight=1, cap="static_split")
    with pytest.raises(TypeError, match="recipe must be a callable"):
        cluster.run(["a"], "AskOverHTTP")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
        cluster.run(["a"], recipe, chunk_size=0)
    with pytest.raises(ValueError, match="base_url must be"):
        AskOverHTTP("127.0.0.1:8000")
    with pytest.raises(ValueError, match="workers must be an integer in \\[1, 64\\]"):
        Cluster(workers=0)
    with pytest.raises(ValueError, match="not both"):
        Cluster(workers=2, scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(ValueError, match="lease_timeout must be"):
        Cluster(lease_timeout=0)


def test_a_frozen_worker_loses_its_leases_after_the_lease_timeout_and_nothing_is_lost():
    before = descendants()
    with LocalServer(latency=LATENCY, max_concurrent=4) as limited, Cluster(workers=2, lease_timeout=2.0) as small:
        items = prompts(200, "frozen")
        outcome: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: outcome.setdefault(
            "run", small.run(items, AskOverHTTP(limited.base_url), max_in_flight=4, chunk_size=25, timeout=120)))
        pids = small.worker_pids()
        thread.start()
        while limited.stats().ok < 40:
            time.sleep(0.01)
        busy = [worker for worker, keys in small.client.processing().items() if keys and worker in pids]
        frozen = pids[busy[0] if busy else next(iter(pids))]
        os.kill(frozen, signal.SIGSTOP)
        try:
            thread.join(120)
        finally:
            os.kill(frozen, signal.SIGCONT)  # let it see it was removed and exit
        run = outcome["run"]
        stats = limited.stats()
    assert run.complete and not run.failures and len(run.answers) == 200
    assert stats.peak_in_flight <= 4 and stats.rate_limited == 0
    assert run.ledger is not None and run.ledger["workers_expired"] >= 1
    assert not left_behind(before)
