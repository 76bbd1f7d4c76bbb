"""The same batch on a Dask cluster, with one cap on calls in flight that holds across every worker.

::

    from pocket_parallel.server import LocalServer
    from pocket_parallel.cluster import AskOverHTTP, Cluster

    with LocalServer(latency=0.05, max_concurrent=16) as server, Cluster(workers=2) as cluster:
        run = cluster.run(prompts, AskOverHTTP(server.base_url), max_in_flight=16)
        run.answers, run.failures            # in input order; nothing lost
        server.stats().peak_in_flight        # never above 16: the server counts

**How a batch runs.** The items are split into chunks; each chunk is one async Dask task
that builds the node from a picklable *recipe* (:class:`AskOverHTTP`, or any zero-argument
callable returning a :class:`~pocket_parallel.BoundedParallelBatchNode`) and runs its batch
step on the worker's event loop: each item's ``exec_async`` with its retries, backoff and
limits. Results come back in input order, failed items as :class:`~pocket_parallel.Failure`
records. Each answer is written to a SQLite journal the moment it arrives; if a worker dies,
Dask runs its chunk again elsewhere and the journal hands back the answers already paid for.

**Why a semaphore per worker is not enough.** ``Semaphore(C)`` in each of W processes lets
W × C calls into flight, and the provider answers the surplus with 429s. One
``distributed.Semaphore`` shared by all holds the cap but waits for the scheduler on every
acquire and every release: thousands of round trips where leases need a few dozen messages,
and a slower batch whenever the scheduler's process is busy (``make bench`` measures it). A
static split of C / W per worker holds the cap but strands capacity on a worker that has run
out of work.

**The cluster-wide cap** (``cap="cluster"``, the default) is a scheduler plugin
(:mod:`.scheduler_plugin`, built as ``distributed.Semaphore``'s extension is) that keeps a
ledger of leases (:mod:`.ledger`), and a pool of leases on each worker (:mod:`.lease_pool`)
that every call enters as its node's ``shared_gate``:

- leases are granted in blocks, as many as a worker's waiting calls want, and reused
  locally: a call that ends hands its lease straight to the next call on that worker, with
  no message at all;
- when a worker waits while every lease is out, the others get a quota (their fair share,
  C / active workers) and hand leases back as their calls end, so capacity moves to where
  the work is; a lease idle for 50 ms goes back by itself;
- a worker that dies (its connection to the scheduler closes) has its leases reclaimed at
  once. One that stays connected but goes silent (no heartbeat for the *lease timeout*,
  10 s by default: frozen, or its event loop blocked) loses its leases and is removed from
  the cluster; it stops starting calls on its own after half that time without word from the
  scheduler, so its leases are never used twice. Calls it had already sent stay in flight at
  the server until the server answers them.
- a per-minute budget (``max_per_minute``) is a token bucket on the scheduler, handed out to
  workers in blocks; a worker spends each token within a second or hands it back.

Messages travel on the batched streams Dask keeps between scheduler and workers anyway.

**Other clusters.** ``Cluster(scheduler="tcp://HOST:8786")`` uses any running Dask cluster;
its workers need the same Python packages (``pip install pocket-parallel``) and must reach
the LLM endpoint. With dask-jobqueue, start e.g. ``SLURMCluster(cores=1, processes=1,
memory="2GB")``, call ``.scale(jobs=W)``, and pass its ``scheduler_address``; on Kubernetes,
the dask-kubernetes operator's ``KubeCluster(name=..., image=...)`` gives a scheduler address
the same way (from inside the cluster, or through a port-forward); cloud services
(Coiled, Saturn, or a Dask Gateway) hand you a ``Client`` whose ``scheduler.address`` you
pass. A remote cluster's workers cannot share this machine's disk, so there is no default
journal there: give ``journal=`` a path that each worker reaches on a local disk only when
all workers share one machine, or run without one (a rescheduled chunk then pays again for
the items it had finished).
"""

from .chunks import CAP_MODES, CapMode, RemoteError
from .client_work import count_tokens_slowly
from .recipes import AskOverHTTP
from .result import ClusterRun
from .runner import DEFAULT_LEASE_TIMEOUT, Cluster

__all__ = [
    "CAP_MODES",
    "DEFAULT_LEASE_TIMEOUT",
    "AskOverHTTP",
    "CapMode",
    "Cluster",
    "ClusterRun",
    "RemoteError",
    "count_tokens_slowly",
]
