"""Layered redraws: only the layers asked for are drawn, and the pixels come out as a full draw's would."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import PIL.Image
import pytest
from matplotlib.figure import Figure

from pocket_parallel.widgets.blit import LayeredCanvas, Stamp, png_bytes, rgb_png


def _figure():
    figure = Figure(figsize=(3, 2), dpi=50)
    ax = figure.add_subplot()
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    # Inside the frame: a layer is drawn over the spines, which a full draw puts on top.
    (slow,) = ax.plot([1, 9], [1, 1], color="red")
    (fast,) = ax.plot([5, 5], [1, 9], color="blue")
    return figure, ax, slow, fast


class Counting:
    """Wraps an artist's draw to count how often it is drawn while visible."""

    def __init__(self, artist):
        self.count, original = 0, artist.draw

        def draw(renderer):
            self.count += artist.get_visible()
            original(renderer)

        artist.draw = draw


def _full_draw(figure) -> np.ndarray:
    with matplotlib.rc_context({"text.hinting": "no_hinting"}):  # as the layered canvas renders text
        figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[:, :, :3].copy()


def test_only_the_layers_from_start_are_drawn():
    figure, ax, slow, fast = _figure()
    canvas = LayeredCanvas(figure)
    slow_draws, fast_draws = Counting(slow), Counting(fast)
    canvas.render([[slow], [fast]], 0)
    canvas.render([[slow], [fast]], 2)
    canvas.render([[slow], [fast]], 2)
    assert (slow_draws.count, fast_draws.count) == (1, 3)
    canvas.render([[slow], [fast]], 1)
    assert (slow_draws.count, fast_draws.count) == (2, 4)
    assert canvas.renders == {0: 1, 2: 2, 1: 1}


def test_a_first_render_starts_from_the_static_parts_whatever_start_says():
    figure, ax, slow, fast = _figure()
    canvas = LayeredCanvas(figure)
    canvas.render([[slow], [fast]], 2)
    assert canvas.renders == {0: 1}


def test_moving_an_artist_and_redrawing_its_layer_matches_a_full_draw():
    figure, ax, slow, fast = _figure()
    canvas = LayeredCanvas(figure)
    canvas.render([[slow], [fast]], 0)
    fast.set_xdata([7, 7])
    canvas.render([[slow], [fast]], 2)  # the old blue line must be gone, the new one drawn
    slow.set_ydata([3, 3])
    canvas.render([[slow], [fast]], 1)
    layered = canvas.pixels().copy()
    assert np.array_equal(layered, _full_draw(figure))


def test_static_parts_are_drawn_without_the_changing_artists_which_keep_their_visibility():
    figure, ax, slow, fast = _figure()
    fast.set_visible(False)
    canvas = LayeredCanvas(figure)
    canvas.render([[slow], [fast]], 0)
    assert slow.get_visible() and not fast.get_visible()
    blue = np.all(canvas.pixels() == [0, 0, 255], axis=2)
    assert not blue.any()  # a hidden artist stays hidden
    fast.set_visible(True)
    canvas.render([[slow], [fast]], 2)
    assert np.all(canvas.pixels() == [0, 0, 255], axis=2).any()


def test_a_stamp_is_drawn_once_per_key_and_pasted_after():
    figure, ax, slow, fast = _figure()
    legend = ax.legend([slow], ["slow"], loc="lower left", framealpha=1.0)
    canvas = LayeredCanvas(figure)
    drawn = Counting(legend)
    for x in (2, 3, 4):
        fast.set_xdata([x, x])
        canvas.render([[slow], [fast, Stamp(legend, "slow")]], 2)
    assert drawn.count == 1 and canvas.stamps_drawn == 1
    canvas.render([[slow], [fast, Stamp(legend, "another key")]], 2)
    assert drawn.count == 2


def test_a_pasted_stamp_lands_where_its_artist_moved():
    figure = Figure(figsize=(3, 2), dpi=100)
    label = figure.text(0.2, 0.3, "moves", fontsize=12)
    canvas = LayeredCanvas(figure)
    canvas.render([[Stamp(label, "moves")]], 0)
    label.set_position((0.5, 0.6))
    canvas.render([[Stamp(label, "moves")]], 1)
    pasted = canvas.pixels().copy()
    assert canvas.stamps_drawn == 1
    fresh = LayeredCanvas(figure)
    fresh.render([[Stamp(label, "moves")]], 0)  # drawn right there
    assert np.array_equal(_dark(pasted), _dark(fresh.pixels())) or _near(_dark(pasted), _dark(fresh.pixels()))


def _dark(pixels: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(pixels[:, :, 0] < 128)
    return xs.min(), xs.max(), ys.min(), ys.max()


def _near(a, b) -> bool:
    return all(abs(p - q) <= 1 for p, q in zip(a, b))  # within a pixel: a stamp lands on whole pixels


def test_rgb_png_round_trips_and_compresses():
    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[10:20, 5:50] = [0, 114, 178]
    data = rgb_png(pixels)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(np.asarray(PIL.Image.open(io.BytesIO(data))), pixels)
    assert len(data) < pixels.nbytes / 10
    assert len(rgb_png(pixels, compress_level=0)) > len(data)


@pytest.mark.parametrize(
    "pixels, level, message",
    [(np.zeros((4, 4, 4), np.uint8), 1, "pixels"), (np.zeros((4, 4, 3), float), 1, "pixels"),
     (np.zeros((4, 4, 3), np.uint8), 10, "compress_level")],
)
def test_rgb_png_refuses_what_it_cannot_encode(pixels, level, message):
    with pytest.raises(ValueError, match=message):
        rgb_png(pixels, compress_level=level)


def test_png_bytes_encodes_a_palette_image():
    image = PIL.Image.new("RGB", (30, 20), "white").quantize(4)
    data = png_bytes(image)
    assert PIL.Image.open(io.BytesIO(data)).mode == "P"
    with pytest.raises(ValueError, match="compress_level"):
        png_bytes(image, compress_level=-1)
    assert data[-8:-4] == b"IEND"
