"""The bounded-batch engine: C lazy workers, input order, lent slots, deadlines, nothing left behind."""

from __future__ import annotations

import asyncio

import pytest

from pocket_parallel import run
from pocket_parallel._engine import ItemFailed, Slot, run_batch
from pocket_parallel.outcomes import DeadlineExceeded, Failure, Outcomes


def others() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


def micro(seconds: float) -> int:
    return round(seconds * 1_000_000)


@pytest.mark.parametrize("limit", [1, 7, 100])
def test_only_c_tasks_exist_at_any_time_with_a_limit(limit):
    peak_tasks = 0

    async def work(index: int, item: int, slot: Slot) -> int:
        nonlocal peak_tasks
        peak_tasks = max(peak_tasks, len(asyncio.all_tasks()))
        await asyncio.sleep(1.0)
        return item * 2

    async def go():
        outcomes = Outcomes(range(1000))
        results = await run_batch(outcomes.items, work, outcomes, limit=limit, keep_going=False)
        return results, others()

    results, leftovers = run(go(), clock="virtual")
    assert results == [i * 2 for i in range(1000)] and leftovers == []
    assert peak_tasks == limit + 1  # the workers and the task that runs the batch


def test_with_no_limit_every_item_starts_at_once_in_its_own_task():
    started = []

    async def work(index: int, item: int, slot: Slot) -> int:
        started.append(asyncio.get_running_loop().time())
        await asyncio.sleep(1.0 + index / 1000)
        return index

    async def go():
        outcomes = Outcomes(range(50))
        await run_batch(outcomes.items, work, outcomes, limit=None, keep_going=False)
        return asyncio.get_running_loop().time()

    assert micro(run(go(), clock="virtual")) == micro(1.049)
    assert started == [0.0] * 50


def test_items_start_in_input_order_as_slots_free():
    starts: dict[int, float] = {}
    latencies = [3.0, 1.0, 1.0, 2.0, 1.0, 1.0]

    async def work(index: int, item: float, slot: Slot) -> None:
        starts[index] = asyncio.get_running_loop().time()
        await asyncio.sleep(item)

    async def go():
        outcomes = Outcomes(latencies)
        await run_batch(outcomes.items, work, outcomes, limit=2, keep_going=False)

    run(go(), clock="virtual")
    # Slot A: item 0 (0-3), then item 4 (3-4); slot B: items 1 (0-1), 2 (1-2), 3 (2-4), 5 (4-5).
    assert [starts[i] for i in range(6)] == [0.0, 0.0, 1.0, 2.0, 3.0, 4.0]


def test_a_failure_stops_the_batch_cancels_the_rest_and_settles_every_item():
    async def work(index: int, item: int, slot: Slot) -> int:
        await asyncio.sleep(1.0 + index)
        if index == 2:
            raise ValueError("item 2 is broken")
        return index

    async def go():
        outcomes = Outcomes(range(10))
        with pytest.raises(ValueError, match="item 2"):
            await run_batch(outcomes.items, work, outcomes, limit=3, keep_going=False)
        return outcomes, others()

    outcomes, leftovers = run(go(), clock="virtual")
    assert leftovers == []
    assert outcomes.counts() == {"ok": 2, "failed": 1, "cancelled": 7, "pending": 0}
    assert outcomes.failures[0].attempts == 1


def test_keep_going_puts_the_failure_record_in_the_failed_items_place():
    async def work(index: int, item: str, slot: Slot) -> str:
        await asyncio.sleep(0.5)
        if item == "bad":
            raise ItemFailed(Failure(item, ValueError("no"), attempts=4))
        return item.upper()

    async def go():
        outcomes = Outcomes(["a", "bad", "c"])
        return await run_batch(outcomes.items, work, outcomes, limit=2, keep_going=True)

    results = run(go(), clock="virtual")
    assert results[0] == "A" and results[2] == "C"
    assert isinstance(results[1], Failure) and results[1].attempts == 4


def test_answered_items_are_settled_without_running():
    ran = []

    async def work(index: int, item: str, slot: Slot) -> str:
        ran.append(item)
        await asyncio.sleep(1.0)
        return item + "!"

    class Recorder:
        def __init__(self):
            self.seen = []

        def succeeded(self, index, value):
            self.seen.append((index, value))

        def failed(self, index, failure):
            self.seen.append((index, failure))

    recorder = Recorder()

    async def go():
        outcomes = Outcomes(["a", "b", "c", "d"])
        results = await run_batch(outcomes.items, work, outcomes, limit=2, keep_going=False,
                                  answered={1: "b (earlier)", 3: "d (earlier)"}, recorder=recorder)
        return results, asyncio.get_running_loop().time()

    results, elapsed = run(go(), clock="virtual")
    assert results == ["a!", "b (earlier)", "c!", "d (earlier)"]
    assert ran == ["a", "c"] and elapsed == 1.0  # the two left ran side by side
    assert sorted(recorder.seen) == [(0, "a!"), (2, "c!")]  # only what this run answered is recorded


@pytest.mark.parametrize("keep_going", [True, False])
def test_the_deadline_keeps_what_finished_and_fails_the_rest_exactly_on_time(keep_going):
    async def work(index: int, item: float, slot: Slot) -> float:
        await asyncio.sleep(item)
        return item

    async def go():
        loop = asyncio.get_running_loop()
        outcomes = Outcomes([1.0, 1.0, 5.0, 1.0, 1.0, 1.0])
        try:
            results = await run_batch(outcomes.items, work, outcomes, limit=2, keep_going=keep_going,
                                      deadline=loop.time() + 2.5)
        except DeadlineExceeded as error:
            results = error
        return results, outcomes, loop.time(), others()

    results, outcomes, ended, leftovers = run(go(), clock="virtual")
    assert ended == 2.5 and leftovers == []
    # Slot A: 0-1 item 0, 1-2 item 2 (5 s: stopped at 2.5). Slot B: 0-1 item 1, 1-2 item 3, 2-3 item 4 (stopped).
    assert outcomes.counts() == {"ok": 3, "failed": 3, "cancelled": 0, "pending": 0}
    assert [f.item for f in outcomes.failures] == [5.0, 1.0, 1.0]
    assert all(isinstance(f.error, DeadlineExceeded) for f in outcomes.failures)
    assert [f.attempts for f in outcomes.failures] == [1, 1, 0]  # two had started, one never did
    if keep_going:
        assert results[:2] == [1.0, 1.0] and isinstance(results[2], Failure)
    else:
        assert isinstance(results, DeadlineExceeded) and "3 ok, 3 failed" in str(results)


@pytest.mark.parametrize("limit", [2, None])
def test_cancelling_the_caller_cancels_every_item_and_leaves_nothing_pending(limit):
    async def work(index: int, item: int, slot: Slot) -> int:
        await asyncio.sleep(1.0 + index)
        return item

    async def go():
        outcomes = Outcomes(range(6))
        task = asyncio.ensure_future(run_batch(outcomes.items, work, outcomes, limit=limit, keep_going=False))
        await asyncio.sleep(1.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return outcomes, others()

    outcomes, leftovers = run(go(), clock="virtual")
    assert leftovers == [] and outcomes.pending == []
    assert outcomes.counts() == {"ok": 1, "failed": 0, "cancelled": 5, "pending": 0}  # only item 0 ended by 1.5 s


def test_a_lent_slot_lets_the_next_item_start_and_the_lender_comes_back_first():
    events = []

    async def work(index: int, item: str, slot: Slot) -> str:
        loop = asyncio.get_running_loop()
        events.append((loop.time(), "start", item))
        await asyncio.sleep(1.0)
        if item == "a":
            events.append((loop.time(), "lend", item))
            async with slot.lent():  # a 2.5 s backoff without holding the slot
                await asyncio.sleep(2.5)
            events.append((loop.time(), "back", item))
            await asyncio.sleep(1.0)
        events.append((loop.time(), "end", item))
        return item

    async def go():
        outcomes = Outcomes(["a", "b", "c", "d", "e"])
        results = await run_batch(outcomes.items, work, outcomes, limit=1, keep_going=False)
        return results, others()

    results, leftovers = run(go(), clock="virtual")
    assert results == ["a", "b", "c", "d", "e"] and leftovers == []
    starts = [(t, item) for t, kind, item in events if kind in ("start", "back")]
    # a runs 0-1, lends its slot: b runs 1-2, c 2-3, d 3-4; a is back at 3.5 but waits for the
    # slot d holds, and takes it at 4 ahead of e (which has not started yet).
    assert starts == [(0.0, "a"), (1.0, "b"), (2.0, "c"), (3.0, "d"), (4.0, "a"), (5.0, "e")]
    in_flight = 0
    change = {"end": -1, "lend": -1, "start": 1, "back": 1}
    for _, kind, _ in sorted(events, key=lambda e: (e[0], change[e[1]])):  # at one instant, ends first
        in_flight += change[kind]
        assert in_flight <= 1


def test_an_empty_batch_returns_at_once():
    async def work(index: int, item: int, slot: Slot) -> int:
        raise AssertionError("never called")

    async def go():
        outcomes = Outcomes([])
        return await run_batch([], work, outcomes, limit=3, keep_going=False)

    assert run(go(), clock="virtual") == []
