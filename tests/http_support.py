"""Helpers for the tests that talk HTTP to a real local server over loopback sockets."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

# A ResourceWarning (an unclosed socket or transport) fails the test, also when it is raised
# in a __del__, where Python reports it as "unraisable" instead of raising it.
NO_LEAKED_RESOURCES = [
    pytest.mark.filterwarnings("error::ResourceWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
]


def open_sockets() -> int:
    """Sockets this process holds open right now (Linux: counted in /proc/self/fd)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            pass  # closed between listing and reading
    return count


@contextmanager
def nothing_left_behind() -> Iterator[None]:
    """Fail if the block leaves a thread or a socket open (after a garbage collection)."""
    gc.collect()
    threads, sockets = set(threading.enumerate()), open_sockets()
    yield
    gc.collect()
    extra = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
    assert not extra, f"threads left running: {extra}"
    assert open_sockets() <= sockets, f"sockets left open: {open_sockets() - sockets}"


def chat_body(prompt: str = "Summarize: a short text", **extra: Any) -> dict[str, Any]:
    """A minimal valid chat completion request for ``prompt``."""
    return {"model": "pocket-parallel-sim", "messages": [{"role": "user", "content": prompt}], **extra}
