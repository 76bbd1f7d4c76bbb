"""The simulated service behind the routes, on the virtual clock: exact latencies, faults, limits and counters."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

import pytest

from pocket_parallel import SimulatedLLM, run
from pocket_parallel.server.service import Busy, ChatService, Faulted, Overloaded, Refused, ServiceRequest
from pocket_parallel.server.settings import ServerSettings
from pocket_parallel.service.model import ServiceModel, estimate_tokens


@dataclass(frozen=True)
class Answered:
    """What a finished call gave: its reply, attempt and input tokens."""

    text: str
    attempt: int
    prompt_tokens: int
    completion_tokens: int
    stop_reason: str

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


async def _ask(service: ChatService, prompt: str, **options) -> Answered:
    async with service.call(ServiceRequest(prompt, **options)) as call:
        reply = await call.finish()
        return Answered(reply.text, call.attempt, call.input_tokens, reply.output_tokens, reply.stop_reason)


async def _timed(service: ChatService, prompt: str) -> tuple[float, object]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        result: object = await _ask(service, prompt)
    except (Refused, Overloaded, Faulted) as error:
        result = error
    return round(loop.time() - start, 6), result


def test_same_seed_and_prompt_give_the_same_latency_and_answer_as_simulated_llm():
    settings = ServerSettings(latency=0.3, jitter=0.5, seed=7)
    service, llm = ChatService(settings), SimulatedLLM(latency=0.3, jitter=0.5, seed=7)
    prompts = [f"Translate to French: line {i}" for i in range(5)]

    async def both():
        return [await _timed(service, p) for p in prompts]

    measured = run(both(), clock="virtual")
    for prompt, (seconds, answer) in zip(prompts, measured):
        assert seconds == llm.latency_for(prompt)
        assert answer.text == llm.answer_for(prompt)
        assert answer.total_tokens == llm.tokens_for(prompt)


def test_a_retry_is_numbered_as_simulated_llm_numbers_it():
    # Find a prompt whose first attempt fails and second succeeds under seed 1.
    model = ServiceModel(latency=0.1, seed=1, failure_rate=0.5)
    prompt = next(p for p in (f"Summarize: {i}" for i in range(100)) if model.fails(p, 1) and not model.fails(p, 2))
    service = ChatService(ServerSettings(latency=0.1, seed=1, failure_rate=0.5))

    async def twice():
        return [await _timed(service, prompt), await _timed(service, prompt), await _timed(service, prompt)]

    (t1, first), (t2, second), (t3, third) = run(twice(), clock="virtual")
    assert isinstance(first, Faulted) and first.status == model.error_status(prompt, 1)
    assert (t1, t2) == (model.latency_for(prompt, 1), model.latency_for(prompt, 2))
    assert second.attempt == 2
    # After a success the count starts again: the third call is attempt 1 again, and fails as the first did.
    assert isinstance(third, Faulted) and t3 == t1
    stats = service.stats
    assert (stats.requests, stats.errors, stats.ok, stats.retries, stats.in_flight) == (3, 2, 1, 1, 0)
    # Every attempt's prompt was read (a retry is billed again); one answer was sent.
    assert stats.prompt_tokens == 3 * estimate_tokens(prompt)
    assert stats.completion_tokens == second.completion_tokens
    assert stats.total_tokens == stats.prompt_tokens + stats.completion_tokens


def test_overloaded_calls_are_turned_away_at_once_with_529():
    model = ServiceModel(latency=0.5, seed=3, overload_rate=0.4)
    prompts = [f"Summarize: {i}" for i in range(40)]
    service = ChatService(ServerSettings(latency=0.5, seed=3, overload_rate=0.4))

    async def each():
        return [await _timed(service, p) for p in prompts]

    for prompt, (seconds, result) in zip(prompts, run(each(), clock="virtual")):
        if model.overloaded(prompt):
            assert isinstance(result, Overloaded) and seconds == 0
        else:
            assert result.text
    assert service.stats.overloaded == sum(model.overloaded(p) for p in prompts) > 0


def test_a_refusal_names_its_limit_and_says_when_to_come_back():
    service = ChatService(ServerSettings(latency=0.25, max_concurrent=1, requests_per_minute=600))

    async def two_at_once():
        return await asyncio.gather(_timed(service, "Summarize: a"), _timed(service, "Summarize: b"))

    (_, ok), (seconds, refused) = run(two_at_once(), clock="virtual")
    assert ok.text and seconds == 0
    refusal = refused.refusal
    assert (refusal.limit, refusal.retry_after, refusal.retry_after_ms, refusal.allowed) == ("max_concurrent", 0.25, 250, 1)
    assert refused.limits["requests_per_minute"].remaining == 599  # the refused request used no quota
    assert refusal.message == "Rate limit reached for requests in flight: limit 1 at once. Please try again in 250 ms."


def test_a_request_larger_than_the_token_budget_is_too_large_for_good():
    service = ChatService(ServerSettings(latency=0.1, tokens_per_minute=5))
    with pytest.raises(Refused) as caught:
        run(_ask(service, "Summarize: " + "word " * 50), clock="virtual")
    refusal = caught.value.refusal
    assert refusal.too_large and refusal.limit == "tokens_per_minute" and refusal.allowed == 5
    assert refusal.message.startswith("Request too large for tokens per minute (TPM): limit 5, requested ")


@pytest.mark.parametrize("algorithm", ["token_bucket", "sliding_window"])
def test_admissions_never_exceed_the_per_minute_budget(algorithm):
    # 300 requests arriving every 0.1 s against 60 per minute; the admission times are checked
    # over every stretch: a bucket admits at most 60 + 1 per second of the stretch, a window at
    # most 60 in any 60 s.
    service = ChatService(ServerSettings(latency=0.05, requests_per_minute=60, algorithm=algorithm))
    admitted: list[float] = []

    async def arrivals():
        loop = asyncio.get_running_loop()

        async def one(i: int) -> None:
            await asyncio.sleep(i * 0.1)
            start = loop.time()
            try:
                await _ask(service, f"Summarize: {i}")
            except Refused:
                return
            admitted.append(start)

        await asyncio.gather(*(one(i) for i in range(3000)))

    run(arrivals(), clock="virtual")
    admitted.sort()
    assert service.stats.rate_limited == 3000 - len(admitted) > 0
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            stretch = round(admitted[j] - start, 6)  # the quota counts whole microseconds
            if algorithm == "token_bucket":
                assert j - i + 1 <= 60 + stretch * 1.0 + 1e-9
            elif stretch < 60:
                assert j - i + 1 <= 60
            else:
                break


def test_a_stall_holds_its_slot_until_cancelled_and_is_counted():
    model = ServiceModel(latency=0.1, seed=0, stall_rate=0.5)
    prompt = next(p for p in (f"Summarize: {i}" for i in range(50)) if model.stalls(p))
    service = ChatService(ServerSettings(latency=0.1, stall_rate=0.5, max_concurrent=1))

    async def stall_then_give_up():
        task = asyncio.ensure_future(_ask(service, prompt))
        await asyncio.sleep(30)
        assert service.stats.in_flight == 1 and not task.done()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    run(stall_then_give_up(), clock="virtual")
    stats = service.stats
    assert (stats.stalled, stats.cancelled, stats.in_flight, stats.ok) == (1, 1, 0, 0)
    assert service.quota.in_flight == 0
    assert service.attempts.next(prompt) == 2  # a stalled attempt counts as a failed one: the retry is attempt 2


def test_max_tokens_cuts_the_answer_and_says_so():
    service = ChatService(ServerSettings(latency=0.1))
    answer = run(_ask(service, "Summarize: " + "many words here " * 10, max_tokens=3), clock="virtual")
    assert (answer.stop_reason, answer.completion_tokens, len(answer.text)) == ("max_tokens", 3, 12)


def test_reset_is_refused_while_requests_are_in_flight():
    service = ChatService(ServerSettings(latency=1.0, requests_per_minute=10))

    async def reset_during_a_call():
        task = asyncio.ensure_future(_ask(service, "Summarize: x"))
        await asyncio.sleep(0.5)
        with pytest.raises(Busy, match="in flight"):
            service.reset()
        await task
        service.reset()
        return service.limits()

    limits = run(reset_during_a_call(), clock="virtual")
    assert service.stats.requests == 0 and limits["requests_per_minute"].remaining == 10


def test_settings_are_checked_with_the_parameter_named():
    with pytest.raises(ValueError, match="latency"):
        ServerSettings(latency=0)
    with pytest.raises(ValueError, match="max_concurrent"):
        ServerSettings(max_concurrent=0)
    with pytest.raises(ValueError, match="algorithm"):
        ServerSettings(algorithm="fixed_window")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="port"):
        ServerSettings(port=70_000)
    with pytest.raises(ValueError, match="host"):
        ServerSettings(host="")
    assert math.isclose(ServerSettings().latency, 0.5)


def test_tokens_stream_at_the_time_per_token_pace_thinking_first():
    service = ChatService(ServerSettings(ttft=0.5, tpot=0.01, answer_tokens=(20, 20)))

    async def streamed() -> tuple[list[tuple[str, float]], float, object]:
        loop = asyncio.get_running_loop()
        async with service.call(ServiceRequest("Summarize: a", max_tokens=200, thinking_budget=40)) as call:
            start = call.served_at
            arrivals = [(piece.kind, round(loop.time() - start, 6)) async for piece in call.pieces()]
            return arrivals, round(loop.time() - start, 6), call.reply

    arrivals, end, reply = run(streamed(), clock="virtual")
    thinking = reply.thinking_tokens
    assert 10 <= thinking <= 40 and reply.text_tokens == 20 and len(arrivals) == thinking + 20
    assert [kind for kind, _ in arrivals] == ["thinking"] * thinking + ["text"] * 20
    assert [t for _, t in arrivals] == pytest.approx([0.5 + k * 0.01 for k in range(thinking + 20)], abs=1e-6)
    assert end == round(0.5 + (thinking + 20) * 0.01, 6)
    assert (service.stats.ok, service.stats.completion_tokens) == (1, thinking + 20)


def test_a_failing_stream_fails_after_its_whole_time_before_any_token():
    model = ServiceModel(latency=0.3, seed=1, failure_rate=0.5)
    prompt = next(p for p in (f"Summarize: {i}" for i in range(100)) if model.fails(p, 1))
    service = ChatService(ServerSettings(latency=0.3, seed=1, failure_rate=0.5))

    async def stream() -> tuple[list[object], float, int]:
        loop = asyncio.get_running_loop()
        pieces: list[object] = []
        with pytest.raises(Faulted) as caught:
            async with service.call(ServiceRequest(prompt, stream=True)) as call:
                async for piece in call.pieces():
                    pieces.append(piece)
        return pieces, loop.time(), caught.value.status

    pieces, end, status = run(stream(), clock="virtual")
    assert pieces == [] and end == 0.3 and status == model.error_status(prompt, 1)
    assert (service.stats.errors, service.stats.ok, service.stats.in_flight) == (1, 0, 0)
