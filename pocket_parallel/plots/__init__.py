"""Pictures of parallel runs (matplotlib). Each function draws on ``ax`` if given and returns the Figure.

None of them calls ``plt.show()``: a notebook shows the returned figure, a script saves it.
Every figure has a white background and dark text of its own, in colours that stay
distinguishable with every common form of colour blindness (:mod:`.style`).

- :func:`speedup_vs_items` and :func:`makespan_vs_concurrency` (:mod:`.curves`): measured
  points on their references, the in-order schedule and the lower bound;
- :func:`timeline` and :func:`race_timelines` (:mod:`.timelines`): one bar per call attempt;
- :func:`plot_throughput` (:mod:`.knee`): completed calls per second and latency against C, the knee marked;
- :func:`computing_timeline` (:mod:`.computing`): when CPU-bound jobs computed, and whether at once.

The explorer draws all three at once (:func:`pocket_parallel.widgets.overview`).
"""

from .computing import computing_timeline
from .curves import bound_curve, curve_title, makespan_vs_concurrency, schedule_curve, speedup_vs_items
from .knee import plot_throughput
from .style import INK, PALETTE, CourseFigure, course_style, new_figure, plain_log_ticks
from .timelines import (
    KIND_COLORS,
    KINDS,
    Bars,
    CallBars,
    call_bars,
    kind_color,
    kind_label,
    parallel_title,
    race_timelines,
    sequential_title,
    timeline,
)

__all__ = [
    "INK",
    "KINDS",
    "KIND_COLORS",
    "PALETTE",
    "Bars",
    "CallBars",
    "CourseFigure",
    "bound_curve",
    "call_bars",
    "computing_timeline",
    "course_style",
    "curve_title",
    "kind_color",
    "kind_label",
    "makespan_vs_concurrency",
    "new_figure",
    "parallel_title",
    "plain_log_ticks",
    "plot_throughput",
    "race_timelines",
    "schedule_curve",
    "sequential_title",
    "speedup_vs_items",
    "timeline",
]
