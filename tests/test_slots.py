"""Self-hosted slots: K calls served at once, the rest waiting first come first served, never refused; the knee."""

from __future__ import annotations

import asyncio

import pytest

from pocket_parallel import SimulatedLLM, run
from pocket_parallel.server.service import ChatService, ServiceRequest
from pocket_parallel.server.settings import ServerSettings
from pocket_parallel.service.slots import Slots
from pocket_parallel.service.timing import BATCH_SLOWDOWN


async def _ends(llm: SimulatedLLM, prompts: list[str]) -> list[float]:
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def one(prompt: str) -> float:
        await llm(prompt)
        return round(loop.time() - start, 6)

    return list(await asyncio.gather(*(one(p) for p in prompts)))


def test_calls_beyond_the_slots_wait_in_line_in_arrival_order_and_none_is_refused():
    llm = SimulatedLLM(latency=1.0, slots=2)
    ends = run(_ends(llm, [f"Summarize: {i}" for i in range(5)]), clock="virtual")
    assert ends == [1.0, 1.0, 2.0, 2.0, 3.0]
    stats = llm.stats
    assert (stats.rate_limited, stats.ok, stats.peak_in_flight) == (0, 5, 5)


def test_time_per_token_grows_with_the_batch_a_call_joins():
    llm = SimulatedLLM(ttft=0.0, tpot=0.01, answer_tokens=(100, 100), slots=8)
    ends = run(_ends(llm, [f"Summarize: {i}" for i in range(4)]), clock="virtual")
    assert ends == pytest.approx([1.0 * (1 + BATCH_SLOWDOWN * b) for b in range(4)])


@pytest.mark.parametrize("slots", [2, 4])
def test_throughput_saturates_at_the_slots_and_latency_rises_past_them(slots):
    def measure(concurrency: int) -> tuple[float, float]:
        llm = SimulatedLLM(ttft=0.1, tpot=0.01, answer_tokens=(50, 50), slots=slots)
        prompts = [f"Summarize: {i}" for i in range(48)]

        async def workers() -> tuple[float, float]:
            loop = asyncio.get_running_loop()
            queue = list(prompts)
            durations: list[float] = []

            async def worker() -> None:
                while queue:
                    prompt = queue.pop(0)
                    start = loop.time()
                    await llm(prompt)
                    durations.append(loop.time() - start)

            start = loop.time()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return len(prompts) / (loop.time() - start), sum(durations) / len(durations)

        return run(workers(), clock="virtual")

    points = {c: measure(c) for c in sorted({1, 2, slots, 2 * slots, 4 * slots})}
    throughput = {c: point[0] for c, point in points.items()}
    latency = {c: point[1] for c, point in points.items()}
    rising = [throughput[c] for c in points if c <= slots]
    assert rising == sorted(set(rising)) and len(rising) >= 2  # more calls at once help up to K...
    assert throughput[2 * slots] == pytest.approx(throughput[slots], rel=0.02)  # ...and not past K
    assert throughput[4 * slots] == pytest.approx(throughput[slots], rel=0.02)
    assert latency[1] < latency[slots] < latency[2 * slots] < latency[4 * slots]  # waiting in line costs time


def test_a_call_that_gives_up_waiting_leaves_the_line_and_the_next_takes_its_turn():
    async def scenario() -> list[str]:
        slots, order = Slots(1), []
        assert await slots.take() == 1

        async def waiter(name: str) -> None:
            await slots.take()
            order.append(name)

        tasks = [asyncio.ensure_future(waiter(name)) for name in "abc"]
        await asyncio.sleep(0)
        assert slots.waiting == 3
        tasks[0].cancel()
        await asyncio.sleep(0)
        slots.give()  # b takes over the slot, a having left
        await asyncio.sleep(0)
        slots.give()
        await asyncio.gather(*tasks, return_exceptions=True)
        slots.give()
        assert (slots.busy, slots.waiting) == (0, 0)
        return order

    assert run(scenario(), clock="virtual") == ["b", "c"]


def test_a_slot_handed_to_a_call_cancelled_in_the_same_instant_passes_on():
    async def scenario() -> int:
        slots = Slots(1)
        await slots.take()
        first = asyncio.ensure_future(slots.take())
        second = asyncio.ensure_future(slots.take())
        await asyncio.sleep(0)
        slots.give()  # handed to `first`...
        first.cancel()  # ...which is cancelled before it runs: the slot goes on to `second`
        await asyncio.gather(first, return_exceptions=True)
        batch = await second
        return batch + slots.busy

    assert run(scenario(), clock="virtual") == 2


def test_the_server_queues_too_and_counts_the_requests_that_waited():
    service = ChatService(ServerSettings(latency=1.0, slots=3))

    async def burst() -> list[float]:
        loop = asyncio.get_running_loop()

        async def one(i: int) -> float:
            async with service.call(ServiceRequest(f"Summarize: {i}")) as call:
                await call.finish()
            return loop.time()

        return list(await asyncio.gather(*(one(i) for i in range(7))))

    assert run(burst(), clock="virtual") == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0]
    stats = service.stats
    assert (stats.ok, stats.queued, stats.rate_limited, stats.in_flight) == (7, 4, 0, 0)


def test_slots_are_checked():
    with pytest.raises(ValueError, match="slots"):
        Slots(0)
    with pytest.raises(ValueError, match="slots"):
        SimulatedLLM(slots=1.5)
    with pytest.raises(RuntimeError, match="slots"):
        SimulatedLLM(latency=0.001, slots=2).call("Summarize: x")
