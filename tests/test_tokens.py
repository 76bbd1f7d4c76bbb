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


def test_a_refund_pays_off_debt_and_wakes_the_request_waiting_for_it():
    budget = TokenBudget(60, quantum=0)  # one token a second, nothing held: even pacing

    async def go():
        loop = asyncio.get_running_loop()
        await budget.acquire(30)  # the next request waits 30 s for these to be paid for
        waiting = asyncio.ensure_future(budget.acquire(1))
        await asyncio.sleep(10)
        budget.refund(20)  # 20 of the 30 were not used: 20 s less to wait
        await waiting
        return loop.time()

    assert run(go(), clock="virtual") == 10.0


def test_a_refund_never_fills_the_bucket_beyond_what_it_holds():
    held = TokenBudget(600, quantum=1)  # ten tokens a second, one second held

    async def go(budget):
        await budget.acquire(10)
        budget.refund(500)
        return budget.available()

    assert run(go(held), clock="virtual") == 10
    assert run(go(TokenBudget(600, quantum=0)), clock="virtual") == 0  # even pacing holds nothing, refund or not

    async def refund(tokens):
        held.refund(tokens)

    for bad in (-1, 601, 2.5):  # a refund is at most what one request could take: tokens_per_minute
        with pytest.raises(ValueError, match="tokens must be an integer in \\[0, 600\\]"):
            run(refund(bad), clock="virtual")


def test_a_budget_may_start_empty_so_even_its_first_requests_are_paced():
    budget = TokenBudget(600, quantum=1, start_full=False)

    async def go():
        loop = asyncio.get_running_loop()
        times = []
        for _ in range(3):
            await budget.acquire(10)
            times.append(loop.time())
        return times

    assert run(go(), clock="virtual") == [1.0, 2.0, 3.0]
    assert repr(budget) == "TokenBudget(tokens_per_minute=600, quantum=1, start_full=False)"
    with pytest.raises(TypeError, match="start_full"):
        TokenBudget(600, start_full="no")
