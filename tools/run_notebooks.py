"""Re-execute chapter notebooks from a fresh kernel and store their outputs (``make notebooks``).

Each notebook runs top to bottom on a fresh kernel started in ``notebooks/``; its outputs are
stored with PNG pictures kept (readers see them on GitHub), without timing metadata, and with
consecutive stream outputs merged, so a re-run writes the same text outputs that nbval then
compares. With ``--check`` nothing is written: each text output that would change is printed,
which is how to see exactly what an edit to the library changes in the notebooks.

**A quiet machine.** Several notebooks measure on the real clock, and what they store is what
readers see on GitHub, nbviewer and Binder. So the script refuses to run while the one-minute
load average is at least half the usable cores (on 2 cores: 1.0 or more), and records in each
notebook's metadata (``pocket_parallel.executed``) the load average before and after its run and
the usable cores; ``tests/test_lesson_effects.py`` reads that record. ``--busy-ok`` (or the
environment variable ``POCKET_PARALLEL_BUSY_OK=1``) runs anyway, for development: the load is
still recorded, and the record says the machine was busy.

Usage::

    python tools/run_notebooks.py                       # every chapter notebook, in place
    python tools/run_notebooks.py 01 06                 # those whose names start with 01 or 06
    python tools/run_notebooks.py --check 03            # show what would change, write nothing
    python tools/run_notebooks.py --busy-ok 05          # run on a busy machine (the record says so)
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_exercises import KERNELSPEC, dumps, normalize  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
#: Where a chapter notebook's metadata records the machine's load when its outputs were made.
RECORD_KEY = "pocket_parallel"
BUSY_OK_VARIABLE = "POCKET_PARALLEL_BUSY_OK"
#: Quiet: the one-minute load average is below this share of the usable cores.
QUIET_SHARE = 0.5


def usable_cores() -> int:
    """The cores this process may use (a container or a scheduler can allow fewer than the machine has)."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13 and later
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def load_average() -> float:
    """The one-minute load average: how many processes wanted a core, on average, over the last minute."""
    if not hasattr(os, "getloadavg"):
        raise SystemExit("make notebooks needs the load average (os.getloadavg), which this system lacks: run it on Linux or macOS")
    return os.getloadavg()[0]


def is_quiet(load: float, cores: int) -> bool:
    """Whether a one-minute load average counts as a quiet machine: below half the usable cores."""
    return load < QUIET_SHARE * cores


def record(notebook: nbformat.NotebookNode, before: float, after: float, cores: int) -> nbformat.NotebookNode:
    """Store in the notebook's metadata how loaded the machine was while its outputs were made."""
    notebook.metadata[RECORD_KEY] = {
        "executed": {
            "load_average_1min_before": round(before, 2),
            "load_average_1min_after": round(after, 2),
            "usable_cores": cores,
            "quiet": is_quiet(before, cores),
        }
    }
    return notebook


def chapter_notebooks(prefixes: Sequence[str] = ()) -> list[Path]:
    """The chapter notebooks (``notebooks/NN_*.ipynb`` and ``NNb_*.ipynb``), all or those starting with a prefix.

    A prefix such as ``06`` takes ``06_...`` and ``06b_...`` alike.
    """
    found = sorted([*NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"), *NOTEBOOKS.glob("[0-9][0-9][a-z]_*.ipynb")])
    chosen = [path for path in found if not prefixes or path.name.startswith(tuple(prefixes))]
    if prefixes and not chosen:
        raise SystemExit(f"no chapter notebook starts with {', '.join(prefixes)}; have: {', '.join(p.name for p in found)}")
    return chosen


def execute(notebook: nbformat.NotebookNode, timeout: int) -> nbformat.NotebookNode:
    """Run every cell on a fresh kernel started in ``notebooks/``.

    Streams are stored as the kernel wrote them (a progress bar's carriage returns included),
    which is what nbval compares against.
    """
    from nbclient import NotebookClient

    NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name=KERNELSPEC["name"],
        record_timing=False,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    ).execute()
    return notebook


def texts(notebook: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """(cell number, text) of every text output, as nbval compares them."""
    found = []
    for number, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                found.append((number, output.text))
            elif output.output_type in ("execute_result", "display_data"):
                found.append((number, output.data.get("text/plain", "")))
            elif output.output_type == "error":
                found.append((number, f"{output.ename}: {output.evalue}"))
    return found


def report(before: nbformat.NotebookNode, after: nbformat.NotebookNode) -> list[str]:
    """The lines of a diff between the text outputs of two runs of one notebook."""
    old = [f"[cell {n}] {line}" for n, text in texts(before) for line in text.splitlines()]
    new = [f"[cell {n}] {line}" for n, text in texts(after) for line in text.splitlines()]
    return [line for line in difflib.unified_diff(old, new, "stored", "now", lineterm="", n=0)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/run_notebooks.py", description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="run only notebooks whose names start with these (e.g. 01 06)")
    parser.add_argument("--check", action="store_true", help="print what would change; write nothing")
    parser.add_argument("--timeout", type=int, default=300, help="seconds a cell may take (default 300)")
    parser.add_argument("--busy-ok", action="store_true",
                        help=f"run even on a busy machine, for development (or {BUSY_OK_VARIABLE}=1); the load is recorded")
    args = parser.parse_args(argv)
    busy_ok = args.busy_ok or os.environ.get(BUSY_OK_VARIABLE, "") not in ("", "0")
    cores = usable_cores()
    changed = 0
    for path in chapter_notebooks(args.prefixes):
        before = load_average()
        if not is_quiet(before, cores) and not busy_ok:
            print(f"refusing to run {path.name}: the one-minute load average is {before:.2f} on {cores} usable cores "
                  f"(quiet is below {QUIET_SHARE * cores:g}); its real-clock outputs would show the machine's load, "
                  f"not the lesson. Wait for a quiet machine, or pass --busy-ok to run anyway (recorded).",
                  file=sys.stderr)
            return 2
        stored = nbformat.read(path, as_version=4)
        fresh = normalize(execute(nbformat.read(path, as_version=4), args.timeout), keep_pictures=True)
        fresh = record(fresh, before, load_average(), cores)
        diff = report(stored, fresh)
        changed += bool(diff)
        quiet = "quiet machine" if is_quiet(before, cores) else "BUSY machine"
        print(f"{path.name}: {'text outputs changed' if diff else 'text outputs unchanged'} "
              f"(load {before:.2f} on {cores} cores: {quiet})", file=sys.stderr)
        if args.check:
            print("\n".join(diff))
        else:
            path.write_text(dumps(fresh), encoding="utf-8")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
