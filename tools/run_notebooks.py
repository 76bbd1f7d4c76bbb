"""Re-execute chapter notebooks from a fresh kernel and store their outputs (``make notebooks``).

Each notebook runs top to bottom on a fresh kernel started in ``notebooks/``; its outputs are
stored with PNG pictures kept (readers see them on GitHub), without timing metadata, and with
consecutive stream outputs merged, so a re-run writes the same text outputs that nbval then
compares. With ``--check`` nothing is written: each text output that would change is printed,
which is how to see exactly what an edit to the library changes in the notebooks.

Usage::

    python tools/run_notebooks.py                       # every chapter notebook, in place
    python tools/run_notebooks.py 01 06                 # those whose names start with 01 or 06
    python tools/run_notebooks.py --check 03            # show what would change, write nothing
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_exercises import KERNELSPEC, dumps, normalize  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


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
    args = parser.parse_args(argv)
    changed = 0
    for path in chapter_notebooks(args.prefixes):
        stored = nbformat.read(path, as_version=4)
        fresh = normalize(execute(nbformat.read(path, as_version=4), args.timeout), keep_pictures=True)
        diff = report(stored, fresh)
        changed += bool(diff)
        print(f"{path.name}: {'text outputs changed' if diff else 'text outputs unchanged'}", file=sys.stderr)
        if args.check:
            print("\n".join(diff))
        else:
            path.write_text(dumps(fresh), encoding="utf-8")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
