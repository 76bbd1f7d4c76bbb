"""The code the checks are tested against: the notebooks' own code, run as a Jupyter kernel runs it.

The solutions are not copied into the tests: they are the code cells of the instructor notebooks
(``instructor/exercises/``). The stubs are the code cells of the committed student notebooks
(``notebooks/exercises/``). Cells tagged ``check`` (the calls to the checks) are left out.

The cells run the way IPython runs them, because that is what a check must cope with: each in
the one namespace ``__main__`` of the notebook, compiled under a file name of its own whose text
``linecache`` holds (``inspect.getsource`` cannot find a class there), and with IPython's list of
the cells run so far, ``_ih``. :func:`answer_cell` runs one more cell, a student's answer, after
a notebook's own.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import linecache
import os
from collections.abc import Callable, Iterable, Iterator
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

#: Fresh random workloads per solution in the quick tests.
REPEATS = 3
#: Seeds over which every wrong answer must fail, and every solution pass, without exception.
SEEDS = range(50)

_cells = itertools.count(1)


def run_cell(namespace: dict[str, Any], source: str, label: str) -> None:
    """Run ``source`` in ``namespace`` as IPython runs a cell: its own file name, its text in linecache and _ih."""
    filename = f"<{label} cell {next(_cells)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    namespace.setdefault("_ih", [""]).append(source)
    exec(compile(source, filename, "exec"), namespace)


@lru_cache(maxsize=None)
def _namespace(path: Path) -> dict[str, Any]:
    """Run a notebook's code cells, except those tagged 'check', and return its globals."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    namespace: dict[str, Any] = {"__name__": "__main__", "_ih": [""]}
    previous = get_default_llm()  # the demo cells point call_llm_async at their own service
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for cell in notebook["cells"]:
                if cell["cell_type"] != "code" or "check" in cell["metadata"].get("tags", []):
                    continue
                run_cell(namespace, "".join(cell["source"]), path.stem)
    finally:
        set_default_llm(previous)
    return namespace


def solution(stem: str, name: str) -> Any:
    """``name`` as the instructor notebook ``stem`` defines it (the reference solution)."""
    return _namespace(INSTRUCTOR / f"{stem}.ipynb")[name]


def stub(stem: str, name: str) -> Any:
    """``name`` as the student notebook ``stem`` defines it (still raising NotImplementedError)."""
    return _namespace(STUDENT / f"{stem}.ipynb")[name]


def answer_cell(stem: str, source: str, name: str) -> Any:
    """``name`` as a student's cell ``source`` defines it, run after the student notebook ``stem``'s own cells."""
    base = _namespace(STUDENT / f"{stem}.ipynb")
    namespace = {**base, "_ih": list(base["_ih"])}
    previous = get_default_llm()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            run_cell(namespace, source, f"{stem} answer")
    finally:
        set_default_llm(previous)
    return namespace[name]


@contextlib.contextmanager
def kept(*modules: Any) -> Iterator[None]:
    """Put ``modules`` back as they were afterwards (a cell under test may patch them in this process)."""
    saved = [dict(vars(module)) for module in modules]
    try:
        yield
    finally:
        for module, before in zip(modules, saved):
            vars(module).clear()
            vars(module).update(before)


def quiet(check: Callable[..., CheckResult], answer: Any, **kwargs: Any) -> CheckResult:
    """Run ``check`` and make sure it printed nothing at all (nbgrader scores stderr output as 0)."""
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
        result = check(answer, **kwargs)
    assert out.getvalue() == "", f"a check prints nothing; it printed {out.getvalue()!r}"
    assert err.getvalue() == "", f"a check writes nothing to stderr; it wrote {err.getvalue()!r}"
    return result


def assert_fails(check: Callable[..., CheckResult], answer: Any, *keywords: str, runs: int = REPEATS) -> None:
    """``answer`` fails ``check`` on ``runs`` fresh workloads, each time naming ``keywords``."""
    for _ in range(runs):
        result = quiet(check, answer)
        assert result.status == "failed", result.message
        assert result.message.startswith("Not yet: ")
        assert "Traceback" not in result.message
        for keyword in keywords:
            assert keyword in result.message, f"{keyword!r} not in: {result.message}"


def on_seeds(check: Any, answer: Any, seeds: Iterable[int] = SEEDS, **settings: Any) -> list[CheckResult]:
    """The results of ``check`` (an exercise's :class:`~pocket_parallel.checks._feedback.Check`) on every seed,
    all in one subprocess, printing nothing."""
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
        results = check.on_seeds(answer, list(seeds), settings)
    assert out.getvalue() == "" and err.getvalue() == "", (out.getvalue(), err.getvalue())
    return results


def assert_fails_on_every_seed(check: Any, answer: Any, *keywords: str, seeds: Iterable[int] = SEEDS,
                               **settings: Any) -> None:
    """``answer`` fails ``check`` on every seed of :data:`SEEDS`, each time naming ``keywords``."""
    passed = []
    seeds = list(seeds)
    for seed, result in zip(seeds, on_seeds(check, answer, seeds, **settings)):
        if result.status != "failed":
            passed.append((seed, result.message[:300]))
            continue
        for keyword in keywords:
            assert keyword in result.message, f"seed {seed}: {keyword!r} not in: {result.message}"
    assert not passed, f"{getattr(answer, '__name__', answer)} was not rejected with seeds {passed}"


def assert_passes_on_every_seed(check: Any, answer: Any, seeds: Iterable[int] = SEEDS) -> None:
    """``answer`` passes ``check`` on every seed of :data:`SEEDS`."""
    for seed, result in zip(seeds, on_seeds(check, answer, seeds)):
        assert result.passed, f"seed {seed}: {result.message}"


def cpu_count() -> int:
    """Cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
