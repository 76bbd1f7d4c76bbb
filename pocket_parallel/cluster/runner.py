"""Start (or join) a Dask cluster and run a batch on it in chunks: :class:`Cluster`.

::

    with LocalServer(latency=0.05, max_concurrent=16) as server, Cluster(workers=2) as cluster:
        run = cluster.run(prompts, AskOverHTTP(server.base_url), max_in_flight=16)
        print(run.summary(), server.stats().peak_in_flight)   # never above 16

By default :class:`Cluster` starts a ``LocalCluster`` of worker processes on this machine,
listening on 127.0.0.1 only, with no dashboard. ``Cluster(scheduler="tcp://host:8786")``
joins a cluster that is already running instead (see :mod:`pocket_parallel.cluster` for
dask-jobqueue, Kubernetes and cloud clusters).
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import os
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from .._validate import (
    check_bool,
    check_choice,
    check_int,
    check_iterable,
    check_limit,
    check_optional_seconds,
    check_real,
)
from ..journal import Journal
from ..nodes import BoundedParallelBatchNode
from ..outcomes import Failure, Outcomes
from .chunks import CAP_MODES, CapMode, ChunkPlan, ChunkReport, RemoteError, run_chunk
from .result import ClusterRun

#: Lease timeout (seconds) unless told otherwise: a worker silent this long loses its leases.
DEFAULT_LEASE_TIMEOUT = 10.0
#: Most worker processes a local cluster may start (a cluster of more belongs on more machines).
MAX_LOCAL_WORKERS = 64
_QUIET_LOGGERS = ("distributed", "tornado")


class Cluster:
    """A Dask cluster to run batches on, with cluster-wide limits: start it, run batches, stop it.

    Parameters
    ----------
    workers:
        Worker processes of a local cluster to start on this machine (an integer in
        ``[1, 64]``; default 2). Each runs one chunk at a time on its event loop.
    scheduler:
        Address of a running Dask scheduler (``"tcp://10.0.0.5:8786"``) to use instead of
        starting a local cluster; give ``workers`` or ``scheduler``, not both. Its workers
        need ``pocket_parallel`` installed.
    lease_timeout:
        Seconds, in ``[1, 3600]`` (default 10): a worker not heard from (no heartbeat) for
        this long loses its leases of the cluster-wide cap and is removed from the cluster.
        A worker whose process ends loses them at once.
    dashboard:
        True starts Dask's dashboard on 127.0.0.1 (a free port, see :attr:`dashboard_link`;
        it needs the ``bokeh`` package). Default False.
    quiet:
        True (default) keeps Dask's log messages (workers leaving, restarting) out of the
        output.
    start_method:
        How a local cluster starts its worker processes: ``"forkserver"`` (default where the
        system has it: a clean helper process, started once per Python process and ending
        with it, forks each worker, so workers start and stop in a fraction of the time) or
        ``"spawn"`` (Dask's default: a fresh interpreter per worker).

    Use it in a ``with`` block, or call :meth:`start` and :meth:`close`.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        scheduler: str | None = None,
        lease_timeout: float = DEFAULT_LEASE_TIMEOUT,
        dashboard: bool = False,
        quiet: bool = True,
        start_method: str | None = None,
    ) -> None:
        if workers is not None and scheduler is not None:
            raise ValueError("give workers (to start a local cluster) or scheduler (to use a running one), not both; "
                             f"got workers={workers!r} and scheduler={scheduler!r}")
        if scheduler is not None and (not isinstance(scheduler, str) or ":" not in scheduler):
            raise ValueError(f"scheduler must be a Dask scheduler address such as 'tcp://127.0.0.1:8786'; got {scheduler!r}")
        self.local_workers = None if scheduler is not None else check_int(
            "workers", 2 if workers is None else workers, low=1, high=MAX_LOCAL_WORKERS)
        self.scheduler_address = scheduler
        self.lease_timeout = check_real("lease_timeout", lease_timeout, low=1.0, high=3600.0)
        self.dashboard = check_bool("dashboard", dashboard)
        self.quiet = check_bool("quiet", quiet)
        methods = [method for method in ("forkserver", "spawn") if method in multiprocessing.get_all_start_methods()]
        self.start_method: str = check_choice("start_method", start_method or methods[0], methods)
        self.startup_seconds: float | None = None
        self._config: Any = None
        self._cluster: Any = None
        self._client: Any = None
        self._log_levels: dict[str, int] = {}

    def __repr__(self) -> str:
        where = "local" if self.scheduler_address is None else "remote"
        state = f"{self.workers} workers" if self.running else "stopped"
        return f"<Cluster {where}, {state}>"

    # -- starting and stopping ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the cluster is up and this object is connected to it."""
        return self._client is not None

    def start(self) -> Cluster:
        """Start the local cluster (or connect to the scheduler) and install the cluster-wide limits."""
        if self.running:
            raise RuntimeError("the cluster is already running: close() it before starting it again")
        import dask
        from distributed import Client, LocalCluster

        from .scheduler_plugin import CapacityPlugin
        from .worker_plugin import LeasePools

        self._quiet_logs()
        began = time.perf_counter()
        try:
            if self.scheduler_address is None:
                # Kept for the cluster's life: a nanny restarting a dead worker reads it again.
                self._config = dask.config.set({"distributed.worker.multiprocessing-method": self.start_method})
                self._cluster = LocalCluster(  # type: ignore[no-untyped-call]
                    n_workers=self.local_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                    # The scheduler serves HTTP (health, and the dashboard if asked) even with no
                    # dashboard: on a free loopback port, never on 0.0.0.0 or a fixed 8787.
                    scheduler_port=0, dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": self.dashboard},
                    silence_logs=logging.CRITICAL if self.quiet else logging.WARNING,
                )
                self._client = Client(self._cluster)  # type: ignore[no-untyped-call]
            else:
                self._client = Client(self.scheduler_address, timeout=30)  # type: ignore[no-untyped-call]
            self._client.register_plugin(CapacityPlugin())
            self._client.register_plugin(LeasePools())
        except BaseException:
            self.close()
            raise
        self.startup_seconds = time.perf_counter() - began
        return self

    def close(self) -> None:
        """Disconnect, and stop the local cluster with every worker process it started."""
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        try:
            if client is not None:
                client.close()
        finally:
            try:
                if cluster is not None:
                    cluster.close()
            finally:
                if self._config is not None:
                    self._config.__exit__(None, None, None)
                    self._config = None
                self._restore_logs()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # -- what it is made of -------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` connected to the cluster."""
        if self._client is None:
            raise RuntimeError("the cluster is not running: use 'with Cluster(...) as cluster:' or cluster.start()")
        return self._client

    @property
    def workers(self) -> int:
        """How many workers the cluster has now."""
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    @property
    def dashboard_link(self) -> str | None:
        """Where the Dask dashboard is (None when it is off)."""
        return self.client.dashboard_link if self.dashboard or self.scheduler_address else None

    def worker_pids(self) -> dict[str, int]:
        """Process id of each worker, by address (meaningful on this machine only)."""
        pids: dict[str, int] = self.client.run(os.getpid)
        return pids

    def wait_for_workers(self, count: int | None = None, timeout: float = 60.0) -> None:
        """Wait until the cluster has ``count`` workers (default: as many as it was started with)."""
        wanted = count if count is not None else (self.local_workers or 1)
        self.client.wait_for_workers(check_int("count", wanted, low=1), timeout=check_real("timeout", timeout, low=0.0))

    def kill_worker(self, address: str | None = None) -> str:
        """Kill one worker process at once (SIGKILL), as a crash would: a local cluster's lesson only.

        ``address`` picks the worker; default: one that is running a chunk, else any.
        Returns the address of the worker killed. Its nanny starts a fresh one.
        """
        if self._cluster is None:
            raise RuntimeError("kill_worker kills processes on this machine: only for a cluster started here")
        pids = self.worker_pids()
        if address is None:
            busy = [worker for worker, keys in self.client.processing().items() if keys and worker in pids]
            address = busy[0] if busy else next(iter(pids))
        if address not in pids:
            raise ValueError(f"address must be one of the workers {sorted(pids)}; got {address!r}")
        os.kill(pids[address], signal.SIGKILL)
        return address

    # -- running a batch ----------------------------------------------------------------------------

    def run(
        self,
        items: Iterable[Any],
        recipe: Callable[[], BoundedParallelBatchNode],
        *,
        max_in_flight: int | None = None,
        max_per_minute: int | None = None,
        cap: CapMode = "cluster",
        chunk_size: int | None = None,
        workers: int | None = None,
        journal: str | os.PathLike[str] | None = None,
        journal_identity: str | None = None,
        kill_worker_after: int | None = None,
        timeout: float | None = None,
    ) -> ClusterRun:
        """Run every item through the node ``recipe()`` builds on the workers, in chunks; results in input order.

        - ``recipe``: a picklable callable that builds a
          :class:`~pocket_parallel.BoundedParallelBatchNode` on a worker, such as
          :class:`~.recipes.AskOverHTTP`. Each worker runs the node's batch step (each item's
          ``exec_async``, with its retries and backoff) over a chunk; failed items become
          :class:`~pocket_parallel.Failure` records.
        - ``max_in_flight``: calls in flight across the whole cluster (an integer >= 1, or None);
          ``max_per_minute``: requests started in any minute across the cluster (an integer
          >= 2, or None); every attempt counts, retries included.
        - ``cap``: how ``max_in_flight`` is held, one of :data:`~.chunks.CAP_MODES`: ``"cluster"``
          (leases moved between workers: the cap holds and stays cheap), or one of the
          references ``"per_worker"`` (the mistake: C in each process), ``"static_split"``
          (C // W in each), ``"dask_semaphore"`` (one ``distributed.Semaphore`` round trip per
          call), ``"none"``.
        - ``chunk_size``: items per Dask task (default: about four chunks per worker).
        - ``workers``: run on only this many of the cluster's workers (default: all of them),
          to measure how throughput grows with workers.
        - ``journal``: a SQLite journal file (:class:`~pocket_parallel.journal.Journal`) every
          worker can open on a local disk: a rescheduled chunk skips the items it holds, and a
          re-run with the same file pays only for what is missing. Default: for a local
          cluster a temporary journal for this run, for a remote one none.
          ``journal_identity`` names the workload in it (default: the recipe's type).
        - ``kill_worker_after``: a lesson's fault: once that many items are answered, kill one
          worker that is running a chunk (local clusters only).
        - ``timeout``: seconds the batch may take (None: no limit); items unfinished then become
          failures with a ``TimeoutError``, and answers already journaled are kept.
        """
        client = self.client
        batch = check_iterable("items", items, "a list of prompts")
        if not callable(recipe):
            raise TypeError(f"recipe must be a callable that builds a BoundedParallelBatchNode on a worker, such as "
                            f"AskOverHTTP(server.base_url); got {type(recipe).__name__}")
        cap = check_choice("cap", cap, CAP_MODES)
        limit = check_limit("max_in_flight", max_in_flight)
        per_minute = None if max_per_minute is None else check_int("max_per_minute", max_per_minute, low=2,
                                                                   high=100_000_000)
        addresses = sorted(client.scheduler_info(n_workers=-1)["workers"])
        if workers is not None:
            check_int("workers", workers, low=1, high=len(addresses))
            if kill_worker_after is not None:
                raise ValueError("give workers or kill_worker_after, not both: a chunk pinned to a killed worker "
                                 "could never run elsewhere")
            addresses = addresses[:workers]
        pinned = addresses if workers is not None else None
        workers = len(addresses)
        if cap in ("per_worker", "static_split", "dask_semaphore") and limit is None:
            raise ValueError(f"cap={cap!r} needs max_in_flight (an integer >= 1)")
        if cap == "static_split" and limit is not None and limit < workers:
            raise ValueError(f"max_in_flight must be at least the number of workers ({workers}) to split it "
                             f"statically; got {limit}")
        if cap == "dask_semaphore" and per_minute is not None:
            raise ValueError("cap='dask_semaphore' caps calls in flight only: give max_per_minute=None, or cap='cluster'")
        size = check_int("chunk_size", chunk_size, low=1) if chunk_size is not None else max(
            1, math.ceil(len(batch) / (4 * workers)))
        after = None if kill_worker_after is None else check_int("kill_worker_after", kill_worker_after, low=0)
        deadline = check_optional_seconds("timeout", timeout)
        if after is not None and self._cluster is None:
            raise ValueError("kill_worker_after kills a worker process on this machine: only for a local cluster")

        name = f"pp-run-{uuid.uuid4().hex[:12]}"
        identity = journal_identity or f"pocket_parallel.cluster:{type(recipe).__module__}.{type(recipe).__qualname__}"
        with tempfile.TemporaryDirectory(prefix="pp-cluster-") as scratch:
            path = self._journal_path(journal, scratch)
            if after is not None and path is None:
                raise ValueError("kill_worker_after needs a journal (the default one of a local cluster will do)")
            if path is not None:
                Journal(path, identity).close()  # created once here, before workers race to create it
            plan = ChunkPlan(name, recipe, cap, limit, per_minute, self.lease_timeout, workers, path, identity)
            if cap == "cluster":
                client.sync(client.scheduler.pp_cap_open, name=name, max_in_flight=limit,
                            max_per_minute=per_minute, lease_timeout=self.lease_timeout)
            ledger: dict[str, Any] | None = None
            try:
                began = time.perf_counter()
                futures = [
                    client.submit(run_chunk, plan, start, batch[start:start + size], key=f"{name}-{start}", pure=False,
                                  workers=pinned, allow_other_workers=False)
                    for start in range(0, len(batch), size)
                ]
                killed = self._wait(futures, after, path, identity, deadline, began)
                seconds = time.perf_counter() - began
                reports, outcomes = self._collect(futures, batch, size, path, identity)
            finally:
                if cap == "cluster":
                    ledger = client.sync(client.scheduler.pp_cap_close, name=name)
                if cap in ("cluster", "static_split"):
                    from .worker_plugin import forget_run

                    client.run(forget_run, name)
                if cap == "dask_semaphore":  # its leases live on the scheduler until closed
                    client.sync(client.scheduler.semaphore_close, name=name)
        return ClusterRun(outcomes, seconds, cap, limit, per_minute, workers, tuple(reports), ledger, killed)

    def _journal_path(self, journal: str | os.PathLike[str] | None, scratch: str) -> str | None:
        if journal is not None:
            if not isinstance(journal, (str, os.PathLike)):
                raise TypeError(f"journal must be a path to a SQLite journal file, or None; got {type(journal).__name__}")
            return str(Path(journal).resolve())
        if self._cluster is not None:
            return str(Path(scratch) / "journal.sqlite")
        return None  # a remote cluster's workers cannot see this machine's disk

    def _wait(self, futures: list[Any], kill_after: int | None, journal: str | None, identity: str,
              deadline: float | None, began: float) -> tuple[str, ...]:
        """Wait until every chunk is done (or the deadline); kill a worker on the way if asked."""
        from distributed import wait

        if kill_after is None:
            try:
                wait(futures, timeout=deadline)  # type: ignore[no-untyped-call]
            except (TimeoutError, asyncio.TimeoutError):  # two classes before Python 3.11; distributed raises asyncio's
                self.client.cancel([future for future in futures if not future.done()])
            return ()
        killed: list[str] = []
        assert journal is not None
        with Journal(journal, identity) as reader:
            while not all(future.done() for future in futures):
                if deadline is not None and time.perf_counter() - began > deadline:
                    self.client.cancel([future for future in futures if not future.done()])
                    break
                if not killed and reader.counts()["ok"] >= kill_after:
                    killed.append(self.kill_worker())
                time.sleep(0.01)
        return tuple(killed)

    def _collect(self, futures: list[Any], batch: list[Any], size: int, journal: str | None,
                 identity: str) -> tuple[list[ChunkReport], Outcomes]:
        """One value per item, in input order: from each chunk, or from the journal, or a failure."""
        outcomes = Outcomes(batch)
        reports: list[ChunkReport] = []
        for future, start in zip(futures, range(0, len(batch), size)):
            chunk = batch[start:start + size]
            try:
                if future.cancelled():
                    raise TimeoutError("the run's timeout passed before this chunk finished")
                report: ChunkReport = future.result()
            except Exception as error:
                self._settle_lost_chunk(outcomes, start, chunk, error, journal, identity)
                continue
            reports.append(report)
            for offset, value in enumerate(report.values):
                outcomes._record(start + offset, "failed" if isinstance(value, Failure) else "ok", value)
        return reports, outcomes

    @staticmethod
    def _settle_lost_chunk(outcomes: Outcomes, start: int, chunk: list[Any], error: BaseException,
                           journal: str | None, identity: str) -> None:
        """A chunk that never came back: keep what its journal holds, and a failure for the rest."""
        answered: dict[int, Any] = {}
        if journal is not None:
            with Journal(journal, identity) as reader:
                answered = reader.answered_items(chunk)
        carried = RemoteError.of(error)
        for offset, item in enumerate(chunk):
            if offset in answered:
                outcomes._record(start + offset, "ok", answered[offset])
            else:
                outcomes._record(start + offset, "failed", Failure(item, carried, 0))

    # -- logs -----------------------------------------------------------------------------------------

    def _quiet_logs(self) -> None:
        if self.quiet and not self._log_levels:
            for name in _QUIET_LOGGERS:
                logger = logging.getLogger(name)
                self._log_levels[name] = logger.level
                logger.setLevel(logging.CRITICAL)

    def _restore_logs(self) -> None:
        for name, level in self._log_levels.items():
            logging.getLogger(name).setLevel(level)
        self._log_levels.clear()
