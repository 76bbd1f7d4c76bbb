"""pocket_parallel: helpers for learning parallel LLM calls with PocketFlow.

The top level holds what the notebooks teach; everything else lives in a submodule of its
own, one idea each:

- :mod:`~pocket_parallel.nodes`: :class:`BoundedParallelBatchNode` and
  :class:`BoundedParallelBatchFlow`, PocketFlow's parallel classes with limits that hold
  inside an ``AsyncFlow`` too (concurrency, pacing, backoff, timeouts, deadlines).
- :mod:`~pocket_parallel.backend`: ``call_llm_async`` / ``call_llm`` and the backend behind
  them (:func:`set_default_llm`); :mod:`~pocket_parallel.openai_llm`: :class:`OpenAILLM`, a
  backend over HTTP on the official ``openai`` client, and :mod:`~pocket_parallel.server`, a
  local OpenAI-compatible server to point it at; :mod:`~pocket_parallel.llm`: :class:`SimulatedLLM`, built
  from :mod:`~pocket_parallel.workload` (the seeded :class:`Workload` and its model),
  :mod:`~pocket_parallel.quota` (server-side limits) and :mod:`~pocket_parallel.trace`.
- :mod:`~pocket_parallel.clock`: :func:`run`, in real or virtual time, from a script or a cell.
- :mod:`~pocket_parallel.experiment`: :func:`compare` and :func:`sweep`, with the in-order
  schedule and the lower bound beside every measured time; :mod:`~pocket_parallel.throughput`:
  :func:`measure_throughput` and :func:`find_knee`.
- :mod:`~pocket_parallel.retry` (:class:`Backoff`), :mod:`~pocket_parallel.ratelimit`
  (:class:`RateLimiter`, ``busiest_window``), :mod:`~pocket_parallel.collect` (:class:`Failure`,
  ``Outcomes``, ``gather_outcomes``), :mod:`~pocket_parallel.races` (:func:`check_races`),
  :mod:`~pocket_parallel.files` (:func:`write_atomic_async`).
- :mod:`~pocket_parallel.plots` and :mod:`~pocket_parallel.widgets` (:func:`explorer`, built in
  :mod:`~pocket_parallel.explorer_widget` from controls, a run cache and a picture).
- :mod:`~pocket_parallel.lecture`: the lecture app's panels (``make present``): the explorer, a
  live race on the real clock and the throughput knee, for a projector.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .backend import call_llm, call_llm_async, get_default_llm, set_default_llm
from .clock import VirtualDeadlockError, run
from .collect import Failure
from .experiment import compare, sweep
from .files import write_atomic_async
from .llm import LLMError, RateLimitError, SimulatedLLM, TransientLLMError
from .nodes import BoundedParallelBatchFlow, BoundedParallelBatchNode
from .races import check_races
from .ratelimit import RateLimiter
from .retry import Backoff
from .throughput import find_knee, measure_throughput
from .workload import Workload


def __getattr__(name: str) -> Any:
    # The explorer needs ipywidgets and matplotlib, OpenAILLM the openai client: imported on
    # first use, so that ``import pocket_parallel`` (and the terminal demo) stays quick.
    if name == "explorer":
        from . import widgets

        return widgets.explorer
    if name == "OpenAILLM":  # imports the openai client, which takes a while
        from .openai_llm import OpenAILLM

        return OpenAILLM
    raise AttributeError(f"module 'pocket_parallel' has no attribute {name!r}")


try:
    __version__ = version("pocket-parallel")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Backoff",
    "BoundedParallelBatchFlow",
    "BoundedParallelBatchNode",
    "Failure",
    "LLMError",
    "OpenAILLM",
    "RateLimitError",
    "RateLimiter",
    "SimulatedLLM",
    "TransientLLMError",
    "VirtualDeadlockError",
    "Workload",
    "call_llm",
    "call_llm_async",
    "check_races",
    "compare",
    "explorer",
    "find_knee",
    "get_default_llm",
    "measure_throughput",
    "run",
    "set_default_llm",
    "sweep",
    "write_atomic_async",
]
