"""Worker pools wired to one ledger through a fake message delay: the cap holds, capacity moves, nothing leaks.

Everything runs in one event loop on the virtual clock; messages between pools and the
ledger take MESSAGE_DELAY each way, as the batched streams of a real cluster do.
"""

from __future__ import annotations

import asyncio

import pytest

from pocket_parallel import SimulatedLLM, run
from pocket_parallel.cluster.lease_pool import LINGER, LeasePool
from pocket_parallel.cluster.ledger import LeaseLedger
from pocket_parallel.experiment import AskEach

MESSAGE_DELAY = 0.003
LEASE_TIMEOUT = 10.0


class FakeScheduler:
    """A ledger on the same loop, reached after MESSAGE_DELAY; renews holders every second."""

    def __init__(self, cap, per_minute=None):
        self.loop = asyncio.get_running_loop()
        self.ledger = LeaseLedger(cap, per_minute, now=self.loop.time())
        self.pools: dict[str, LeasePool] = {}
        self.silent: set[str] = set()  # workers whose messages are lost (cut off)
        self.waking = False
        self.renewer = asyncio.ensure_future(self.renew_forever())

    def pool(self, worker, *, leases=True, tokens=False):
        def send(message):
            if worker not in self.silent:
                self.loop.call_later(MESSAGE_DELAY, self.receive, worker, dict(message))

        pool = self.pools[worker] = LeasePool("run", send, leases=leases, tokens=tokens, lease_timeout=LEASE_TIMEOUT)
        return pool

    def receive(self, worker, message):
        message.pop("name")
        self.deliver(self.ledger.update(worker, self.loop.time(), **message))
        self.wake_for_tokens()

    def wake_for_tokens(self):
        """As the plugin does: hand out tokens the moment the bucket has one, as long as someone waits."""
        when = self.ledger.next_token_at(self.loop.time())
        if when is not None and not self.waking:
            self.waking = True

            def wake():
                self.waking = False
                self.deliver(self.ledger.distribute(self.loop.time()))
                self.wake_for_tokens()

            self.loop.call_at(when + 0.001, wake)

    def deliver(self, messages):
        for worker, message in messages:
            if worker not in self.silent:
                self.loop.call_later(MESSAGE_DELAY, self.pools[worker].on_grant, message["leases"], message["tokens"],
                                     message["quota"])

    async def renew_forever(self):
        while True:
            await asyncio.sleep(1.0)
            for worker in self.ledger.holders():
                book = self.ledger.books[worker]
                self.deliver([(worker, {"leases": book.granted, "tokens": book.tokens_granted, "quota": book.quota})])

    async def stop(self):
        self.renewer.cancel()
        await asyncio.gather(self.renewer, return_exceptions=True)


def prompts(worker, n):
    return [f"Summarize: {worker} document {i}" for i in range(n)]


async def ask(pool, llm, items, cap):
    node = AskEach(llm, max_concurrency=cap, shared_gate=pool, collect_failures=True)
    return await node._exec(items)


def test_three_workers_each_wanting_the_whole_cap_never_exceed_it_at_the_server():
    cap = 8

    async def scenario():
        scheduler = FakeScheduler(cap)
        llm = SimulatedLLM(latency=0.05, max_concurrent=cap)
        results = await asyncio.gather(*(ask(scheduler.pool(w), llm, prompts(w, 100), cap) for w in "abc"))
        await asyncio.sleep(2 * LINGER + 4 * MESSAGE_DELAY)
        await scheduler.stop()
        return llm.stats, results, scheduler.ledger, asyncio.get_running_loop().time()

    stats, results, ledger, elapsed = run(scenario(), clock="virtual")
    assert stats.peak_in_flight == cap and stats.rate_limited == 0
    assert all(len(r) == 100 and not any(isinstance(v, Exception) for v in r) for r in results)
    assert ledger.leases_out == 0  # every lease came back once the work was done
    ideal = 300 / cap * 0.05
    assert elapsed < ideal * 1.3  # capacity was kept busy


def test_capacity_moves_to_a_worker_that_starts_late():
    cap = 8

    async def scenario():
        scheduler = FakeScheduler(cap)
        llm = SimulatedLLM(latency=0.1, max_concurrent=cap)
        busy = asyncio.ensure_future(ask(scheduler.pool("a"), llm, prompts("a", 400), cap))
        await asyncio.sleep(1.0)  # a holds every lease by now
        assert scheduler.ledger.books["a"].held == cap
        started = asyncio.get_running_loop().time()
        await ask(scheduler.pool("b"), llm, prompts("b", 20), cap)
        late = asyncio.get_running_loop().time() - started
        await busy
        await scheduler.stop()
        return late, llm.stats

    late, stats = run(scenario(), clock="virtual")
    assert stats.peak_in_flight <= cap and stats.rate_limited == 0
    # b's fair share is half the cap: 20 calls of 0.1 s at 4 in flight take about 0.5 s
    assert late < 0.8, f"the late worker took {late:.2f} s: capacity did not move to it"


def test_a_cut_off_worker_stops_starting_calls_before_its_leases_could_be_given_away():
    cap = 4

    async def scenario():
        scheduler = FakeScheduler(cap)
        pool = scheduler.pool("a")
        llm = SimulatedLLM(latency=1.0)
        started: list[float] = []

        async def call(prompt):
            async with pool:
                started.append(asyncio.get_running_loop().time())
                await llm(prompt)

        work = asyncio.gather(*(call(p) for p in prompts("a", 40)))
        await asyncio.sleep(2.5)
        scheduler.silent.add("a")  # no more renewals reach it, none of its messages arrive
        cut = asyncio.get_running_loop().time()
        await asyncio.sleep(LEASE_TIMEOUT)
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
        await scheduler.stop()
        return started, cut

    started, cut = run(scenario(), clock="virtual")
    last = max(started)
    # It last heard from the scheduler at most a second before the cut; it stops within half the timeout.
    assert last <= cut + LEASE_TIMEOUT / 2, f"a call started {last - cut:.1f} s after the worker was cut off"


def test_the_per_minute_budget_is_shared_without_a_429():
    per_minute = 120

    async def scenario():
        scheduler = FakeScheduler(None, per_minute)
        llm = SimulatedLLM(latency=0.05, requests_per_minute=per_minute)
        await asyncio.gather(*(ask(scheduler.pool(w, leases=False, tokens=True), llm, prompts(w, 100), None)
                               for w in "ab"))
        await scheduler.stop()
        return llm.stats, asyncio.get_running_loop().time()

    stats, elapsed = run(scenario(), clock="virtual")
    assert stats.rate_limited == 0 and stats.calls == 200
    # 120 at once, then 80 more at 2 per second: about 40 s
    assert 35 < elapsed < 50


@pytest.mark.parametrize("cancel_after", [0.01, 0.3])
def test_cancelled_waiters_leave_no_lease_behind(cancel_after):
    async def scenario():
        scheduler = FakeScheduler(2)
        pool = scheduler.pool("a")
        llm = SimulatedLLM(latency=0.2)
        task = asyncio.ensure_future(ask(pool, llm, prompts("a", 20), 10))
        await asyncio.sleep(cancel_after)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(2 * LINGER + 4 * MESSAGE_DELAY)
        await scheduler.stop()
        return pool, scheduler.ledger

    pool, ledger = run(scenario(), clock="virtual")
    assert pool.in_use == 0 and pool.held == 0 and ledger.leases_out == 0
