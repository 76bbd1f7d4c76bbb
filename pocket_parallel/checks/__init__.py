"""Automatic checks for the classroom exercises (``notebooks/exercises/``).

Each exercise has one check a student calls with their class or function, not with its output::

    from pocket_parallel.checks import check_parallel_summarizer
    check_parallel_summarizer(ParallelSummarizer)

A check runs the code on fresh random workloads (in virtual time wherever timing matters, so
every number is exact), measures what matters (results and their order, the calls made and
where they were made, calls in flight, idle slots, makespan, items lost, where CPU work ran)
and returns a :class:`CheckResult` with ``.passed`` and ``.message``: what was expected, what
happened, a hint. As the last line of a notebook cell the result shows itself once, a verdict
line and the explanation wrapped between words; a check prints nothing and writes nothing to
stderr. Code that still raises ``NotImplementedError`` gets "Not attempted yet". The workloads
are built so that each plausible wrong answer fails on every one of them, not on most. Every
check takes ``seed=`` to replay a workload exactly (by default each call draws a new one).

Out of the student's reach: a check ships the answer's source (and what it uses from the
notebook) to a *judge* process, which draws the workloads and judges; the judge runs the
answer in another process and sees only what it did. No cell can patch the judge, and the
answer cannot read the judge's frames (see ``_feedback.Check`` and ``_sandbox``).

=========  ====================================  ==============================================
Exercise   Check                                 What it asks for
=========  ====================================  ==============================================
1          :func:`check_parallel_summarizer`     a sequential batch node made parallel
2          :func:`check_limited_translator`      at most C calls in flight, inside an AsyncFlow
3          :func:`check_makespan_prediction`     a batch's makespan predicted from N, C, latencies
4          :func:`check_safe_flow`               the shared-store race fixed, still parallel
5          :func:`check_safe_summarizer`         faults and rate limits survived, nothing lost
6a, 6b     :func:`check_blocking_io`,            blocking I/O to threads, CPU-bound work to
           :func:`check_cpu_work`                processes, the event loop free throughout
=========  ====================================  ==============================================
"""

from . import _facts  # noqa: F401  (registers the experiment every check may run)
from ._feedback import CheckResult
from .faults import FAILURE_RATE, SERVICE_LIMITS, check_safe_summarizer, exercise_service
from .flows import check_safe_flow
from .io_cpu import check_blocking_io, check_cpu_work, crunch, page_of
from .makespan import check_makespan_prediction
from .nodes import check_limited_translator, check_parallel_summarizer

__all__ = [
    "FAILURE_RATE",
    "SERVICE_LIMITS",
    "CheckResult",
    "check_blocking_io",
    "check_cpu_work",
    "check_limited_translator",
    "check_makespan_prediction",
    "check_parallel_summarizer",
    "check_safe_flow",
    "check_safe_summarizer",
    "crunch",
    "exercise_service",
    "page_of",
]
