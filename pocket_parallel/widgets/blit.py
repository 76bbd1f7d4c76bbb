"""A figure redrawn in layers by blitting: what did not change is copied, not drawn again.

Drawing a whole matplotlib figure draws every tick label, title and bar again, and most of
that time goes to laying out and rasterising text. A :class:`LayeredCanvas` draws the figure
once with its changing artists hidden and keeps those pixels. The changing artists come in
layers, from the one that changes least often (layer 1) to the one that changes every time
(the last); the pixels after each layer are kept too. Rendering from layer ``k`` restores the
pixels kept below ``k`` and draws only layers ``k`` and up.

Artists keep their own visibility: a hidden artist stays hidden, and a full ``savefig`` of the
figure still draws every visible artist, so the same figure serves as a static picture.
"""

from __future__ import annotations

import collections
import io
import math
import struct
import zlib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
import PIL.Image
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from .._validate import check_int


@dataclass(frozen=True)
class Stamp:
    """An artist whose pixels are kept under ``key`` when first drawn and pasted after, wherever it moves.

    For what looks the same wherever it goes: a tick label on a plain margin, a label in an
    opaque box, a legend with a solid frame. Give one key only to artists that look alike.
    """

    artist: Artist
    key: Hashable


Drawable = Artist | Stamp
"""What a layer holds: artists drawn each time, and stamps pasted once drawn."""


class LayeredCanvas:
    """Renders ``figure`` by layers of changing artists over a kept picture of everything else.

    ``render(layers, start)`` draws ``layers[0]`` (layer 1) to ``layers[-1]``, each in order;
    ``start`` is the lowest layer that changed, 0 meaning the static parts too (axis limits,
    ticks, labels). ``renders[k]`` counts the renders that started at layer ``k``;
    ``stamps_drawn`` counts stamps drawn rather than pasted.
    """

    STAMPS_KEPT = 256

    def __init__(self, figure: Figure) -> None:
        self.figure = figure
        # A canvas of its own keeps one renderer, whose text caches then last between renders.
        self.canvas = FigureCanvasAgg(figure)
        self._agg: Any = self.canvas  # its blitting methods carry no type hints
        self._kept: list[Any] = []  # _kept[k]: the pixels once layers 1..k are drawn (0: static parts only)
        self._stamps: collections.OrderedDict[Hashable, tuple[Any, float, float]] = collections.OrderedDict()
        self.renders: collections.Counter[int] = collections.Counter()
        self.stamps_drawn = 0

    def render(self, layers: Sequence[Sequence[Drawable]], start: int) -> None:
        """Draw the figure, redrawing from layer ``start`` (0: everything) and keeping what lies below."""
        start = check_int("start", start, low=0, high=len(layers))
        start = min(start, len(self._kept))  # nothing kept yet below start: draw from lower down
        del self._kept[start:]
        self.renders[start] += 1
        # Text without hinting renders about a fifth quicker and looks the same at screen resolutions.
        with matplotlib.rc_context({"text.hinting": "no_hinting"}):
            if start == 0:
                self._draw_static([_artist(item) for layer in layers for item in layer])
            else:
                self._agg.restore_region(self._kept[start - 1])
            for number in range(max(start, 1), len(layers) + 1):
                for item in layers[number - 1]:
                    if not _artist(item).get_visible():
                        continue
                    if isinstance(item, Stamp):
                        self._stamp(item)
                    else:
                        self.figure.draw_artist(item)
                if number < len(layers):
                    self._kept.append(self._agg.copy_from_bbox(self.figure.bbox))

    def _stamp(self, stamp: Stamp) -> None:
        renderer = self._agg.get_renderer()
        here = stamp.artist.get_window_extent(renderer)
        kept = self._stamps.get(stamp.key)
        if kept is not None:
            region, x0, y1 = kept
            left, top, _, _ = region.get_extents()  # pixels, from the top left
            self._agg.restore_region(region, xy=(left + round(here.x0 - x0), top - round(here.y1 - y1)))
            self._stamps.move_to_end(stamp.key)
            return
        self.figure.draw_artist(stamp.artist)
        self.stamps_drawn += 1
        self._stamps[stamp.key] = (self._agg.copy_from_bbox(_pixels_of(stamp.artist, renderer)), here.x0, here.y1)
        while len(self._stamps) > self.STAMPS_KEPT:
            self._stamps.popitem(last=False)

    def _draw_static(self, changing: Sequence[Artist]) -> None:
        shown = [artist.get_visible() for artist in changing]
        for artist in changing:
            artist.set_visible(False)
        try:
            self._agg.draw()
        finally:
            for artist, visible in zip(changing, shown):
                artist.set_visible(visible)
        self._kept.append(self._agg.copy_from_bbox(self.figure.bbox))

    def pixels(self) -> np.ndarray[Any, np.dtype[np.uint8]]:
        """The figure as last rendered: an array of (height, width, RGB) bytes."""
        rgba = np.asarray(self.canvas.buffer_rgba())  # type: ignore[no-untyped-call]
        return rgba[:, :, :3]

    def png(self) -> bytes:
        """The figure as last rendered, as PNG bytes, compressed quickly (one per change)."""
        return rgb_png(self.pixels(), compress_level=1)


def rgb_png(pixels: np.ndarray[Any, np.dtype[np.uint8]], *, compress_level: int = 1) -> bytes:
    """An array of (height, width, 3) RGB bytes as a PNG: every row unfiltered, one zlib stream.

    For flat-coloured pictures such as plots this compresses as well as an encoder that tries
    a filter per row, and at ``compress_level=1`` takes about a third of the time.
    """
    level = check_int("compress_level", compress_level, low=0, high=9)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"pixels must be an array of (height, width, 3) uint8; got {pixels.dtype} {pixels.shape}")
    height, width = pixels.shape[:2]
    rows = np.zeros((height, 1 + 3 * width), np.uint8)  # each row: filter type 0, then its bytes
    rows[:, 1:] = pixels.reshape(height, 3 * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, RGB, no interlace
    return (_PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows.tobytes(), level))
            + _chunk(b"IEND", b""))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _artist(item: Drawable) -> Artist:
    return item.artist if isinstance(item, Stamp) else item


def _pixels_of(artist: Artist, renderer: Any) -> Bbox:
    """The whole pixels an artist covers: a text's opaque box without its blended rim, else its extent rounded out."""
    patch = artist.get_bbox_patch() if isinstance(artist, Text) else None
    if isinstance(artist, Text) and patch is not None:
        artist.update_bbox_position_size(renderer)
        box = patch.get_window_extent(renderer)
        return Bbox.from_extents(math.ceil(box.x0), math.ceil(box.y0), math.floor(box.x1), math.floor(box.y1))
    box = artist.get_window_extent(renderer)
    return Bbox.from_extents(math.floor(box.x0), math.floor(box.y0), math.ceil(box.x1), math.ceil(box.y1))


def png_bytes(image: PIL.Image.Image, *, compress_level: int = 9) -> bytes:
    """A PIL image (any mode PNG takes, such as a palette) encoded as PNG, ``compress_level`` 0 to 9."""
    level = check_int("compress_level", compress_level, low=0, high=9)
    buffer = io.BytesIO()
    image.save(buffer, format="png", compress_level=level)
    return buffer.getvalue()
