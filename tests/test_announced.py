"""AnnouncedLimits: client settings sized from a provider's x-ratelimit-* headers."""

from __future__ import annotations

import pytest

from pocket_parallel import SimulatedLLM, run
from pocket_parallel.limits.announced import AnnouncedLimits
from tests.support import AskNode, prompts


def test_headers_are_read_and_little_s_law_sizes_the_concurrency():
    limits = AnnouncedLimits.from_headers({
        "X-RateLimit-Limit-Requests": "60", "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "1s", "x-ratelimit-limit-tokens": "40000",
        "x-ratelimit-remaining-tokens": "39980", "x-ratelimit-reset-tokens": "30ms",
    })
    assert limits == AnnouncedLimits(60, 40_000, 59, 39_980, 1.0, 0.03)
    assert limits.concurrency_for(0.5) == 1 and limits.concurrency_for(5.0) == 5
    assert limits.node_settings(2.0) == {"max_concurrency": 2, "max_per_minute": 60, "max_tokens_per_minute": 40_000}
    assert AnnouncedLimits.from_headers({}) == AnnouncedLimits(None, None)


def test_a_node_sized_from_the_announced_limits_gets_no_429s_and_a_semaphore_alone_does():
    server = SimulatedLLM(latency=2.0, requests_per_minute=30, tokens_per_minute=1_500)
    limits = AnnouncedLimits.from_headers(server.quota.headers(0.0))
    items = prompts(60)
    paced = AskNode(server, tokens_for=server.tokens_for, collect_failures=True, **limits.node_settings(2.0))
    run(paced.run_async({"prompts": items}), clock="virtual")
    assert server.stats.rate_limited == 0 and server.stats.ok == 60
    server.reset()
    alone = AskNode(server, max_concurrency=5, collect_failures=True)  # the chapter's answer: a semaphore
    run(alone.run_async({"prompts": items}), clock="virtual")
    assert server.stats.rate_limited > 0 and len(alone.outcomes.failures) > 0


@pytest.mark.parametrize("headers, name", [({"x-ratelimit-limit-requests": "many"}, "x-ratelimit-limit-requests"),
                                           ({"x-ratelimit-reset-tokens": "soon"}, "duration")])
def test_bad_headers_are_named(headers, name):
    with pytest.raises(ValueError, match=name):
        AnnouncedLimits.from_headers(headers)
    with pytest.raises(ValueError, match="latency"):
        AnnouncedLimits(60, None).concurrency_for(0)
