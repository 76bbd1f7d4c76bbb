"""nbgrader cell metadata for the instructor notebooks, derived from what their cells already say.

``make exercises`` writes it into every instructor notebook, so that the notebooks are nbgrader
sources as they stand and an instructor never sets a cell type by hand. Each cell's role follows
from its text and tags:

- a code cell holding a ``### BEGIN SOLUTION`` region is an *autograded answer* (solution) cell:
  ``solution: true``, not locked;
- a code cell tagged ``check`` that calls a check without ``seed=`` is the *autograded test* cell
  of one exercise part: ``grade: true``, locked, worth ``points``. It must assert on the check's
  result (``assert result.passed, result.message``), or nbgrader would give its points whatever
  the check found; the solution cells since the previous test cell belong to its part;
- every other cell (text, set-up, demonstrations, checks with a fixed seed) is read-only.

Grade ids are stable and readable: ``ex01-parallel-summarizer-solution`` and
``ex01-parallel-summarizer-test`` for a part (named after its check, ``check_parallel_summarizer``),
``ex01-03`` for a read-only cell (its cell id, prefixed by the exercise if it lacks it). A test
cell's ``points`` default to 1; a positive value already in its metadata is kept, so an instructor
can weight a part by editing that number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import nbformat

BEGIN = "### BEGIN SOLUTION"
CHECK_TAG = "check"
SCHEMA_VERSION = 3
DEFAULT_POINTS = 1

_EXERCISE = re.compile(r"^(ex\d+)_")
_CHECK_CALL = re.compile(r"\b(check_\w+)\s*\(")
_ASSERTS_PASSED = re.compile(r"^assert\s+\w+\.passed\b", re.MULTILINE)


class GradingError(ValueError):
    """An exercise notebook whose cells do not say how to grade it (see the module docstring)."""


@dataclass(frozen=True)
class Part:
    """One graded part of an exercise: its solution cells, its test cell and what it is worth."""

    name: str
    solution_cells: tuple[int, ...]
    test_cell: int
    points: float


def exercise_id(notebook_name: str) -> str:
    """``"ex01"`` for ``"ex01_sequential_to_parallel.ipynb"``: the prefix every grade id starts with."""
    match = _EXERCISE.match(notebook_name)
    if not match:
        raise GradingError(f"notebook_name must start with 'ex' and a number, then '_' (e.g. ex01_x.ipynb); got {notebook_name!r}")
    return match.group(1)


def is_solution_cell(cell: nbformat.NotebookNode) -> bool:
    """True for a code cell that holds a solution region."""
    return cell.cell_type == "code" and BEGIN in cell.source


def is_test_cell(cell: nbformat.NotebookNode) -> bool:
    """True for a code cell tagged ``check`` that checks the student's own code (no fixed seed)."""
    return (cell.cell_type == "code" and CHECK_TAG in cell.metadata.get("tags", [])
            and "seed=" not in cell.source)


def exercise_parts(notebook: nbformat.NotebookNode, name: str) -> list[Part]:
    """The graded parts of ``notebook`` (called ``name`` in messages), in order; cells count from 1.

    Raises :class:`GradingError` when a test cell does not assert on its check, when a part has
    no solution cell or a solution no test cell, or when two parts share a check.
    """
    parts: list[Part] = []
    pending: list[int] = []
    for number, cell in enumerate(notebook.cells, start=1):
        if is_solution_cell(cell):
            pending.append(number)
        elif is_test_cell(cell):
            where = f"{name}, cell {number}"
            call = _CHECK_CALL.search(cell.source)
            if not call:
                raise GradingError(f"{where} is tagged {CHECK_TAG!r} but calls no check_...(...) function")
            if not _ASSERTS_PASSED.search(cell.source):
                raise GradingError(f"{where} calls {call.group(1)} on the student's code but does not assert on its "
                                   f"result (end it with 'assert result.passed, result.message'): nbgrader would give "
                                   f"its points whatever the check found")
            if not pending:
                raise GradingError(f"{where} tests the student's code, but no solution cell comes between it and "
                                   f"the previous test cell")
            part = call.group(1).removeprefix("check_").replace("_", "-")
            if any(p.name == part for p in parts):
                raise GradingError(f"{where} calls {call.group(1)} again: each part needs its own check")
            parts.append(Part(part, tuple(pending), number, _points(cell)))
            pending = []
    if pending:
        raise GradingError(f"{name}, cell {pending[0]} holds a solution that no test cell after it checks "
                           f"(a cell tagged {CHECK_TAG!r} that calls a check without seed=)")
    if not parts:
        raise GradingError(f"{name}: no graded part found; an exercise needs a solution cell and a test cell after it")
    return parts


def grading_metadata(notebook: nbformat.NotebookNode, name: str) -> list[dict[str, Any]]:
    """The ``metadata.nbgrader`` dict of every cell of ``notebook``, in order."""
    exercise = exercise_id(name)
    grade_ids: dict[int, str] = {}
    points: dict[int, float] = {}
    for part in exercise_parts(notebook, name):
        for index, number in enumerate(part.solution_cells, start=1):
            grade_ids[number] = f"{exercise}-{part.name}-solution" + (f"-{index}" if index > 1 else "")
        grade_ids[part.test_cell] = f"{exercise}-{part.name}-test"
        points[part.test_cell] = part.points
    found: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for number, cell in enumerate(notebook.cells, start=1):
        grade_id = grade_ids.get(number) or _read_only_id(cell, exercise, f"{name}, cell {number}")
        if grade_id in seen:
            raise GradingError(f"{name}, cells {seen[grade_id]} and {number} would both get grade id {grade_id!r}: "
                               f"give one of them another cell id")
        seen[grade_id] = number
        solution, grade = is_solution_cell(cell), number in points
        meta: dict[str, Any] = {"grade": grade, "grade_id": grade_id, "locked": not solution,
                                "schema_version": SCHEMA_VERSION, "solution": solution, "task": False}
        if grade:
            meta["points"] = points[number]
        found.append(meta)
    return found


def add_grading_metadata(notebook: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """Set every cell's ``metadata.nbgrader`` (replacing what was there); return ``notebook``."""
    for cell, meta in zip(notebook.cells, grading_metadata(notebook, name)):
        cell.metadata["nbgrader"] = nbformat.from_dict(meta)
    return notebook


def _points(cell: nbformat.NotebookNode) -> float:
    existing = cell.metadata.get("nbgrader", {}).get("points")
    if isinstance(existing, (int, float)) and not isinstance(existing, bool) and existing > 0:
        return existing
    return DEFAULT_POINTS


def _read_only_id(cell: nbformat.NotebookNode, exercise: str, where: str) -> str:
    cell_id = cell.get("id")
    if not cell_id:
        raise GradingError(f"{where} has no cell id (nbformat 4.5 gives every cell one): open and save the notebook")
    return cell_id if cell_id.startswith(f"{exercise}-") else f"{exercise}-{cell_id}"
