"""Turn measured cells into the Markdown results file, the README section and the plot."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from pocket_parallel.plots import CourseFigure

from .contenders import BY_KEY, FLOOR, THREAD_CAP
from .machine import Machine
from .plan import Plan, Skipped
from .stats import Cell, VirtualCell, find, virtual_growth, virtual_ratio

SLOWER = 1.10
"""Overhead ratio above which one of our helpers needs an explanation (10 % over the floor)."""

README_START = "<!-- benchmarks:start (written by `make bench`; edit benchmarks/report.py instead) -->"
README_END = "<!-- benchmarks:end -->"

MIB = 1024 * 1024


# -- small formatters ---------------------------------------------------------------------------


def limit_text(limit: int | None) -> str:
    """``"none"`` for no limit, else the number."""
    return "none" if limit is None else f"{limit:,}"


def seconds(value: float) -> str:
    """Seconds with three significant figures (and thousands separators above 1,000)."""
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}"


def wall_text(cell: Cell | VirtualCell) -> str:
    """Median wall time with its spread: ``"1.02 s (1.01–1.03)"``."""
    return f"{seconds(cell.wall)} s ({seconds(min(cell.walls))}–{seconds(max(cell.walls))})"


def ratio_text(cell: Cell) -> str:
    """Median overhead ratio with its spread: ``"1.03× (1.01–1.05)"``; the floor is 1 by definition."""
    if cell.key == FLOOR:
        return "1 (floor)"
    return f"{cell.overhead:.2f}× ({min(cell.ratios):.2f}–{max(cell.ratios):.2f})"


def memory_text(value: int | None) -> str:
    """Bytes as MiB, or ``"–"`` when not measured."""
    if value is None:
        return "–"
    mib = value / MIB
    return f"{mib:.1f} MiB" if mib < 100 else f"{mib:,.0f} MiB"


def _label(cell: Cell) -> str:
    label = f"**{cell.label}**" if cell.ours else cell.label
    if cell.key == "threads" and cell.limit is None:
        label += " ‡"
    return label


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> str:
    lines = [_row(header), "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|"]
    lines += [_row(row) for row in rows]
    return "\n".join(lines)


# -- tables -------------------------------------------------------------------------------------


def _limit_order(limit: int | None) -> float:
    return float("inf") if limit is None else float(limit)


def results_table(cells: Sequence[Cell]) -> str:
    """The real-clock table: one row per contender and configuration."""
    order = {key: index for index, key in enumerate(BY_KEY)}
    ordered = sorted(cells, key=lambda c: (_limit_order(c.limit), c.n, order.get(c.key, 99)))
    rows = []
    for cell in ordered:
        memory = memory_text(cell.memory)
        if cell.memory is not None and cell.memory_latency is not None and cell.memory_latency < cell.latency:
            memory += " †"
        rows.append([
            limit_text(cell.limit), f"{cell.n:,}", _label(cell), str(len(cell.walls)),
            seconds(cell.ideal) + " s", wall_text(cell), f"{cell.efficiency:.1%}", ratio_text(cell), memory,
        ])
    header = ["C", "N", "contender", "runs", "ideal", "wall: median (min–max)", "efficiency",
              "× floor: median (min–max)", "peak RSS growth"]
    return _table(header, rows, "rrlrrrrrr")


def virtual_table(cells: Sequence[VirtualCell]) -> str:
    """The virtual-clock table: real seconds to simulate N items, the makespan reported, against the floor."""
    order = {key: index for index, key in enumerate(BY_KEY)}

    def ratio(value: float | None) -> str:
        return "–" if value is None else f"{value:.2f}×"

    rows = [
        [f"{c.n:,}", c.label, str(len(c.walls)), wall_text(c), f"{c.makespan:,.6g} s", f"{c.ideal:,.6g} s",
         f"{c.n / c.wall:,.0f}", memory_text(c.memory),
         "floor" if c.key == FLOOR else ratio(virtual_ratio(cells, c.key, c.n)),
         "floor" if c.key == FLOOR else ratio(virtual_ratio(cells, c.key, c.n, "memory"))]
        for c in sorted(cells, key=lambda c: (c.n, order.get(c.key, 99)))
    ]
    header = ["N", "contender", "runs", "real seconds: median (min–max)", "virtual makespan", "ideal",
              "items per real second", "peak RSS growth", "wall × floor", "RSS × floor"]
    return _table(header, rows, "rlrrrrrrrr")


def virtual_findings(cells: Sequence[VirtualCell]) -> list[str]:
    """Sentences with the engine's scaling numbers, computed from this run's virtual-clock cells."""
    found = []
    sizes = sorted({c.n for c in cells if c.key == "node"})
    both = [n for n in sizes if virtual_ratio(cells, "node", n) is not None]
    if both:
        n = 100_000 if 100_000 in both else max(both)  # the size issue 10 set its targets at
        node = next(c for c in cells if (c.key, c.n) == ("node", n))
        floor = next(c for c in cells if (c.key, c.n) == (FLOOR, n))
        memory = virtual_ratio(cells, "node", n, "memory")
        found.append(
            f"Virtual clock, N = {n:,} calls of {node.latency:g} s, C = {limit_text(node.limit)}, each run in a fresh "
            f"process: our node took {seconds(node.wall)} s against the floor's {seconds(floor.wall)} s "
            f"({virtual_ratio(cells, 'node', n):.2f}×)"
            + ("" if memory is None else f", with {memory_text(node.memory)} of RSS growth against "
               f"{memory_text(floor.memory)} ({memory:.2f}×)")
            + f"; both report a makespan of {node.makespan:,.6g} s, the ideal."
        )
    small = [n for n in sizes if n >= 10_000]
    if len(small) >= 2:
        low = min(small)
        within = [n for n in small if n <= 10 * low]
        high = max(within) if within else max(small)
        growth = virtual_growth(cells, "node", low, high)
        if growth is not None and high > low:
            items = high / low
            shape = ("no faster than the items (linear)" if growth <= items * 1.2
                     else f"faster than the items ({growth / items:.1f}× more per item)")
            found.append(f"From N = {low:,} to N = {high:,} ({items:g}× the items) our node's time grew "
                         f"{growth:.1f}×: {shape}.")
    large = [c for c in cells if c.key == "node" and c.n > max(both or [0])]
    for cell in sorted(large, key=lambda c: c.n):
        found.append(f"N = {cell.n:,}, our node alone: {seconds(cell.wall)} s of real time for a "
                     f"{cell.makespan:,.6g} s makespan; peak RSS {memory_text(cell.peak)}, of which "
                     f"{memory_text(cell.memory)} grew during the run.")
    return found


SUMMARY_COLUMNS: tuple[tuple[int | None, int], ...] = ((10, 100), (100, 1_000), (100, 10_000), (None, 10_000), (None, 100_000))


def summary_table(cells: Sequence[Cell]) -> str:
    """A compact table for the README: overhead ratio and efficiency at a few telling configurations."""
    columns = [(limit, n) for limit, n in SUMMARY_COLUMNS if find(cells, FLOOR, limit, n) is not None]
    header = ["contender"] + [f"C = {limit_text(limit)}, N = {n:,}" for limit, n in columns]
    rows = []
    floor_row = ["asyncio.gather + Semaphore (floor): wall time"]
    for limit, n in columns:
        floor = find(cells, FLOOR, limit, n)
        floor_row.append(f"{seconds(floor.wall)} s ({floor.efficiency:.0%})" if floor else "–")
    rows.append(floor_row)
    for key, contender in BY_KEY.items():
        if key == FLOOR:
            continue
        found = [find(cells, key, limit, n) for limit, n in columns]
        if not any(found):
            continue
        label = f"**{contender.label}**" if contender.ours else contender.label
        if key == "threads" and any(limit is None for limit, _ in columns):
            label += f" (no limit: at most {THREAD_CAP:,} threads)"
        rows.append([label] + [f"{c.overhead:.2f}× ({c.efficiency:.0%})" if c else "–" for c in found])
    return _table(header, rows, "l" + "r" * len(columns))


# -- findings: the headline numbers and the explanations ------------------------------------------


def headline(cells: Sequence[Cell]) -> list[str]:
    """Sentences with the numbers the issue asks for: our node's overhead and efficiency."""
    lines = []
    for limit in (100, None):
        parts = []
        for n in (1_000, 10_000):
            cell = find(cells, "node", limit, n)
            if cell is not None:
                parts.append(f"{cell.overhead:.2f}× at N = {n:,} (spread {min(cell.ratios):.2f}–{max(cell.ratios):.2f})")
        if parts:
            where = "with C = 100" if limit else "with no limit"
            lines.append(f"`BoundedParallelBatchNode` against the floor, {where}: " + "; ".join(parts) + ".")
    cell, floor = find(cells, "node", 100, 1_000), find(cells, FLOOR, 100, 1_000)
    if cell is not None and floor is not None:
        lines.append(
            f"Efficiency at N = 1,000, C = 100: {cell.efficiency:.1%} of the ideal "
            f"({seconds(cell.ideal)} s ideal, {seconds(cell.wall)} s measured; the floor: {floor.efficiency:.1%})."
        )
    return lines


def _where(cell: Cell) -> str:
    return f"C = {limit_text(cell.limit)}, N = {cell.n:,}"


def findings(cells: Sequence[Cell]) -> list[str]:
    """Where our helpers run more than 10 % over the floor, and why; plus where asyncio itself bends."""
    lines = []
    for key in ("node", "node_in_flow", "flow", "node_llm"):
        slow = [c for c in cells if c.key == key and c.overhead > SLOWER]
        if not slow:
            continue
        worst = max(slow, key=lambda c: c.overhead)
        listed = ", ".join(f"{c.overhead:.2f}× at {_where(c)}" for c in sorted(slow, key=lambda c: (_limit_order(c.limit), c.n)))
        lines.append(f"**{BY_KEY[key].label}** is over the floor by more than 10 %: {listed}. " + _why(key, worst, cells))
    bend = gc_finding(cells)
    if bend:
        lines.append(bend)
    return lines


def _why(key: str, worst: Cell, cells: Sequence[Cell]) -> str:
    at = (worst.limit, worst.n)
    if key == "flow":
        reference = find(cells, "pf_flow", *at)
        bounded = [c for c in cells if c.key == "flow" and c.limit not in (None, 1)]
        bounded_text = ""
        if bounded:
            largest = max(bounded, key=lambda c: c.n)
            bounded_text = (f" Under a limit the same per-item work hides behind the waits: "
                            f"{largest.overhead:.2f}× at {_where(largest)}.")
        same = f" PocketFlow's own `AsyncParallelBatchFlow` costs {reference.overhead:.2f}× there too." if reference else ""
        return (
            "The cost is PocketFlow's flow machinery, not the limit: each sub-flow copies its start node "
            "and runs `prep_async`, `_exec` and `post_async` through `_orch_async` (cProfile puts `copy.copy`, "
            "`_orch_async` and `_run_async` right after the event loop itself)." + same +
            " Our class adds only a semaphore and an outcome record per sub-flow; removing the rest would mean "
            "re-implementing PocketFlow's flow, which this package never does." + bounded_text
        )
    if key == "node_llm":
        plain = find(cells, "node", *at)
        versus = f" (the same node over a bare `asyncio.sleep`: {plain.overhead:.2f}×)" if plain else ""
        return (
            f"The extra is the simulated service's bookkeeping{versus}: per call it checks the prompt, "
            "numbers the attempt, updates its counters, builds the answer from the prompt and appends a "
            "frozen `CallRecord` to its trace, which also keeps N more objects alive for the garbage "
            "collector to walk. It is the price of the trace the timeline plots are drawn from, "
            "and a real service costs far more per call."
        )
    if key == "node_in_flow":
        return "The same per-item cost as the node run alone: the `AsyncFlow` around it adds nothing per item."
    reference = find(cells, "pf_node", *at)
    floor = find(cells, FLOOR, *at)
    same = f"PocketFlow's own `AsyncParallelBatchNode` costs {reference.overhead:.2f}× there. " if reference else ""
    extra = f" about {(worst.wall - floor.wall) / worst.n * 1e6:.0f} µs per item more than the floor here" if floor else ""
    return (
        "With no limit the run is CPU-bound and the cost per item decides. " + same +
        "Ours gives every item an outcome record (so that nothing is lost, even on a cancel) "
        f"and a task of its own:{extra}. With a rate limit or a backoff set, each attempt also "
        "goes through a small proxy that paces and backs it off (benchmarks/README.md)."
    )


def _range(cells: Sequence[Cell]) -> str:
    low, high = min(c.overhead for c in cells), max(c.overhead for c in cells)
    return f"{low:.2f}×" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}–{high:.2f}×"


def slow_summary(cells: Sequence[Cell]) -> str:
    """One sentence for the README: where our helpers are more than 10 % over the floor."""
    slow = [c for c in cells if c.ours and c.overhead > SLOWER]
    if not slow:
        return "None of our helpers is more than 10 % over the floor in any configuration."
    limits = {c.limit for c in slow}
    where = ("only with no limit" if limits == {None}
             else "at " + ", ".join(sorted({_where(c) for c in slow})))
    at = {(c.limit, c.n) for c in slow}
    parts = []
    for key in ("node", "node_in_flow", "flow", "node_llm"):
        mine = [c for c in slow if c.key == key]
        if mine:
            parts.append(f"{BY_KEY[key].label} {_range(mine)}")
    references = []
    for key in ("pf_node", "pf_flow"):
        theirs = [c for c in cells if c.key == key and (c.limit, c.n) in at]
        if theirs:
            references.append(f"{BY_KEY[key].label} {_range(theirs)}")
    text = (f"More than 10 % over the floor {where}, from N = {min(c.n for c in slow):,}, where the run is "
            f"CPU-bound instead of waiting: " + "; ".join(parts) + ".")
    if references:
        text += " At the same points: " + "; ".join(references) + "."
    return text + " Why, and what was done about it: [benchmarks/README.md](benchmarks/README.md)."


def gc_finding(cells: Sequence[Cell]) -> str | None:
    """Where asyncio itself bends: the floor's wall time with and without the cyclic GC."""
    floor = find(cells, FLOOR, None, 100_000) or find(cells, FLOOR, None, 10_000)
    paused = find(cells, "floor_gc_paused", floor.limit, floor.n) if floor else None
    if floor is None or paused is None:
        return None
    return (
        f"Where asyncio itself bends: with no limit, plain `asyncio.gather` over N = {floor.n:,} waits of "
        f"{floor.latency:g} s took {seconds(floor.wall)} s (efficiency {floor.efficiency:.0%}), and "
        f"{seconds(paused.wall)} s with Python's cyclic garbage collector paused: "
        f"{1 - paused.wall / floor.wall:.0%} of the wall time went to collections that walk every live task. "
        "Every asyncio contender pays this; it grows with the number of tasks alive at once."
    )


# -- the results file and the README section ------------------------------------------------------


def method_text(plan: Plan) -> list[str]:
    """How the numbers were measured, for the results file."""
    return [
        f"Every contender runs the same workload: N waits of L = {plan.latency:g} s with at most C in flight "
        "(`asyncio.sleep` for the async contenders, a blocking `time.sleep` in the thread pool; the "
        "`+ SimulatedLLM` row sends the same N items to `SimulatedLLM(latency=L, jitter=0)` instead, to show "
        "what the simulated service's own bookkeeping adds).",
        "- **ideal** = ceil(N / C) × L; **efficiency** = ideal / median wall time (100 % = no schedule could do better).",
        "- **× floor** = wall time / wall time of plain `asyncio.gather` + `asyncio.Semaphore(C)` in the same "
        "repetition (no semaphore when C is none); median and min–max over repetitions.",
        "- **runs**: repetitions per contender" + (
            f" ({plan.repetitions}, or {plan.long_repetitions} where a run takes over 1.5 s or so)"
            if plan.repetitions != plan.long_repetitions else f" ({plan.repetitions})"
        ) + ", interleaved: repetition k runs every contender once, in an order rotated by k, "
        "so drift in the machine's load hits all alike. A full garbage collection runs before each timed run; "
        "the collector stays on during it.",
        "- **wall** is measured inside a fresh event loop around the contender alone; the thread pool is timed "
        "from creating the pool to its shutdown (starting threads is part of its cost).",
        "- **peak RSS growth**: resident memory at its peak minus just before the run, in one separate run per "
        "contender, in a child forked for that run from a helper process that has imported everything but never "
        "run a workload, so no run reuses memory another freed and no timed run pays for measuring; unlike "
        "`tracemalloc` it counts thread stacks and C allocations too.",
        "- C = 1 rows compare PocketFlow's sequential `AsyncBatchNode` with the floor at C = 1; "
        "PocketFlow's `AsyncParallelBatchNode`/`AsyncParallelBatchFlow` have no limit, so they appear only "
        "with C = none.",
    ]


def footnotes(cells: Sequence[Cell], plan: Plan) -> list[str]:
    """The † and ‡ notes under the real-clock table, when they apply."""
    notes = []
    short = sorted({(c.memory_latency, c.limit, c.n) for c in cells
                    if c.memory is not None and c.memory_latency is not None and c.memory_latency < c.latency},
                   key=lambda t: (_limit_order(t[1]), t[2]))
    if short:
        where = "; ".join(f"L = {lat:g} s at {'C = ' + limit_text(lim)}, N = {n:,}" for lat, lim, n in short)
        notes.append(
            f"† memory measured at a shorter latency ({where}) so that its run takes about "
            f"{plan.memory_max_ideal:g} s: what is alive at once (tasks, futures, threads, results) depends on "
            "N and C, not on how long each wait lasts."
        )
    if any(c.key == "threads" and c.limit is None for c in cells):
        notes.append(
            f"‡ with no limit the thread pool gets min(N, {THREAD_CAP:,}) threads (one per item would mean "
            f"100,000 threads), so its own best is ceil(N / {THREAD_CAP:,}) × L; its efficiency is still "
            "against the no-limit ideal L."
        )
    return notes


def document(
    machine: Machine,
    plan: Plan,
    cells: Sequence[Cell],
    virtual: Sequence[VirtualCell],
    skipped: Sequence[Skipped],
    duration: float,
    command: str,
) -> str:
    """The whole results file (Markdown)."""
    lines = [
        "# Benchmark results",
        "",
        f"- **Machine:** {machine.summary()}",
        f"- **Date:** {machine.date}; {machine.load_text()}"
        + (" (other jobs shared the cores: noisy)" if max(
            (load[0] for load in (machine.load_start, machine.load_end) if load), default=0.0) > 0.5 else ""),
        "- **Software:** " + ", ".join(f"{name} {ver}" for name, ver in machine.packages),
        f"- **Command:** `{command}` ({plan.name} run, {_minutes(duration)})",
        "",
        "## How it is measured",
        "",
        *method_text(plan),
        "",
        f"## Real clock: N waits of {plan.latency:g} s, at most C in flight",
        "",
        results_table(cells),
        "",
        *[line for note in footnotes(cells, plan) for line in (note, "")],
    ]
    found = headline(cells) + findings(cells)
    if found:
        lines += ["## What the numbers say", "", *[f"- {line}" for line in found], ""]
    if skipped:
        lines += ["## Skipped configurations", "",
                  *[f"- C = {limit_text(s.limit)}, N = {s.n:,}: {s.reason}." for s in skipped], ""]
    if virtual:
        first = virtual[0]
        lines += [
            f"## Virtual clock: N calls of {first.latency:g} s, C = {limit_text(first.limit)}",
            "",
            "Real seconds to simulate N items through `BoundedParallelBatchNode` with "
            "`pocket_parallel.run(..., clock=\"virtual\")`; the makespan is read on the virtual clock.",
            "",
            virtual_table(virtual),
            "",
            *virtual_findings(virtual),
            "",
        ]
    return "\n".join(lines)


def _minutes(duration: float) -> str:
    minutes, secs = divmod(round(duration), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _wrap(text: str, bullet: bool = False) -> str:
    # Wrap prose like the rest of the README; never break inside a link or inline code.
    return textwrap.fill(text, width=92, initial_indent="- " if bullet else "", subsequent_indent="  " if bullet else "",
                         break_long_words=False, break_on_hyphens=False)


def readme_section(
    machine: Machine, plan: Plan, cells: Sequence[Cell], virtual: Sequence[VirtualCell], duration: float, command: str,
    extra_bullets: Sequence[str] = (), extra_tables: Sequence[str] = (),
) -> str:
    """The README's benchmark section (between the markers), quoting this run's numbers (and ``extra_bullets``,
    then ``extra_tables``: Markdown blocks shown as they are)."""
    bullets = headline(cells) + [slow_summary(cells)]
    bend = gc_finding(cells)
    if bend:
        bullets.append(bend)
    bullets += virtual_findings(virtual)
    bullets += list(extra_bullets)
    lines = [
        README_START,
        _wrap(f"Latest numbers: `{command}` ({_minutes(duration)}) on {machine.date}; {machine.summary()}; "
              f"{machine.load_text()}."),
        "",
        _wrap("Each cell: wall time over the floor's (plain `asyncio.gather` + `asyncio.Semaphore(C)` in the "
              "same repetition; 1.00× = as fast as hand-written asyncio), median of the repetitions, with the "
              "efficiency (ideal makespan ceil(N / C) × L over wall time) in brackets."),
        "",
        summary_table(cells),
        "",
        *[_wrap(bullet, bullet=True) for bullet in bullets],
        "",
        *[line for table in extra_tables for line in (table, "")],
        _wrap("Every configuration with its spread and peak memory, the configurations left out and why: "
              "[benchmarks/results/latest.md](benchmarks/results/latest.md); the picture: "
              "[benchmarks/results/latest.png](benchmarks/results/latest.png); the method: "
              "[benchmarks/README.md](benchmarks/README.md)."),
        README_END,
    ]
    return "\n".join(lines)


def update_readme(path: Path, section: str) -> None:
    """Replace the text between the benchmark markers in ``path`` with ``section``."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(README_START) + r".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{path} has no benchmark markers ({README_START!r} … {README_END!r}) to replace")
    path.write_text(pattern.sub(lambda _: section, text, count=1), encoding="utf-8")


# -- the plot -----------------------------------------------------------------------------------

STYLE = {
    FLOOR: ("#000000", "-", "o"),
    "node": ("#0072B2", "-", "s"),
    "node_in_flow": ("#56B4E9", "--", "D"),
    "flow": ("#009E73", "-", "^"),
    "node_llm": ("#CC79A7", "-", "v"),
    "pf_node": ("#E69F00", ":", "s"),
    "pf_flow": ("#8C6D1F", ":", "^"),
    "aiometer": ("#D55E00", "-.", "P"),
    "threads": ("#999999", "-.", "X"),
    "floor_gc_paused": ("#000000", ":", "o"),
}


def _series(ax: Axes, cells: Sequence[Cell], value, keys: Sequence[str]) -> None:  # type: ignore[no-untyped-def]
    for key in keys:
        mine = sorted((c for c in cells if c.key == key), key=lambda c: c.n)
        if len(mine) < 1 or key not in STYLE:
            continue
        color, line, marker = STYLE[key]
        ax.plot([c.n for c in mine], [value(c) for c in mine], linestyle=line, marker=marker, color=color,
                linewidth=2.2 if BY_KEY[key].ours else 1.3, markersize=5, label=BY_KEY[key].label)


def figure(cells: Sequence[Cell], virtual: Sequence[VirtualCell], machine: Machine) -> Figure:
    """Four panels: efficiency under C = 100, overhead and memory with no limit, virtual-clock scaling."""
    fig = CourseFigure(figsize=(12.0, 9.0), layout="constrained")
    (eff_ax, over_ax), (mem_ax, virt_ax) = fig.subplots(2, 2)
    keys = [k for k in BY_KEY if k != "pf_sequential"]
    bounded = [c for c in cells if c.limit == 100]
    unlimited = [c for c in cells if c.limit is None]

    _series(eff_ax, bounded, lambda c: 100 * c.efficiency, keys)
    eff_ax.set_title("C = 100: efficiency (ideal makespan / wall time)")
    eff_ax.set_ylabel("efficiency (%)")
    eff_ax.axhline(100, color="#009E73", linewidth=0.8, linestyle="--")

    _series(over_ax, unlimited, lambda c: c.overhead, keys)
    over_ax.axhline(1.0, color="#000000", linewidth=0.8)
    over_ax.axhline(SLOWER, color="#D55E00", linewidth=0.8, linestyle="--")
    over_ax.set_yscale("log")
    over_ax.set_title("No limit: wall time / plain asyncio.gather (same repetition)")
    over_ax.set_ylabel("× floor (log scale; dashed: +10 %)")

    _series(mem_ax, [c for c in unlimited if c.memory], lambda c: c.memory / MIB, keys)
    mem_ax.set_yscale("log")
    mem_ax.set_title("No limit: peak RSS growth, one run in a fresh process")
    mem_ax.set_ylabel("MiB (log scale)")

    for key in dict.fromkeys(c.key for c in virtual):
        mine = sorted((c for c in virtual if c.key == key), key=lambda c: c.n)
        color, line, marker = STYLE.get(key, ("#000000", "-", "o"))
        virt_ax.plot([c.n for c in mine], [c.wall for c in mine], linestyle=line, marker=marker, color=color,
                     linewidth=2.2, label=BY_KEY[key].label)
    if virtual:
        first = virtual[0]
        exact = all(abs(c.makespan - c.ideal) < 1e-6 for c in virtual)
        spans = ", ".join(f"{c.makespan:,.0f} s" for c in sorted(virtual, key=lambda c: c.n) if c.key == first.key)
        virt_ax.text(0.97, 0.04, f"virtual makespans: {spans}\n" + ("exactly the ideal" if exact else "NOT the ideal"),
                     transform=virt_ax.transAxes, ha="right", va="bottom", fontsize="small")
        virt_ax.legend(loc="upper left", fontsize="small")
        virt_ax.set_title(f"Virtual clock: real seconds to simulate N calls of {first.latency:g} s, C = {first.limit}")
    virt_ax.set_yscale("log")
    virt_ax.set_ylabel("real seconds (log scale)")
    times = FuncFormatter(lambda y, _: f"{y:g}×")
    over_ax.yaxis.set_major_formatter(times)
    over_ax.yaxis.set_minor_formatter(FuncFormatter(lambda y, _: f"{y:g}×" if round(y, 6) in (0.5, 2, 3, 5) else ""))
    for ax in (mem_ax, virt_ax):
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())

    for ax in (eff_ax, over_ax, mem_ax, virt_ax):
        ax.set_xscale("log")
        ax.set_xlabel("N (items)")
        ax.grid(alpha=0.3, which="both")
    handles, labels = {}, []
    for ax in (eff_ax, over_ax, mem_ax):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    fig.legend([handles[label] for label in labels], labels, loc="outside lower center", ncols=4, fontsize="small")
    fig.suptitle(f"pocket-parallel benchmarks, L = {cells[0].latency:g} s: {machine.summary()}" if cells else "benchmarks")
    return fig
