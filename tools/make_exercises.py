"""Generate the student exercise notebooks from the instructor notebooks (``make exercises``).

The instructor notebooks in ``instructor/exercises/`` are the one source of truth. Their code
cells carry each solution between nbgrader's markers, with the hint for it in ``# HINT:``
comment lines just above::

    async def exec_async(self, document):
        # HINT: one call for this document; return its summary.
        ### BEGIN SOLUTION
        return await call_llm_async(f"Summarize: {document}")
        ### END SOLUTION

For each instructor notebook this script writes a student notebook to ``notebooks/exercises/``
in which every such region, hint lines included, is replaced mechanically by a stub at the
same indentation::

        # YOUR CODE HERE
        raise NotImplementedError("one call for this document; return its summary.")

and every cell holding a stub is tagged ``raises-exception`` (nbval then accepts an error
there), as is every test cell (it asserts that its check passed, which a stub cannot). Links into
the chapter notebooks, written ``../../notebooks/NAME.ipynb`` so that they work from
``instructor/exercises/``, become ``../NAME.ipynb``. Nothing else changes: cell ids, text and
metadata are kept.

Before executing an instructor notebook the script writes its nbgrader cell metadata (solution,
test and read-only cells, grade ids, points: see ``nbgrader_cells.py``), so the instructor
notebooks are nbgrader sources as they stand and the student notebooks carry the same metadata.

Both kinds of notebook are then executed on a fresh kernel (in their own folder, without
timing metadata) and written deterministically: fixed notebook metadata, consecutive stream
outputs merged, PNG data dropped (its bytes differ from machine to machine; the figure's text
is kept). Run twice, the script writes the same bytes.

Usage::

    python tools/make_exercises.py                  # execute the instructor notebooks in place, write the student ones
    python tools/make_exercises.py --students-only  # leave the instructor notebooks alone
    python tools/make_exercises.py --out DIR ex01   # write (some) student notebooks elsewhere
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import nbformat
from nbgrader_cells import BEGIN, GradingError, add_grading_metadata, is_test_cell

ROOT = Path(__file__).resolve().parent.parent
INSTRUCTOR_DIR = ROOT / "instructor" / "exercises"
STUDENT_DIR = ROOT / "notebooks" / "exercises"

END = "### END SOLUTION"
HINT = "# HINT:"
STUB_TAG = "raises-exception"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
# What JupyterLab needs to highlight the code; no version numbers, so every machine writes the same bytes.
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}
_CHAPTER_LINK = re.compile(r"\]\(\.\./\.\./notebooks/")
_DROPPED_MIME = ("image/png",)


class MarkerError(ValueError):
    """A solution region is malformed: unbalanced or nested markers, or no hint above it."""


def stub_source(source: str, where: str = "cell") -> tuple[str, int]:
    """Replace every solution region of ``source`` with its stub; return (new source, regions replaced).

    A region is the ``# HINT:`` lines directly above a ``### BEGIN SOLUTION`` line, that line,
    everything up to the matching ``### END SOLUTION`` line, and that line. The stub is
    ``# YOUR CODE HERE`` and ``raise NotImplementedError("<the hint>")`` at the indentation of
    the BEGIN line. ``where`` names the cell in error messages.
    """
    lines = source.split("\n")
    out: list[str] = []
    count = 0
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if stripped == END:
            raise MarkerError(f"{where}, line {index + 1}: {END!r} without a {BEGIN!r} before it")
        if stripped != BEGIN:
            out.append(line)
            index += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        hints: list[str] = []
        while out and out[-1].strip().startswith(HINT) and out[-1].startswith(indent + "#"):
            hints.insert(0, out.pop().strip()[len(HINT):].strip())
        if not hints or not " ".join(hints):
            raise MarkerError(f"{where}, line {index + 1}: a solution region needs a '{HINT} ...' comment line "
                              f"right above {BEGIN!r}, at the same indentation (it becomes the stub's message)")
        end = index + 1
        while end < len(lines) and lines[end].strip() != END:
            if lines[end].strip() == BEGIN:
                raise MarkerError(f"{where}, line {end + 1}: {BEGIN!r} inside another solution region")
            end += 1
        if end == len(lines):
            raise MarkerError(f"{where}, line {index + 1}: {BEGIN!r} has no {END!r} after it")
        out.append(f"{indent}# YOUR CODE HERE")
        out.append(f"{indent}raise NotImplementedError({' '.join(hints)!r})")
        count += 1
        index = end + 1
    return "\n".join(out), count


def student_notebook(instructor: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """The student version of an instructor notebook: stubs for solutions, outputs cleared.

    Cells whose code still raises (stubs) or that assert on a check a stub fails (test cells)
    are tagged ``raises-exception``.
    """
    notebook = copy.deepcopy(instructor)
    regions = 0
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type == "markdown":
            if BEGIN in cell.source or END in cell.source:
                raise MarkerError(f"{name}, cell {number}: solution markers in a text cell are not supported")
            cell.source = _CHAPTER_LINK.sub("](../", cell.source)
        elif cell.cell_type == "code":
            cell.source, found = stub_source(cell.source, f"{name}, cell {number}")
            cell.outputs, cell.execution_count = [], None
            regions += found
            if found or is_test_cell(cell):
                tags = cell.metadata.setdefault("tags", [])
                if STUB_TAG not in tags:
                    tags.append(STUB_TAG)
    if not regions:
        raise MarkerError(f"{name}: no solution region found; an exercise needs at least one")
    return notebook


def execute(notebook: nbformat.NotebookNode, cwd: Path, timeout: int = 120) -> nbformat.NotebookNode:
    """Run every cell on a fresh kernel started in ``cwd``; cells tagged raises-exception may fail."""
    from nbclient import NotebookClient

    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name=KERNELSPEC["name"],
        record_timing=False,
        coalesce_streams=True,
        resources={"metadata": {"path": str(cwd)}},
        # The kernel's own start-up notices (e.g. about its local TCP transport) are not ours to show.
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )
    client.execute()
    return notebook


def normalize(notebook: nbformat.NotebookNode, *, keep_pictures: bool = False) -> nbformat.NotebookNode:
    """Make the notebook's bytes independent of the machine and the moment it ran on.

    Fixed metadata, no timing, consecutive stream outputs merged; PNG data dropped unless
    ``keep_pictures`` (the chapter notebooks keep theirs for readers on GitHub).
    """
    notebook.metadata = nbformat.from_dict({"kernelspec": dict(KERNELSPEC), "language_info": copy.deepcopy(LANGUAGE_INFO)})
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        merged: list[Any] = []
        for output in cell.outputs:
            if output.output_type in ("display_data", "execute_result") and not keep_pictures:
                for mime in _DROPPED_MIME:
                    output.data.pop(mime, None)
                    output.metadata.pop(mime, None)
            if (output.output_type == "stream" and merged and merged[-1].output_type == "stream"
                    and merged[-1].name == output.name):
                merged[-1].text += output.text
            else:
                merged.append(output)
        cell.outputs = merged
    return notebook


def dumps(notebook: nbformat.NotebookNode) -> str:
    """The notebook as JSON text, validated, with a final newline."""
    nbformat.validate(notebook)
    return nbformat.writes(notebook) + "\n"


def instructor_notebooks(names: Iterable[str] = ()) -> list[Path]:
    """The instructor notebooks, all of them or those whose file name starts with one of ``names``."""
    wanted = tuple(names)
    found = sorted(p for p in INSTRUCTOR_DIR.glob("ex*.ipynb") if not wanted or p.name.startswith(wanted))
    if not found:
        raise FileNotFoundError(f"no instructor notebooks{' matching ' + ', '.join(wanted) if wanted else ''} in {INSTRUCTOR_DIR}")
    return found


def build_student(source: Path, out_dir: Path = STUDENT_DIR, run_in: Path = STUDENT_DIR) -> Path:
    """Write the executed student version of ``source`` to ``out_dir``; return its path."""
    instructor = nbformat.read(source, as_version=4)
    student = normalize(execute(student_notebook(instructor, source.name), run_in))
    target = out_dir / source.name
    target.write_text(dumps(student), encoding="utf-8")
    return target


def refresh_instructor(source: Path) -> Path:
    """Write an instructor notebook's nbgrader metadata, execute it (its solutions pass their checks), rewrite it."""
    notebook = add_grading_metadata(nbformat.read(source, as_version=4), source.name)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    source.write_text(dumps(normalize(execute(notebook, source.parent))), encoding="utf-8")
    return source


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the student exercise notebooks from the instructor notebooks.")
    parser.add_argument("names", nargs="*", help="only notebooks whose name starts with these (e.g. ex01)")
    parser.add_argument("--out", type=Path, default=STUDENT_DIR, help="folder for the student notebooks")
    parser.add_argument("--students-only", action="store_true", help="do not re-execute the instructor notebooks")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    STUDENT_DIR.mkdir(parents=True, exist_ok=True)
    for source in instructor_notebooks(args.names):
        start = time.perf_counter()
        try:
            if not args.students_only:
                refresh_instructor(source)
            target = build_student(source, args.out)
        except (MarkerError, GradingError) as error:  # the notebook needs fixing: say where, no traceback
            print(f"make exercises: {error}", file=sys.stderr)
            return 1
        print(f"{source.relative_to(ROOT)} -> {_shown(target)}  ({time.perf_counter() - start:.1f} s)")
    return 0


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
