"""The records learners display are short as text and readable as Markdown in a notebook.

A cell whose last line is ``compare(500, 50)`` used to print the dataclass repr: every call
record of both runs, 138,803 characters. Each record now shows one short line as text and a
small table where the notebook renders Markdown.
"""

from __future__ import annotations

import pytest

from pocket_parallel import compare
from pocket_parallel._format import markdown_record
from pocket_parallel.cluster.result import ClusterRun
from pocket_parallel.outcomes import Failure, Outcomes
from pocket_parallel.throughput import ThroughputPoint
from pocket_parallel.trace import CallRecord


def test_a_big_comparison_shows_one_line_and_a_table():
    race = compare(500, 50)
    assert repr(race) == f"<Comparison {race.summary()}>" and len(repr(race)) < 200
    table = race._repr_markdown_()
    assert table.startswith("**Race of N = 500 calls, C = 50 (virtual clock)**")
    for row in ("| sequential | 500 s |", "| parallel | 10 s |", "| in-order schedule | 10 s |",
                "| lower bound | 10 s |", "| peak in flight | 50 |"):
        assert row in table.splitlines()
    assert len(table) < 1_000


def test_a_comparison_with_failures_says_so_in_its_title():
    race = compare(20, 5, failure_rate=0.9, max_retries=1, seed=3)
    assert race.failures and f"{len(race.failures)} items failed" in race._repr_markdown_().splitlines()[0]


def test_a_failure_shows_its_item_cut_short_its_attempts_and_its_error():
    failure = Failure("Summarize: " + "word " * 200, ValueError("boom " * 100), 2)
    shown = repr(failure)
    assert shown.startswith("<Failure 'Summarize: word") and shown.endswith("… after 2 attempts: ValueError>")
    assert len(shown) < 120
    assert repr(Failure("a", KeyError("k"), 1)) == "<Failure 'a' after 1 attempt: KeyError>"


def test_outcomes_show_their_counts():
    outcomes = Outcomes(["a", "b", "c"])
    outcomes._record(0, "ok", "A")
    outcomes._record(1, "failed", Failure("b", ValueError("x"), 3))
    assert repr(outcomes) == "<Outcomes 3 items: 1 ok, 1 failed, 1 pending>"
    assert outcomes._repr_markdown_().splitlines()[4:] == ["| ok | 1 |", "| failed | 1 |", "| pending | 1 |"]


def test_a_throughput_point_shows_one_line_and_a_table():
    point = ThroughputPoint(concurrency=8, items=200, completed=200, failed=0, makespan=25.0, requests=248,
                            rate_limited=48, transient_errors=0, latency=1.0, max_concurrent=8, requests_per_minute=None)
    assert repr(point) == "<ThroughputPoint C = 8: 8.00 calls/s, makespan 25.00 s, 48 refused (429), 0 failed>"
    table = point._repr_markdown_()
    assert "| throughput | 8.00 calls/s (at most 8.00) |" in table and "| requests sent | 248, of which 48 refused (429) |" in table


def test_a_call_record_cuts_a_long_prompt():
    record = CallRecord("Translate to French: " + "text " * 500, 2, 0.5, 1.75, "ok")
    shown = repr(record)
    assert shown.startswith("<CallRecord 'Translate to French: text") and shown.endswith("attempt 2: 0.5 s to 1.75 s, ok>")
    assert len(shown) < 120


def test_a_cluster_run_shows_a_table():
    outcomes = Outcomes(["a", "b"])
    outcomes._record(0, "ok", "A")
    outcomes._record(1, "ok", "B")
    run = ClusterRun(outcomes, 1.5, "cluster", 8, None, 2, (), None)
    table = run._repr_markdown_()
    assert table.startswith("**Cluster run of 2 items on 2 workers**")
    assert "| answers | 2 |" in table and "| batch time | 1.5 s (wall clock) |" in table


def test_markdown_records_escape_what_would_break_the_table():
    table = markdown_record("a | b", [("x|y", "1\n2")])
    assert table.splitlines() == ["**a \\| b**", "", "| | |", "|:--|--:|", "| x\\|y | 1 2 |"]


@pytest.mark.parametrize("record", [Failure("x", ValueError("y"), 1), CallRecord("p", 1, 0.0, 1.0, "ok")])
def test_short_reprs_are_one_line(record):
    assert "\n" not in repr(record)
