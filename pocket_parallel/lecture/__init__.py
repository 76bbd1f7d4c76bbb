"""The lecture app's parts: panels for a projector, shown by ``make present`` (Voilà) without code.

- :mod:`~pocket_parallel.lecture.app`: :func:`lecture_app`, the three panels in tabs;
- :mod:`~pocket_parallel.lecture.race` and :mod:`~pocket_parallel.lecture.race_panel`:
  :func:`race_panel`, a live race of the same calls one at a time against in parallel, on
  the real clock;
- :mod:`~pocket_parallel.lecture.knee_panel`: :func:`knee_panel`, throughput and latency against C
  for a self-hosted server that queues beyond its slots, and its knee;
- :mod:`~pocket_parallel.lecture.style`: the style sheet and figure settings that make it
  readable from the back of a room.

The explorer is :func:`pocket_parallel.explorer`'s, with a sharper picture.
"""

from .app import LectureApp, lecture_app
from .knee_panel import KneePanel, knee_panel
from .race import Race, RaceSettings
from .race_panel import RacePanel, race_panel
from .style import projector_style

__all__ = [
    "KneePanel",
    "LectureApp",
    "Race",
    "RacePanel",
    "RaceSettings",
    "knee_panel",
    "lecture_app",
    "projector_style",
    "race_panel",
]
