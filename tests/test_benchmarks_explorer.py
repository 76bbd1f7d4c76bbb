"""The explorer's benchmark: the moves it makes, the report it writes, and one real run in a kernel.

No timing is asserted: the run in a kernel checks only that every move was answered and
that the kernel is gone afterwards.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ sits beside the package, not inside it
    sys.path.insert(0, str(ROOT))

from benchmarks import explorer  # noqa: E402
from benchmarks.explorer import (  # noqa: E402
    TARGET,
    ExplorerCell,
    ExplorerResults,
    KernelSession,
    measure,
    moves,
    readme_bullet,
    seconds_estimate,
    section,
    table,
)
from benchmarks.plan import FULL, QUICK  # noqa: E402
from benchmarks.run import Results, document, from_json, to_json  # noqa: E402
from pocket_parallel.widgets.runs import CURVE_LIMITS  # noqa: E402


def cell(n, control, times, load=0.5):
    return ExplorerCell(n, control, tuple(range(len(times))), tuple(times), tuple(t * 0.9 for t in times), load)


def test_moves_go_to_settings_not_run_yet():
    c_moves = moves("max_concurrency", 12)
    assert c_moves[:3] == [11, 12, 13] and len(set(c_moves)) == 12
    assert not set(c_moves) & set(CURVE_LIMITS) and min(c_moves) > explorer.START["max_concurrency"]
    assert moves("latency", 3) == [1.01, 1.02, 1.03]
    with pytest.raises(ValueError, match="control must be one of max_concurrency, latency"):
        moves("jitter", 2)


def test_cell_median_and_share_within_the_target():
    c = cell(50, "latency", [0.05, 0.2, 0.07])
    assert c.median == 0.07 and c.kernel_median == pytest.approx(0.063)
    assert c.within_target == pytest.approx(2 / 3)


def test_the_plans_time_the_explorer_and_quick_stays_quick():
    assert FULL.explorer_items == (50, 200, 500) and QUICK.explorer_items
    assert seconds_estimate(QUICK.explorer_items, QUICK.explorer_moves) < 30
    assert seconds_estimate((), 5) == 0.0


def results_of(cells):
    return ExplorerResults(tuple(cells), "2026-12-02 08:00 UTC", 75.0, (0.5, 0.6, 0.7), (2.0, 1.0, 0.8))


def test_the_report_table_and_the_readme_sentence_follow_the_numbers():
    fast = [cell(50, "max_concurrency", [0.03, 0.04, 0.05]), cell(50, "latency", [0.06, 0.05, 0.07])]
    slow = fast + [cell(500, "latency", [0.12, 0.2, 0.15], load=2.0)]
    lines = table(results_of(slow)).splitlines()
    assert len(lines) == 2 + 3 and all(line.count("|") == 9 for line in lines)
    assert "| 500 | latency (a new workload each move) | 3 | 150 ms | 120 ms–200 ms | 0 of 3 |" in lines[-1]
    assert "within the 100 ms aimed for everywhere" in readme_bullet(results_of(fast))
    missed = readme_bullet(results_of(slow))
    assert "over the 100 ms aimed for at N = 500 (latency)" in missed and "N = 50: 40 ms (C), 60 ms (latency)" in missed
    assert "load average 0.5–2.0" in missed
    assert readme_bullet(results_of([])) is None
    text = section(results_of(slow))
    assert text.startswith("## The explorer") and "ran on 2026-12-02 08:00 UTC and took 1 min 15 s" in text
    assert "0.50, 0.60, 0.70 at its start, 2.00, 1.00, 0.80 at its end" in text
    assert TARGET == 0.1


def test_results_keep_the_explorer_through_json_and_read_older_json():
    saved = json.loads((ROOT / "benchmarks" / "results" / "latest.json").read_text())
    saved.pop("explorer", None)  # as written before the explorer was measured
    older = from_json(saved)
    assert older.explorer is None
    explorer_part = results_of([cell(50, "latency", [0.06, 0.05])])
    results = Results(older.plan, older.machine, older.cells, older.virtual, older.skipped, older.duration,
                      older.http, explorer_part)
    assert from_json(json.loads(json.dumps(to_json(results)))) == results
    assert document(results, "make bench").rstrip().endswith(table(explorer_part))


def test_a_real_kernel_answers_every_move_and_is_gone_afterwards():
    seen = []
    original = KernelSession.close

    def close(self):
        seen.append(self)
        original(self)

    KernelSession.close = close
    try:
        results = measure([12], 2)
    finally:
        KernelSession.close = original
    cells = results.cells
    assert [(c.n, c.control, len(c.times), len(c.kernel_times)) for c in cells] == [
        (12, "max_concurrency", 2, 2), (12, "latency", 2, 2)]
    assert all(t > 0 for c in cells for t in c.times + c.kernel_times)
    assert results.duration > 0 and results.date.endswith("UTC")
    (session,) = seen
    assert not session.manager.has_kernel


def test_into_replaces_only_the_explorers_part_of_saved_results(tmp_path, monkeypatch):
    saved = json.loads((ROOT / "benchmarks" / "results" / "latest.json").read_text())
    target = tmp_path / "latest.json"
    target.write_text(json.dumps(saved))
    fresh = results_of([cell(50, "max_concurrency", [0.02, 0.03])])
    monkeypatch.setattr(explorer, "measure", lambda items, count, stream=None: fresh)
    assert explorer.main(["--into", str(target)]) == 0
    merged = json.loads(target.read_text())
    assert from_json(merged).explorer == fresh
    assert {k: v for k, v in merged.items() if k != "explorer"} == {k: v for k, v in saved.items() if k != "explorer"}
    with pytest.raises(SystemExit):
        explorer.main(["--quick", "--into", str(target)])
