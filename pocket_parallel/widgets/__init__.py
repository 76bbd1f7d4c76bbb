"""The live explorer: sliders for N, C, latency and jitter over a picture that redraws at once.

:func:`explorer` builds an :class:`Explorer` (:mod:`.explorer_widget`) from its controls
(:mod:`.controls`), a cache of runs (:mod:`.runs`) and a picture drawn in layers
(:mod:`.picture`, blitted by :mod:`.blit`). :func:`overview` draws that picture once.
"""

from .explorer_widget import Explorer, explorer
from .picture import ExplorerPicture, overview
from .runs import CURVE_LIMITS

__all__ = ["CURVE_LIMITS", "Explorer", "ExplorerPicture", "explorer", "overview"]
