"""The node's input and output token budgets: even pacing that a provider's per-second bucket never refuses,
and unused output tokens handed back as the provider hands them back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pocket_parallel import BoundedParallelBatchNode, SimulatedLLM, run
from pocket_parallel.limits import TokenBudget, estimate_tokens

MAX_TOKENS = 500


class Ask(BoundedParallelBatchNode):
    """Sends each prompt with max_tokens=500, as a program written for a provider's API does."""

    def __init__(self, llm: SimulatedLLM, **settings: Any) -> None:
        super().__init__(**settings)
        self.llm = llm

    async def prep_async(self, shared: dict[str, Any]) -> list[str]:
        return shared["prompts"]

    async def exec_async(self, prompt: str) -> str:
        reply = await self.llm.complete(prompt, max_tokens=MAX_TOKENS)
        return reply.text

    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: list[Any]) -> None:
        shared["answers"] = exec_res


def _starts(llm: SimulatedLLM) -> list[float]:
    return sorted(round(record.start, 6) for record in llm.trace if record.outcome != "rate_limited")


def _run(node: Ask, prompts: list[str]) -> dict[str, Any]:
    shared: dict[str, Any] = {"prompts": prompts}
    run(node.run_async(shared), clock="virtual")
    return shared


PROMPTS = [f"Translate to French: sentence number {i} of the cookbook" for i in range(24)]


def test_pacing_on_reserved_output_tokens_draws_no_429_where_a_burst_draws_many():
    def anthropic_like() -> SimulatedLLM:  # 6,000 output tokens a minute, enforced per second
        return SimulatedLLM(latency=2.0, output_tokens_per_minute=6_000, quantum=1.0)

    burst_llm = anthropic_like()
    _run(Ask(burst_llm, collect_failures=True), PROMPTS)
    assert burst_llm.stats.rate_limited == 23  # one fits the bucket; the other 23 are refused at once

    llm = anthropic_like()
    shared = _run(Ask(llm, max_output_tokens_per_minute=6_000, output_tokens_for=MAX_TOKENS), PROMPTS)
    assert llm.stats.rate_limited == 0 and len(shared["answers"]) == 24
    starts = _starts(llm)
    assert starts == pytest.approx([5.0 * i for i in range(24)])  # 500 tokens at 6,000 a minute: one every 5 s


def test_pacing_on_input_tokens_spaces_each_request_by_its_own_size():
    llm = SimulatedLLM(latency=1.0, input_tokens_per_minute=1_200, quantum=1.0)
    prompts = ["Summarize: " + "word " * n for n in (20, 60, 4, 100)]
    shared = _run(Ask(llm, max_input_tokens_per_minute=1_200, input_tokens_for=estimate_tokens), prompts)
    assert llm.stats.rate_limited == 0 and len(shared["answers"]) == 4
    sizes = [estimate_tokens(p) for p in prompts]
    expected = [0.0]
    for size in sizes[:-1]:  # each request waits until the one before it is paid for, at 20 tokens a second
        expected.append(expected[-1] + size / 20)
    assert _starts(llm) == pytest.approx(expected, abs=1e-6)


def test_the_new_budgets_start_with_no_burst_while_max_tokens_per_minute_keeps_its_minute():
    even, burst = SimulatedLLM(latency=1.0), SimulatedLLM(latency=1.0)
    _run(Ask(even, max_output_tokens_per_minute=60_000, output_tokens_for=lambda prompt: 1_000), PROMPTS[:4])
    _run(Ask(burst, max_tokens_per_minute=60_000, tokens_for=lambda prompt: 1_000), PROMPTS[:4])
    assert _starts(even) == pytest.approx([0.0, 1.0, 2.0, 3.0])
    assert _starts(burst) == [0.0, 0.0, 0.0, 0.0]


def test_a_shared_budget_paces_two_nodes_together():
    llm = SimulatedLLM(latency=0.5)
    budget = TokenBudget(6_000, quantum=0)

    async def both() -> None:
        nodes = [Ask(llm, max_output_tokens_per_minute=budget, output_tokens_for=MAX_TOKENS) for _ in range(2)]
        await asyncio.gather(*(node.run_async({"prompts": PROMPTS[i::2][:3]}) for i, node in enumerate(nodes)))

    run(both(), clock="virtual")
    assert _starts(llm) == pytest.approx([5.0 * i for i in range(6)])
    assert repr(budget) == "TokenBudget(tokens_per_minute=6000, quantum=0)"


def _anthropic_like(seed: int = 0) -> SimulatedLLM:
    """Anthropic's rules (output reserved at admission, the unused part returned at the end), per second."""
    return SimulatedLLM(profile="anthropic", seed=seed, requests_per_minute=6_000, input_tokens_per_minute=600_000,
                        output_tokens_per_minute=30_000)  # answers of 100 to 400 tokens; 500 reserved for each


def _paced_on_output(llm: SimulatedLLM, **settings: Any) -> tuple[float, dict[str, Any]]:
    node = Ask(llm, max_output_tokens_per_minute=30_000, output_tokens_for=MAX_TOKENS, **settings)
    shared: dict[str, Any] = {"prompts": [f"Summarize: document {i}" for i in range(60)]}

    async def timed() -> float:
        await node.run_async(shared)
        return asyncio.get_running_loop().time()

    return run(timed(), clock="virtual"), shared


@pytest.mark.parametrize("seed", range(3))
def test_handing_back_unused_output_tokens_finishes_sooner_with_no_429s(seed):
    kept_llm, refunded_llm = _anthropic_like(seed), _anthropic_like(seed)
    kept, _ = _paced_on_output(kept_llm)
    refunded, shared = _paced_on_output(refunded_llm, output_tokens_used=estimate_tokens)  # the server's count
    assert kept_llm.stats.rate_limited == 0 and refunded_llm.stats.rate_limited == 0
    assert len(shared["answers"]) == 60
    assert kept >= 60 * MAX_TOKENS / 500 - 1  # 500 tokens a second: one reservation a second, whatever is used
    used = sum(estimate_tokens(answer) for answer in shared["answers"])
    # Sooner by a fifth at least (the refunds come back only as answers end, so the first seconds run at the
    # reservations' pace), but never sooner than the output tokens actually used allow.
    assert used / 500 <= refunded < 0.8 * kept


def test_a_refund_is_never_more_than_the_reservation():
    llm = _anthropic_like()
    _paced_on_output(llm, output_tokens_used=lambda answer: 10 * MAX_TOKENS)  # more used than reserved: nothing back
    assert llm.stats.rate_limited == 0
    assert _starts(llm) == pytest.approx([1.0 + i for i in range(60)])  # one reservation a second, from an empty bucket


@pytest.mark.parametrize("settings, error, named", [
    ({"output_tokens_used": estimate_tokens}, ValueError, "output_tokens_used .* max_output_tokens_per_minute"),
    ({"max_output_tokens_per_minute": 1_000, "output_tokens_for": 10, "output_tokens_used": 5}, TypeError,
     "output_tokens_used must be a function"),
    ({"max_output_tokens_per_minute": 0, "output_tokens_for": 10}, ValueError, "max_output_tokens_per_minute"),
    ({"max_input_tokens_per_minute": 2.5, "input_tokens_for": len}, ValueError, "max_input_tokens_per_minute"),
    ({"max_output_tokens_per_minute": 1_000}, ValueError, "output_tokens_for must be given with max_output_tokens"),
    ({"max_input_tokens_per_minute": 1_000}, ValueError, "input_tokens_for must be given with max_input_tokens"),
    ({"max_output_tokens_per_minute": 1_000, "output_tokens_for": 0}, ValueError, "output_tokens_for"),
    ({"max_input_tokens_per_minute": 1_000, "input_tokens_for": 5}, TypeError, "input_tokens_for must be a function"),
])
def test_bad_pacing_settings_are_refused_naming_them(settings, error, named):
    with pytest.raises(error, match=named):
        Ask(SimulatedLLM(), **settings)
    with pytest.raises(ValueError, match="quantum"):
        TokenBudget(100, quantum=61)


def test_every_budget_lets_the_request_go_at_the_same_moment_so_a_later_wait_bunches_nothing():
    # Anthropic's Tier 1 request budget: 50 a minute enforced per second, a bucket of 5/6 of a request. A request
    # that passed the request limiter and then waited for output tokens would go out closer to the next one than
    # 1.2 s, and be refused; paced on all budgets at once, every request is 1.2 s after the one before.
    llm = SimulatedLLM(profile="anthropic", output_tokens_per_minute=30_000)
    prompts = [f"Summarize: document {i}" for i in range(8)]
    node = Ask(llm, max_per_minute=50, max_output_tokens_per_minute=30_000, output_tokens_for=MAX_TOKENS,
               output_tokens_used=estimate_tokens)  # the output budget starts empty: the first request waits 1 s
    _run(node, prompts)
    assert llm.stats.rate_limited == 0
    starts = _starts(llm)
    assert starts[0] == pytest.approx(1.0)
    assert min(b - a for a, b in zip(starts, starts[1:])) >= 1.2 - 1e-6
