"""Terminal demo: ``python -m pocket_parallel --items 20 --latency 0.2 --concurrency 5``.

Races the same simulated LLM calls sequentially and in parallel, prints a table with the
in-order schedule and the lower bound below the measured times, and with ``--plot FILE.png`` saves a picture of how the
two grow with the item count.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import _arguments as arg
from .clock import Clock
from .experiment import Comparison, compare, sweep


def build_parser() -> argparse.ArgumentParser:
    """The demo's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m pocket_parallel",
        description="Race sequential against parallel calls to a simulated LLM.",
    )
    add = parser.add_argument
    add("--items", type=arg.items(), default=20, help=f"number of LLM calls (1-{arg.MAX_ITEMS:,}, default 20)")
    add("--latency", type=arg.latency(), default=0.2, help="seconds per call (0.000001-86400, default 0.2)")
    add("--jitter", type=arg.number("--jitter", low=0.0, high=3.0), default=0.0,
        help="latency spread as a fraction of the mean (0-3, default 0)")
    add("--concurrency", type=arg.limit("--concurrency", high=arg.MAX_IN_FLIGHT), default=5,
        help="most calls in flight at once (>= 1, or 'none'; default 5)")
    add("--seed", type=arg.seed(), default=0, help="seed of the simulated workload (default 0)")
    add("--virtual", action="store_true", help="use the virtual clock: instant and exact")
    add("--plot", metavar="FILE.png", help="also save a picture of time against item count")
    return parser


def format_table(result: Comparison) -> str:
    """The demo's table: each run's time and speedup, with the two references below them."""
    limit = "no limit" if result.max_concurrency is None else f"at most {result.max_concurrency} in flight"
    work = result.total_work
    rows = [
        ("run", "time", "speedup", ""),
        ("sequential", f"{result.sequential_time:.3f} s", "1.00x", "measured"),
        ("parallel", f"{result.parallel_time:.3f} s", f"{result.speedup:.2f}x", "measured"),
        ("in-order schedule", f"{result.schedule_time:.3f} s", f"{work / result.schedule_time:.2f}x",
         "a semaphore, items in order, no overhead"),
        ("lower bound", f"{result.lower_bound:.3f} s", f"{result.max_speedup:.2f}x", "no schedule is faster"),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        f"{result.items} calls of {result.latency:g} s (jitter {result.jitter:g}), {limit}, {result.clock} clock",
        "",
    ]
    for index, row in enumerate(rows):
        cells = [cell.ljust(width) if i in (0, 3) else cell.rjust(width) for i, (cell, width) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths[:3]))
    lines += ["", f"efficiency: {result.efficiency:.0%} of the in-order schedule's pace (the rest is overhead); "
                  f"peak in flight: {result.peak_in_flight} calls"]
    return "\n".join(lines)


def _save_plot(path: str, args: argparse.Namespace) -> None:
    from .plots import speedup_vs_items  # matplotlib is only needed here

    counts = sorted({max(1, round(args.items * f)) for f in (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)})
    results = sweep("items", counts, latency=args.latency, jitter=args.jitter,
                    max_concurrency=args.concurrency, seed=args.seed)
    speedup_vs_items(results).savefig(path, dpi=120)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the exit status (2 for bad arguments, via argparse)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.plot and not args.plot.lower().endswith(".png"):
        parser.error("--plot: the file name must end in .png")
    clock: Clock = "virtual" if args.virtual else "real"
    result = compare(args.items, args.concurrency, latency=args.latency, jitter=args.jitter, seed=args.seed, clock=clock)
    print(format_table(result))
    if args.plot:
        try:
            _save_plot(args.plot, args)
        except OSError as error:
            print(f"could not save the picture: {error}", file=sys.stderr)
            return 1
        print(f"picture saved to {args.plot} (makespan against item count, virtual clock)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
