"""When CPU-bound jobs were computing: one row per job, one bar per stretch of computing.

Jobs that took turns (threads under the GIL) leave no two bars one above the other; jobs that
computed at the same time (processes on free cores) do. The picture shows what
:func:`~pocket_parallel.peak_computing` and :func:`~pocket_parallel.overlap_seconds` count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from ..cpu_work import Measured, overlap_seconds, peak_computing
from .style import PALETTE, course_style, new_figure


def _check_runs(runs: Any) -> dict[str, list[Measured]]:
    if not isinstance(runs, Mapping) or not runs:
        raise TypeError("runs must be a dict from a name (such as 'threads') to the jobs of count_primes_measured it ran")
    checked = {}
    for name, jobs in runs.items():
        jobs = list(jobs)
        if not jobs or not all(isinstance(job, Measured) for job in jobs):
            raise TypeError(f"runs[{name!r}] must be a non-empty list of count_primes_measured results")
        checked[str(name)] = jobs
    return checked


def computing_timeline(runs: Mapping[str, Sequence[Measured]]) -> Figure:
    """One panel per run (``{"threads": jobs, "processes": jobs}``): a row per job, a bar per stretch of computing.

    Times are seconds from the run's first job start; each panel's title gives the peak
    number of jobs computing at once and how long two or more overlapped.
    """
    checked = _check_runs(runs)
    with course_style():
        figure = new_figure((7.5, 1.2 + 1.3 * len(checked)))
        axes = figure.subplots(len(checked), 1, sharex=True, squeeze=False)[:, 0]
        for ax, (name, jobs) in zip(axes, checked.items()):
            origin = min(job.start for job in jobs)
            for row, job in enumerate(jobs):
                ax.broken_barh([(start - origin, end - start) for start, end in job.computing], (row - 0.4, 0.8),
                               color=PALETTE["parallel"])
            ax.set_yticks(range(len(jobs)), [f"job {row + 1}" for row in range(len(jobs))])
            ax.set_ylim(len(jobs) - 0.5, -0.5)
            ax.grid(axis="x", alpha=0.3)
            ax.set_title(f"{name}: at most {peak_computing(jobs)} computing at once, "
                         f"{overlap_seconds(jobs):.2f} s with two or more")
        axes[-1].set_xlabel("time since the first job started (s, wall clock)")
    return figure
