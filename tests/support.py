"""Helpers the tests share: small PocketFlow nodes, prompts, timing, free ports, and the Jupyter servers make starts."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from pocketflow import AsyncParallelBatchNode

from pocket_parallel.experiment import AskEach

# Sends every prompt in shared["prompts"] to its llm; answers in shared["answers"], in order.
AskNode = AskEach


class ChapterRateLimitedNode(AsyncParallelBatchNode):
    """The chapter's RateLimitedParallelNode, as printed: it overrides run_async."""

    def __init__(self, llm: Any, limit: int) -> None:
        super().__init__()
        self.llm, self.limit = llm, limit

    async def prep_async(self, shared):
        return shared["prompts"]

    async def exec_async(self, prompt):
        return await self.llm(prompt)

    async def post_async(self, shared, prep_res, exec_res):
        shared["answers"] = exec_res
        return "default"

    async def run_async(self, shared):
        items = await self.prep_async(shared)
        semaphore = asyncio.Semaphore(self.limit)

        async def limited_exec(item):
            async with semaphore:
                return await self.exec_async(item)

        results = await asyncio.gather(*(limited_exec(i) for i in items))
        return await self.post_async(shared, items, results)


def prompts(n: int) -> list[str]:
    """``n`` distinct summary prompts."""
    return [f"Summarize: text number {i}" for i in range(n)]


def micro(seconds: float) -> int:
    """Whole microseconds: the virtual clock's tick, so comparisons are exact."""
    return round(seconds * 1_000_000)


def served_starts(llm: Any) -> list[int]:
    """Start times (whole microseconds) of the calls the service admitted."""
    return sorted(micro(r.start) for r in llm.trace if r.outcome != "rate_limited")


def most_in_any_window(starts: list[int], width_s: float = 60.0) -> int:
    """Brute force, every window: for each admitted start t, the calls admitted in (t - 60 s, t]."""
    width = micro(width_s)
    return max((sum(1 for s in starts if t - width < s <= t) for t in starts), default=0)


async def timed(coro: Any) -> float:
    """Seconds on the running loop's clock that ``coro`` took, to the microsecond."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    await coro
    return round(loop.time() - start, 6)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


_PRINTED_URL = re.compile(r"https?://[^\s/]+:\d+/\S*")


def printed_addresses(process: subprocess.Popen[Any], log: Path, port: int, *, banner: str, command: str,
                      deadline: float, at_least: int = 1) -> list[str]:
    """The URLs on ``port`` that ``process`` wrote to ``log`` once ``banner`` appears there.

    Reads the log until ``banner`` and at least ``at_least`` such URLs are in it; fails the test,
    with the log's tail, if the process exits first or ``time.monotonic()`` passes ``deadline``.
    """
    while True:
        text = log.read_text(errors="replace")
        if banner in text:
            found = [url for url in _PRINTED_URL.findall(text) if f":{port}/" in url]
            if len(found) >= at_least:
                return found
        if process.poll() is not None:
            pytest.fail(f"{command} exited with status {process.returncode}:\n{text[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{command} printed no address in time:\n{text[-3000:]}")
        time.sleep(0.1)


def jupyter_environment(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment for a Jupyter server started by ``make``, with its state kept in ``home``.

    The course's own settings reach it through the Makefile; the user's Jupyter folders, and
    make's variables from an outer make, do not.
    """
    dropped = {"JUPYTER_CONFIG_PATH", "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR",
               "MAKEFLAGS", "MFLAGS", "MAKELEVEL"}
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env.update({
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "IPYTHONDIR": str(home / "ipython"),
        "MPLBACKEND": "Agg",
        **extra,
    })
    return env
