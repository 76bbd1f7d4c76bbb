"""pocket_parallel: helpers for learning parallel LLM calls with PocketFlow.

The pieces, each in its own module:

- :mod:`~pocket_parallel.llm`: :class:`SimulatedLLM`, a seeded stand-in for an LLM service,
  and the chapter's ``call_llm_async`` / ``call_llm`` backed by it.
- :mod:`~pocket_parallel.limits`: :class:`BoundedParallelBatchNode` and
  :class:`BoundedParallelBatchFlow`, PocketFlow's parallel classes with a concurrency
  limit that also holds inside an ``AsyncFlow``.
- :mod:`~pocket_parallel.clock`: :func:`run`, which runs a coroutine in real or virtual
  time from a script or a notebook cell.
- :mod:`~pocket_parallel.experiment`: :func:`compare` and :func:`sweep`, sequential
  against parallel on the same workload, set beside the ideal.
- :mod:`~pocket_parallel.ratelimit`: :class:`RateLimiter`, requests per period that never
  exceed a server's sliding window; :mod:`~pocket_parallel.retry`: :class:`Backoff`,
  exponential backoff with full jitter that honours ``retry_after``.
- :mod:`~pocket_parallel.collect`: :class:`Failure` and :class:`Outcomes`, so every item
  ends as a result or a failure record; :mod:`~pocket_parallel.races`:
  :func:`check_races` for shared-store races between sub-flows;
  :mod:`~pocket_parallel.files`: :func:`write_atomic`; :mod:`~pocket_parallel.throughput`:
  :func:`measure_throughput` and :func:`find_knee`.
- :mod:`~pocket_parallel.plots` (speedup curves, call timelines) and
  :mod:`~pocket_parallel.widgets`: :func:`explorer`, the live sliders over both.
"""

from importlib.metadata import PackageNotFoundError, version

from .clock import VirtualDeadlockError, run
from .collect import Outcomes, gather_outcomes
from .experiment import Comparison, Failure, compare, compare_async, ideal_makespan, sweep
from .files import write_atomic, write_atomic_async
from .limits import BoundedParallelBatchFlow, BoundedParallelBatchNode
from .llm import (
    CallRecord,
    LLMError,
    LLMStats,
    RateLimitError,
    SimulatedLLM,
    TransientLLMError,
    call_llm,
    call_llm_async,
    estimate_tokens,
    get_default_llm,
    set_default_llm,
)
from .races import Race, RaceWatch, check_races, check_races_async
from .ratelimit import RateLimiter, busiest_window
from .retry import Backoff
from .throughput import ThroughputPoint, find_knee, measure_throughput, measure_throughput_async, plot_throughput


def __getattr__(name: str):
    # The explorer needs ipywidgets and matplotlib: imported on first use, so that
    # ``import pocket_parallel`` (and the terminal demo) stays quick.
    if name in ("explorer", "Explorer"):
        from . import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module 'pocket_parallel' has no attribute {name!r}")


try:
    __version__ = version("pocket-parallel")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Backoff",
    "BoundedParallelBatchFlow",
    "BoundedParallelBatchNode",
    "CallRecord",
    "Comparison",
    "Failure",
    "LLMError",
    "LLMStats",
    "Outcomes",
    "Race",
    "RaceWatch",
    "RateLimitError",
    "RateLimiter",
    "SimulatedLLM",
    "ThroughputPoint",
    "TransientLLMError",
    "VirtualDeadlockError",
    "busiest_window",
    "call_llm",
    "call_llm_async",
    "check_races",
    "check_races_async",
    "compare",
    "compare_async",
    "estimate_tokens",
    "explorer",
    "find_knee",
    "gather_outcomes",
    "get_default_llm",
    "ideal_makespan",
    "measure_throughput",
    "measure_throughput_async",
    "plot_throughput",
    "run",
    "set_default_llm",
    "sweep",
    "write_atomic",
    "write_atomic_async",
]
