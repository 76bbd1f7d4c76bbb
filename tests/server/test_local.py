"""LocalServer starts on an ephemeral loopback port, in a thread or on the running loop, and leaves nothing behind."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from pocket_parallel import run
from pocket_parallel.server import LocalServer
from pocket_parallel.service.model import ServiceModel
from tests.http_support import NO_LEAKED_RESOURCES, chat_body, nothing_left_behind

pytestmark = NO_LEAKED_RESOURCES


def _stalling_prompt(seed: int = 0) -> str:
    model = ServiceModel(latency=0.02, seed=seed, stall_rate=0.5)
    return next(p for p in (f"Summarize: {i}" for i in range(100)) if model.stalls(p))


def test_in_a_thread_it_listens_on_loopback_and_leaves_no_thread_or_socket():
    with nothing_left_behind():
        server = LocalServer(latency=0.02)
        with server:
            assert server.running and server.url == f"http://127.0.0.1:{server.port}"
            assert server.base_url == server.url + "/v1" and server.port > 0
            assert httpx.post(server.base_url + "/chat/completions", json=chat_body()).status_code == 200
            assert "running at http://127.0.0.1:" in repr(server)
        assert not server.running and "stopped" in repr(server)
        with pytest.raises(RuntimeError, match="not running"):
            server.url
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{server.settings.port or 1}/stats", timeout=1)


def test_on_the_running_loop_it_leaves_no_task():
    async def serve_once():
        before = asyncio.all_tasks()
        async with LocalServer(latency=0.02) as server:
            async with httpx.AsyncClient() as client:
                response = await client.post(server.base_url + "/chat/completions", json=chat_body())
            stats = server.stats()
        await asyncio.sleep(0)
        return response.status_code, stats.ok, asyncio.all_tasks() - before

    with nothing_left_behind():
        status, ok, leftover = run(serve_once())
    assert (status, ok, leftover) == (200, 1, set())


def test_a_stall_ends_when_its_client_gives_up():
    prompt = _stalling_prompt()
    with LocalServer(latency=0.02, stall_rate=0.5) as server:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(server.base_url + "/chat/completions", json=chat_body(prompt), timeout=0.3)
        for _ in range(100):  # the server notices the disconnect on its next loop turns
            stats = server.stats()
            if stats.in_flight == 0:
                break
            run(asyncio.sleep(0.02))
        assert (stats.stalled, stats.cancelled, stats.in_flight) == (1, 1, 0)


def test_stopping_ends_stalled_requests_and_leaves_nothing_behind():
    prompt = _stalling_prompt()

    async def stall_then_stop():
        server = await LocalServer(latency=0.02, stall_rate=0.5).astart()
        async with httpx.AsyncClient(timeout=30) as client:
            call = asyncio.ensure_future(client.post(server.base_url + "/chat/completions", json=chat_body(prompt)))
            while server.stats().in_flight == 0:
                await asyncio.sleep(0.01)
            await server.astop()  # cancels the stalled request: the client sees the connection go
            with pytest.raises(httpx.HTTPError):
                await call
        return asyncio.all_tasks() - {asyncio.current_task()}

    with nothing_left_behind():
        assert run(stall_then_stop()) == set()


def test_misuse_is_refused_with_a_clear_message():
    server = LocalServer(latency=0.02)
    with pytest.raises(RuntimeError, match="stop"):
        server.stop()
    with server:
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
        with pytest.raises(RuntimeError, match="astop"):
            run(server.astop())
    with pytest.raises(RuntimeError, match="not running"):
        server.stats()
    with pytest.raises(ValueError, match="failure_rate"):
        LocalServer(failure_rate=1.5)


def test_a_port_in_use_is_reported_by_start():
    with LocalServer(latency=0.02) as first:
        with pytest.raises(OSError):
            LocalServer(latency=0.02, port=first.port).start()


def test_stats_and_reset_work_from_another_thread_and_reset_refuses_while_busy():
    prompt = _stalling_prompt()
    with LocalServer(latency=0.02, stall_rate=0.5) as server:
        httpx.post(server.base_url + "/chat/completions", json=chat_body("Summarize: fine"))
        assert server.stats().requests == 1

        async def stall_and_reset():
            async with httpx.AsyncClient(timeout=30) as client:
                call = asyncio.ensure_future(client.post(server.base_url + "/chat/completions", json=chat_body(prompt)))
                while server.stats().in_flight == 0:
                    await asyncio.sleep(0.01)
                refused = await client.post(server.url + "/stats/reset")
                call.cancel()
                await asyncio.gather(call, return_exceptions=True)
                return refused

        refused = run(stall_and_reset())
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "requests_in_flight"
        for _ in range(100):
            if server.stats().in_flight == 0:
                break
            run(asyncio.sleep(0.02))
        server.reset()
        assert server.stats().requests == 0
