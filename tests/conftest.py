"""Shared fixtures: small PocketFlow nodes that call a SimulatedLLM, and a virtual-time runner."""

from __future__ import annotations

from typing import Any

import pytest
from pocketflow import AsyncParallelBatchNode

from pocket_parallel import SimulatedLLM, run
from pocket_parallel.experiment import AskEach


# Sends every prompt in shared["prompts"] to its llm; answers in shared["answers"], in order.
AskNode = AskEach


class ChapterRateLimitedNode(AsyncParallelBatchNode):
    """The chapter's RateLimitedParallelNode, as printed: it overrides run_async."""

    def __init__(self, llm: SimulatedLLM, limit: int) -> None:
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
        import asyncio

        items = await self.prep_async(shared)
        semaphore = asyncio.Semaphore(self.limit)

        async def limited_exec(item):
            async with semaphore:
                return await self.exec_async(item)

        results = await asyncio.gather(*(limited_exec(i) for i in items))
        return await self.post_async(shared, items, results)


def prompts(n: int) -> list[str]:
    return [f"Summarize: text number {i}" for i in range(n)]


@pytest.fixture
def virtual():
    """Run a coroutine on the virtual clock and return its result."""
    return lambda coro: run(coro, clock="virtual")
