"""The real-HTTP benchmark: every contender makes the calls it claims, the server counts them, the report has its shape.

Nothing here asserts a timing: a tiny plan runs end to end against a real server process,
and the arithmetic of the report is checked on made-up runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ sits beside the package, not inside it
    sys.path.insert(0, str(ROOT))

from benchmarks import http  # noqa: E402
from tests.http_support import NO_LEAKED_RESOURCES, nothing_left_behind  # noqa: E402

pytestmark = NO_LEAKED_RESOURCES


def test_every_contender_runs_against_a_real_server_and_the_report_has_its_shape():
    plan = http.HttpPlan("tiny", n=12, limit=4, latency=0.02, repetitions=2)
    said: list[str] = []
    with nothing_left_behind():
        results = http.measure(plan, say=said.append)  # raises if a run lost an answer or broke the cap
    assert {c.key for c in results.cells} == {c.key for c in http.HTTP_CONTENDERS}
    for cell in results.cells:
        assert len(cell.runs) == 2 and len(cell.ratios) == 2
        assert all(run.wall > 0 and run.client_cpu >= 0 for run in cell.runs)
        if http.HTTP_CONTENDERS[[c.key for c in http.HTTP_CONTENDERS].index(cell.key)].capped:
            assert all(run.peak_in_flight <= 4 for run in cell.runs)
    assert len(said) == 2 * len(http.HTTP_CONTENDERS)
    text = http.section(results)
    assert text.startswith("## Real HTTP: N = 12 calls of 20 ms to the local server, C = 4")
    assert text.count("\n| ") == 1 + len(http.HTTP_CONTENDERS)  # the header row and one per contender
    assert "reaches" in text and "Where the rest goes" in text
    assert http.from_json(http.to_json(results)) == results
    assert "calls/s" in http.readme_bullet(results)


def _run(wall: float, cpu: float) -> http.HttpRun:
    return http.HttpRun(wall=wall, client_cpu=cpu, server_cpu=0.1, peak_in_flight=4)


def test_the_arithmetic_of_a_cell():
    cell = http.HttpCell("node", "node", True, (_run(2.0, 1.0), _run(1.0, 3.0), _run(4.0, 2.0)), (0.5, 0.9, 1.0))
    assert cell.wall == 2.0 and cell.throughput(1000) == 500.0 and cell.ratio == 0.9
    assert cell.cpu_per_1000(1000) == 2.0 and cell.server_cpu_per_1000(1000) == pytest.approx(0.1)
    assert http.HttpPlan("x", n=2000, limit=100, latency=0.05).ideal == pytest.approx(1.0)


def test_the_verdict_follows_the_numbers():
    plan = http.HttpPlan("x", n=1000, limit=100, latency=0.05, repetitions=1)
    floor = http.HttpCell("floor", "floor", False, (_run(1.0, 0.3),), (1.0,))
    fast = http.HttpCell("node", "node", True, (_run(1.05, 0.35),), (1 / 1.05,))
    slow = http.HttpCell("node", "node", True, (_run(2.0, 1.3),), (0.5,))
    assert "meets the goal" in http.findings(http.HttpResults(plan, (floor, fast), 1.0, None, None))[0]
    assert "misses the goal" in http.findings(http.HttpResults(plan, (floor, slow), 1.0, None, None))[0]
