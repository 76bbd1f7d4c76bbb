"""The cluster benchmark: one cap of C across 2 Dask workers, three ways, side by side in one run.

``python -m benchmarks.cluster`` (part of ``make bench``; ``--quick`` for a small point):
N calls of L seconds against the local server (which refuses any call beyond C with a 429),
C in flight across the cluster, on a LocalCluster of W worker processes that is already up:

- ``cluster``: pocket_parallel.cluster's leases, granted in blocks and moved between workers;
- ``dask_semaphore``: one ``distributed.Semaphore(C)`` acquired and released around every call;
- ``static_split``: a local ``asyncio.Semaphore(C // W)`` in each worker.

Each row: batch time (chunks submitted until the last came back), efficiency against the
ideal ceil(N / C) × L, and what the server counted (most calls in flight, 429s). Cluster
start-up is timed apart. The contenders run in turn, rotated each repetition.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .machine import Machine, describe, finished, machine_from_json

if TYPE_CHECKING:
    from pocket_parallel.cluster import CapMode

CONTENDERS: tuple[CapMode, ...] = ("cluster", "dask_semaphore", "static_split")
LABELS = {
    "cluster": "**pocket_parallel.cluster** (leases in blocks)",
    "dask_semaphore": "one `distributed.Semaphore` acquire per call",
    "static_split": "static split: `asyncio.Semaphore(C // W)` per worker",
}
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


@dataclass(frozen=True)
class ClusterPoint:
    """One contender's batch at one point: times, and what the server counted."""

    key: str
    n: int
    limit: int
    latency: float
    workers: int
    seconds: tuple[float, ...]
    peak_in_flight: int
    rate_limited: int
    answered: int
    complete: bool
    messages: int | None

    @property
    def ideal(self) -> float:
        """ceil(N / C) × L: no schedule with C in flight finishes sooner."""
        return math.ceil(self.n / self.limit) * self.latency

    @property
    def median(self) -> float:
        """Median batch time over the repetitions."""
        ordered = sorted(self.seconds)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2

    @property
    def efficiency(self) -> float:
        """The ideal over the median batch time."""
        return self.ideal / self.median

    @property
    def cap_held(self) -> bool:
        """Whether the server never saw more than C in flight and refused nothing."""
        return self.peak_in_flight <= self.limit and self.rate_limited == 0


@dataclass(frozen=True)
class ClusterResults:
    """A cluster benchmark run: the machine, the start-up time, and one point per contender."""

    machine: Machine
    startup_seconds: float
    points: tuple[ClusterPoint, ...]


def measure(n: int = 2000, limit: int = 16, latency: float = 0.05, workers: int = 2, repetitions: int = 1,
            contenders: Sequence[CapMode] = CONTENDERS, stream: TextIO = sys.stderr) -> ClusterResults:
    """Start a server and a cluster, warm them up, then time each contender in turn."""
    from pocket_parallel.cluster import AskOverHTTP, Cluster
    from pocket_parallel.server import LocalServer

    machine = describe()
    print(f"cluster benchmark: N = {n:,}, C = {limit}, L = {latency:g} s, {workers} workers; {machine.load_text()}",
          file=stream, flush=True)
    seconds: dict[str, list[float]] = {key: [] for key in contenders}
    counted: dict[str, tuple[int, int, int, bool, int | None]] = {}
    prompts = [f"Summarize: document {i} of {n}" for i in range(n)]
    with LocalServer(latency=latency, max_concurrent=limit) as server:
        began = time.perf_counter()
        with Cluster(workers=workers) as cluster:
            startup = time.perf_counter() - began
            print(f"  cluster up in {startup:.2f} s", file=stream, flush=True)
            recipe = AskOverHTTP(server.base_url)
            cluster.run(prompts[: 4 * limit], recipe, max_in_flight=limit)  # warm up: clients, imports, connections
            order = list(contenders)
            for repetition in range(repetitions):
                shift = repetition % len(order)
                for key in order[shift:] + order[:shift]:
                    server.reset()
                    run = cluster.run(prompts, recipe, max_in_flight=limit, cap=key)
                    stats = server.stats()
                    seconds[key].append(run.seconds)
                    peak, refused, _, complete = counted.get(key, (0, 0, 0, True, None))[:4]
                    counted[key] = (max(peak, stats.peak_in_flight), refused + stats.rate_limited, stats.ok,
                                    complete and run.complete and not run.failures,  # every repetition
                                    run.ledger["messages_in"] if run.ledger else None)
                    print(f"  {key}: {run.seconds:.2f} s, peak in flight {stats.peak_in_flight}, "
                          f"429s {stats.rate_limited}", file=stream, flush=True)
    points = tuple(
        ClusterPoint(key, n, limit, latency, workers, tuple(seconds[key]), *counted[key]) for key in contenders
    )
    return ClusterResults(finished(machine), startup, points)


def table(results: ClusterResults) -> str:
    """The results as a Markdown table, our design first."""
    lines = [
        "| approach | batch time | efficiency | peak in flight (server) | 429s | every item answered |",
        "|:---|---:|---:|---:|---:|:---:|",
    ]
    for point in results.points:
        runs = f" (median of {len(point.seconds)})" if len(point.seconds) > 1 else ""
        lines.append(
            f"| {LABELS.get(point.key, point.key)} | {point.median:.2f} s{runs} | {point.efficiency:.0%} | "
            f"{point.peak_in_flight} of {point.limit} | {point.rate_limited} | {'yes' if point.complete else 'NO'} |"
        )
    return "\n".join(lines)


def document(results: ClusterResults, command: str) -> str:
    """The cluster section of a benchmark report."""
    point = results.points[0]
    ours = next((p for p in results.points if p.key == "cluster"), None)
    others = [p for p in results.points if p.key != "cluster"]
    lines = [
        f"## Beyond one machine: one cap across {point.workers} Dask workers",
        "",
        f"`{command}` on {results.machine.date}; {results.machine.summary()}; {results.machine.load_text()}.",
        "",
        f"N = {point.n:,} calls of {point.latency * 1000:g} ms against the local server, at most C = {point.limit} "
        f"in flight across {point.workers} worker processes (ideal ceil(N / C) × L = {point.ideal:.2f} s); batch "
        f"phase only, the cluster already up. Cluster start-up (scheduler, {point.workers} workers, plugins): "
        f"{results.startup_seconds:.2f} s.",
        "",
        table(results),
    ]
    if ours is not None:
        lines += [""] + [
            f"- Against {LABELS[other.key].replace('**', '')}: {other.median / ours.median:.2f}× the time "
            f"of the cluster cap." for other in others
        ]
        if ours.messages is not None:
            lines.append(f"- The cluster cap sent {ours.messages} messages from workers to the scheduler for "
                         f"{ours.answered:,} calls (the Semaphore: two round trips per call).")
    return "\n".join(lines)


def readme_bullet(results: ClusterResults) -> str:
    """One README bullet: the cluster cap's efficiency beside the references, linking the full section."""
    point = results.points[0]
    parts = [f"{LABELS[p.key].replace('**', '')} {p.median:.1f} s ({p.efficiency:.0%})" for p in results.points]
    return (f"Beyond one machine: N = {point.n:,} calls of {point.latency * 1000:g} ms, C = {point.limit} across "
            f"{point.workers} Dask workers (ideal {point.ideal:.2f} s): " + "; ".join(parts) +
            f"; cluster start-up {results.startup_seconds:.1f} s apart "
            "([benchmarks/results/cluster.md](benchmarks/results/cluster.md)).")


def to_json(results: ClusterResults) -> dict[str, object]:
    """Every measurement as plain JSON data."""
    return {
        "machine": dataclasses.asdict(results.machine),
        "startup_seconds": results.startup_seconds,
        "points": [dataclasses.asdict(point) for point in results.points],
    }


def from_json(data: dict[str, Any]) -> ClusterResults:
    """The inverse of :func:`to_json`."""
    points = tuple(ClusterPoint(**{**point, "seconds": tuple(point["seconds"])}) for point in data["points"])
    return ClusterResults(machine_from_json(data["machine"]), data["startup_seconds"], points)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the section, and (full run) write benchmarks/results/cluster.{md,json}."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 320 instead of 2,000; writes nothing")
    parser.add_argument("--repetitions", type=int, default=1, help="runs of each contender (default 1)")
    args = parser.parse_args(argv)
    if args.repetitions < 1:
        parser.error(f"--repetitions must be an integer >= 1; got {args.repetitions}")
    results = measure(n=320 if args.quick else 2000, repetitions=args.repetitions)
    command = "python -m benchmarks.cluster" + (" --quick" if args.quick else "") + (
        f" --repetitions {args.repetitions}" if args.repetitions > 1 else "")
    text = document(results, command)
    print(text)
    if not args.quick:
        write(results, text)
    return 0


def write(results: ClusterResults, text: str, out: Path = RESULTS) -> list[Path]:
    """Write ``cluster.md`` and ``cluster.json`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "cluster.md", out / "cluster.json"]
    paths[0].write_text(text + "\n", encoding="utf-8")
    paths[1].write_text(json.dumps(to_json(results), indent=1) + "\n", encoding="utf-8")
    return paths


if __name__ == "__main__":
    sys.exit(main())
