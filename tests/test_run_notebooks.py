"""make notebooks (tools/run_notebooks.py): it refuses a busy machine, and records the load it ran under.

The kernel is replaced by a stand-in that marks each code cell as run, and the load average by
a number the test chooses, so these tests run in milliseconds on any machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import run_notebooks  # noqa: E402


@pytest.fixture
def chapter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hi')")])
    path = tmp_path / "01_demo.ipynb"
    nbformat.write(notebook, path)
    monkeypatch.setattr(run_notebooks, "NOTEBOOKS", tmp_path)
    monkeypatch.setattr(run_notebooks, "usable_cores", lambda: 2)
    monkeypatch.delenv(run_notebooks.BUSY_OK_VARIABLE, raising=False)

    def execute(notebook: nbformat.NotebookNode, timeout: int) -> nbformat.NotebookNode:
        for number, cell in enumerate(notebook.cells, start=1):
            cell.execution_count = number
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]
        return notebook

    monkeypatch.setattr(run_notebooks, "execute", execute)
    return path


def loads(monkeypatch: pytest.MonkeyPatch, *values: float) -> None:
    readings = iter(values)
    monkeypatch.setattr(run_notebooks, "load_average", lambda: next(readings))


def test_a_busy_machine_is_refused_and_nothing_is_written(chapter, monkeypatch, capsys):
    before = chapter.read_bytes()
    loads(monkeypatch, 1.0)  # half of 2 cores: busy
    assert run_notebooks.main([]) == 2
    assert "the one-minute load average is 1.00 on 2 usable cores" in capsys.readouterr().err
    assert chapter.read_bytes() == before


def test_a_quiet_run_records_the_load_before_and_after(chapter, monkeypatch):
    loads(monkeypatch, 0.42, 1.7)
    assert run_notebooks.main([]) == 0
    record = nbformat.read(chapter, as_version=4).metadata["pocket_parallel"]["executed"]
    assert record == {"load_average_1min_before": 0.42, "load_average_1min_after": 1.7, "usable_cores": 2, "quiet": True}


@pytest.mark.parametrize("override", ["flag", "variable"])
def test_busy_ok_runs_anyway_and_the_record_says_busy(chapter, monkeypatch, override):
    loads(monkeypatch, 3.5, 3.9)
    if override == "variable":
        monkeypatch.setenv(run_notebooks.BUSY_OK_VARIABLE, "1")
    assert run_notebooks.main(["--busy-ok"] if override == "flag" else []) == 0
    record = nbformat.read(chapter, as_version=4).metadata["pocket_parallel"]["executed"]
    assert record["quiet"] is False and record["load_average_1min_before"] == 3.5


def test_quiet_means_below_half_the_cores():
    assert run_notebooks.is_quiet(0.99, 2) and not run_notebooks.is_quiet(1.0, 2)
    assert run_notebooks.is_quiet(3.9, 8) and not run_notebooks.is_quiet(4.0, 8)
