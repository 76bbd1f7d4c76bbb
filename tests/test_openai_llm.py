"""OpenAILLM over real loopback HTTP: the official client, one per loop, limits honoured, nothing leaked, no key shown."""

from __future__ import annotations

import asyncio

import openai
import pytest
from pocketflow import AsyncFlow

from pocket_parallel import Backoff, OpenAILLM, SimulatedLLM, run
from pocket_parallel.backends.openai_llm import Endpoint, environment_endpoint
from pocket_parallel.experiment import AskEach
from pocket_parallel.limits.retry import retry_after_of
from pocket_parallel.server import LocalServer
from pocket_parallel.service.model import ServiceModel
from tests.http_support import NO_LEAKED_RESOURCES
from tests.support import prompts

pytestmark = NO_LEAKED_RESOURCES


@pytest.fixture(scope="module")
def server():
    with LocalServer(latency=0.03, jitter=0.4, seed=11) as running:
        yield running


def test_answers_and_latencies_match_simulated_llm_over_http(server):
    server.reset()
    llm, local = OpenAILLM(server.base_url), SimulatedLLM(latency=0.03, jitter=0.4, seed=11)
    asked = [f"Translate to Italian: sentence {i}" for i in range(6)]

    async def ask_all():
        return await asyncio.gather(*(llm(p) for p in asked))

    assert run(ask_all()) == [local.answer_for(p) for p in asked]
    for record in llm.trace:  # a round trip takes at least the seeded latency
        assert record.outcome == "ok" and record.duration >= local.latency_for(record.prompt)
    assert llm.stats.ok == server.stats().ok == 6
    assert llm.last_usage["total_tokens"] == local.tokens_for(llm.trace[-1].prompt)


def test_a_bounded_node_never_puts_more_than_c_in_flight_at_the_server():
    with LocalServer(latency=0.05) as server:
        llm = OpenAILLM(server.base_url)
        shared = {"prompts": prompts(24)}
        run(AsyncFlow(start=AskEach(llm, max_concurrency=4)).run_async(shared))
        stats = server.stats()
    assert len(shared["answers"]) == 24 and stats.ok == 24
    assert stats.peak_in_flight == 4  # never more, and the limit was reached


def test_the_client_and_our_backoff_both_honour_retry_after():
    # One slot, 0.3 s calls: the second of two calls at once is refused with retry-after-ms ~300.
    with LocalServer(latency=0.3, max_concurrent=1) as server:

        async def two_at_once(llm):
            loop = asyncio.get_running_loop()
            start = loop.time()

            async def timed(prompt):
                await llm(prompt)
                return loop.time() - start

            return await asyncio.gather(timed("Summarize: first"), timed("Summarize: second"))

        # The official client: it waits the server's retry-after-ms, then succeeds.
        sdk = OpenAILLM(server.base_url, max_retries=2)
        first, second = run(two_at_once(sdk))
        stats = server.stats()
        assert (stats.ok, stats.rate_limited) == (2, 1)
        assert second >= first + 0.25  # it waited for the slot the retry-after named, not 0.5 s of its own guess

        # Ours: the client's retries off, a node with Backoff reads the same header.
        server.reset()
        ours = OpenAILLM(server.base_url, max_retries=0)
        node = AskEach(ours, max_concurrency=None, max_retries=3, backoff=Backoff(base=5.0, cap=5.0, spread=0.0))
        shared = {"prompts": ["Summarize: first", "Summarize: second"]}
        loop_time = run(_timed_flow(node, shared))
        stats = server.stats()
    assert (stats.ok, stats.rate_limited) == (2, 1)
    assert 0.55 <= loop_time < 3.0  # 0.3 s, the retry-after wait, 0.3 s: never Backoff's own 5 s guess


async def _timed_flow(node, shared):
    loop = asyncio.get_running_loop()
    start = loop.time()
    await AsyncFlow(start=node).run_async(shared)
    return loop.time() - start


def test_retry_after_of_reads_the_clients_rate_limit_error():
    with LocalServer(latency=0.4, max_concurrent=1) as server:
        llm = OpenAILLM(server.base_url, max_retries=0)

        async def refused():
            results = await asyncio.gather(llm("Summarize: a"), llm("Summarize: b"), return_exceptions=True)
            return next(r for r in results if isinstance(r, Exception))

        error = run(refused())
    assert isinstance(error, openai.RateLimitError)
    milliseconds = int(error.response.headers["retry-after-ms"])
    assert retry_after_of(error) == milliseconds / 1000
    assert Backoff(spread=0.0).delay(1, error) == milliseconds / 1000
    assert llm.stats.rate_limited == 1 and llm.trace[0].outcome == "rate_limited"


def test_a_stalled_call_ends_with_the_clients_timeout_and_frees_the_server():
    model = ServiceModel(latency=0.02, stall_rate=0.5)
    prompt = next(p for p in (f"Summarize: {i}" for i in range(100)) if model.stalls(p))
    with LocalServer(latency=0.02, stall_rate=0.5) as server:
        llm = OpenAILLM(server.base_url, timeout=0.3, max_retries=0)
        with pytest.raises(openai.APITimeoutError):
            run(llm(prompt))
        for _ in range(100):
            stats = server.stats()
            if stats.in_flight == 0:
                break
            run(asyncio.sleep(0.02))
    assert (stats.stalled, stats.cancelled, stats.in_flight) == (1, 1, 0)
    assert llm.stats.transient_errors == 1


def test_max_tokens_is_sent_cuts_the_answer_and_is_what_an_openai_profile_charges():
    # The openai profile charges every message plus max_tokens at admission, and 4,096 without one: at
    # 60,000 tokens a minute, enforced per second (a bucket of 1,000), two calls at once fit only with one.
    settings = {"profile": "openai", "tokens_per_minute": 60_000, "ttft": 0.01, "tpot": 0.00001, "seed": 2}
    with LocalServer(**settings) as server:
        capped = OpenAILLM(server.base_url, max_tokens=3, max_retries=0)

        async def two_at_once(llm):
            return await asyncio.gather(llm("Summarize: a"), llm("Summarize: b"), return_exceptions=True)

        answers = run(two_at_once(capped))
        capped_stats = server.stats()
        server.reset()
        uncapped = run(two_at_once(OpenAILLM(server.base_url, max_retries=0)))
        uncapped_stats = server.stats()
    assert [answer[:10] for answer in answers] == ["Summary (1"] * 2 and all(len(answer) == 12 for answer in answers)
    assert capped.last_usage["completion_tokens"] == 3 and capped_stats.completion_tokens == 6
    assert (capped_stats.ok, capped_stats.rate_limited) == (2, 0)
    assert (uncapped_stats.ok, uncapped_stats.rate_limited) == (1, 1)
    assert sum(isinstance(result, openai.RateLimitError) for result in uncapped) == 1
    assert repr(capped) == (f"OpenAILLM(base_url={capped.base_url!r}, model='pocket-parallel-sim', max_tokens=3, "
                            "max_retries=0; api_key not set)")


def test_it_refuses_bad_settings():
    with pytest.raises(ValueError, match="base_url"):
        OpenAILLM("127.0.0.1:8000")
    with pytest.raises(ValueError, match="timeout"):
        OpenAILLM("http://x/v1", timeout=0)
    with pytest.raises(ValueError, match="max_retries"):
        OpenAILLM("http://x/v1", max_retries=-1)
    with pytest.raises(ValueError, match="transport"):
        OpenAILLM("http://x/v1", transport="carrier pigeon")
    with pytest.raises(ValueError, match="model"):
        OpenAILLM("http://x/v1", model="")
    for bad in (0, -1, 1_000_001, 2.0, True, "400"):
        with pytest.raises(ValueError, match=r"max_tokens must be an integer in \[1, 1000000\]"):
            OpenAILLM("http://x/v1", max_tokens=bad)


def test_the_key_is_never_shown():
    secret = "sk-test-do-not-show-0123456789"
    llm = OpenAILLM("https://api.example.invalid/v1", model="some-model", api_key=secret, max_retries=0)
    assert secret not in repr(llm) and secret not in str(llm) and "api_key set" in repr(llm)
    endpoint = environment_endpoint({"OPENAI_BASE_URL": "https://api.example.invalid/v1",
                                     "OPENAI_API_KEY": secret, "POCKET_PARALLEL_MODEL": "some-model"})
    assert endpoint == Endpoint("https://api.example.invalid/v1", "some-model", secret)
    assert secret not in repr(endpoint) and "api_key set" in repr(endpoint)


def test_the_environment_chooses_the_endpoint_or_none(monkeypatch):
    assert environment_endpoint({}) is None
    assert environment_endpoint({"OPENAI_API_KEY": "k"}) is None  # a key alone never sends calls anywhere
    with pytest.raises(ValueError, match="POCKET_PARALLEL_MODEL"):
        environment_endpoint({"OPENAI_BASE_URL": "http://127.0.0.1:1/v1"})
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert OpenAILLM.from_environment() is None
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    monkeypatch.setenv("POCKET_PARALLEL_MODEL", "local-model")
    llm = OpenAILLM.from_environment(max_retries=0)
    assert (llm.base_url, llm.model, llm.max_retries) == ("http://127.0.0.1:1/v1", "local-model", 0)
