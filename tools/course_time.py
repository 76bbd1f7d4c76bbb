"""How long each chapter notebook takes to work through, estimated from the notebook itself.

The estimate, in minutes (fractional), is the one the course uses everywhere (notebook 00's map,
INSTRUCTORS.md's plans, the budgets checked by ``tests/test_course_time.py``)::

    prose words / 150  +  1 per code cell  +  non-blank code lines / 20

Prose words are the whitespace-separated words of the markdown cells, tables and links
included. Where a whole number of minutes is shown, it is the estimate rounded up.

The course is a **core track**, read in order and at most two hours, and **deep dives**, each
marked optional in its title cell and in notebook 00's map. The map is a markdown cell of
notebook 00 (cell id ``course-map``) that this script writes; the test fails when it is stale.

Usage::

    python tools/course_time.py               # the table: minutes, words, longest markdown cell, budget
    python tools/course_time.py --update-map  # rewrite notebook 00's map from the notebooks as they are
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
START_HERE = NOTEBOOKS / "00_start_here.ipynb"
MAP_CELL = "course-map"

WORDS_PER_MINUTE = 150
CODE_LINES_PER_MINUTE = 20
MINUTES_PER_CODE_CELL = 1

#: The core track and each notebook's budget in minutes; every other chapter notebook is a deep dive.
CORE_BUDGETS = {"00": 8, "01": 15, "02": 16, "03": 20, "04": 20, "05": 18, "06": 20}
CORE_TOTAL_BUDGET = 120
DEEP_DIVE_BUDGET = 40
PROSE_WORDS_BUDGET = 20_000
MARKDOWN_CELL_WORDS_BUDGET = 250
#: How a deep dive says so in its title cell (case is ignored).
OPTIONAL_MARK = "optional deep dive"

_NUMBER = re.compile(r"^(\d\d[a-z]?)_")
_TITLE = re.compile(r"^#\s+(?:\d\d[a-z]?\s*·\s*)?(.+?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Estimate:
    """One notebook measured for the estimate: its words, code cells and code lines, and the minutes they make."""

    path: Path
    title: str
    words: int
    code_cells: int
    code_lines: int
    longest_markdown_cell: int
    title_cell: str

    @property
    def short_title(self) -> str:
        """The title up to its first colon, as the map names the notebook: ``"Why parallel"``."""
        return self.title.split(":", 1)[0]

    @property
    def number(self) -> str:
        """The notebook's number as the course names it: ``"01"``, ``"06b"``."""
        match = _NUMBER.match(self.path.name)
        return match.group(1) if match else self.path.stem

    @property
    def minutes(self) -> float:
        """prose words / 150 + 1 per code cell + non-blank code lines / 20."""
        return (self.words / WORDS_PER_MINUTE + self.code_cells * MINUTES_PER_CODE_CELL
                + self.code_lines / CODE_LINES_PER_MINUTE)

    @property
    def whole_minutes(self) -> int:
        """The estimate rounded up: what the map and INSTRUCTORS.md show."""
        return math.ceil(self.minutes - 1e-9)

    @property
    def core(self) -> bool:
        """Whether the notebook is on the core track (else it is a deep dive)."""
        return self.number in CORE_BUDGETS

    @property
    def budget(self) -> int:
        """The most minutes the notebook may take by the estimate."""
        return CORE_BUDGETS.get(self.number, DEEP_DIVE_BUDGET)

    @property
    def marked_optional(self) -> bool:
        """Whether its title cell says it is an optional deep dive."""
        return OPTIONAL_MARK in self.title_cell.lower()


def _words(text: str) -> int:
    return len(text.split())


def estimate(path: Path) -> Estimate:
    """Measure one notebook for the estimate."""
    notebook = nbformat.read(path, as_version=4)
    markdown = [cell.source for cell in notebook.cells if cell.cell_type == "markdown"]
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    title_cell = markdown[0] if markdown else ""
    title = _TITLE.search(title_cell)
    return Estimate(
        path=path,
        title=title.group(1) if title else path.stem,
        words=sum(_words(text) for text in markdown),
        code_cells=len(code),
        code_lines=sum(1 for text in code for line in text.splitlines() if line.strip()),
        longest_markdown_cell=max((_words(text) for text in markdown), default=0),
        title_cell=title_cell,
    )


def chapter_notebooks(folder: Path = NOTEBOOKS) -> list[Path]:
    """The chapter notebooks in reading order: ``NN_*.ipynb`` and ``NNb_*.ipynb``."""
    return sorted([*folder.glob("[0-9][0-9]_*.ipynb"), *folder.glob("[0-9][0-9][a-z]_*.ipynb")])


def estimates(folder: Path = NOTEBOOKS) -> list[Estimate]:
    """Every chapter notebook, measured, in reading order."""
    return [estimate(path) for path in chapter_notebooks(folder)]


def problems(found: Sequence[Estimate]) -> list[str]:
    """Every budget the notebooks break, one line each (empty when the course is within them)."""
    lines = []
    for each in found:
        if each.minutes > each.budget:
            lines.append(f"{each.path.name}: {each.minutes:.1f} min, over its budget of {each.budget} min")
        if each.longest_markdown_cell > MARKDOWN_CELL_WORDS_BUDGET:
            lines.append(f"{each.path.name}: a markdown cell of {each.longest_markdown_cell} words "
                         f"(at most {MARKDOWN_CELL_WORDS_BUDGET})")
        if not each.core and not each.marked_optional:
            lines.append(f"{each.path.name}: a deep dive whose title cell does not say {OPTIONAL_MARK!r}")
    core = sum(each.minutes for each in found if each.core)
    if core > CORE_TOTAL_BUDGET:
        lines.append(f"the core track: {core:.1f} min, over {CORE_TOTAL_BUDGET} min")
    words = sum(each.words for each in found)
    if words > PROSE_WORDS_BUDGET:
        lines.append(f"all prose: {words:,} words, over {PROSE_WORDS_BUDGET:,}")
    return lines


def course_map(found: Sequence[Estimate]) -> str:
    """Notebook 00's map: every notebook with its track and minutes, linked, then the totals."""
    rows = ["| | Notebook | Track | Minutes |", "|---|---|---|---:|"]
    for each in found:
        track = "core" if each.core else "optional"
        rows.append(f"| {each.number} | [{each.short_title}]({each.path.name}) | {track} | {each.whole_minutes} |")
    core = [each for each in found if each.core]
    optional = [each for each in found if not each.core]
    rows.append("")
    rows.append(f"Core track: {sum(each.whole_minutes for each in core)} minutes in all; "
                f"the {len(optional)} optional deep dives: {sum(each.whole_minutes for each in optional)} more.")
    return "## The map\n\n" + "\n".join(rows)


def map_cell(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Notebook 00's map cell (id ``course-map``)."""
    cells = [cell for cell in notebook.cells if cell.get("id") == MAP_CELL]
    if len(cells) != 1 or cells[0].cell_type != "markdown":
        raise ValueError(f"{START_HERE.name} needs exactly one markdown cell with id {MAP_CELL!r}")
    return cells[0]


def update_map(path: Path = START_HERE) -> bool:
    """Rewrite notebook 00's map until it matches the notebooks; True if it changed.

    The map is part of notebook 00's words, so a changed map can change 00's own minutes:
    rewritten until nothing moves (twice at most in practice).
    """
    changed = False
    for _ in range(5):
        notebook = nbformat.read(path, as_version=4)
        cell = map_cell(notebook)
        wanted = course_map(estimates(path.parent))
        if cell.source == wanted:
            return changed
        cell.source = wanted
        path.write_text(nbformat.writes(notebook) + "\n", encoding="utf-8")
        changed = True
    raise RuntimeError("the map does not settle: its own words keep changing notebook 00's minutes")


def table(found: Sequence[Estimate]) -> str:
    """The report: one row per notebook, then the totals."""
    lines = [f"{'notebook':<44}{'track':<10}{'minutes':>8}{'budget':>8}{'words':>8}{'cells':>7}{'lines':>7}{'longest':>9}"]
    for each in found:
        lines.append(f"{each.path.name:<44}{'core' if each.core else 'optional':<10}{each.minutes:>8.1f}{each.budget:>8}"
                     f"{each.words:>8,}{each.code_cells:>7}{each.code_lines:>7}{each.longest_markdown_cell:>9}")
    core = sum(each.minutes for each in found if each.core)
    rest = sum(each.minutes for each in found if not each.core)
    lines.append(f"core track {core:.1f} min (budget {CORE_TOTAL_BUDGET}), deep dives {rest:.1f} min, "
                 f"all prose {sum(each.words for each in found):,} words (budget {PROSE_WORDS_BUDGET:,})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/course_time.py", description=__doc__.splitlines()[0])
    parser.add_argument("--update-map", action="store_true", help="rewrite notebook 00's map from the notebooks")
    args = parser.parse_args(argv)
    if args.update_map:
        print(f"{START_HERE.name}: map {'rewritten' if update_map() else 'already up to date'}", file=sys.stderr)
    found = estimates()
    print(table(found))
    broken = problems(found)
    for line in broken:
        print(f"over budget: {line}", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
