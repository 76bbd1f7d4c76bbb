"""Run the benchmarks: ``python -m benchmarks.run`` (full, ~10 min) or ``--quick`` (under a minute).

The full run writes ``benchmarks/results/latest.md``, ``latest.png`` and the raw numbers in
``latest.json``, prints the table and the README section, and with ``--update-readme``
rewrites that section of README.md. The quick run prints its table and writes files only
when given ``--out``. ``--redraw latest.json`` redraws everything from saved numbers without
measuring. Progress goes to stderr, tables to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from . import cluster as cluster_bench
from . import at_limit as at_limit_benchmark
from . import contenders as registry
from . import explorer as explorer_benchmark
from . import http as http_benchmark
from . import report
from .machine import Machine, describe, finished, machine_from_json
from .measure import fresh_once, memory_once, stop_fresh_processes, time_once
from .plan import PLANS, Config, Plan, Skipped, config_seconds, configurations, estimated_seconds
from .stats import Cell, VirtualCell, ideal, summarize

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SECTIONS = ("grid", "http", "at-limit", "explorer", "cluster")
"""What ``--only`` can pick: the N × C grid with the virtual clock, real HTTP, throughput at the limit, the explorer, the cluster."""


class Progress:
    """Progress lines on stderr: what runs now, elapsed time, and a rough time left."""

    def __init__(self, total_estimate: float, stream: TextIO = sys.stderr) -> None:
        self.start = time.perf_counter()
        self.total_estimate = total_estimate
        self.done_estimate = 0.0
        self.stream = stream

    def elapsed(self) -> float:
        """Seconds since the run began."""
        return time.perf_counter() - self.start

    def say(self, text: str) -> None:
        """Print one progress line with the elapsed time."""
        minutes, seconds = divmod(int(self.elapsed()), 60)
        print(f"[{minutes:2d}:{seconds:02d}] {text}", file=self.stream, flush=True)

    def advance(self, estimate: float) -> str:
        """Count ``estimate`` seconds of planned work as done; return a rough time-left text."""
        self.done_estimate += estimate
        left = max(0.0, self.total_estimate - self.done_estimate)
        return f"about {left / 60:.1f} min left" if left >= 60 else f"about {left:.0f} s left"


def _rotated(items: Sequence[registry.Contender], k: int) -> list[registry.Contender]:
    k %= len(items)
    return list(items[k:]) + list(items[:k])


def run_config(plan: Plan, config: Config) -> list[Cell]:
    """Time every contender of ``config`` in interleaved repetitions, then measure memory once each."""
    walls: dict[str, list[float]] = {c.key: [] for c in config.contenders}
    for repetition in range(config.repetitions):
        for contender in _rotated(config.contenders, repetition):
            walls[contender.key].append(time_once(contender, config.n, config.limit, plan.latency).wall)
    memory: dict[str, int | None] = {}
    if config.memory_latency is not None:
        for contender in config.contenders:
            memory[contender.key] = memory_once(contender, config.n, config.limit, config.memory_latency)
    return summarize(
        config.n, config.limit, plan.latency, walls,
        labels={c.key: c.label for c in config.contenders},
        ours=frozenset(c.key for c in config.contenders if c.ours),
        memory=memory, memory_latency=config.memory_latency,
    )


def run_virtual(plan: Plan, n: int, keys: Sequence[str] | None = None, repetitions: int | None = None) -> list[VirtualCell]:
    """Simulate ``n`` items on the virtual clock through each virtual-time contender, each run in a fresh process.

    A fresh process per run (forked from a clean helper) keeps one contender's garbage and
    allocations from weighing on the next: at large N that is most of what differs. Where
    forking is not possible, runs are timed in this process and memory is not reported.
    """
    chosen = [registry.get(key) for key in (keys or plan.virtual_contenders)]
    walls: dict[str, list[float]] = {c.key: [] for c in chosen}
    makespans: dict[str, list[float]] = {c.key: [] for c in chosen}
    memories: dict[str, list[int]] = {c.key: [] for c in chosen}
    peaks: dict[str, list[int]] = {c.key: [] for c in chosen}
    for repetition in range(repetitions or plan.virtual_repetitions):
        for contender in _rotated(chosen, repetition):
            # The guard counts virtual seconds: give it room beyond the makespan (1,000 s at N = 100,000).
            guard = max(600.0, 10 * ideal(n, plan.virtual_limit, plan.virtual_latency))
            fresh = fresh_once(contender, n, plan.virtual_limit, plan.virtual_latency, clock="virtual", timeout=guard)
            if fresh is None:
                timing = time_once(contender, n, plan.virtual_limit, plan.virtual_latency, clock="virtual", timeout=guard)
                wall, on_loop = timing.wall, timing.loop
            else:
                wall, on_loop = fresh.wall, fresh.loop
                memories[contender.key].append(fresh.rss)
                peaks[contender.key].append(fresh.peak)
            walls[contender.key].append(wall)
            makespans[contender.key].append(round(on_loop, 6))  # the virtual clock ticks in microseconds
    return [
        VirtualCell(contender.key, contender.label, n, plan.virtual_limit, plan.virtual_latency,
                    tuple(walls[contender.key]), tuple(makespans[contender.key]),
                    int(statistics.median(memories[contender.key])) if memories[contender.key] else None,
                    max(peaks[contender.key]) if peaks[contender.key] else None)
        for contender in chosen
    ]


def _config_text(config: Config) -> str:
    limit = "sequential (C = 1)" if config.limit == 1 else f"C = {report.limit_text(config.limit)}"
    return f"{limit}, N = {config.n:,}: {len(config.contenders)} contenders × {config.repetitions} runs"


@dataclass(frozen=True)
class Results:
    """Everything one benchmark run measured, and where."""

    plan: Plan
    machine: Machine
    cells: list[Cell]
    virtual: list[VirtualCell]
    skipped: list[Skipped]
    duration: float
    http: http_benchmark.HttpResults | None = None
    explorer: explorer_benchmark.ExplorerResults | None = None
    at_limit: at_limit_benchmark.LimitResults | None = None


def measure_plan(plan: Plan, stream: TextIO = sys.stderr, with_http: bool = True,
                 sections: Sequence[str] = SECTIONS) -> Results:
    """Measure every configuration of ``plan``, the virtual-clock section and the real-HTTP ones.

    The real-HTTP sections run when ``with_http`` and the plan's name has a plan for them
    (``full``, ``quick``). ``sections`` picks among :data:`SECTIONS` (the cluster is run by
    :func:`main`). Progress goes to ``stream``.
    """
    configs, skipped = configurations(plan) if "grid" in sections else ([], [])
    if "explorer" not in sections:
        plan = dataclasses.replace(plan, explorer_items=())
    machine = describe()
    explorer_estimate = explorer_benchmark.seconds_estimate(plan.explorer_items, plan.explorer_moves)
    progress = Progress(estimated_seconds(plan, configs) + explorer_estimate, stream)
    progress.say(f"{plan.name} benchmark on {machine.summary()}; {machine.load_text()}")
    progress.say(f"{len(configs)} configurations, roughly {progress.total_estimate / 60:.1f} min; "
                 f"{len(skipped)} skipped (listed in the results)")
    cells: list[Cell] = []
    virtual: list[VirtualCell] = []
    try:
        for index, config in enumerate(configs, start=1):
            progress.say(f"({index}/{len(configs)}) {_config_text(config)} ...")
            began = time.perf_counter()
            cells += run_config(plan, config)
            left = progress.advance(config_seconds(plan, config))
            progress.say(f"({index}/{len(configs)}) done in {time.perf_counter() - began:.1f} s; {left}")
        for n in plan.virtual_items if "grid" in sections else ():
            progress.say(f"virtual clock, N = {n:,}, C = {plan.virtual_limit}, L = {plan.virtual_latency:g} s ...")
            virtual += run_virtual(plan, n)
        for n in plan.virtual_large if "grid" in sections else ():
            progress.say(f"virtual clock, N = {n:,}, our node alone, once ...")
            virtual += run_virtual(plan, n, keys=["node"], repetitions=1)
    finally:
        stop_fresh_processes()
    http = None
    http_plan = http_benchmark.HTTP_PLANS.get(plan.name) if with_http and "http" in sections else None
    if http_plan is not None:
        progress.say(f"real HTTP: N = {http_plan.n:,}, C = {http_plan.limit}, L = {http_plan.latency:g} s, "
                     f"{len(http_benchmark.HTTP_CONTENDERS)} contenders × {http_plan.repetitions} runs ...")
        http = http_benchmark.measure(http_plan, say=progress.say)
    at_limit = None
    limit_plan = at_limit_benchmark.LIMIT_PLANS.get(plan.name) if with_http and "at-limit" in sections else None
    if limit_plan is not None:
        progress.say(f"throughput at the limit: {len(limit_plan.cases)} profiles × "
                     f"{len(at_limit_benchmark.LIMIT_CONTENDERS)} contenders × {limit_plan.repetitions} runs ...")
        at_limit = at_limit_benchmark.measure(limit_plan, say=progress.say)
    explorer = None
    if plan.explorer_items:
        progress.say(f"explorer in a Jupyter kernel: N = {', '.join(map(str, plan.explorer_items))}, "
                     f"{plan.explorer_moves} moves per slider ...")
        explorer = explorer_benchmark.measure(plan.explorer_items, plan.explorer_moves, stream)
    duration = progress.elapsed()
    machine = finished(machine)
    progress.say(f"finished in {duration / 60:.1f} min; {machine.load_text()}")
    return Results(plan, machine, cells, virtual, skipped, duration, http, explorer, at_limit)


def to_json(results: Results) -> dict[str, Any]:
    """Every measurement of ``results`` as plain JSON data (so reports can be redrawn without re-measuring)."""
    plan = dataclasses.asdict(results.plan)
    plan["long"] = sorted([list(pair) for pair in results.plan.long], key=str)
    return {
        "plan": plan,
        "machine": dataclasses.asdict(results.machine),
        "cells": [dataclasses.asdict(c) for c in results.cells],
        "virtual": [dataclasses.asdict(c) for c in results.virtual],
        "skipped": [dataclasses.asdict(s) for s in results.skipped],
        "duration": results.duration,
        "http": None if results.http is None else http_benchmark.to_json(results.http),
        "explorer": None if results.explorer is None else explorer_benchmark.to_json(results.explorer),
        "at_limit": None if results.at_limit is None else at_limit_benchmark.to_json(results.at_limit),
    }


def _tuples(record: dict[str, Any]) -> dict[str, Any]:
    return {key: tuple(value) if isinstance(value, list) else value for key, value in record.items()}


def from_json(data: dict[str, Any]) -> Results:
    """The inverse of :func:`to_json`."""
    plan = dict(data["plan"])
    plan["long"] = frozenset(tuple(pair) for pair in plan["long"])
    return Results(
        plan=Plan(**_tuples(plan)),
        machine=machine_from_json(data["machine"]),
        cells=[Cell(**_tuples(c)) for c in data["cells"]],
        virtual=[VirtualCell(**_tuples(c)) for c in data["virtual"]],
        skipped=[Skipped(**s) for s in data["skipped"]],
        duration=data["duration"],
        http=None if data.get("http") is None else http_benchmark.from_json(data["http"]),
        explorer=None if data.get("explorer") is None else explorer_benchmark.from_json(data["explorer"]),
        at_limit=None if data.get("at_limit") is None else at_limit_benchmark.from_json(data["at_limit"]),
    )


def write(results: Results, out: Path, stem: str, command: str) -> list[Path]:
    """Write ``<stem>.md``, ``<stem>.png`` and the raw ``<stem>.json`` into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    text_path, picture_path, raw_path = out / f"{stem}.md", out / f"{stem}.png", out / f"{stem}.json"
    # The numbers first: if drawing a report fails, --redraw can still make it from them.
    raw_path.write_text(json.dumps(to_json(results), indent=1) + "\n", encoding="utf-8")
    text_path.write_text(document(results, command) + "\n", encoding="utf-8")
    r = results
    if r.cells:
        report.figure(r.cells, r.virtual, r.machine).savefig(picture_path, dpi=100)
    return [text_path, picture_path, raw_path]


def document(results: Results, command: str) -> str:
    """The whole results file: the main report, then the real-HTTP and the explorer's sections when they ran."""
    r = results
    parts = [report.document(r.machine, r.plan, r.cells, r.virtual, r.skipped, r.duration, command)] if r.cells else []
    if r.http is not None:
        parts.append(http_benchmark.section(r.http))
    if r.at_limit is not None:
        parts.append(at_limit_benchmark.section(r.at_limit))
    if r.explorer is not None:
        parts.append(explorer_benchmark.section(r.explorer))
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen plan, print the tables, write the results; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small grid, under a minute; writes nothing unless --out")
    parser.add_argument("--out", type=Path, help="folder for the results file and plot (full run: benchmarks/results)")
    parser.add_argument("--update-readme", action="store_true", help="rewrite the benchmark section of README.md")
    parser.add_argument("--redraw", type=Path, metavar="RESULTS.json",
                        help="measure nothing: redraw the reports from a saved run's .json")
    parser.add_argument("--no-cluster", action="store_true",
                        help="leave out the cluster benchmark (benchmarks/cluster.py: a Dask cluster of 2 workers)")
    parser.add_argument("--only", metavar="SECTIONS", type=_sections,
                        help=f"measure only these, comma-separated ({', '.join(SECTIONS)}); a full run keeps the "
                             "saved numbers of the others (results/latest.json) in its report and README section")
    args = parser.parse_args(argv)
    sections = args.only or SECTIONS
    if args.redraw is not None:
        try:
            results = from_json(json.loads(args.redraw.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as error:
            parser.error(f"--redraw: cannot read {args.redraw}: {error}")
        args.quick = results.plan.name != "full"
    if args.update_readme and args.quick:
        parser.error("--update-readme takes the full run's numbers, not a quick run's")
    if args.redraw is None:
        results = measure_plan(PLANS["quick" if args.quick else "full"], sections=sections)
        saved = (args.out or RESULTS) / "latest.json"
        if args.only and not args.quick and saved.exists():
            results = _merged(from_json(json.loads(saved.read_text(encoding="utf-8"))), results, sections)
    command = "make bench-quick" if args.quick else "make bench"
    out = args.out if args.out is not None else (None if args.quick else RESULTS)
    r = results
    if out is not None:  # before anything is printed: a measurement is never lost to a report's error
        paths = write(results, out, "quick" if args.quick else "latest", command)
        print("wrote " + ", ".join(map(str, paths)), file=sys.stderr)
    print(document(results, command))
    clustered = None
    if args.redraw is None and not args.no_cluster and "cluster" in sections:
        clustered = cluster_bench.measure(n=320 if args.quick else 2000)
        text = cluster_bench.document(clustered, command)
        print("\n" + text)
        if not args.quick:
            cluster_bench.write(clustered, text, out or RESULTS)
    elif not args.quick and (saved := (out or RESULTS) / "cluster.json").exists():  # not measured now: keep the saved run's line
        clustered = cluster_bench.from_json(json.loads(saved.read_text(encoding="utf-8")))
    cluster_bullets = [] if clustered is None or args.quick else [cluster_bench.readme_bullet(clustered)]
    if not args.quick and r.cells:
        extra = [] if r.http is None else [http_benchmark.readme_bullet(r.http), *http_benchmark.cpu_findings(r.http)]
        extra += [] if r.at_limit is None else [at_limit_benchmark.readme_bullet(r.at_limit)]
        tables = [] if r.at_limit is None else [
            "Throughput at the limit, each contender's fraction of the allowed rate (N = "
            f"{r.at_limit.cases[0].case.n} calls per profile, over real HTTP):\n\n"
            + at_limit_benchmark.readme_table(r.at_limit)]
        shown = None if r.explorer is None else explorer_benchmark.readme_bullet(r.explorer)
        extra += [shown] if shown else []
        section = report.readme_section(r.machine, r.plan, r.cells, r.virtual, r.duration, command,
                                        extra + cluster_bullets, tables)
        print("\n---- README section (between the benchmark markers) ----\n" + section)
        if args.update_readme:
            report.update_readme(ROOT / "README.md", section)
            print("updated the benchmark section of README.md", file=sys.stderr)
    return 0


def _sections(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    wrong = [part for part in chosen if part not in SECTIONS]
    if not chosen or wrong:
        raise argparse.ArgumentTypeError(f"must name sections among {', '.join(SECTIONS)}; got {text!r}")
    return chosen


def _merged(saved: Results, measured: Results, sections: Sequence[str]) -> Results:
    """The saved run with the ``sections`` just measured in place of its own."""
    r = saved
    if "grid" in sections:
        r = dataclasses.replace(r, plan=measured.plan, machine=measured.machine, cells=measured.cells,
                                virtual=measured.virtual, skipped=measured.skipped, duration=measured.duration)
    for name, key in (("http", "http"), ("at-limit", "at_limit"), ("explorer", "explorer")):
        if name in sections:
            r = dataclasses.replace(r, **{key: getattr(measured, key)})
    return r


if __name__ == "__main__":
    sys.exit(main())
