"""What OpenAILLM and AnthropicLLM share (backends/official_client.py), checked on both over loopback HTTP."""

from __future__ import annotations

import asyncio
import gc

import pytest

from pocket_parallel import AnthropicLLM, OpenAILLM, call_llm, call_llm_async, run, set_default_llm
from pocket_parallel.server import LocalServer
from tests.http_support import NO_LEAKED_RESOURCES, nothing_left_behind

pytestmark = NO_LEAKED_RESOURCES
SECRET = "sk-test-do-not-show-0123456789"


@pytest.fixture(params=["openai", "anthropic"])
def backend(request):
    """``(make, answered)``: a backend on a running server of its API, and how many calls that server answered."""
    if request.param == "openai":
        with LocalServer(latency=0.01, seed=3) as server:
            yield (lambda **settings: OpenAILLM(server.base_url, **settings)), (lambda: server.stats().ok)
    else:
        with LocalServer(latency=0.01, seed=3) as server:
            yield (lambda **settings: AnthropicLLM(server.url, **settings)), (lambda: server.stats().ok)


def test_one_client_per_loop_across_runs_and_asyncio_run_with_nothing_left_open(backend):
    make, answered = backend
    with nothing_left_behind():
        llm = make()
        first = run(llm("Summarize: one"))
        second = run(llm("Summarize: one"))  # a fresh loop: a client bound to the first would fail
        third = asyncio.run(llm("Summarize: one"))
        assert first == second == third and llm._clients == {}
        assert llm.call("Summarize: one") == first  # the blocking twin
        llm.close()
        del llm
        gc.collect()
    assert answered() == 4


def test_aclose_closes_the_running_loops_client(backend):
    make, _ = backend
    llm = make(transport="default")

    async def use_and_close():
        await llm("Summarize: a")
        assert len(llm._clients) == 1
        await llm.aclose()
        return len(llm._clients)

    assert run(use_and_close()) == 0
    assert [(record.attempt, record.outcome) for record in llm.trace] == [(1, "ok")] and llm.stats.in_flight == 0


def test_the_chapters_call_llm_async_goes_over_http(backend):
    make, answered = backend
    previous = set_default_llm(make())
    try:
        answer = run(call_llm_async("Translate to Spanish: Hello"))
        assert "Hello" in answer and call_llm("Translate to Spanish: Hello") == answer
    finally:
        set_default_llm(previous).close()
    assert answered() == 2


def test_the_key_is_never_shown_and_the_virtual_clock_is_refused(backend):
    make, _ = backend
    llm = make(api_key=SECRET, max_retries=0)
    assert SECRET not in repr(llm) and SECRET not in str(llm) and "api_key set" in repr(llm)
    with pytest.raises(RuntimeError, match=f"{type(llm).__name__} talks to a real server"):
        run(llm("Summarize: x"), clock="virtual")
