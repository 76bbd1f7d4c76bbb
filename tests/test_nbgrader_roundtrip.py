"""The instructor notebooks are nbgrader sources as they stand: the whole round trip, real nbgrader CLI.

In one temporary course folder, with the course's own ``instructor/nbgrader_config.py``, the test
runs the commands INSTRUCTORS.md shows ("With nbgrader"), as subprocesses with this venv's
``bin/`` first on PATH (nbgrader runs ``alembic`` as a subprocess):

1. ``nbgrader generate_assignment "*"``: six assignments, ex01 to ex06, one notebook each;
2. three submissions of every assignment copied under ``submitted/<student>/<assignment>/``:
   *solved* (the instructor's solutions typed into the released notebook), *stub* (the released
   notebook untouched) and *mistaken* (solved, but one part holds a mistake from INSTRUCTORS.md's
   table of common mistakes);
3. ``nbgrader autograde "*"``: one call grades every student and every assignment;
4. ``nbgrader export --to grades.csv``: solved gets full marks, stub zero, mistaken the maximum
   less the points of its wrong part (a partial score wherever an assignment has more parts);
5. ``nbgrader generate_feedback "*"``: every test cell's check paragraph is in the feedback HTML.

Expected scores come from the points in the instructor notebooks' metadata, not from this file.
Nothing is left behind: the course folder (and the Jupyter and IPython folders nbgrader's kernels
use) is deleted, and a test fails if any process still runs in it.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.processes import kill, processes_using

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import nbgrader_cells as grading  # noqa: E402  (tools/ is not a package)

pytestmark = pytest.mark.nbgrader

INSTRUCTOR = ROOT / "instructor" / "exercises"
CONFIG = ROOT / "instructor" / "nbgrader_config.py"
GUIDE = ROOT / "INSTRUCTORS.md"
VENV_BIN = Path(sys.executable).parent
COMMAND_SECONDS = 600  # one command, all six assignments, on a busy 2-core machine

# The nbgrader commands of INSTRUCTORS.md, in its order, run in the course folder.
GENERATE = ["nbgrader", "generate_assignment", "*"]
AUTOGRADE = ["nbgrader", "autograde", "*"]
EXPORT = ["nbgrader", "export", "--to", "grades.csv"]
FEEDBACK = ["nbgrader", "generate_feedback", "*"]

STUDENTS = ("solved", "stub", "mistaken")
# A check's verdict opens what it shows: "Passed · Exercise 1" on a line of its own (a result shown
# by display), or "Passed: ..." (its .message, as in an assertion).
STATUS = re.compile(r"(Passed|Not yet|Not attempted yet)(: | · )")


@dataclass(frozen=True)
class Mistake:
    """A plausible wrong answer to one part: text of the solution cell, and what a student wrote instead."""

    part: str
    replacements: tuple[tuple[str, str], ...]


# One part wrong in every assignment, each a mistake from INSTRUCTORS.md's table.
MISTAKES = {
    "ex01": Mistake("parallel-summarizer",  # the sequential base class
                    (("class ParallelSummarizer(AsyncParallelBatchNode):", "class ParallelSummarizer(AsyncBatchNode):"),)),
    "ex02": Mistake("limited-translator",  # a semaphore created per item
                    (("async with self.slots:", "async with asyncio.Semaphore(self.max_concurrency):"),)),
    "ex03": Mistake("makespan-prediction",  # max_concurrency=None not handled
                    (("if max_concurrency is None or max_concurrency >= len(latencies):",
                      "if max_concurrency >= len(latencies):"),)),
    "ex04": Mistake("safe-flow",  # a fixed shared-store key
                    (('shared["summaries"][self.params["doc_id"]] = summary', 'shared["summary"] = summary'),
                     ('return shared["summaries"][self.params["doc_id"]]', 'return shared["summary"]'))),
    "ex05": Mistake("safe-summarizer",  # retries and limits, but no failure list
                    (("collect_failures=True,", "collect_failures=False,"),)),
    "ex06": Mistake("cpu-work",  # CPU-bound work in threads (part 6a stays right)
                    (("loop.run_in_executor(pool, crunch, n)", "asyncio.to_thread(crunch, n)"),)),
}


@dataclass
class Course:
    """The finished round trip: where it ran, what it produced, and what it left running."""

    root: Path
    log: Path
    parts: dict[str, list[grading.Part]]
    notebooks: dict[str, str]  # assignment -> notebook file name
    grades: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)  # (student, assignment) -> (score, max)
    seconds: dict[str, float] = field(default_factory=dict)
    leftovers: list[str] = field(default_factory=list)


def assignment_of(notebook: Path) -> str:
    """``ex01`` for ``ex01_sequential_to_parallel.ipynb``: the assignment a notebook is released as."""
    return grading.exercise_id(notebook.name)


def solved_source(instructor_source: str) -> str:
    """A solution cell as a student who solved it leaves it: the solution, without the marker lines."""
    markers = (grading.BEGIN, "### END SOLUTION")
    return "\n".join(line for line in instructor_source.split("\n") if line.strip() not in markers)


def submission(released: nbformat.NotebookNode, instructor: nbformat.NotebookNode, student: str,
               mistake: Mistake) -> nbformat.NotebookNode:
    """What ``student`` hands in: the released notebook, with solution cells filled in as they would."""
    notebook = nbformat.from_dict(json.loads(json.dumps(released)))
    if student == "stub":
        return notebook
    solutions = {cell.metadata.nbgrader.grade_id: cell.source for cell in instructor.cells if grading.is_solution_cell(cell)}
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("solution"):
            continue
        source = solved_source(solutions[meta["grade_id"]])
        if student == "mistaken" and meta["grade_id"].split("-", 1)[1].startswith(f"{mistake.part}-solution"):
            for old, new in mistake.replacements:
                assert old in source, f"{meta['grade_id']}: the mistake needs {old!r} in the solution; update MISTAKES"
                source = source.replace(old, new)
        cell.source = source
    return notebook


def _run(command: list[str], course: Course, env: dict[str, str]) -> None:
    """Run one command in the course folder, its output appended to the log; fail with its tail."""
    with open(course.log, "ab") as log:
        log.write(f"\n$ {shlex.join(command)}\n".encode())
        log.flush()
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=course.root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            code = process.wait(timeout=COMMAND_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            code = None
        course.seconds[command[1]] = round(time.perf_counter() - start, 1)
    if code != 0:
        ended = "timed out" if code is None else f"exited with status {code}"
        pytest.fail(f"{shlex.join(command)} {ended}; its log ends:\n{course.log.read_text()[-4000:]}")


def _environment(scratch: Path) -> dict[str, str]:
    """This venv first on PATH; Jupyter's and IPython's own folders inside ``scratch``."""
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "JUPYTER_CONFIG_DIR": str(scratch / "jupyter-config"),  # no nbgrader_config.py from the user's home
        "JUPYTER_DATA_DIR": str(scratch / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(scratch / "jupyter-runtime"),
        "IPYTHONDIR": str(scratch / "ipython"),
        "MPLBACKEND": "Agg",
    }


def _set_up(course: Course) -> None:
    """nbgrader_config.py and source/<assignment>/<notebook>.ipynb, as INSTRUCTORS.md says."""
    shutil.copy(CONFIG, course.root / "nbgrader_config.py")
    for notebook in sorted(INSTRUCTOR.glob("ex*.ipynb")):
        assignment = assignment_of(notebook)
        (course.root / "source" / assignment).mkdir(parents=True)
        shutil.copy(notebook, course.root / "source" / assignment / notebook.name)
        course.notebooks[assignment] = notebook.name
        course.parts[assignment] = grading.exercise_parts(nbformat.read(notebook, as_version=4), notebook.name)


def _hand_in(course: Course) -> None:
    for assignment, name in course.notebooks.items():
        released = nbformat.read(course.root / "release" / assignment / name, as_version=4)
        instructor = nbformat.read(INSTRUCTOR / name, as_version=4)
        for student in STUDENTS:
            folder = course.root / "submitted" / student / assignment
            folder.mkdir(parents=True)
            nbformat.write(submission(released, instructor, student, MISTAKES[assignment]), folder / name)


def _read_grades(course: Course) -> None:
    with open(course.root / "grades.csv", newline="", encoding="utf-8") as table:
        for row in csv.DictReader(table):
            course.grades[(row["student_id"], row["assignment"])] = (float(row["score"]), float(row["max_score"]))


@pytest.fixture(scope="module")
def course() -> Iterator[Course]:
    """The whole round trip, run once for the tests below."""
    scratch = Path(tempfile.mkdtemp(prefix="pp-nbgrader-")).resolve()
    root = scratch / "course"
    root.mkdir()
    trip = Course(root=root, log=scratch / "nbgrader.log", parts={}, notebooks={})
    env = _environment(scratch)
    try:
        _set_up(trip)
        _run(GENERATE, trip, env)
        _hand_in(trip)
        _run(AUTOGRADE, trip, env)
        _run(EXPORT, trip, env)
        _read_grades(trip)
        _run(FEEDBACK, trip, env)
        trip.leftovers = list(processes_using(scratch).values())
        yield trip
    finally:
        kill(processes_using(scratch))
        shutil.rmtree(scratch, ignore_errors=True)


# -- what the round trip produced -----------------------------------------------------------------


def test_generate_assignment_releases_stubs_and_locked_tests(course: Course):
    assert sorted(course.notebooks) == ["ex01", "ex02", "ex03", "ex04", "ex05", "ex06"]
    for assignment, name in course.notebooks.items():
        released = nbformat.read(course.root / "release" / assignment / name, as_version=4)
        text = json.dumps(released.cells)
        assert grading.BEGIN not in text and "raise NotImplementedError()" in text, f"{assignment}: solutions not replaced"
        tests = [cell for cell in released.cells if cell.metadata.get("nbgrader", {}).get("grade")]
        assert [cell.metadata.nbgrader.grade_id for cell in tests] == [
            f"{assignment}-{part.name}-test" for part in course.parts[assignment]]
        assert all(cell.metadata.get("editable") is False for cell in tests), f"{assignment}: test cells must be locked"


def test_scores_full_for_solved_zero_for_stub_partial_for_one_mistake(course: Course):
    print("\n" + grades_table(course))
    print("seconds per command: " + ", ".join(f"{name} {s:g}" for name, s in course.seconds.items()))
    for assignment, parts in course.parts.items():
        total = sum(part.points for part in parts)
        wrong = next(part for part in parts if part.name == MISTAKES[assignment].part)
        assert course.grades[("solved", assignment)] == (total, total), assignment
        assert course.grades[("stub", assignment)] == (0, total), assignment
        assert course.grades[("mistaken", assignment)] == (total - wrong.points, total), assignment
        if len(parts) > 1:
            assert 0 < course.grades[("mistaken", assignment)][0] < total, f"{assignment}: one wrong part of several is a partial score"
    assert len(course.grades) == len(STUDENTS) * len(course.parts), "one row per student and assignment"


def test_feedback_shows_every_check_paragraph(course: Course):
    for (student, assignment) in course.grades:
        name = course.notebooks[assignment]
        graded = nbformat.read(course.root / "autograded" / student / assignment / name, as_version=4)
        feedback = _visible_text((course.root / "feedback" / student / assignment / name).with_suffix(".html").read_text(encoding="utf-8"))
        tests = [cell for cell in graded.cells if cell.metadata.get("nbgrader", {}).get("grade")]
        assert len(tests) == len(course.parts[assignment])
        for cell in tests:
            paragraph = check_paragraph(cell)
            expected = _expected_status(student, assignment, cell.metadata.nbgrader.grade_id)
            verdict = STATUS.match(paragraph)
            assert verdict and verdict.group(1) == expected, f"{student}/{assignment}: {paragraph[:200]}"
            assert _plain(paragraph)[:120] in feedback, f"{student}/{assignment}: feedback lacks {paragraph[:120]!r}"


def test_nothing_is_left_running(course: Course):
    assert not course.leftovers, "processes still running in the course folder:\n" + "\n".join(course.leftovers)


# -- the commands are the guide's ---------------------------------------------------------------------


def test_instructors_guide_shows_the_commands_this_test_runs():
    section = GUIDE.read_text(encoding="utf-8").split("### With nbgrader", 1)[1].split("\n## ", 1)[0]
    code = "\n".join(re.findall(r"```bash\n(.*?)```", section, re.DOTALL))
    shown = [shlex.split(line, comments=True) for line in code.splitlines() if line.startswith("nbgrader ")]
    assert shown == [GENERATE, AUTOGRADE, EXPORT, FEEDBACK]
    assert "cp instructor/nbgrader_config.py" in section and 'source/${name%%_*}' in section


# -- helpers, and that they can fail -------------------------------------------------------------------


def grades_table(course: Course) -> str:
    """A Markdown table: one row per student, one column per assignment, ``score/max`` in each cell."""
    assignments = sorted(course.parts)
    lines = ["| student | " + " | ".join(assignments) + " | total |", "|---|" + "---:|" * (len(assignments) + 1)]
    for student in STUDENTS:
        cells = [course.grades[(student, a)] for a in assignments]
        row = [f"{score:g}/{top:g}" for score, top in cells]
        row.append(f"{sum(s for s, _ in cells):g}/{sum(t for _, t in cells):g}")
        lines.append(f"| {student} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def check_paragraph(cell: nbformat.NotebookNode) -> str:
    """The paragraph a test cell's check showed: printed, displayed (Markdown or text) or in its assertion."""
    texts: list[str] = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            texts.append(output.text)
        elif output.output_type in ("display_data", "execute_result"):
            texts.extend(_joined(output.data.get(mime, "")) for mime in ("text/plain", "text/markdown"))
        elif output.output_type == "error":
            texts.append(output.evalue)
    for text in texts:
        match = STATUS.search(_plain(text))
        if match and match.start() == 0:
            return _plain(text)
    raise AssertionError(f"no check paragraph among the outputs of {cell.metadata.get('nbgrader', {}).get('grade_id')}: {texts}")


def _expected_status(student: str, assignment: str, grade_id: str) -> str:
    if student == "stub":
        return "Not attempted yet"
    if student == "mistaken" and grade_id == f"{assignment}-{MISTAKES[assignment].part}-test":
        return "Not yet"
    return "Passed"


def _joined(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _plain(text: str) -> str:
    """Text without Markdown emphasis or code marks, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"[*`]", "", text)).strip()


def _visible_text(page: str) -> str:
    """What a browser shows of an HTML page, roughly: tags dropped, entities decoded, whitespace collapsed."""
    page = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", page)
    return _plain(html.unescape(re.sub(r"<[^>]+>", "", page)))


def test_paragraph_is_found_in_any_output_form():
    printed = nbformat.from_dict({"outputs": [{"output_type": "stream", "name": "stdout", "text": "Passed: all good.\n"}],
                                  "metadata": {}})
    shown = nbformat.from_dict({"outputs": [{"output_type": "display_data", "metadata": {},
                                             "data": {"text/markdown": "**Not yet:** `x` was 2.", "text/plain": "CheckResult()"}}],
                                "metadata": {}})
    failed = nbformat.from_dict({"outputs": [{"output_type": "error", "ename": "AssertionError",
                                              "evalue": "Not attempted yet: f still raises.", "traceback": []}], "metadata": {}})
    displayed = nbformat.from_dict({"outputs": [{"output_type": "display_data", "metadata": {},
                                                 "data": {"text/markdown": "**Passed** · Exercise 1\n\nAll \\_good.",
                                                          "text/plain": "Passed · Exercise 1\n\nAll _good."}}],
                                    "metadata": {}})
    assert check_paragraph(displayed) == "Passed · Exercise 1 All _good."
    assert check_paragraph(printed) == "Passed: all good."
    assert check_paragraph(shown) == "Not yet: x was 2."
    assert check_paragraph(failed) == "Not attempted yet: f still raises."
    with pytest.raises(AssertionError, match="no check paragraph"):
        check_paragraph(nbformat.from_dict({"outputs": [{"output_type": "stream", "name": "stdout", "text": "hello"}],
                                            "metadata": {}}))


def test_visible_text_drops_tags_and_decodes_entities():
    page = "<style>p {}</style><pre>Passed: shared[&#39;summary&#39;] &amp;\n <span>more</span></pre>"
    assert _visible_text(page) == "Passed: shared['summary'] & more"


def test_a_mistake_changes_only_its_part(tmp_path: Path):
    name = "ex06_io_or_cpu.ipynb"
    instructor = nbformat.read(INSTRUCTOR / name, as_version=4)
    released = nbformat.from_dict(json.loads(json.dumps(instructor)))
    for cell in released.cells:
        if grading.is_solution_cell(cell):
            cell.source = "raise NotImplementedError()"
    mistaken = submission(released, instructor, "mistaken", MISTAKES["ex06"])
    solved = submission(released, instructor, "solved", MISTAKES["ex06"])
    changed = [cell.metadata.nbgrader.grade_id for cell, right in zip(mistaken.cells, solved.cells) if cell.source != right.source]
    assert changed == ["ex06-cpu-work-solution"]
    assert grading.BEGIN not in json.dumps(solved.cells) and "asyncio.to_thread(crunch, n)" in json.dumps(mistaken.cells)
    assert submission(released, instructor, "stub", MISTAKES["ex06"]) == released
