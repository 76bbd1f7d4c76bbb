"""The course reads in order: each term is defined where it is first used, each tool taught before it is used.

Reading order is the notebooks' order (00, 01, 02, ... 06, 06b, 07 ...), cell by cell. A term is
*defined* where its first mention in the prose (headings and notebook 00's glossary and map
aside) is emphasised (``*term*`` or ``**term**``). Notebook 00's glossary lists every one.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import course_time  # noqa: E402

#: term -> its spellings (the first is the one the glossary uses).
TERMS = {
    "makespan": ["makespan"],
    "in-order schedule": ["in-order schedule"],
    "lower bound": ["lower bound"],
    "semaphore": ["semaphore"],
    "event loop": ["event loop"],
    "coroutine": ["coroutine"],
    "I/O-bound": ["I/O-bound"],
    "CPU-bound": ["CPU-bound"],
    "GIL": ["GIL", "Global Interpreter Lock"],
    "429": ["429"],
    "backoff": ["backoff"],
    "Little's law": ["Little's law"],
    "knee": ["knee"],
    "token bucket": ["token bucket"],
}
#: A name, and the notebook that teaches it: no notebook before that one may mention it.
TAUGHT_IN = {"create_task": "03", "as_completed": "03", "asyncio.Queue": "03", "to_thread": "05"}
#: Notebooks being rewritten on the provider model (see tests/test_course_time.py).
BEING_REWRITTEN: set[str] = set()
SKIPPED_CELLS = {"glossary", "course-map"}

READING = [(each.number, nbformat.read(each.path, as_version=4)) for each in course_time.estimates()]


def _mentions(spellings: list[str], text: str) -> bool:
    return any(re.search(rf"(?<![\w-]){re.escape(s)}(?![\w-])", text, re.IGNORECASE) for s in spellings)


def _emphasised(spellings: list[str], text: str) -> bool:
    return any(re.search(rf"\*[^*\n]*(?<![\w-]){re.escape(s)}(?![\w-])[^*\n]*\*", text, re.IGNORECASE) for s in spellings)


def first_use(spellings: list[str], reading=READING) -> tuple[str, int, str] | None:
    """(notebook, cell number, prose) of the first markdown cell mentioning the term, headings aside."""
    for number, notebook in reading:
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "markdown" or cell.get("id") in SKIPPED_CELLS:
                continue
            prose = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith("#"))
            if _mentions(spellings, prose):
                return number, index, prose
    return None


def _where(term: str) -> str:
    found = first_use(TERMS[term])
    return found[0] if found else ""


@pytest.mark.parametrize(
    "term",
    [pytest.param(term, marks=[pytest.mark.xfail(strict=True, reason=f"first used in notebook {_where(term)}, being rewritten")]
                  if _where(term) in BEING_REWRITTEN and not _emphasised(TERMS[term], first_use(TERMS[term])[2]) else [])
     for term in TERMS],
)
def test_each_term_is_defined_where_it_is_first_used(term: str):
    found = first_use(TERMS[term])
    assert found, f"{term!r} is never used in the prose: drop it from the glossary"
    number, index, prose = found
    assert _emphasised(TERMS[term], prose), (
        f"{term!r} is first used in notebook {number}, cell {index}, without being defined there "
        f"(define it, in *italics* or **bold**, where it is first used)")


def test_the_glossary_in_notebook_00_names_every_term():
    notebook = dict(READING)["00"]
    glossary = [cell.source for cell in notebook.cells if cell.get("id") == "glossary"]
    assert len(glossary) == 1, "notebook 00 needs one markdown cell with id 'glossary'"
    for term, spellings in TERMS.items():
        if term not in ("makespan", "in-order schedule", "lower bound"):  # defined just above the glossary
            assert _emphasised(spellings, glossary[0]), f"the glossary does not define {term!r}"


@pytest.mark.parametrize("name", sorted(TAUGHT_IN))
def test_no_notebook_uses_a_tool_before_the_one_that_teaches_it(name: str):
    teacher = TAUGHT_IN[name]
    numbers = [number for number, _ in READING]
    assert teacher in numbers
    early = [number for number, notebook in READING[: numbers.index(teacher)]
             if any(name in cell.source for cell in notebook.cells)]
    assert early == [], f"{name} appears in notebooks {early}, before notebook {teacher} teaches it"
    assert any(name in cell.source for cell in dict(READING)[teacher].cells), f"notebook {teacher} does not teach {name}"


# -- the checks can fail ----------------------------------------------------------------------------


def test_first_use_skips_headings_and_finds_emphasis():
    cells = [nbformat.v4.new_markdown_cell("# The GIL\n\nNothing here."),
             nbformat.v4.new_markdown_cell("Threads and the GIL, used before it is defined."),
             nbformat.v4.new_markdown_cell("The **Global Interpreter Lock** (GIL) is defined here.")]
    reading = [("05", nbformat.v4.new_notebook(cells=cells))]
    number, index, prose = first_use(["GIL", "Global Interpreter Lock"], reading)
    assert (number, index) == ("05", 1) and not _emphasised(["GIL"], prose)
    assert _emphasised(["GIL", "Global Interpreter Lock"], cells[2].source)
    assert _emphasised(["429"], "answers with HTTP **429 Too Many Requests** at once")
    assert not _mentions(["knee"], "acknowledge") and _mentions(["I/O-bound"], "it is I/O-bound.")
