"""The code the checks are tested against: solutions from the instructor notebooks, stubs from the student ones.

The solutions are not copied into the tests: they are the code cells of the instructor notebooks
(``instructor/exercises/``), run in a fresh namespace. The stubs are the code cells of the
committed student notebooks (``notebooks/exercises/``). Cells tagged ``check`` (the calls to the
checks) are left out.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from pocket_parallel import get_default_llm, set_default_llm
from pocket_parallel.checks import CheckResult

ROOT = Path(__file__).resolve().parent.parent.parent
INSTRUCTOR = ROOT / "instructor" / "exercises"
STUDENT = ROOT / "notebooks" / "exercises"

EX1, EX2, EX3 = "ex01_sequential_to_parallel", "ex02_bounded_concurrency", "ex03_predict_the_makespan"
EX4, EX5, EX6 = "ex04_shared_store_race", "ex05_faults_and_rate_limits", "ex06_io_or_cpu"

#: Fresh random workloads per solution in the quick tests (virtual clock: milliseconds each).
REPEATS = 8
#: Seeds over which every wrong answer must fail, and every solution pass, without exception.
SEEDS = range(50)


@lru_cache(maxsize=None)
def _namespace(path: Path) -> dict[str, Any]:
    """Run a notebook's code cells, except those tagged 'check', and return its globals."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    namespace: dict[str, Any] = {"__name__": f"notebook_{path.stem}"}
    previous = get_default_llm()  # the demo cells point call_llm_async at their own service
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for number, cell in enumerate(notebook["cells"], start=1):
                if cell["cell_type"] != "code" or "check" in cell["metadata"].get("tags", []):
                    continue
                source = "".join(cell["source"])
                exec(compile(source, f"<{path.name} cell {number}>", "exec"), namespace)
    finally:
        set_default_llm(previous)
    return namespace


def solution(stem: str, name: str) -> Any:
    """``name`` as the instructor notebook ``stem`` defines it (the reference solution)."""
    return _namespace(INSTRUCTOR / f"{stem}.ipynb")[name]


def stub(stem: str, name: str) -> Any:
    """``name`` as the student notebook ``stem`` defines it (still raising NotImplementedError)."""
    return _namespace(STUDENT / f"{stem}.ipynb")[name]


def quiet(check: Callable[..., CheckResult], answer: Any, **kwargs: Any) -> CheckResult:
    """Run ``check`` and make sure it printed nothing at all (nbgrader scores stderr output as 0)."""
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
        result = check(answer, **kwargs)
    assert out.getvalue() == "", f"a check prints nothing; it printed {out.getvalue()!r}"
    assert err.getvalue() == "", f"a check writes nothing to stderr; it wrote {err.getvalue()!r}"
    return result


def assert_fails(check: Callable[..., CheckResult], answer: Any, *keywords: str, runs: int = 3) -> None:
    """``answer`` fails ``check`` on ``runs`` fresh workloads, each time naming ``keywords``."""
    for _ in range(runs):
        result = quiet(check, answer)
        assert result.status == "failed", result.message
        assert result.message.startswith("Not yet: ")
        assert "Traceback" not in result.message
        for keyword in keywords:
            assert keyword in result.message, f"{keyword!r} not in: {result.message}"


def assert_fails_on_every_seed(check: Callable[..., CheckResult], answer: Any, *keywords: str) -> None:
    """``answer`` fails ``check`` on every seed of :data:`SEEDS`, each time naming ``keywords``."""
    passed = []
    for seed in SEEDS:
        result = quiet(check, answer, seed=seed)
        if result.status != "failed":
            passed.append(seed)
            continue
        for keyword in keywords:
            assert keyword in result.message, f"seed {seed}: {keyword!r} not in: {result.message}"
    assert not passed, f"{getattr(answer, '__name__', answer)} was not rejected with seeds {passed}"


def assert_passes_on_every_seed(check: Callable[..., CheckResult], answer: Any) -> None:
    """``answer`` passes ``check`` on every seed of :data:`SEEDS`."""
    for seed in SEEDS:
        result = quiet(check, answer, seed=seed)
        assert result.passed, f"seed {seed}: {result.message}"
