"""What the student's class or function says of itself, read in the subprocess that rebuilt it.

The judge never holds the student's objects, only what they did; some advice also depends on
what they are: whether a class is a PocketFlow async node, which of PocketFlow's methods it
overrides, whether a function is an ``async def``.
"""

from __future__ import annotations

import inspect
from typing import Any

import pocketflow
from pocketflow import AsyncNode

from ._sandbox import experiment

#: PocketFlow's methods whose override changes how a node runs its items.
_STEPS = ("run_async", "_run_async", "_exec", "exec_async", "prep_async", "post_async", "exec_fallback_async")


@experiment("facts")
def facts(answer: Any, workload: dict[str, Any]) -> dict[str, Any]:
    """``{"async_node", "bases", "overrides", "coroutine_function"}`` of the rebuilt answer."""
    if not isinstance(answer, type):
        return {"async_node": False, "bases": [], "overrides": [],
                "coroutine_function": inspect.iscoroutinefunction(answer)}
    own = [klass for klass in answer.__mro__ if klass.__module__ != pocketflow.__name__ and klass is not object]
    return {"async_node": issubclass(answer, AsyncNode), "bases": [base.__name__ for base in answer.__bases__],
            "overrides": [step for step in _STEPS if any(step in vars(klass) for klass in own)],
            "coroutine_function": False}
