"""SimulatedLLM: validation, determinism, answers, trace and stats."""

from __future__ import annotations

import asyncio
import math
import random

import pytest

from pocket_parallel import (
    SimulatedLLM,
    TransientLLMError,
    call_llm,
    call_llm_async,
    get_default_llm,
    run,
    set_default_llm,
)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"latency": 0}, "latency"),
        ({"latency": -1}, "latency"),
        ({"latency": math.nan}, "latency"),
        ({"latency": math.inf}, "latency"),
        ({"latency": "1"}, "latency"),
        ({"jitter": -0.1}, "jitter"),
        ({"jitter": 5}, "jitter"),
        ({"jitter": math.nan}, "jitter"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"seed": "0"}, "seed"),
        ({"failure_rate": -0.1}, "failure_rate"),
        ({"failure_rate": 1.0}, "failure_rate"),
        ({"failure_rate": math.nan}, "failure_rate"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SimulatedLLM(**kwargs)


def test_prompt_must_be_text():
    llm = SimulatedLLM()
    with pytest.raises(TypeError, match="prompt"):
        run(llm(42), clock="virtual")  # type: ignore[arg-type]


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


def test_trace_and_stats_record_every_call_on_the_loop_clock():
    llm = SimulatedLLM(latency=1.5)

    async def three_at_once():
        await asyncio.gather(*(llm(f"Summarize: {i}") for i in range(3)))
        await llm("Summarize: last")

    run(three_at_once(), clock="virtual")
    stats = llm.stats
    assert (stats.calls, stats.ok, stats.in_flight, stats.peak_in_flight) == (4, 4, 0, 3)
    trace = llm.trace
    assert [r.outcome for r in trace] == ["ok"] * 4
    assert [r.attempt for r in trace] == [1, 1, 1, 1]
    last = next(r for r in trace if r.prompt == "Summarize: last")
    assert (last.start, last.end) == (pytest.approx(1.5), pytest.approx(3.0))
    llm.reset()
    assert llm.trace == [] and llm.stats.calls == 0


def test_failures_raise_transient_errors_and_are_counted():
    llm = SimulatedLLM(latency=0.1, failure_rate=0.5, seed=5)
    failing = [p for p in (f"Summarize: {i}" for i in range(40)) if llm.fails(p)]
    assert 5 < len(failing) < 35

    async def ask(prompt):
        try:
            return await llm(prompt)
        except TransientLLMError as error:
            return error

    async def ask_all():
        return await asyncio.gather(*(ask(f"Summarize: {i}") for i in range(40)))

    outcomes = run(ask_all(), clock="virtual")
    errors = [o for o in outcomes if isinstance(o, TransientLLMError)]
    assert len(errors) == len(failing) == llm.stats.transient_errors
    assert {e.prompt for e in errors} == set(failing)


def test_cancelled_call_is_recorded_and_leaves_nothing_in_flight():
    llm = SimulatedLLM(latency=10)

    async def cancel_midway():
        task = asyncio.ensure_future(llm("Summarize: slow"))
        await asyncio.sleep(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(cancel_midway(), clock="virtual")
    assert llm.stats.in_flight == 0 and llm.stats.cancelled == 1
    assert llm.trace[0].outcome == "cancelled" and llm.trace[0].duration == pytest.approx(1)


def test_sync_call_blocks_for_its_latency():
    llm = SimulatedLLM(latency=0.02)
    assert llm.call("Translate to French: cat") == "[French] cat"
    assert llm.trace[0].duration >= 0.02


def test_module_level_helpers_use_the_replaceable_default():
    mine = SimulatedLLM(latency=0.01)
    previous = set_default_llm(mine)
    try:
        assert get_default_llm() is mine
        assert run(call_llm_async("Summarize: chapter six"), clock="virtual").startswith("Summary")
        assert call_llm("Translate to German: tree") == "[German] tree"
        assert mine.stats.calls == 2
    finally:
        set_default_llm(previous)
    with pytest.raises(TypeError, match="llm"):
        set_default_llm("not an llm")  # type: ignore[arg-type]


def test_rerunning_the_same_prompts_sends_the_same_workload():
    # Only a call after a failure is a retry; after a success the next call is attempt 1 again,
    # so a learner who re-runs a cell without reset() sees the same latencies.
    llm = SimulatedLLM(latency=1, jitter=0.5, seed=12, failure_rate=0.3)
    texts = [f"Summarize: memo {i}" for i in range(30)]

    async def ask_all():
        async def ask(text):
            for _ in range(20):
                try:
                    return await llm(text)
                except TransientLLMError:
                    continue
            raise AssertionError("20 failures in a row")

        return await asyncio.gather(*(ask(t) for t in texts))

    run(ask_all(), clock="virtual")
    first = [(r.prompt, r.attempt, round(r.duration, 6), r.outcome) for r in llm.trace]
    run(ask_all(), clock="virtual")
    second = [(r.prompt, r.attempt, round(r.duration, 6), r.outcome) for r in llm.trace[len(first):]]
    assert sorted(second) == sorted(first)
    retried = [record for record in first if record[1] > 1]
    assert retried and all(record[3] in {"ok", "error"} for record in retried)
