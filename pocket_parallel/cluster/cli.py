"""The terminal command: ``python -m pocket_parallel.cluster --workers 2 --items 2000 --max-in-flight 16``.

Starts what it needs (a local cluster unless ``--scheduler`` names one; the local LLM server
unless ``--server`` names one), runs the batch, and prints what the server counted: answers,
failures, the most calls in flight at once, 429s, and the time against the ideal
``ceil(N / C) × L``. Exits 0 when every item has an answer or an explicit failure, 1 when the
run could not finish, and 2 (with the usage line) on a bad argument.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any, TextIO

from .. import _arguments as arg
from ..journal import JournalError
from .chunks import CAP_MODES
from .runner import DEFAULT_LEASE_TIMEOUT, MAX_LOCAL_WORKERS


def parser() -> argparse.ArgumentParser:
    """The argument parser."""
    p = argparse.ArgumentParser(
        prog="python -m pocket_parallel.cluster",
        description="Run a batch of LLM calls on a Dask cluster with one cap on calls in flight across every "
                    "worker, and print what the server counted.",
    )
    add = p.add_argument
    add("--workers", type=arg.integer("--workers", low=1, high=MAX_LOCAL_WORKERS), default=None,
        help=f"worker processes of a local cluster, 1-{MAX_LOCAL_WORKERS} (default 2)")
    add("--scheduler", default=None, help="address of a running Dask scheduler to use instead (tcp://host:8786)")
    add("--items", type=arg.items(), default=200, help=f"how many calls, 1-{arg.MAX_ITEMS:,} (default 200)")
    add("--max-in-flight", type=arg.limit("--max-in-flight", high=arg.MAX_IN_FLIGHT), default=16, help="calls in flight across the cluster, or none (default 16)")
    add("--max-per-minute", type=arg.limit("--max-per-minute", low=2), default=None, help="requests per minute across the cluster, >= 2, or none")
    add("--latency", type=arg.latency(), default=None,
        help="seconds per call of the local server (default 0.05); with --server, read from it")
    add("--server", default=None, help="URL of a running pocket-parallel server (default: start one here)")
    add("--cap", choices=CAP_MODES, default="cluster",
        help="how the cap is held: cluster (default), or a reference: per_worker, static_split, dask_semaphore, none")
    add("--client-work", type=arg.integer("--client-work", low=0, high=100_000), default=0, help="rounds of token counting per answer (client CPU; default 0)")
    add("--chunk-size", type=arg.integer("--chunk-size", low=1, high=arg.MAX_ITEMS), default=None, help="items per Dask task (default: four chunks per worker)")
    add("--lease-timeout", type=arg.seconds("--lease-timeout", low=1.0, high=3600.0), default=DEFAULT_LEASE_TIMEOUT,
        help=f"seconds a silent worker keeps its leases (default {DEFAULT_LEASE_TIMEOUT:g})")
    add("--kill-worker-after", type=arg.integer("--kill-worker-after", low=0, high=arg.MAX_ITEMS), default=None, help="kill one worker once this many items are answered")
    add("--timeout", type=arg.seconds("--timeout"), default=None, help="seconds the batch may take (default: no limit)")
    return p


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    """Run the command; returns the exit status."""
    p = parser()
    args = p.parse_args(argv)
    if args.workers is not None and args.scheduler is not None:
        p.error("give --workers (start a local cluster) or --scheduler (use a running one), not both")
    if args.cap != "cluster" and args.cap != "none" and args.max_in_flight is None:
        p.error(f"--cap {args.cap} needs --max-in-flight")
    if args.kill_worker_after is not None and args.scheduler is not None:
        p.error("--kill-worker-after kills a local worker process: not with --scheduler")
    if args.server is not None and not args.server.startswith(("http://", "https://")):
        p.error(f"--server must be an http:// URL such as http://127.0.0.1:8000; got {args.server!r}")
    try:
        return _run(args, out)
    except (ValueError, TypeError) as error:  # a combination only the library can judge
        p.error(str(error))
    except (OSError, RuntimeError, TimeoutError, asyncio.TimeoutError, JournalError) as error:  # two before 3.11
        print(f"the run could not finish: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, out: TextIO) -> int:
    from ..server import LocalServer
    from .recipes import AskOverHTTP
    from .runner import Cluster
    from .server_counts import read_stats, reset_stats, server_root

    with ExitStack() as stack:
        if args.server is None:
            latency = args.latency if args.latency is not None else 0.05
            server = stack.enter_context(LocalServer(latency=latency, max_concurrent=args.max_in_flight,
                                                     requests_per_minute=args.max_per_minute))
            url = server.url
        else:
            url = server_root(args.server)
            latency = args.latency if args.latency is not None else float(read_stats(url)["settings"]["latency"])
        cluster = stack.enter_context(Cluster(args.workers, scheduler=args.scheduler, lease_timeout=args.lease_timeout))
        print(f"cluster up in {cluster.startup_seconds:.2f} s: {cluster.workers} workers", file=out, flush=True)
        reset_stats(url)
        run = cluster.run(
            [f"Summarize: document {i} of {args.items}" for i in range(1, args.items + 1)],
            AskOverHTTP(url + "/v1", client_work=args.client_work),
            max_in_flight=args.max_in_flight, max_per_minute=args.max_per_minute, cap=args.cap,
            chunk_size=args.chunk_size, kill_worker_after=args.kill_worker_after, timeout=args.timeout,
        )
        stats = read_stats(url)
    print(format_report(run, stats, latency), file=out)
    return 0 if run.complete else 1


def format_report(run: Any, stats: dict[str, Any], latency: float) -> str:
    """The table the command prints: what the server counted beside what the cluster did."""
    counts = run.outcomes.counts()
    cap = run.max_in_flight
    ideal = math.ceil(len(run.outcomes) / cap) * latency if cap is not None else latency
    held = "yes" if cap is None or stats["peak_in_flight"] <= cap else "NO"
    rows = [
        ("items", f"{len(run.outcomes)}"),
        ("answers", f"{counts['ok']}"),
        ("failures", f"{counts['failed']}"),
        ("workers", f"{run.workers} ({run.cap} cap)"),
        ("cap on calls in flight", "none" if cap is None else f"{cap}"),
        ("peak in flight (server)", f"{stats['peak_in_flight']}  (cap held: {held})"),
        ("429s (server)", f"{stats['rate_limited']}"),
        ("answered by the server", f"{stats['ok']}"),
        ("batch time", f"{run.seconds:.2f} s"),
        ("ideal ceil(N/C) x L", f"{ideal:.2f} s  (efficiency {ideal / run.seconds:.0%})" if run.seconds else f"{ideal:.2f} s"),
    ]
    if run.killed:
        rows.append(("workers killed", f"{len(run.killed)}; items from the journal: {run.from_journal}"))
        rows.append(("calls cut off (server)", f"{stats['cancelled']}  (their client died mid-call)"))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
