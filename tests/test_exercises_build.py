"""The student exercise notebooks are exactly what ``make exercises`` makes from the instructor notebooks.

- fast: for every instructor notebook, the stubbed cells (sources, tags, ids, nbgrader metadata)
  equal the committed student notebook's, and no solution marker or solution region survives in a
  student notebook;
- slow (a few seconds per notebook): regenerating every student notebook on a fresh kernel gives
  the committed bytes exactly;
- the stored outputs say what they should: every solution's check passed in the instructor
  notebooks, every stub's check said "Not attempted yet" in the student notebooks;
- the generator itself: what a region becomes, and every malformed region is refused.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.test_notebook_outputs import (
    leaks,
    missing_kernelspec,
    unexecuted_cells,
    unexpected_errors,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import make_exercises as make  # noqa: E402  (tools/ is not a package)

INSTRUCTOR = sorted(make.INSTRUCTOR_DIR.glob("ex*.ipynb"))
STUDENT = sorted(make.STUDENT_DIR.glob("ex*.ipynb"))


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _skeleton(notebook: nbformat.NotebookNode) -> list[tuple[str, str, str, list[str], Any]]:
    return [(cell.get("id"), cell.cell_type, cell.source, cell.metadata.get("tags", []), cell.metadata.get("nbgrader"))
            for cell in notebook.cells]


def _check_outputs(notebook: nbformat.NotebookNode, seeded: bool) -> list[str]:
    """The text shown by the cells tagged 'check' that call a check with (or without) a fixed seed.

    A check prints nothing: its result shows itself once, as the cell's value or through
    ``display(result)`` (as Markdown, and as wrapped plain text, which is what this returns). A
    test cell then asserts on it, which adds an error output until the check passes.
    """
    found = []
    for cell in notebook.cells:
        if cell.cell_type == "code" and "check" in cell.metadata.get("tags", []) and ("seed=" in cell.source) == seeded:
            shown = [o for o in cell.outputs if o.output_type in ("execute_result", "display_data")]
            assert len(shown) == 1 and all(o.output_type in ("execute_result", "display_data", "error")
                                           for o in cell.outputs), cell.outputs
            assert set(shown[0].data) == {"text/plain", "text/markdown"}
            found.append(shown[0].data["text/plain"])
    return found


def test_there_are_six_exercises_and_a_student_notebook_for_each():
    assert len(INSTRUCTOR) >= 6
    assert [p.name for p in STUDENT] == [p.name for p in INSTRUCTOR], "run `make exercises`"


@pytest.mark.parametrize("source", INSTRUCTOR, ids=lambda p: p.stem)
def test_student_sources_are_the_stubbed_instructor_sources(source: Path):
    expected = make.student_notebook(_read(source), source.name)
    committed = _read(make.STUDENT_DIR / source.name)
    assert _skeleton(committed) == _skeleton(expected), f"{source.name}: run `make exercises`"
    assert committed.metadata == nbformat.from_dict(
        {"kernelspec": make.KERNELSPEC, "language_info": make.LANGUAGE_INFO})


@pytest.mark.parametrize("path", STUDENT, ids=lambda p: p.stem)
def test_no_solution_survives_in_a_student_notebook(path: Path):
    text = path.read_text(encoding="utf-8")
    assert make.BEGIN not in text and make.END not in text and make.HINT not in text
    instructor = (make.INSTRUCTOR_DIR / path.name).read_text(encoding="utf-8")
    regions = instructor.count(make.BEGIN)
    assert regions >= 1 and text.count("raise NotImplementedError(") >= regions


@pytest.mark.parametrize("path", INSTRUCTOR + STUDENT, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_stored_notebooks_are_clean_complete_runs(path: Path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    problems = leaks(notebook) + unexpected_errors(notebook) + missing_kernelspec(notebook) + unexecuted_cells(notebook)
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("source", INSTRUCTOR, ids=lambda p: p.stem)
def test_stored_check_outputs_say_passed_and_not_attempted(source: Path):
    solved, stubbed = _check_outputs(_read(source), False), _check_outputs(_read(make.STUDENT_DIR / source.name), False)
    assert solved and all(text.startswith("Passed · Exercise ") for text in solved), solved
    assert stubbed and all(text.startswith("Not attempted yet · Exercise ") for text in stubbed), stubbed
    # Demonstrations of a check failing use a fixed seed, so they read the same in both versions.
    assert _check_outputs(_read(source), True) == _check_outputs(_read(make.STUDENT_DIR / source.name), True)


@pytest.mark.parametrize("source", INSTRUCTOR, ids=lambda p: p.stem)
def test_make_exercises_regenerates_the_committed_bytes(source: Path, tmp_path: Path):
    target = make.build_student(source, out_dir=tmp_path)
    committed = (make.STUDENT_DIR / source.name).read_bytes()
    assert target.read_bytes() == committed, f"{source.name} differs from a fresh `make exercises`: run it"


# -- the generator ------------------------------------------------------------------------------

SOURCE = '''class Node:
    async def exec_async(self, item):
        # HINT: One call per item;
        # HINT: return its answer.
        ### BEGIN SOLUTION
        return await ask(item)
        ### END SOLUTION

def helper():
    # HINT: Top level works too.
    ### BEGIN SOLUTION
    return 42
    ### END SOLUTION'''


def test_a_region_becomes_a_stub_that_raises_its_hint():
    stubbed, count = make.stub_source(SOURCE)
    assert count == 2
    assert stubbed == '''class Node:
    async def exec_async(self, item):
        # YOUR CODE HERE
        raise NotImplementedError('One call per item; return its answer.')

def helper():
    # YOUR CODE HERE
    raise NotImplementedError('Top level works too.')'''
    namespace: dict[str, Any] = {}
    exec(stubbed, namespace)
    with pytest.raises(NotImplementedError, match="Top level works too"):
        namespace["helper"]()


@pytest.mark.parametrize("source, problem", [
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "needs a '# HINT: ...' comment"),
    ("# HINT:\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "needs a '# HINT: ...' comment"),
    ("# HINT: h\n### BEGIN SOLUTION\nx = 1", "has no '### END SOLUTION'"),
    ("x = 1\n### END SOLUTION", "without a '### BEGIN SOLUTION'"),
    ("# HINT: h\n### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside another solution region"),
    ("def f():\n    # HINT: wrong indent\n        ### BEGIN SOLUTION\n        pass\n        ### END SOLUTION",
     "needs a '# HINT: ...' comment"),
])
def test_malformed_regions_are_refused(source: str, problem: str):
    with pytest.raises(make.MarkerError, match=problem.replace("(", r"\(").replace(".", r"\.")):
        make.stub_source(source, "cell 3")


def _notebook(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=list(cells))


def test_student_notebook_tags_stub_cells_rewrites_chapter_links_and_clears_outputs():
    text = nbformat.v4.new_markdown_cell("See [Flows](../../notebooks/04_parallel_batch_flow.ipynb) and [next](ex02_x.ipynb).")
    solved = nbformat.v4.new_code_cell(SOURCE, metadata={"tags": ["raises-exception", "mine"]}, execution_count=3)
    solved.outputs = [nbformat.v4.new_output("stream", text="old\n")]
    plain = nbformat.v4.new_code_cell("print(1)")
    student = make.student_notebook(_notebook(text, solved, plain))
    assert student.cells[0].source == "See [Flows](../04_parallel_batch_flow.ipynb) and [next](ex02_x.ipynb)."
    assert student.cells[1].metadata["tags"] == ["raises-exception", "mine"]
    assert student.cells[1].outputs == [] and student.cells[1].execution_count is None
    assert "tags" not in student.cells[2].metadata


def test_a_notebook_without_regions_or_with_markers_in_text_is_refused():
    with pytest.raises(make.MarkerError, match="no solution region found"):
        make.student_notebook(_notebook(nbformat.v4.new_code_cell("x = 1")))
    with pytest.raises(make.MarkerError, match="text cell"):
        make.student_notebook(_notebook(nbformat.v4.new_markdown_cell("### BEGIN SOLUTION"),
                                        nbformat.v4.new_code_cell("# HINT: h\n### BEGIN SOLUTION\n### END SOLUTION")))


def test_normalize_merges_streams_drops_png_and_fixes_metadata():
    cell = nbformat.v4.new_code_cell("x", execution_count=1)
    cell.metadata["execution"] = {"iopub.execute_input": "2024-01-01T00:00:00Z"}
    cell.outputs = [
        nbformat.v4.new_output("stream", text="a\n"),
        nbformat.v4.new_output("stream", text="b\n"),
        nbformat.v4.new_output("execute_result", data={"text/plain": "<Figure>", "image/png": "iVBOR"},
                               metadata={"image/png": {"width": 100}}, execution_count=1),
    ]
    notebook = _notebook(cell)
    notebook.metadata["language_info"] = {"name": "python", "version": "3.11.9"}
    make.normalize(notebook)
    assert [o.output_type for o in cell.outputs] == ["stream", "execute_result"]
    assert cell.outputs[0].text == "a\nb\n"
    assert dict(cell.outputs[1].data) == {"text/plain": "<Figure>"} and dict(cell.outputs[1].metadata) == {}
    assert "execution" not in cell.metadata
    assert "version" not in notebook.metadata["language_info"]
