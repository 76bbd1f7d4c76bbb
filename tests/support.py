"""Helpers the tests share: small PocketFlow nodes that call an LLM backend, and prompts."""

from __future__ import annotations

import asyncio
from typing import Any

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
