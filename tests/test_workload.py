"""The seeded workload model: latencies, answers and tokens that depend on prompt, seed and attempt only."""


from __future__ import annotations

import asyncio
import math
import random

import pytest

from pocket_parallel import (
    SimulatedLLM,
    run,
)
from pocket_parallel.workload import estimate_tokens


def test_tokens_are_estimated_at_four_characters_each():
    assert [estimate_tokens(t) for t in ("", "abc", "abcd", "abcde")] == [0, 1, 1, 2]
    llm = SimulatedLLM()
    prompt = "Translate to Spanish: Hello"  # 27 characters; answer "[Spanish] Hello", 15
    assert llm.tokens_for(prompt) == 7 + 4
    with pytest.raises(TypeError, match="text"):
        estimate_tokens(12)  # type: ignore[arg-type]


def test_same_seed_same_latencies_and_answers_in_any_order():
    texts = [f"Summarize: article {i}" for i in range(50)]
    first, second = SimulatedLLM(latency=1, jitter=0.5, seed=7), SimulatedLLM(latency=1, jitter=0.5, seed=7)
    shuffled = texts[:]
    random.Random(3).shuffle(shuffled)

    async def ask_all(llm, order):
        answers = await asyncio.gather(*(llm(t) for t in order))
        return dict(zip(order, answers))

    answers_a = run(ask_all(first, texts), clock="virtual")
    answers_b = run(ask_all(second, shuffled), clock="virtual")
    assert answers_a == answers_b
    durations_a = {r.prompt: r.duration for r in first.trace}
    durations_b = {r.prompt: r.duration for r in second.trace}
    assert durations_a == pytest.approx(durations_b, abs=1e-9)
    assert len(set(durations_a.values())) > 10  # jitter really spreads them


def test_different_seed_changes_latencies():
    a, b = SimulatedLLM(jitter=0.5, seed=1), SimulatedLLM(jitter=0.5, seed=2)
    assert [a.latency_for(f"p{i}") for i in range(20)] != [b.latency_for(f"p{i}") for i in range(20)]


def test_jitter_keeps_the_mean_and_spreads_by_the_ratio():
    llm = SimulatedLLM(latency=2.0, jitter=0.3, seed=11)
    samples = [llm.latency_for(f"prompt {i}") for i in range(20_000)]
    mean = sum(samples) / len(samples)
    spread = math.sqrt(sum((x - mean) ** 2 for x in samples) / len(samples))
    assert mean == pytest.approx(2.0, rel=0.02)
    assert spread / mean == pytest.approx(0.3, rel=0.05)


def test_retry_draws_a_new_attempt():
    llm = SimulatedLLM(latency=1, jitter=0.5, seed=3)
    assert llm.latency_for("Summarize: x", 1) != llm.latency_for("Summarize: x", 2)


def test_answers_show_their_input():
    llm = SimulatedLLM()
    assert llm.answer_for("Translate to Spanish: Good morning") == "[Spanish] Good morning"
    summary = llm.answer_for("Summarize: The history of the printing press in Europe")
    assert summary.startswith("Summary (") and "printing press" in summary
    other = llm.answer_for("What is 2 + 2?")
    assert "2 + 2" in other
    assert llm.answer_for("Summarize: alpha") != llm.answer_for("Summarize: beta")
