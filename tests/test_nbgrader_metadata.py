"""The instructor notebooks carry the nbgrader cell metadata ``make exercises`` derives, and nbgrader accepts it.

- every committed instructor notebook holds exactly the metadata the generator would write now
  (missing or stale metadata fails: run ``make exercises``), and so does its student notebook;
- nbgrader's own schema-3 validator accepts every instructor and student notebook, and grade ids
  are unique across the whole course;
- the generator itself: which cell gets which role, grade ids and points, and every notebook it
  cannot grade is refused with a message naming the cell.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.nbgraderformat import MetadataValidator, ValidationError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import make_exercises as make  # noqa: E402  (tools/ is not a package)
import nbgrader_cells as grading  # noqa: E402

INSTRUCTOR = sorted(make.INSTRUCTOR_DIR.glob("ex*.ipynb"))


def stale_cells(notebook: nbformat.NotebookNode, name: str) -> list[str]:
    """Cells whose ``metadata.nbgrader`` differs from what ``make exercises`` would write now."""
    expected = grading.grading_metadata(notebook, name)
    return [f"cell {number} ({cell.get('id')}): has {cell.metadata.get('nbgrader')}, should have {meta}"
            for number, (cell, meta) in enumerate(zip(notebook.cells, expected), start=1)
            if cell.metadata.get("nbgrader") != meta]


@pytest.mark.parametrize("source", INSTRUCTOR, ids=lambda p: p.stem)
def test_instructor_and_student_notebooks_carry_current_metadata(source: Path):
    instructor = nbformat.read(source, as_version=4)
    problems = stale_cells(instructor, source.name)
    assert not problems, f"{source.relative_to(ROOT)}: run `make exercises`\n" + "\n".join(problems)
    student = nbformat.read(make.STUDENT_DIR / source.name, as_version=4)
    assert [c.metadata.get("nbgrader") for c in student.cells] == [c.metadata["nbgrader"] for c in instructor.cells], (
        f"{source.name}: the student notebook's nbgrader metadata differs from the instructor's: run `make exercises`")


@pytest.mark.parametrize("source", INSTRUCTOR, ids=lambda p: p.stem)
def test_nbgrader_accepts_the_metadata(source: Path):
    for path in (source, make.STUDENT_DIR / source.name):
        MetadataValidator().validate_nb(nbformat.read(path, as_version=4))


def test_grade_ids_are_unique_across_the_course_and_every_exercise_is_graded():
    seen: dict[str, str] = {}
    for source in INSTRUCTOR:
        notebook = nbformat.read(source, as_version=4)
        assert grading.exercise_parts(notebook, source.name), source.name
        for cell in notebook.cells:
            grade_id = cell.metadata["nbgrader"]["grade_id"]
            assert grade_id not in seen, f"{grade_id} in {source.name} and {seen[grade_id]}"
            seen[grade_id] = source.name
    assert "ex01-parallel-summarizer-test" in seen and "ex06-cpu-work-solution" in seen


def test_stale_metadata_is_noticed():
    notebook = nbformat.read(INSTRUCTOR[0], as_version=4)
    assert stale_cells(notebook, INSTRUCTOR[0].name) == []
    del notebook.cells[0].metadata["nbgrader"]
    notebook.cells[-1].metadata["nbgrader"]["locked"] = False
    assert len(stale_cells(notebook, INSTRUCTOR[0].name)) == 2
    with pytest.raises(ValidationError):
        broken = copy.deepcopy(notebook)
        broken.cells[1].metadata["nbgrader"]["grade_id"] = broken.cells[2].metadata["nbgrader"]["grade_id"]
        MetadataValidator().validate_nb(broken)


# -- the generator ------------------------------------------------------------------------------

SOLUTION = "def f():\n    # HINT: h\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"
TEST = "result = check_f(f)\ndisplay(result)\nassert result.passed, result.message"


def _code(source: str, cell_id: str, *tags: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source, id=cell_id, metadata={"tags": list(tags)} if tags else {})


def _notebook(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=list(cells))


def test_each_cell_gets_its_role_grade_id_and_points():
    notebook = _notebook(
        nbformat.v4.new_markdown_cell("# Ex", id="ex07-01"),
        _code("import x", "setup"),
        _code("check_f(g, seed=1)", "ex07-03", "check"),
        _code(SOLUTION, "ex07-04"),
        _code(SOLUTION.replace("f", "f2"), "ex07-05"),
        _code(TEST, "ex07-06", "check"),
        _code(SOLUTION.replace("f", "g"), "ex07-07"),
        _code(TEST.replace("check_f", "check_other_thing"), "ex07-08", "check"),
    )
    notebook.cells[7].metadata["nbgrader"] = {"points": 3}  # an instructor's weight is kept
    metadata = grading.grading_metadata(notebook, "ex07_demo.ipynb")
    roles = [(m["grade_id"], m["grade"], m["solution"], m["locked"], m.get("points")) for m in metadata]
    assert roles == [
        ("ex07-01", False, False, True, None),
        ("ex07-setup", False, False, True, None),
        ("ex07-03", False, False, True, None),
        ("ex07-f-solution", False, True, False, None),
        ("ex07-f-solution-2", False, True, False, None),
        ("ex07-f-test", True, False, True, 1),
        ("ex07-other-thing-solution", False, True, False, None),
        ("ex07-other-thing-test", True, False, True, 3),
    ]
    assert all(m["schema_version"] == 3 and m["task"] is False for m in metadata)
    parts = grading.exercise_parts(notebook, "ex07_demo.ipynb")
    assert [(p.name, p.solution_cells, p.test_cell, p.points) for p in parts] == [
        ("f", (4, 5), 6, 1), ("other-thing", (7,), 8, 3)]
    MetadataValidator().validate_nb(grading.add_grading_metadata(notebook, "ex07_demo.ipynb"))


@pytest.mark.parametrize("cells, problem", [
    ([_code(SOLUTION, "a"), _code("check_f(f)", "b", "check")], "does not assert on its result"),
    ([_code(SOLUTION, "a"), _code("assert ok", "b", "check")], "calls no check_"),
    ([_code(TEST, "b", "check")], "no solution cell comes between"),
    ([_code(SOLUTION, "a"), _code(TEST, "b", "check"), _code(SOLUTION, "c")], "cell 3 holds a solution that no test cell"),
    ([_code(SOLUTION, "a"), _code(TEST, "b", "check"), _code(SOLUTION, "c"), _code(TEST, "d", "check")],
     "calls check_f again"),
    ([_code("x = 1", "a")], "no graded part found"),
    ([_code(SOLUTION, "a"), _code(TEST, "b", "check"), _code("x", "f-test")], "would both get grade id 'ex07-f-test'"),
])
def test_notebooks_that_cannot_be_graded_are_refused(cells, problem: str):
    with pytest.raises(grading.GradingError, match=problem.replace("(", r"\(")):
        grading.grading_metadata(_notebook(*cells), "ex07_demo.ipynb")


def test_a_bad_notebook_name_or_a_cell_without_id_is_refused():
    with pytest.raises(grading.GradingError, match="notebook_name must start with 'ex'"):
        grading.exercise_id("demo.ipynb")
    notebook = _notebook(_code(SOLUTION, "a"), _code(TEST, "b", "check"), _code("x", "c"))
    del notebook.cells[2]["id"]
    with pytest.raises(grading.GradingError, match="cell 3 has no cell id"):
        grading.grading_metadata(notebook, "ex07_demo.ipynb")


def test_student_notebooks_tag_test_cells_as_raising():
    notebook = _notebook(_code(SOLUTION, "a"), _code(TEST, "b", "check"), _code("check_f(f, seed=2)", "c", "check"))
    student = make.student_notebook(notebook, "ex07_demo.ipynb")
    assert [cell.metadata.get("tags", []) for cell in student.cells] == [
        ["raises-exception"], ["check", "raises-exception"], ["check"]]


def test_make_exercises_refuses_an_ungradable_notebook_with_a_message(tmp_path: Path, monkeypatch, capsys):
    broken = _notebook(_code(SOLUTION, "a"), _code("check_f(f)", "b", "check"))
    nbformat.write(broken, tmp_path / "ex07_demo.ipynb")
    before = (tmp_path / "ex07_demo.ipynb").read_bytes()
    monkeypatch.setattr(make, "INSTRUCTOR_DIR", tmp_path)
    assert make.main(["--out", str(tmp_path / "students")]) == 1
    assert "make exercises: ex07_demo.ipynb, cell 2 calls check_f" in capsys.readouterr().err
    assert (tmp_path / "ex07_demo.ipynb").read_bytes() == before, "a refused notebook is left as it was"
