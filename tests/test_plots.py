"""The pictures: the artists, labels and titles they promise, on small virtual-clock runs."""

from __future__ import annotations

import io
import math

import matplotlib
import matplotlib.style
import pytest
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure

from pocket_parallel import compare, sweep
from pocket_parallel.experiment import makespan_lower_bound, semaphore_makespan
from pocket_parallel.plots import (
    PALETTE,
    CourseFigure,
    bound_curve,
    call_bars,
    makespan_vs_concurrency,
    race_timelines,
    schedule_curve,
    speedup_vs_items,
    timeline,
)
from pocket_parallel.trace import CallRecord
from pocket_parallel.widgets import ExplorerPicture as Overview
from pocket_parallel.widgets import overview

matplotlib.use("Agg")


def _sink() -> io.BytesIO:
    return io.BytesIO()


def drawn(figure: Figure) -> Figure:
    """Render once, so tick labels exist as they will on screen."""
    figure.savefig(_sink(), format="png")
    return figure


def tick_texts(axis) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels() if t.get_text()]


def legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    return [] if legend is None else [t.get_text() for t in legend.get_texts()]


def luminance(color) -> float:
    r, g, b = to_rgb(color)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@pytest.fixture(scope="module")
def limit_sweep():
    return sweep("max_concurrency", [1, 2, 5, None], items=12, latency=0.5)


@pytest.fixture(scope="module")
def flaky():
    """A run where some attempts fail and are retried, and some items fail for good."""
    result = compare(60, 6, latency=0.2, jitter=0.3, failure_rate=0.45, max_retries=2, seed=5)
    assert result.failures and len(result.trace) > 60
    return result


# -- speedup against item count ------------------------------------------------------------


def test_speedup_vs_items_draws_the_three_curves_with_units():
    results = sweep("items", [1, 10, 50], max_concurrency=5, latency=0.5)
    figure = speedup_vs_items(results)
    (ax,) = figure.axes
    lines = {line.get_label(): line for line in ax.lines}
    assert set(lines) == {"sequential (measured)", "parallel (measured)", "in-order schedule, no overhead"}
    assert list(lines["sequential (measured)"].get_ydata()) == [0.5, 5.0, 25.0]
    assert list(lines["parallel (measured)"].get_ydata()) == [0.5, 1.0, 5.0]
    assert list(lines["in-order schedule, no overhead"].get_xdata()) == [1, 10, 50]
    assert list(lines["in-order schedule, no overhead"].get_ydata()) == [0.5, 1.0, 5.0]
    # The reference is drawn under the measured points and wider, so both stay visible.
    reference, measured = lines["in-order schedule, no overhead"], lines["parallel (measured)"]
    assert ax.lines.index(reference) < ax.lines.index(measured)
    assert reference.get_linewidth() > 2 * measured.get_linewidth()
    assert ax.get_xlabel() == "items N (LLM calls)" and ax.get_ylabel() == "makespan (s)"
    title = ax.get_title()
    assert "N = 1–50" in title and "C = 5" in title and "latency 0.5 s" in title
    assert repr(figure) == "<CourseFigure size 640x400 with 1 Axes>"  # notebooks compare this text


def test_speedup_vs_items_draws_on_a_given_axes():
    figure = CourseFigure()
    ax = figure.add_subplot()
    assert speedup_vs_items(sweep("items", [2, 4], max_concurrency=None), ax=ax) is figure
    assert "no limit" in ax.get_title()


# -- makespan against C --------------------------------------------------------------------


def test_makespan_vs_concurrency_points_ideal_and_current(limit_sweep):
    figure = makespan_vs_concurrency(limit_sweep, current=2)
    ax = figure.axes[0]
    lines = {line.get_label(): line for line in ax.lines}
    measured = lines["parallel (measured)"]
    # The unlimited run sits at C = N = 12; times are exact on the virtual clock.
    assert list(measured.get_xdata()) == [1, 2, 5, 12]
    assert list(measured.get_ydata()) == [6.0, 3.0, 1.5, 0.5]
    ideal = lines["best possible: ⌈N / C⌉ × L"]  # equal latencies: no schedule does better
    assert list(ideal.get_xdata()) == list(range(1, 13))
    assert list(ideal.get_ydata()) == [math.ceil(12 / c) * 0.5 for c in range(1, 13)]
    assert lines["sequential: 6 s"].get_ydata()[0] == 6.0
    assert "now: C = 2, 3 s" in legend_texts(ax)
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert ax.get_xlabel() == "concurrency limit C (calls in flight)" and ax.get_ylabel() == "makespan (s)"
    assert ax.get_title() == "Makespan against C: N = 12 calls, latency 0.5 s, now C = 2"
    assert repr(figure) == "<CourseFigure size 640x400 with 1 Axes>"


def test_log_axes_read_plain_numbers_and_the_right_axis_reads_speedup(limit_sweep):
    figure = drawn(makespan_vs_concurrency(limit_sweep, current=5))
    ax = figure.axes[0]
    assert tick_texts(ax.xaxis) == ["1", "2", "5", "10"]
    assert tick_texts(ax.yaxis) == ["0.5", "1", "2", "5"]
    (speed,) = ax.child_axes
    assert "speedup" in speed.get_ylabel()
    assert tick_texts(speed.yaxis) == ["1", "2", "5", "10"]
    # The right axis is sequential / makespan: 6 s of sequential work over 3 s is 2x.
    forward = speed._functions[0]
    assert forward(3.0) == pytest.approx(2.0)


def test_makespan_vs_concurrency_marks_an_unlimited_run_without_current(limit_sweep):
    ax = makespan_vs_concurrency(limit_sweep).axes[0]
    assert "now: no limit, 0.5 s" in legend_texts(ax)
    assert ax.get_title().endswith("now no limit")


def test_short_log_ranges_get_every_digit():
    result = compare(4, 2, latency=3.0)
    figure = drawn(makespan_vs_concurrency([result], current=2))
    ax = figure.axes[0]
    ax.set_ylim(3, 8)
    figure.savefig(_sink(), format="png")
    assert tick_texts(ax.yaxis) == ["3", "4", "5", "6", "7", "8"]


def test_reference_curves_match_their_formulas_with_uneven_latencies():
    result = compare(40, 4, latency=1.0, jitter=0.8, seed=2)
    work = [r.duration for r in result.trace]
    limits = [1, 2, 3, 7, 13, 39, 40, 41, 100]
    assert bound_curve(result, limits) == pytest.approx([makespan_lower_bound(work, c) for c in limits], rel=1e-12)
    assert schedule_curve(result, limits) == pytest.approx(
        [semaphore_makespan(result.item_work, c) for c in limits], rel=1e-12)
    assert schedule_curve(result, [4]) == pytest.approx([result.parallel_time], abs=1e-6)
    for curve in (bound_curve, schedule_curve):
        with pytest.raises(ValueError, match="limits"):
            curve(result, [0])


def test_uneven_latencies_draw_both_references(limit_sweep):
    results = sweep("max_concurrency", [1, 3, None], items=12, latency=0.5, jitter=0.6, seed=1)
    labels = {line.get_label() for line in makespan_vs_concurrency(results, current=3).axes[0].lines}
    assert {"in-order schedule, no overhead", "lower bound: no schedule is faster"} <= labels


# -- timelines ------------------------------------------------------------------------------


def test_timeline_one_bar_per_call_in_slots():
    result = compare(10, 3, latency=1.0)
    figure = timeline(result.trace)
    ax = figure.axes[0]
    assert call_bars(ax) == {"ok": 10}
    assert legend_texts(ax) == ["call"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1", "2", "3"]
    assert ax.get_xlabel() == "time since start (s)" and ax.get_ylabel() == "slot"
    assert ax.get_title() == "10 calls of 1 s on average, at most 3 in flight"
    assert ax.get_xlim()[1] >= result.parallel_time
    assert repr(figure) == "<CourseFigure size 700x320 with 1 Axes>"


def test_timeline_tells_retries_and_failures_apart(flaky):
    ax = timeline(flaky.trace, title="flaky").axes[0]
    bars = call_bars(ax)
    assert sum(bars.values()) == len(flaky.trace)
    assert bars["failed"] == len(flaky.failures)  # each failed item's last attempt
    assert bars["retried"] > 0 and bars["ok"] == len(flaky.results)
    assert legend_texts(ax) == ["call", "failed attempt, retried", "failed for good"]
    colours = {c.get_gid(): to_hex(c.get_facecolor()[0]) for c in ax.collections}
    assert colours == {"calls:ok": PALETTE["parallel"].lower(), "calls:retried": PALETTE["retry"].lower(),
                       "calls:failed": PALETTE["failed"].lower()}
    assert ax.get_title() == "flaky"


def test_timeline_colours_successful_calls_by_kind(flaky):
    def kind_of(call):
        return "even" if int(call.prompt.split()[2]) % 2 == 0 else "odd"  # "Summarize: document 3 of 60"

    ax = timeline(flaky.trace, title="by kind", kind_of=kind_of).axes[0]
    bars = call_bars(ax)
    ok = [c for c, outcome in zip(flaky.trace, _outcomes(flaky.trace)) if outcome == "ok"]
    assert bars["ok:even"] + bars["ok:odd"] == len(ok) == len(flaky.results)
    assert bars["ok:even"] == sum(kind_of(c) == "even" for c in ok)
    assert "ok" not in bars and bars["failed"] == len(flaky.failures) and bars["retried"] > 0
    first = kind_of(ok[0])  # colours in order of first appearance
    second = "odd" if first == "even" else "even"
    assert legend_texts(ax) == [first, second, "failed attempt, retried", "failed for good"]
    colours = {c.get_gid(): to_hex(c.get_facecolor()[0]) for c in ax.collections}
    assert colours[f"calls:ok:{first}"] == PALETTE["parallel"].lower()
    assert colours[f"calls:ok:{second}"] == PALETTE["sequential"].lower()


def test_timeline_without_kind_of_draws_as_before():
    trace = compare(6, 2, latency=1.0).trace
    assert call_bars(timeline(trace).axes[0]) == call_bars(timeline(trace, kind_of=None).axes[0]) == {"ok": 6}


@pytest.mark.parametrize(
    "kind_of, ok_color, error, message",
    [
        ("chunk", None, TypeError, "kind_of must be a function"),
        (lambda call: "a", "#000000", ValueError, "not both"),
        (lambda call: None, None, ValueError, "non-empty str"),
        (lambda call: "", None, ValueError, "non-empty str"),
        (lambda call: call.prompt, None, ValueError, "at most 6"),
    ],
)
def test_timeline_refuses_a_bad_kind_of(kind_of, ok_color, error, message):
    trace = compare(8, 8, latency=1.0).trace
    with pytest.raises(error, match=message):
        timeline(trace, ok_color=ok_color, kind_of=kind_of)


def _outcomes(trace):
    last = {}
    for call in trace:
        last[call.prompt] = max(call.attempt, last.get(call.prompt, 0))
    return ["ok" if c.outcome == "ok" else "retried" if c.attempt < last[c.prompt] else c.outcome for c in trace]


def test_race_timelines_share_one_time_axis():
    result = compare(8, 4, latency=0.5)
    figure = race_timelines(result)
    seq_ax, par_ax = figure.axes
    assert call_bars(seq_ax) == {"ok": 8} and call_bars(par_ax) == {"ok": 8}
    assert seq_ax.get_xlim() == par_ax.get_xlim() and seq_ax.get_xlim()[1] >= 4.0
    assert seq_ax.get_title() == "Sequential: N = 8 calls, latency 0.5 s, one at a time: 4 s"
    assert par_ax.get_title() == "Parallel (C = 4): 1 s, speedup 4.0x"
    done = [line for line in par_ax.lines if list(line.get_xdata()) == [1.0, 1.0]]
    assert done, "a dashed line marks when the parallel run finished"
    assert repr(figure) == "<CourseFigure size 750x500 with 2 Axes>"


# -- the explorer's picture -----------------------------------------------------------------


def test_overview_redraws_in_place(limit_sweep):
    picture = Overview()
    figure = picture.figure
    first = picture.update(limit_sweep[1], limit_sweep).png()
    curve_ax, seq_ax, par_ax = figure.axes
    assert "now C = 2" in curve_ax.get_title() and "N = 12" in curve_ax.get_title()
    second = picture.update(limit_sweep[2], limit_sweep).png()
    assert picture.figure is figure and len(figure.axes) == 3
    assert "now C = 5" in curve_ax.get_title()
    assert call_bars(par_ax) == {"ok": 12} and call_bars(seq_ax) == {"ok": 12}
    assert len([line for line in curve_ax.lines if line.get_label() == "parallel (measured)"]) == 1
    assert first[:8] == second[:8] == b"\x89PNG\r\n\x1a\n" and first != second
    assert len(overview(limit_sweep[0], limit_sweep).axes) == 3


# -- light and dark themes ------------------------------------------------------------------


@pytest.mark.parametrize("style", ["default", "dark_background"])
def test_figures_keep_a_white_background_and_dark_text(style, limit_sweep):
    with matplotlib.style.context(style):
        figures = [makespan_vs_concurrency(limit_sweep, current=5), race_timelines(limit_sweep[0])]
    for figure in figures:
        assert to_hex(figure.get_facecolor()) == "#ffffff"
        for ax in figure.axes:
            assert to_hex(ax.get_facecolor()) == "#ffffff"
            assert luminance(ax.title.get_color()) < 0.3
            assert luminance(ax.xaxis.label.get_color()) < 0.3
            for label in ax.get_yticklabels():
                assert luminance(label.get_color()) < 0.3


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda s: speedup_vs_items([]), ValueError, "results"),
        (lambda s: speedup_vs_items(s[0]), TypeError, "list of Comparison"),
        (lambda s: makespan_vs_concurrency([]), ValueError, "results"),
        (lambda s: makespan_vs_concurrency([s[0], "x"]), TypeError, "Comparison"),
        (lambda s: makespan_vs_concurrency(s, current=0), ValueError, "current"),
        (lambda s: makespan_vs_concurrency([s[0], compare(13, 2, latency=0.5)]), ValueError, "one workload"),
        (lambda s: makespan_vs_concurrency(s, ax="left"), TypeError, "ax"),
        (lambda s: timeline([]), ValueError, "trace"),
        (lambda s: timeline(5), TypeError, "trace"),
        (lambda s: timeline([("p", 1, 0.0, 1.0, "ok")]), TypeError, "CallRecord"),
        (lambda s: race_timelines(s), TypeError, "Comparison"),
        (lambda s: Overview().update(None), TypeError, "Comparison"),
    ],
)
def test_bad_input_is_named(call, error, message, limit_sweep):
    with pytest.raises(error, match=message):
        call(limit_sweep)


def test_a_hand_made_trace_draws():
    trace = [CallRecord("a", 1, 0.0, 1.0, "error"), CallRecord("a", 2, 1.0, 2.0, "ok"),
             CallRecord("b", 1, 0.0, 0.5, "cancelled")]
    ax = timeline(trace).axes[0]
    assert call_bars(ax) == {"ok": 1, "retried": 1, "cancelled": 1}
    assert legend_texts(ax) == ["call", "failed attempt, retried", "cancelled"]


def _slots_by_scanning(trace):
    """The plain definition: each call, by start time, takes the first row free at its start."""
    order = sorted(range(len(trace)), key=lambda i: (trace[i].start, trace[i].end))
    free_at, rows = [], [0] * len(trace)
    for i in order:
        row = next((r for r, t in enumerate(free_at) if t <= trace[i].start + 1e-9), len(free_at))
        if row == len(free_at):
            free_at.append(0.0)
        free_at[row] = trace[i].end
        rows[i] = row
    return rows


@pytest.mark.parametrize("seed", range(20))
def test_rows_are_the_lowest_free_at_each_start(seed):
    import random

    from pocket_parallel.plots.timelines import _slots

    pick = random.Random(seed)
    trace = []
    for k in range(pick.randint(1, 300)):
        start = round(pick.uniform(0, 50), pick.choice([0, 1, 3]))  # ties and touching ends happen
        trace.append(CallRecord(f"p{k}", 1, start, start + round(pick.uniform(0, 5), pick.choice([0, 1, 3])), "ok"))
    assert _slots(trace) == _slots_by_scanning(trace)
    result = compare(60, 7, latency=0.3, jitter=0.5, seed=seed)
    assert _slots(result.trace) == _slots_by_scanning(result.trace) and max(_slots(result.trace)) == 6


# -- computing_timeline: when CPU-bound jobs computed --------------------------------------------


def _measured(*stretches: tuple[float, float]):
    from pocket_parallel.cpu_work import Measured

    return Measured(1, 1, 1, 0.0, stretches[0][0], stretches[-1][1], tuple(stretches))


def test_computing_timeline_draws_a_bar_per_stretch_and_names_the_peak():
    from pocket_parallel.plots import computing_timeline

    runs = {
        "threads": [_measured((10.0, 10.1), (10.2, 10.3)), _measured((10.1, 10.2))],
        "processes": [_measured((20.0, 20.3)), _measured((20.0, 20.3))],
    }
    figure = drawn(computing_timeline(runs))
    threads, processes = figure.axes
    assert [len(c.get_paths()) for c in threads.collections] == [2, 1]
    assert [len(c.get_paths()) for c in processes.collections] == [1, 1]
    assert threads.get_title() == "threads: at most 1 computing at once, 0.00 s with two or more"
    assert processes.get_title() == "processes: at most 2 computing at once, 0.30 s with two or more"
    assert threads.get_xlim()[0] <= 0.0 < 0.3 <= threads.get_xlim()[1]  # each run from its own start


@pytest.mark.parametrize("bad", [[], {}, {"threads": []}, {"threads": [1, 2]}])
def test_computing_timeline_refuses_what_is_not_runs_of_measured_jobs(bad):
    from pocket_parallel.plots import computing_timeline

    with pytest.raises(TypeError, match="count_primes_measured"):
        computing_timeline(bad)
