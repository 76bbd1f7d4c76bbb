"""The course's length, by the estimate of tools/course_time.py, and notebook 00's map of it.

The estimate (prose words / 150 + 1 per code cell + non-blank code lines / 20, in minutes) is
computed from the notebooks themselves, so these tests fail the moment an edit takes a notebook
over its budget, a markdown cell over 250 words, or leaves notebook 00's map behind.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import course_time  # noqa: E402

ESTIMATES = course_time.estimates()
#: Notebooks another engineer is rewriting on the new provider model (issue 22 leaves them to that
#: work): they are over their budgets today, and each test that finds so is an expected failure.
#: Strict: when a rewrite brings one within its budget, its test passes and this list must shrink.
BEING_REWRITTEN: set[str] = set()


def _expected_failure_while_rewritten(numbers: set[str]) -> list[pytest.MarkDecorator]:
    reason = f"notebooks {', '.join(sorted(numbers))} are being rewritten on the provider model, within these budgets"
    return [pytest.mark.xfail(strict=True, reason=reason)] if numbers else []


@pytest.mark.parametrize(
    "each",
    [pytest.param(e, id=e.path.name, marks=_expected_failure_while_rewritten({e.number} & BEING_REWRITTEN)) for e in ESTIMATES],
)
def test_each_notebook_is_within_its_budget_and_marked_for_its_track(each: course_time.Estimate):
    assert course_time.problems([each]) == []


def test_the_core_track_takes_at_most_two_hours():
    core = [each for each in ESTIMATES if each.core]
    assert sorted(each.number for each in core) == sorted(course_time.CORE_BUDGETS)
    assert sum(each.minutes for each in core) <= course_time.CORE_TOTAL_BUDGET


def test_all_prose_is_at_most_20000_words():
    assert sum(each.words for each in ESTIMATES) <= course_time.PROSE_WORDS_BUDGET


def test_the_core_budgets_add_up_to_at_most_two_hours():
    assert sum(course_time.CORE_BUDGETS.values()) <= course_time.CORE_TOTAL_BUDGET


def test_notebook_00_shows_the_map_as_the_notebooks_are_now():
    notebook = nbformat.read(course_time.START_HERE, as_version=4)
    assert course_time.map_cell(notebook).source == course_time.course_map(ESTIMATES), (
        "notebook 00's map is stale: run python tools/course_time.py --update-map")


def test_the_map_marks_every_deep_dive_optional_and_links_every_notebook():
    text = course_time.course_map(ESTIMATES)
    for each in ESTIMATES:
        track = "core" if each.core else "optional"
        assert f"[{each.short_title}]({each.path.name}) | {track} | {each.whole_minutes} |" in text


# -- the estimate itself, on a notebook made here ---------------------------------------------------


def _notebook(tmp_path: Path, *cells: nbformat.NotebookNode, name: str = "07_demo.ipynb") -> Path:
    path = tmp_path / name
    nbformat.write(nbformat.v4.new_notebook(cells=list(cells)), path)
    return path


def test_the_estimate_counts_words_cells_and_lines(tmp_path: Path):
    path = _notebook(
        tmp_path,
        nbformat.v4.new_markdown_cell("# 07 · Demo: a title\n\n" + "word " * 144),  # 150 words in all
        nbformat.v4.new_code_cell("x = 1\n\n   \ny = 2"),  # 2 non-blank lines
        nbformat.v4.new_code_cell("\n".join(f"print({i})" for i in range(18))),  # 18 lines
        nbformat.v4.new_markdown_cell("*Optional deep dive.*"),
    )
    each = course_time.estimate(path)
    assert (each.words, each.code_cells, each.code_lines) == (153, 2, 20)
    assert each.minutes == pytest.approx(153 / 150 + 2 + 1)
    assert each.whole_minutes == 5 and each.longest_markdown_cell == 150
    assert each.number == "07" and each.title == "Demo: a title" and each.short_title == "Demo"
    assert not each.core and each.budget == 40 and not each.marked_optional  # the mark must be in the title cell


def test_problems_names_each_budget_broken(tmp_path: Path):
    long_cell = nbformat.v4.new_markdown_cell("# 01 · Long\n\n" + "word " * 300)
    code = [nbformat.v4.new_code_cell("pass") for _ in range(16)]
    over = course_time.estimate(_notebook(tmp_path, long_cell, *code, name="01_long.ipynb"))
    found = course_time.problems([over])
    assert any("over its budget of 15 min" in line for line in found)
    assert any("a markdown cell of 304 words" in line for line in found)
    unmarked = course_time.estimate(_notebook(tmp_path, nbformat.v4.new_markdown_cell("# 09 · Deep")))
    assert course_time.problems([unmarked]) == [
        "07_demo.ipynb: a deep dive whose title cell does not say 'optional deep dive'"]
