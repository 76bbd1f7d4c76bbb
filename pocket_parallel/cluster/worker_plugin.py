"""The worker side's Dask hook-up: a ``WorkerPlugin`` that keeps this worker's lease pools.

It listens for the scheduler's grants (``pp-cap-grant`` on the scheduler's batched stream)
and hands each to the :class:`~.lease_pool.LeasePool` of its limit. Chunk tasks find the
plugin with :func:`this_workers_pools`. On teardown (the worker closing) every pool hands
back what it holds.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from .lease_pool import LeasePool
from .scheduler_plugin import GRANT_OP, UPDATE_OP

if TYPE_CHECKING:
    from distributed import Worker

WORKER_PLUGIN_NAME = "pocket-parallel-lease-pools"


class LeasePools(WorkerPlugin):
    """This worker's :class:`~.lease_pool.LeasePool` for each open limit, and local semaphores for the references."""

    idempotent = True
    name = WORKER_PLUGIN_NAME

    def __init__(self) -> None:
        self.pools: dict[str, LeasePool] = {}
        self.semaphores: dict[str, asyncio.Semaphore] = {}
        self.worker: Worker | None = None

    def setup(self, worker: Worker) -> None:
        """Listen for grants on this worker."""
        self.worker = worker
        worker.stream_handlers[GRANT_OP] = self._on_grant

    def teardown(self, worker: Worker) -> None:
        """Hand back every lease and token (the worker is closing)."""
        for pool in self.pools.values():
            pool.close()
        self.pools.clear()
        worker.stream_handlers.pop(GRANT_OP, None)

    def pool(self, name: str, *, leases: bool, tokens: bool, lease_timeout: float) -> LeasePool:
        """The pool of limit ``name`` on this worker, made on first use (call on the worker's loop)."""
        pool = self.pools.get(name)
        if pool is None:
            pool = self.pools[name] = LeasePool(name, self._send, leases=leases, tokens=tokens,
                                                lease_timeout=lease_timeout)
        return pool

    def semaphore(self, name: str, size: int) -> asyncio.Semaphore:
        """One ``asyncio.Semaphore(size)`` per name on this worker, shared by its chunks (the references)."""
        semaphore = self.semaphores.get(name)
        if semaphore is None:
            semaphore = self.semaphores[name] = asyncio.Semaphore(size)
        return semaphore

    def forget(self, name: str) -> None:
        """The run ``name`` is over: drop its pool (handing back what it holds) and its semaphore."""
        pool = self.pools.pop(name, None)
        if pool is not None:
            pool.close()
        self.semaphores.pop(name, None)

    def _send(self, message: dict[str, Any]) -> None:
        assert self.worker is not None
        self.worker.batched_send({"op": UPDATE_OP, **message})

    def _on_grant(self, name: str, leases: int, tokens: int, quota: int | None) -> None:
        pool = self.pools.get(name)
        if pool is not None:
            pool.on_grant(leases, tokens, quota)


def this_workers_pools() -> LeasePools:
    """The :class:`LeasePools` plugin of the worker running the calling task."""
    plugin = get_worker().plugins.get(WORKER_PLUGIN_NAME)
    if not isinstance(plugin, LeasePools):
        raise RuntimeError("this worker has no lease pools: run batches through pocket_parallel.cluster.Cluster, "
                           "which registers them")
    return plugin


async def forget_run(name: str, dask_worker: Worker) -> None:
    """Run on every worker at the end of a run (``client.run``): drop that run's pool and semaphore."""
    plugin = dask_worker.plugins.get(WORKER_PLUGIN_NAME)
    if isinstance(plugin, LeasePools):
        plugin.forget(name)
