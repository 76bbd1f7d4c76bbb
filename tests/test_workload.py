"""The seeded workload model: latencies, answers and tokens that depend on prompt, seed and attempt only."""


from __future__ import annotations

import asyncio
import math
import random

import pytest

from pocket_parallel import SimulatedLLM, run
from pocket_parallel.service.model import AttemptNumbers, estimate_tokens


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


def test_faults_are_seeded_per_prompt_and_attempt_and_independent_of_latency():
    from pocket_parallel.service.model import ServiceModel

    model = ServiceModel(latency=1.0, jitter=0.3, seed=4, failure_rate=0.2, stall_rate=0.1, overload_rate=0.1)
    prompts_ = [f"Summarize: doc {i}" for i in range(4000)]
    assert [model.latency_for(p) for p in prompts_] == [ServiceModel(1.0, 0.3, 4).latency_for(p) for p in prompts_]
    fails = sum(model.fails(p) for p in prompts_) / 4000
    overloaded = sum(model.overloaded(p) for p in prompts_) / 4000
    stalls = sum(model.stalls(p) for p in prompts_) / 4000
    assert fails == pytest.approx(0.2, abs=0.02) and overloaded == pytest.approx(0.1, abs=0.02)
    assert stalls == pytest.approx(0.1, abs=0.02)
    assert not any(model.fails(p) and model.overloaded(p) for p in prompts_)  # one fault kind per attempt
    assert {model.error_status(p) for p in prompts_} == {500, 503}
    assert [model.stalls(p, 2) for p in prompts_] != [model.stalls(p, 1) for p in prompts_]


def test_a_workload_makes_its_prompts_and_its_llm():
    from pocket_parallel import Workload
    from pocket_parallel.backends.workload import as_workload

    workload = Workload(items=3, latency=0.5, jitter=0.2, failure_rate=0.1, seed=9)
    assert workload.prompts() == [f"Summarize: document {i} of 3" for i in (1, 2, 3)]
    llm = workload.llm(max_concurrent=2)
    assert (llm.latency, llm.jitter, llm.failure_rate, llm.seed, llm.max_concurrent) == (0.5, 0.2, 0.1, 9, 2)
    assert workload.but(items=5) == Workload(5, 0.5, 0.2, 0.1, 9)
    assert as_workload(3, latency=0.5, jitter=0.2, failure_rate=0.1, seed=9) == workload
    assert as_workload(workload) is workload and as_workload(workload, seed=1).seed == 1
    with pytest.raises(TypeError, match="latenzy"):
        as_workload(3, latenzy=1.0)
    with pytest.raises(TypeError, match="item count once"):
        as_workload(3, items=4)


@pytest.mark.parametrize("kwargs, name", [
    ({"items": 0}, "items"), ({"latency": 0}, "latency"), ({"jitter": -1}, "jitter"),
    ({"failure_rate": 1.0}, "failure_rate"), ({"seed": -1}, "seed"),
])
def test_bad_workloads_are_named(kwargs, name):
    from pocket_parallel import Workload

    with pytest.raises(ValueError, match=name):
        Workload(**kwargs)


def test_failure_and_overload_rates_together_must_leave_room_to_succeed():
    from pocket_parallel.service.model import ServiceModel

    with pytest.raises(ValueError, match="failure_rate \\+ overload_rate"):
        ServiceModel(failure_rate=0.6, overload_rate=0.4)
    with pytest.raises(ValueError, match="stall_rate"):
        ServiceModel(stall_rate=1.0)


def test_attempt_numbers_count_failures_and_stalls_but_not_cancels():
    attempts = AttemptNumbers()
    attempts.settled("p", 1, "error")
    assert attempts.next("p") == 2
    attempts.settled("p", 2, "cancelled")  # the caller gave up: the same attempt again
    assert attempts.next("p") == 2
    attempts.settled("p", 2, "cancelled", stalled=True)  # the service hung: the next try is a retry
    assert attempts.next("p") == 3
    attempts.settled("p", 3, "rate_limited")
    assert attempts.next("p") == 4
    attempts.settled("p", 4, "ok")
    assert attempts.next("p") == 1
    assert attempts.next("q") == 1
