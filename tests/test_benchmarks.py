"""The benchmark code: contenders do the work they claim, the arithmetic is right, the report has its shape.

Nothing here asserts a timing on the real clock: contenders are checked on the virtual
clock, where makespans are exact, and the runner's end-to-end test only checks shapes.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ sits beside the package, not inside it
    sys.path.insert(0, str(ROOT))

from benchmarks import contenders, report  # noqa: E402
from benchmarks.measure import memory_supported, time_once  # noqa: E402
from benchmarks.plan import FULL, QUICK, Plan, configurations, estimated_seconds  # noqa: E402
from benchmarks.run import from_json, measure_plan, write  # noqa: E402
from benchmarks.stats import Cell, VirtualCell, find, ideal, summarize  # noqa: E402

ASYNC = [c for c in contenders.CONTENDERS if not c.blocking]


def _limit_for(contender: contenders.Contender) -> int | None:
    return {"sequential": 1, "unlimited": None}.get(contender.scope, 3)


@pytest.mark.parametrize("contender", ASYNC, ids=lambda c: c.key)
def test_async_contenders_reach_the_ideal_exactly_on_the_virtual_clock(contender):
    # 7 waits of 1 s: 3 at a time take ceil(7/3) = 3 s, one at a time 7 s, no limit 1 s.
    limit = _limit_for(contender)
    timing = time_once(contender, 7, limit, 1.0, clock="virtual")  # also checks every result, in order
    assert round(timing.loop, 6) == ideal(7, limit, 1.0) == {1: 7.0, 3: 3.0, None: 1.0}[limit]


@pytest.mark.parametrize("contender", [c for c in ASYNC if c.scope == "parallel"], ids=lambda c: c.key)
def test_a_limit_of_one_makes_the_bounded_contenders_sequential(contender):
    # Not part of the grid (C = 1 rows are for PocketFlow's AsyncBatchNode), but proves the limit binds.
    assert round(time_once(contender, 4, 1, 1.0, clock="virtual").loop, 6) == 4.0


def test_thread_pool_returns_every_result_and_caps_its_workers():
    threads = contenders.get("threads")
    assert threads.run(5, 2, 0.001) == [0, 1, 2, 3, 4]
    assert contenders.thread_workers(100_000, None) == contenders.THREAD_CAP
    assert contenders.thread_workers(10, None) == 10
    assert contenders.thread_workers(10, 4) == 4
    with pytest.raises(ValueError, match="threads cannot run on a virtual clock"):
        time_once(threads, 3, 2, 0.001, clock="virtual")


@pytest.mark.parametrize("key, limit", [("pf_node", 5), ("pf_flow", 5), ("pf_sequential", None), ("pf_sequential", 2)])
def test_contenders_refuse_limits_they_cannot_keep(virtual, key, limit):
    contender = contenders.get(key)
    with pytest.raises(ValueError, match="limit"):
        virtual(contender.run(3, limit, 1.0))
    assert not contender.accepts(limit)


def test_unknown_contender_names_the_choices():
    with pytest.raises(ValueError, match="contender must be one of floor, node"):
        contenders.get("nope")


@pytest.mark.parametrize("results", [[0, 1, 2], [0, 2, 1, 3], [0, 1, 2, 3, 4]], ids=["lost", "reordered", "extra"])
def test_check_results_catches_lost_or_reordered_items(results):
    with pytest.raises(RuntimeError, match="wrong or missing results for N = 4"):
        contenders.check_results(contenders.get("floor"), 4, results)


def test_summarize_pairs_each_repetition_with_the_floor_of_the_same_repetition():
    walls = {"floor": [1.0, 2.0, 1.5], "node": [1.1, 2.4, 1.5]}
    floor, node = summarize(250, 100, 0.5, walls, labels={"node": "our node"}, ours=frozenset({"node"}))
    assert node.ratios == pytest.approx((1.1, 1.2, 1.0))
    assert node.overhead == pytest.approx(1.1)  # median of the paired ratios
    assert node.wall == 1.5
    assert node.ideal == 1.5  # ceil(250 / 100) * 0.5
    assert node.efficiency == pytest.approx(1.0)
    assert floor.overhead == 1.0 and floor.efficiency == pytest.approx(1.5 / 1.5)
    assert node.label == "our node" and node.ours and not floor.ours
    assert find([floor, node], "node", 100, 250) is node
    assert find([floor, node], "node", None, 250) is None


def test_efficiency_uses_the_unlimited_ideal_without_a_limit():
    (cell,) = summarize(1000, None, 0.1, {"floor": [0.125, 0.2]}, labels={})
    assert cell.ideal == pytest.approx(0.1)
    assert cell.wall == pytest.approx(0.1625)  # the median of two is their mean
    assert cell.efficiency == pytest.approx(0.1 / 0.1625)


@pytest.mark.parametrize(
    "walls, message",
    [
        ({"node": [1.0]}, "must include the floor"),
        ({"floor": [1.0, 1.0], "node": [1.0]}, "1 repetitions but the floor has 2"),
        ({"floor": [0.0]}, "must be positive"),
    ],
)
def test_summarize_refuses_walls_it_cannot_compare(walls, message):
    with pytest.raises(ValueError, match=message):
        summarize(10, 5, 0.1, walls, labels={})


def test_results_table_has_one_row_per_cell_and_every_column():
    cells = summarize(10, 5, 0.1, {"floor": [0.2, 0.21], "node": [0.22, 0.21]}, labels={"node": "N"},
                      ours=frozenset({"node"}), memory={"floor": 3 * 1024 * 1024, "node": None})
    cells += summarize(10, None, 0.1, {"floor": [0.1, 0.1]}, labels={})
    lines = report.results_table(cells).splitlines()
    assert len(lines) == 2 + len(cells)
    assert all(line.count("|") == 10 for line in lines)  # 9 columns
    assert lines[2].startswith("| 5 | 10 | floor |") and "1 (floor)" in lines[2] and "3.0 MiB" in lines[2]
    assert lines[3].startswith("| 5 | 10 | **N** |") and "1.05× (1.00–1.10)" in lines[3] and lines[3].endswith("| – |")
    assert lines[4].startswith("| none | 10 |")  # no limit sorts last


def test_plans_skip_what_does_not_fit_and_say_why():
    configs, skipped = configurations(FULL)
    ran = {(c.limit, c.n) for c in configs}
    assert (100, 10_000) in ran and (None, 100_000) in ran and (1, 10) in ran
    assert {(10, 10_000), (10, 100_000), (100, 100_000), (10, 1_000), (1, 100)} <= {(s.limit, s.n) for s in skipped}
    reasons = {(s.limit, s.n): s.reason for s in skipped}
    assert "1,000 s per run" in reasons[(10, 100_000)]
    assert "measured at C = 100, N = 10,000" in reasons[(10, 1_000)]
    for config in configs:
        assert config.contenders[0].key == "floor"
        assert config.memory_latency is not None and ideal(config.n, config.limit, config.memory_latency) <= 1.0 + 1e-9
    # the reference contenders sit out the long configuration, the required ones do not
    long = next(c for c in configs if (c.limit, c.n) == (100, 10_000))
    assert "node_llm" not in {c.key for c in long.contenders}
    assert {"node", "node_in_flow", "flow", "aiometer", "threads"} <= {c.key for c in long.contenders}
    quick_configs, _ = configurations(QUICK)
    assert estimated_seconds(QUICK, quick_configs) < 45


def test_smallest_run_end_to_end_writes_the_table_the_plot_and_the_readme_section(tmp_path):
    tiny = Plan(name="tiny", latency=0.005, items=(4,), limits=(2, None), sequential_items=(2,), repetitions=1,
                long_repetitions=1, max_ideal=1.0, virtual_items=(50,), virtual_repetitions=1,
                memory=memory_supported())
    progress = io.StringIO()
    results = measure_plan(tiny, stream=progress)
    assert "finished in" in progress.getvalue()
    configs, _ = configurations(tiny)
    assert len(results.cells) == sum(len(c.contenders) for c in configs)
    assert all(len(cell.walls) == 1 and cell.wall > 0 for cell in results.cells)
    if tiny.memory:
        assert all(isinstance(cell.memory, int) and cell.memory >= 0 for cell in results.cells)
    # ceil(50 / 100) * 1 s, exactly, for the floor, our node and our node over the SimulatedLLM
    assert [v.makespan for v in results.virtual] == [1.0] * len(tiny.virtual_contenders) == [1.0, 1.0, 1.0]

    text_path, picture_path, raw_path = write(results, tmp_path, "tiny", "make bench")
    text = text_path.read_text()
    assert "| C | N | contender | runs | ideal |" in text and "## Virtual clock" in text
    assert "## Skipped configurations" in text and "AsyncBatchNode: N × L" in text
    assert picture_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert from_json(json.loads(raw_path.read_text())) == results  # the saved numbers redraw the same report

    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n## Benchmarks\n\n{report.README_START}\nold\n{report.README_END}\n\nafter\n")
    r = results
    report.update_readme(readme, report.readme_section(r.machine, r.plan, r.cells, r.virtual, r.duration, "make bench"))
    updated = readme.read_text()
    assert "old" not in updated and updated.endswith("after\n") and "| contender |" in updated
    assert updated.count(report.README_START) == 1


def test_update_readme_refuses_a_file_without_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(ValueError, match="no benchmark markers"):
        report.update_readme(readme, "x")


def test_ideal_matches_the_formula():
    for n, limit in [(1, 1), (10, 3), (100, 100), (101, 100), (5, None)]:
        expected = 0.1 * (1 if limit is None else math.ceil(n / limit))
        assert ideal(n, limit, 0.1) == pytest.approx(expected)


def test_cell_properties_on_a_hand_made_cell():
    cell = Cell("x", "x", False, 20, 10, 0.5, walls=(1.25, 1.0, 2.0), ratios=(1.0, 3.0, 2.0))
    assert (cell.ideal, cell.wall, cell.overhead) == (1.0, 1.25, 2.0)
    assert cell.efficiency == pytest.approx(0.8)


def test_a_contender_that_never_finishes_is_stopped_not_waited_for():
    async def stuck(n, limit, latency):
        await asyncio.Event().wait()  # nothing ever sets it

    never = contenders.Contender("stuck", "stuck", stuck)
    with pytest.raises(RuntimeError, match="stuck at N = 3 took over 5 s: stopped"):
        time_once(never, 3, 2, 1.0, clock="virtual", timeout=5.0)


def test_virtual_findings_name_the_growth_between_the_large_runs():
    def virtual(key, n, wall):
        return VirtualCell(key, key, n, 100, 1.0, (wall,), (n / 100,), 1024 * 1024, 2 * 1024 * 1024)

    cells = [virtual(k, n, n * 1e-5 * (1.2 if k == "node" else 1.0)) for k in ("floor", "node") for n in (20_000, 200_000)]
    found = report.virtual_findings(cells)
    assert any("From N = 20,000 to N = 200,000 (10× the items) our node's time grew 10.0×" in f for f in found)


def test_the_cluster_report_quotes_efficiency_against_the_ideal_and_what_the_server_counted():
    from benchmarks.cluster import ClusterPoint, ClusterResults, document, readme_bullet, table
    from benchmarks.cluster import from_json as from_json_cluster
    from benchmarks.cluster import to_json as to_json_cluster
    from benchmarks.machine import describe

    points = (
        ClusterPoint("cluster", 2000, 16, 0.05, 2, (8.0, 9.0, 10.0), 16, 0, 2000, True, 40),
        ClusterPoint("dask_semaphore", 2000, 16, 0.05, 2, (25.0,), 16, 0, 2000, True, None),
        ClusterPoint("static_split", 2000, 16, 0.05, 2, (9.0, 11.0), 17, 3, 2000, False, None),
    )
    results = ClusterResults(describe(), 3.5, points)
    assert points[0].ideal == 6.25 and points[0].median == 9.0 and points[2].median == 10.0
    assert round(points[0].efficiency, 4) == round(6.25 / 9.0, 4)
    assert points[0].cap_held and not points[2].cap_held
    rows = table(results).splitlines()
    assert len(rows) == 2 + len(points) and "9.00 s (median of 3)" in rows[2] and "69%" in rows[2]
    assert "17 of 16" in rows[4] and rows[4].endswith("| NO |")
    text = document(results, "make bench")
    assert "3.50 s" in text and "2.78× the time of the cluster cap" in text and "40 messages" in text
    assert "cluster start-up 3.5 s apart" in readme_bullet(results)
    assert from_json_cluster(json.loads(json.dumps(to_json_cluster(results)))) == results  # a redraw keeps its line


def test_a_redraw_keeps_the_saved_cluster_line_in_the_readme_section(tmp_path, capsys):
    from benchmarks import run as bench_run
    from benchmarks.cluster import ClusterPoint, ClusterResults, to_json
    from benchmarks.machine import describe

    saved = tmp_path / "saved.json"
    saved.write_text((ROOT / "benchmarks" / "results" / "latest.json").read_text())
    point = ClusterPoint("cluster", 2000, 16, 0.05, 2, (7.0,), 16, 0, 2000, True, 50)
    (tmp_path / "cluster.json").write_text(json.dumps(to_json(ClusterResults(describe(), 1.5, (point,)))))
    assert bench_run.main(["--redraw", str(saved), "--out", str(tmp_path)]) == 0
    section = capsys.readouterr().out.split("---- README section")[1]
    assert "Beyond one machine: N = 2,000 calls of 50 ms, C = 16" in section and "start-up 1.5 s apart" in section
