"""TokenBudget: client-side token pacing that never overdraws a token-bucket server."""

from __future__ import annotations

import asyncio

import pytest

from pocket_parallel import SimulatedLLM, run
from pocket_parallel.limits.tokens import TokenBudget


def test_a_full_minute_passes_at_once_then_tokens_refill_continuously():
    budget = TokenBudget(600)  # 10 tokens a second

    async def go():
        loop = asyncio.get_running_loop()
        times = []
        for tokens in (600, 10, 100):
            await budget.acquire(tokens)
            times.append(loop.time())
        return times, budget.available()

    assert run(go(), clock="virtual") == ([0.0, 1.0, 11.0], 0)


def test_requests_wait_their_turn_first_come_first_served():
    budget = TokenBudget(60)

    async def go():
        loop = asyncio.get_running_loop()
        order = []

        async def ask(name, tokens):
            await budget.acquire(tokens)
            order.append((name, loop.time()))

        await budget.acquire(60)
        await asyncio.gather(ask("big", 30), ask("small", 1))
        return order

    assert run(go(), clock="virtual") == [("big", 30.0), ("small", 31.0)]


@pytest.mark.parametrize("seed", range(3))
def test_paced_by_its_budget_a_client_gets_no_token_refusals(seed):
    llm = SimulatedLLM(latency=0.5, jitter=0.5, seed=seed, tokens_per_minute=2_000)
    budget = TokenBudget(2_000)
    prompts = [f"Summarize: {'word ' * (10 + i % 40)}number {i}" for i in range(120)]

    async def go():
        async def one(prompt):
            await budget.acquire(llm.tokens_for(prompt))
            return await llm(prompt)

        return await asyncio.gather(*(one(p) for p in prompts))

    answers = run(go(), clock="virtual")
    assert llm.stats.rate_limited == 0 and answers == [llm.answer_for(p) for p in prompts]


def test_bad_budgets_are_named():
    with pytest.raises(ValueError, match="tokens_per_minute"):
        TokenBudget(0)
    budget = TokenBudget(100)
    with pytest.raises(ValueError, match="at most tokens_per_minute"):
        run(budget.acquire(101), clock="virtual")
    with pytest.raises(ValueError, match="tokens"):
        run(budget.acquire(-1), clock="virtual")
