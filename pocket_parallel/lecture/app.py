"""The lecture app: the explorer, the live race and the throughput knee, one tab each, in large type.

``present/lecture.ipynb`` shows :func:`lecture_app` and ``make present`` serves that notebook
with Voilà, without its code. The same call works as a cell's last line in JupyterLab.
"""

from __future__ import annotations

import ipywidgets as widgets

from ..widgets.explorer_widget import Explorer
from .knee_panel import KneePanel, knee_panel
from .race_panel import RacePanel, race_panel
from .style import projector_style

#: Pixels per inch of the explorer's picture in the app: sharp when stretched to a projector's width.
EXPLORER_DPI = 120

TITLES = ("1 · Explorer", "2 · Live race", "3 · Throughput knee")


class LectureApp(widgets.VBox):
    """The app: a style sheet and a tab per panel. ``explorer``, ``race`` and ``knee`` are the panels."""

    def __init__(self, explorer: Explorer, race: RacePanel, knee: KneePanel) -> None:
        for name, panel, kind in (("explorer", explorer, Explorer), ("race", race, RacePanel),
                                  ("knee", knee, KneePanel)):
            if not isinstance(panel, kind):
                raise TypeError(f"{name} must be a {kind.__name__}; got {type(panel).__name__}")
        self.explorer, self.race, self.knee = explorer, race, knee
        self.tabs = widgets.Tab([explorer, race, knee], titles=TITLES, layout=widgets.Layout(width="100%"))
        super().__init__([projector_style(), self.tabs], layout=widgets.Layout(width="100%"))
        self.add_class("pp-lecture")
        self.tabs.add_class("pp-tabs")


def lecture_app(
    explorer: Explorer | None = None,
    race: RacePanel | None = None,
    knee: KneePanel | None = None,
) -> LectureApp:
    """The lecture app with its three panels; each defaults to the course's projector settings.

    Defaults: ``Explorer(items=40, max_concurrency=4, latency=0.5, jitter=0.3)`` with a sharper
    picture, ``race_panel()`` (12 calls of about 0.4 s) and ``knee_panel()`` (200 calls, a
    self-hosted server with 8 slots). Pass a panel of your own to change one.
    """
    if explorer is None:
        explorer = Explorer(items=40, max_concurrency=4, latency=0.5, jitter=0.3, picture_dpi=EXPLORER_DPI)
    return LectureApp(explorer, race if race is not None else race_panel(),
                      knee if knee is not None else knee_panel())
