"""The stored notebooks are clean, complete runs: what a learner opens is what nbval re-checks.

For every notebook under notebooks/:

- no stored output reveals the machine it ran on: no absolute path (/work, /root, /home, /tmp,
  /Users, C:\\), no user name, no memory address (0x followed by 6+ hex digits);
- no error output, except in a cell tagged ``raises-exception`` (nbval's tag for a cell that is
  meant to fail); no warning printed to stderr;
- the notebook names its kernel (without it JupyterLab asks "Select Kernel");
- every code cell ran, in one session from top to bottom, so nbval has outputs to compare.
"""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)

ABSOLUTE_PATH = re.compile(r"(?<![\w.~-])/(?:work|root|home|tmp|Users)\b|(?<!\w)[A-Za-z]:\\")
MEMORY_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}")
WARNING = re.compile(r"\b\w*Warning\b:")


def _user_name() -> str | None:
    try:
        name = getpass.getuser()
    except Exception:  # no user database entry, as in some containers
        return None
    return name if len(name) >= 3 else None  # a one- or two-letter name would match ordinary words


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _code_cells(notebook: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(cell number counted from 1 over all cells, cell) for every code cell."""
    for number, cell in enumerate(notebook.get("cells", []), start=1):
        if cell.get("cell_type") == "code":
            yield number, cell


def output_texts(output: dict[str, Any]) -> Iterator[str]:
    """Every piece of text an output shows: streams, text/* data, error name, message and traceback."""
    kind = output.get("output_type")
    if kind == "stream":
        yield _text(output.get("text", ""))
    elif kind in ("execute_result", "display_data"):
        for mime, value in output.get("data", {}).items():
            if mime.startswith("text/"):  # images are base64 and would match 0x... by chance
                yield _text(value)
    elif kind == "error":
        yield _text(output.get("ename", ""))
        yield _text(output.get("evalue", ""))
        yield from (_text(line) for line in output.get("traceback", []))


def leaks(notebook: dict[str, Any], user: str | None = None) -> list[str]:
    """Machine details in the stored outputs: absolute paths, the user name, memory addresses."""
    user_pattern = re.compile(rf"\b{re.escape(user)}\b") if user else None
    found = []
    for number, cell in _code_cells(notebook):
        for output in cell.get("outputs", []):
            for text in output_texts(output):
                for label, pattern in (("absolute path", ABSOLUTE_PATH), ("memory address", MEMORY_ADDRESS), ("user name", user_pattern)):
                    match = pattern.search(text) if pattern else None
                    if match:
                        context = text[max(0, match.start() - 30): match.end() + 30].replace("\n", " ")
                        found.append(f"cell {number}: {label} {match.group()!r} in ...{context}...")
    return found


def unexpected_errors(notebook: dict[str, Any]) -> list[str]:
    """Error outputs in cells not tagged raises-exception, and warnings printed to stderr."""
    found = []
    for number, cell in _code_cells(notebook):
        expected = "raises-exception" in cell.get("metadata", {}).get("tags", [])
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and not expected:
                found.append(f"cell {number}: {output.get('ename')}: {output.get('evalue')}")
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                warning = WARNING.search(_text(output.get("text", "")))
                if warning:
                    found.append(f"cell {number}: a warning on stderr ({warning.group()[:-1]})")
    return found


def missing_kernelspec(notebook: dict[str, Any]) -> list[str]:
    """What is missing from the notebook's kernelspec metadata (empty when complete)."""
    spec = notebook.get("metadata", {}).get("kernelspec") or {}
    return [f"metadata.kernelspec.{key} is missing" for key in ("name", "display_name", "language") if not spec.get(key)]


def unexecuted_cells(notebook: dict[str, Any]) -> list[str]:
    """Code cells that never ran, or ran out of order (a fresh top-to-bottom run counts 1, 2, 3...)."""
    found, previous = [], 0
    for number, cell in _code_cells(notebook):
        count = cell.get("execution_count")
        if count is None:
            found.append(f"cell {number} has not been executed")
        elif count <= previous:
            found.append(f"cell {number} ran as [{count}] after a cell that ran as [{previous}]: re-run from a fresh kernel")
        else:
            previous = count
    return found


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_there_are_notebooks_to_check():
    assert NOTEBOOKS, "no notebooks found under notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_reveal_no_machine_details(path: Path):
    problems = leaks(_read(path), _user_name())
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_error_or_warning_outputs(path: Path):
    problems = unexpected_errors(_read(path))
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_kernelspec_is_set(path: Path):
    problems = missing_kernelspec(_read(path))
    assert not problems, f"{path.name}: " + "; ".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_ran_top_to_bottom(path: Path):
    problems = unexecuted_cells(_read(path))
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


# -- the checks themselves can fail: each finds its problem in a small synthetic notebook ---------


def _notebook(*cells: dict[str, Any], kernelspec: dict[str, str] | None = None) -> dict[str, Any]:
    spec = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    return {"cells": list(cells), "metadata": {"kernelspec": spec if kernelspec is None else kernelspec}}


def _cell(count: int | None, *outputs: dict[str, Any], tags: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"cell_type": "code", "execution_count": count, "metadata": {"tags": list(tags)}, "source": "", "outputs": list(outputs)}


def _stdout(text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stdout", "text": text}


CLEAN = _notebook(
    {"cell_type": "markdown", "metadata": {}, "source": "Text with /tmp in it is not an output."},
    _cell(1, _stdout("parallel: 0.200 s, speedup 8.0x; see notebooks/tmp/results and https://example.org/home\n")),
    _cell(2, {"output_type": "execute_result", "execution_count": 2, "metadata": {},
              "data": {"text/plain": ["<CourseFigure size 700x400 with 1 Axes>"], "image/png": "iVBORw0x1234567abcdef"}}),
)


def test_a_clean_notebook_passes_every_check():
    assert leaks(CLEAN, user="learner") == []
    assert unexpected_errors(CLEAN) == []
    assert missing_kernelspec(CLEAN) == []
    assert unexecuted_cells(CLEAN) == []


@pytest.mark.parametrize(
    "text, label",
    [
        ("saved to /work/main/notebooks/out.txt", "absolute path"),
        ("cwd: /root", "absolute path"),
        ("File /home/ada/lib/x.py, line 3", "absolute path"),
        ("wrote (/tmp/tmpab12/x.json)", "absolute path"),
        ("/Users/ada/course", "absolute path"),
        ("C:\\Users\\ada\\course", "absolute path"),
        ("<__main__.Node object at 0x7f3a2c1b9d90>", "memory address"),
        ("run by learner today", "user name"),
    ],
)
def test_each_leak_is_found(text: str, label: str):
    problems = leaks(_notebook(_cell(1, _stdout(text))), user="learner")
    assert len(problems) == 1 and label in problems[0], problems


def test_leaks_are_found_in_results_and_tracebacks_too():
    result = {"output_type": "execute_result", "execution_count": 1, "metadata": {}, "data": {"text/plain": "PosixPath('/home/ada')"}}
    error = {"output_type": "error", "ename": "OSError", "evalue": "bad", "traceback": ["File /tmp/x.py"]}
    assert len(leaks(_notebook(_cell(1, result), _cell(2, error)))) == 2


def test_an_error_output_is_reported_unless_the_cell_expects_it():
    error = {"output_type": "error", "ename": "RuntimeError", "evalue": "boom", "traceback": []}
    assert unexpected_errors(_notebook(_cell(1, error))) == ["cell 1: RuntimeError: boom"]
    assert unexpected_errors(_notebook(_cell(1, error, tags=("raises-exception",)))) == []


def test_a_warning_on_stderr_is_reported():
    warning = {"output_type": "stream", "name": "stderr", "text": "x.py:4: RuntimeWarning: coroutine 'f' was never awaited\n"}
    assert unexpected_errors(_notebook(_cell(1, warning))) == ["cell 1: a warning on stderr (RuntimeWarning)"]


def test_a_missing_or_partial_kernelspec_is_reported():
    assert missing_kernelspec({"cells": [], "metadata": {}}) == [
        "metadata.kernelspec.name is missing",
        "metadata.kernelspec.display_name is missing",
        "metadata.kernelspec.language is missing",
    ]
    assert missing_kernelspec(_notebook(kernelspec={"name": "python3", "display_name": "Python 3"})) == [
        "metadata.kernelspec.language is missing"
    ]


def test_unexecuted_and_out_of_order_cells_are_reported():
    assert unexecuted_cells(_notebook(_cell(1), _cell(None))) == ["cell 2 has not been executed"]
    problems = unexecuted_cells(_notebook(_cell(2), _cell(1)))
    assert len(problems) == 1 and problems[0].startswith("cell 2 ran as [1]")
