"""Shared fixtures (helpers to import live in tests/support.py)."""

from __future__ import annotations

import pytest

from pocket_parallel import run


@pytest.fixture
def virtual():
    """Run a coroutine on the virtual clock and return its result."""
    return lambda coro: run(coro, clock="virtual")
