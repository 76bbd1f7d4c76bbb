"""RateLimiter and busiest_window: client-side pacing that never exceeds a server's window."""


from __future__ import annotations

import asyncio
import math

import pytest
from aiolimiter import AsyncLimiter

from pocket_parallel import RateLimiter, SimulatedLLM, run
from pocket_parallel.limits.ratelimit import busiest_window
from tests.support import (
    AskNode,
    micro,
    most_in_any_window,
    prompts,
    served_starts,
)


@pytest.mark.parametrize("algorithm", ["sliding_window", "token_bucket"])
def test_plain_aiolimiter_bursts_past_a_sliding_window_and_ours_does_not(virtual, algorithm):
    # AsyncLimiter(30, 60) lets 30 through at t = 0 and then one every 2 s: 59 in the first
    # minute. A sliding-window server counts every 60 s window and refuses the excess; a
    # token-bucket server (the providers' documented model) is the same bucket, and admits all.
    def run_with(make_gate):
        llm = SimulatedLLM(latency=1.0, requests_per_minute=30, algorithm=algorithm)

        class Gated(AskNode):
            async def exec_async(self, prompt):
                async with self.gate:
                    return await self.llm(prompt)

        async def go():
            node = Gated(llm, collect_failures=True)
            node.gate = make_gate()
            await node.run_async({"prompts": prompts(60)})

        virtual(go())
        return llm

    bursty = run_with(lambda: AsyncLimiter(30, 60))
    attempted = sorted(micro(r.start) for r in bursty.trace)
    if algorithm == "sliding_window":
        assert most_in_any_window(attempted) == 59
        assert bursty.stats.rate_limited == 29 and bursty.stats.ok == 31
    else:
        assert bursty.stats.rate_limited == 0 and bursty.stats.ok == 60
    paced = run_with(lambda: RateLimiter(30))
    assert paced.stats.rate_limited == 0 and paced.stats.ok == 60
    assert most_in_any_window(served_starts(paced)) == 30


def test_busiest_window_counts_every_window_exactly():
    # [t, t + 60) holds t but not t + 60: the busiest is [59.999999, 119.999999), with 3.
    assert busiest_window([0.0, 59.999999, 60.0, 60.0, 119.999999]) == (59.999999, 3)
    assert busiest_window([0.0, 59.999999, 60.0, 60.0, 119.999998]) == (59.999999, 4)
    assert busiest_window([], 60.0) == (0.0, 0)
    assert busiest_window([5.0, 1.0, 3.0], window=2.0).requests == 1
    assert busiest_window([5.0, 1.0, 3.0], window=2.000001).requests == 2


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: RateLimiter(0), "requests"),
        (lambda: RateLimiter(1.5), "requests"),
        (lambda: RateLimiter(10, per=0), "per"),
        (lambda: RateLimiter(10, per=math.inf), "per"),
        (lambda: busiest_window([1.0], window=0), "window"),
        (lambda: busiest_window([math.nan]), "trace entry"),
    ],
)
def test_bad_limiter_arguments_name_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_busiest_window_can_count_refused_requests_too():
    from pocket_parallel.limits.ratelimit import busiest_window
    from pocket_parallel.trace import CallRecord

    trace = [CallRecord(f"p{i}", 1, float(i), float(i), "rate_limited" if i % 2 else "ok") for i in range(10)]
    assert busiest_window(trace, 60).requests == 5
    assert busiest_window(trace, 60, include_refused=True).requests == 10
    with pytest.raises(TypeError, match="include_refused"):
        busiest_window(trace, 60, include_refused="yes")


def test_rate_limiter_does_not_spin_on_float_dust_in_virtual_time():
    # aiolimiter's float drain once left ~1e-15 in the bucket and re-scheduled its wake-up
    # for "now" forever on the virtual clock; these two requests were enough to hang.
    import threading

    from pocket_parallel import RateLimiter

    async def one(limiter, start):
        await asyncio.sleep(start)
        await limiter.acquire()
        return asyncio.get_running_loop().time()

    async def main():
        limiter = RateLimiter(120)  # one request per 0.5 s
        return await asyncio.gather(*(one(limiter, s) for s in (0.084733, 0.401032)))

    finished = []
    worker = threading.Thread(target=lambda: finished.append(run(main(), clock="virtual")), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert finished, "RateLimiter spun forever at one virtual instant"
    first, second = finished[0]
    assert second - first == pytest.approx(0.5, abs=1e-6)
