"""The explorer's picture: what it draws, which layers each change redraws, and that the pixels stay right."""

from __future__ import annotations

import io
import math

import numpy as np
import PIL.Image
import pytest
from matplotlib.colors import to_hex

from pocket_parallel import compare, sweep
from pocket_parallel.plots import PALETTE, call_bars, schedule_curve
from pocket_parallel.widgets.picture import (
    DENSE_LIMITS,
    LOG_STEPS,
    TIME_STEPS,
    ExplorerPicture,
    drawn_limits,
    nice_ceiling,
    nice_floor,
)

PNG = b"\x89PNG\r\n\x1a\n"
UNEVEN = {"latency": 0.5, "jitter": 0.3, "seed": 1}


@pytest.fixture(scope="module")
def curve():
    return sweep("max_concurrency", [1, 2, 5, 10, None], items=12, **UNEVEN)


def lines(ax) -> dict:
    return {line.get_label(): line for line in ax.lines}


def legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


# -- nice limits --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, steps, up, down",
    [(1.0, LOG_STEPS, 1.0, 1.0), (3.0, LOG_STEPS, 5.0, 2.0), (512.0, LOG_STEPS, 1000.0, 500.0),
     (0.07, LOG_STEPS, 0.1, 0.05), (512.0, TIME_STEPS, 600.0, 500.0), (41.0, TIME_STEPS, 50.0, 40.0),
     (1.19, TIME_STEPS, 1.2, 1.0)],
)
def test_nice_limits(value, steps, up, down):
    assert nice_ceiling(value, steps) == pytest.approx(up)
    assert nice_floor(value, steps) == pytest.approx(down)


def test_nice_limits_refuse_what_has_no_logarithm():
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="value"):
            nice_ceiling(bad, LOG_STEPS)
        with pytest.raises(ValueError, match="value"):
            nice_floor(bad, LOG_STEPS)


def test_drawn_limits_are_dense_then_about_one_pixel_apart():
    assert drawn_limits(12) == list(range(1, 13))
    limits = drawn_limits(1000)
    assert limits[:DENSE_LIMITS] == list(range(1, DENSE_LIMITS + 1)) and limits[-1] == 1000
    steps = [b / a for a, b in zip(limits[DENSE_LIMITS - 1:], limits[DENSE_LIMITS:])]
    assert all(1.0 < s <= 1.03 for s in steps[:-1])
    assert len(limits) < 250


# -- what it shows ------------------------------------------------------------------------------


def test_it_shows_the_curve_the_references_and_both_timelines(curve):
    result = compare(12, 3, **UNEVEN)
    picture = ExplorerPicture().update(result, curve)
    ax = picture.curve_ax
    drawn = lines(ax)
    assert list(drawn["parallel (measured)"].get_xdata()) == [1, 2, 3, 5, 10, 12]
    assert list(drawn["parallel (measured)"].get_ydata())[2] == result.parallel_time
    schedule = drawn["in-order schedule, no overhead"]
    assert list(schedule.get_ydata()) == schedule_curve(result, list(schedule.get_xdata()))
    assert drawn["lower bound: no schedule is faster"].get_visible()
    assert drawn["sequential (one at a time)"].get_ydata()[0] == result.sequential_time
    assert list(drawn["now (the C in the title)"].get_xdata()) == [3]
    assert legend_texts(ax) == ["in-order schedule, no overhead", "lower bound: no schedule is faster",
                                "sequential (one at a time)", "parallel (measured)", "now (the C in the title)"]
    assert ax.get_title() == "Makespan against C: N = 12 calls, latency 0.5 s, jitter 0.3, now C = 3"
    assert ax.get_xlabel() == "concurrency limit C (calls in flight)" and ax.get_ylabel() == "makespan (s)"
    low, high = ax.get_ylim()
    assert low <= min(result.lower_bound, *(r.parallel_time for r in curve)) and high >= result.sequential_time
    assert call_bars(picture.seq_ax) == {"ok": 12} and call_bars(picture.par_ax) == {"ok": 12}
    assert len(picture.seq_ax.collections) == len(picture.par_ax.collections) == 1  # one collection per timeline
    assert picture.seq_ax.get_title() == f"Sequential: N = 12 calls, latency 0.5 s, jitter 0.3, one at a time: " \
                                         f"{result.sequential_time:.3g} s"
    assert picture.par_ax.get_title() == f"Parallel (C = 3): {result.parallel_time:.3g} s, speedup {result.speedup:.1f}x"
    end = picture.seq_ax.get_xlim()[1]
    assert picture.par_ax.get_xlim() == picture.seq_ax.get_xlim()
    assert result.sequential_time * 1.02 <= end <= result.sequential_time * 1.02 * 1.25  # bars fill 4/5 or more
    assert picture.seq_ax.get_xlabel() == "" and picture.par_ax.get_xlabel() == "time since start (s)"
    rows = [t.get_text() for t in picture.par_ax.texts if t.get_visible() and t.get_text().isdigit()]
    assert rows == ["1", "2", "3"]


def test_equal_latencies_draw_the_best_possible_line_alone():
    results = sweep("max_concurrency", [1, 4, None], items=12, latency=0.5)
    picture = ExplorerPicture().update(results[1], results)
    drawn = lines(picture.curve_ax)
    best = drawn["best possible: ⌈N / C⌉ × L"]
    assert list(best.get_ydata())[:12] == [math.ceil(12 / c) * 0.5 for c in range(1, 13)]
    assert not drawn["lower bound: no schedule is faster"].get_visible()
    assert "lower bound: no schedule is faster" not in legend_texts(picture.curve_ax)


def test_retries_and_failures_get_their_colours_and_legend():
    flaky = compare(60, 6, latency=0.2, jitter=0.3, failure_rate=0.45, max_retries=2, seed=5)
    picture = ExplorerPicture().update(flaky)
    bars = call_bars(picture.par_ax)
    assert sum(bars.values()) == len(flaky.trace) and bars["failed"] == len(flaky.failures) and bars["retried"] > 0
    (collection,) = picture.par_ax.collections
    colours = {kind: to_hex(colour) for kind, colour in zip(collection.path_kinds, collection.get_facecolor())}
    assert colours == {"ok": PALETTE["parallel"].lower(), "retried": PALETTE["retry"].lower(),
                       "failed": PALETTE["failed"].lower()}
    boxes = {kind: len(path.vertices) // 5 for kind, path in zip(collection.path_kinds, collection.get_paths())}
    assert boxes == bars  # one compound path per kind, five vertices per bar
    assert legend_texts(picture.par_ax) == ["call", "failed attempt, retried", "failed for good"]
    (sequential,) = picture.seq_ax.collections
    assert to_hex(sequential.get_facecolor()[sequential.path_kinds.index("ok")]) == PALETTE["sequential"].lower()


def test_many_slots_get_three_row_numbers(curve):
    picture = ExplorerPicture().update(compare(60, 40, latency=0.5))
    rows = [t.get_text() for t in picture.par_ax.texts if t.get_visible() and t.get_text().isdigit()]
    assert rows == ["1", "21", "40"]


def test_the_speedup_ticks_read_sequential_time_over_height(curve):
    result = compare(12, 3, **UNEVEN)
    picture = ExplorerPicture().update(result, curve)
    low, high = picture.curve_ax.get_ylim()
    ticks = {t.get_text(): t.get_position()[1] for t in picture.curve_ax.texts
             if t.get_visible() and t.get_position()[0] == 1.0 and t.get_text().replace(",", "").isdigit()}
    assert set(ticks) >= {"1", "2", "5", "10"}
    for text, height in ticks.items():
        assert result.sequential_time / height == pytest.approx(float(text.replace(",", "")))
        assert low <= height <= high
    assert "speedup over sequential (×)" in [t.get_text() for t in picture.curve_ax.texts]


# -- which layers a change redraws --------------------------------------------------------------


def test_a_change_of_c_redraws_only_the_setting_and_a_new_workload_its_layer(curve):
    picture = ExplorerPicture()
    picture.update(compare(12, 3, **UNEVEN), curve)
    assert picture.renders == {0: 1}
    for c in (4, 6, 8, 3):
        picture.update(compare(12, c, **UNEVEN), curve)
    assert picture.renders == {0: 1, 2: 4}
    picture.update(compare(12, 3, latency=0.51, jitter=0.3, seed=1))  # inside the same rounded limits
    assert picture.renders == {0: 1, 2: 4, 1: 1}
    picture.update(compare(12, 3, latency=5.0, jitter=0.3, seed=1))  # ten times longer: new limits
    assert picture.renders == {0: 2, 2: 4, 1: 1}


def test_a_picture_updated_many_times_has_the_pixels_of_a_fresh_one(curve):
    final = compare(12, 5, **UNEVEN)
    layered = ExplorerPicture()
    for c in (3, 4, 6):
        layered.update(compare(12, c, **UNEVEN), curve)
    layered.update(compare(12, 7, latency=0.7, jitter=0.3, seed=1))
    layered.update(compare(40, 7, latency=0.7, jitter=0.3, seed=1))
    layered.update(final, curve)
    fresh = ExplorerPicture()
    fresh.update(final, curve)
    fresh.update(final, curve)  # the second time its legends are pasted, as in the layered one
    same = np.all(layered._canvas.pixels() == fresh._canvas.pixels(), axis=2)
    # A stamp pasted where its label moved lands on whole pixels: around the labels, allow that.
    renderer = fresh._canvas.canvas.get_renderer()
    height = same.shape[0]
    for text in [t for ax in fresh.figure.axes for t in ax.texts if t.get_visible()]:
        box = text.get_window_extent(renderer).expanded(1.0, 1.0)
        top, bottom = max(int(height - box.y1) - 2, 0), int(height - box.y0) + 2
        same[top:bottom, max(int(box.x0) - 2, 0):int(box.x1) + 2] = True
    assert same.all(), f"{(~same).sum()} pixels differ outside the labels"


def test_png_is_the_picture_and_changes_with_the_setting(curve):
    picture = ExplorerPicture()
    with pytest.raises(RuntimeError, match="update"):
        picture.png()
    first = picture.update(compare(12, 3, **UNEVEN), curve).png()
    second = picture.update(compare(12, 4, **UNEVEN), curve).png()
    assert first[:8] == second[:8] == PNG and first != second
    image = PIL.Image.open(io.BytesIO(second))
    assert image.size == (880, 352) and image.mode == "RGB"


def test_the_still_picture_is_small_and_carries_its_caption(curve):
    picture = ExplorerPicture().update(compare(12, 3, **UNEVEN), curve)
    plain, still = picture.still(), picture.still("a caption")
    image = PIL.Image.open(io.BytesIO(still))
    assert still[:8] == PNG and image.mode == "P" and image.width == 880
    assert image.height > PIL.Image.open(io.BytesIO(plain)).height == 352
    assert len(still) < len(picture.png())


def test_the_figure_still_draws_whole_for_a_notebook(curve):
    picture = ExplorerPicture().update(compare(12, 3, **UNEVEN), curve)
    buffer = io.BytesIO()
    picture.figure.savefig(buffer, format="png")
    assert buffer.getvalue()[:8] == PNG
    assert repr(picture.figure) == "<CourseFigure size 880x352 with 3 Axes>"


# -- bad input ------------------------------------------------------------------------------


def test_bad_input_is_named(curve):
    with pytest.raises(TypeError, match="Comparison"):
        ExplorerPicture().update(None)
    with pytest.raises(TypeError, match="Comparison"):
        ExplorerPicture().update(curve[0], [curve[1], "x"])
    with pytest.raises(ValueError, match="one workload"):
        ExplorerPicture().update(curve[0], [compare(13, 2, **UNEVEN)])


def test_bars_get_white_edges_only_where_they_are_wide_enough_to_show_them(curve):
    wide = ExplorerPicture().update(compare(12, 3, **UNEVEN), curve)
    assert wide.par_ax.collections[0].get_linewidth()[0] > 0
    thin = ExplorerPicture().update(compare(500, 19, latency=1.0, jitter=0.3))  # 1 s bars on a 600 s axis
    assert thin.par_ax.collections[0].get_linewidth()[0] == 0 and thin.seq_ax.collections[0].get_linewidth()[0] == 0
