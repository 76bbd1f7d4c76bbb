"""The request guard, attacked as a web page in the learner's browser would attack it, over real loopback sockets."""

from __future__ import annotations

import logging
import time

import httpx
import pytest

from pocket_parallel.cluster.server_counts import reset_stats
from pocket_parallel.server import LocalServer
from pocket_parallel.server.guard import RequestGuard, check_origin
from tests.http_support import NO_LEAKED_RESOURCES, chat_body

pytestmark = NO_LEAKED_RESOURCES


@pytest.fixture(scope="module")
def server():
    with LocalServer(latency=0.01, allow_origins=["http://192.168.1.5:8888"]) as running:
        yield running


@pytest.mark.parametrize("origin", ["https://evil.example", "http://localhost.evil.example:8000", "null",
                                    "http://192.168.1.5:9999", "file://", "http://127.0.0.1.nip.io"])
@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/chat/completions"), ("GET", "/stats"),
                                              ("POST", "/stats/reset"), ("GET", "/v1/models"), ("GET", "/nowhere")])
def test_a_foreign_page_is_refused_on_every_route(http, origin, method, path):
    response = http.request(method, path, json=chat_body() if method == "POST" else None, headers={"Origin": origin})
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "origin_not_allowed" and "--allow-origin" in error["message"]
    assert "access-control-allow-origin" not in response.headers
    assert http.get("/stats").json()["requests"] == 0


@pytest.mark.parametrize("origin", ["http://localhost:8888", "https://127.0.0.1", "http://[::1]:3000",
                                    "http://0.0.0.0:8866", "http://192.168.1.5:8888"])
def test_this_machines_pages_and_allowed_origins_are_served_and_may_read_the_answer(http, origin):
    response = http.post("/v1/chat/completions", json=chat_body(), headers={"Origin": origin})
    assert response.status_code == 200 and response.headers["access-control-allow-origin"] == origin
    preflight = http.options("/v1/chat/completions", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "content-type, authorization"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "192.0.2.1", "localhost.evil.example"])
def test_a_rebound_host_name_cannot_read_the_counters(http, host):
    response = http.get("/stats", headers={"Host": host})
    assert response.status_code == 403 and response.json()["error"]["code"] == "host_not_allowed"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1:{port}", "[::1]:{port}", "127.0.0.2", "LOCALHOST:{port}"])
def test_loopback_host_names_are_served(http, server, host):
    assert http.get("/stats", headers={"Host": host.format(port=server.port)}).status_code == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          None])
def test_a_body_a_page_may_send_without_asking_is_refused(http, content_type):
    headers = {} if content_type is None else {"Content-Type": content_type}
    import json

    chat = http.post("/v1/chat/completions", content=json.dumps(chat_body()).encode(), headers=headers)
    assert chat.status_code == 415 and chat.json()["error"]["code"] == "unsupported_media_type"
    reset = http.post("/stats/reset", content=b"a=1", headers=headers)
    assert reset.status_code == 415
    stats = http.get("/stats").json()
    assert (stats["requests"], stats["bad_requests"]) == (0, 0)


def test_a_post_without_a_body_needs_no_content_type(http):
    http.post("/v1/chat/completions", json=chat_body())
    response = http.post("/stats/reset")
    assert response.status_code == 200 and response.json()["requests"] == 0


def test_resetting_the_counters_never_refills_a_limit():
    # The attack: with --rpm 10, five resets used to let 60 requests through.
    with LocalServer(latency=0.01, requests_per_minute=10) as server, httpx.Client(base_url=server.url) as http:
        start = time.monotonic()
        admitted = 0
        for round_ in range(6):
            for i in range(12):
                admitted += http.post("/v1/chat/completions", json=chat_body(f"Summarize: {round_} {i}")).status_code == 200
            assert http.post("/stats/reset").status_code == 200
        elapsed = time.monotonic() - start
    assert 10 <= admitted <= 10 + elapsed / 6  # the bucket of 10 and its refill of one every 6 s, nothing more


def test_refilling_takes_the_admin_token_and_the_python_api_still_can(server, http):
    with LocalServer(latency=0.01, requests_per_minute=1) as limited, httpx.Client(base_url=limited.url) as client:
        def ask(i):
            return client.post("/v1/chat/completions", json=chat_body(f"Summarize: {i}")).status_code

        assert [ask(1), ask(2)] == [200, 429]
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": limited.admin_token},
                        {"Authorization": f"Bearer {server.admin_token}"}):
            refused = client.post("/admin/reset", headers=headers)
            assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_admin_token"
            assert limited.admin_token not in refused.text
        assert ask(3) == 429
        refilled = client.post("/admin/reset", headers={"Authorization": f"Bearer {limited.admin_token}"})
        assert refilled.status_code == 200 and refilled.json()["requests"] == 0
        assert [ask(4), ask(5)] == [200, 429]
        limited.reset()  # the program that owns the server needs no token
        assert ask(6) == 200
    assert server.admin_token != limited.admin_token and len(limited.admin_token) >= 32


def test_the_admin_token_never_shows_in_a_repr(server):
    guard = RequestGuard("127.0.0.1", admin_token="s3cret-token")
    assert "s3cret-token" not in repr(guard) and "s3cret-token" not in str(guard)
    assert server.admin_token not in repr(server)


def test_the_clusters_counter_reset_posts_no_body_and_refills_nothing():
    with LocalServer(latency=0.01, requests_per_minute=1) as server, httpx.Client(base_url=server.url) as http:
        assert http.post("/v1/chat/completions", json=chat_body()).status_code == 200
        reset_stats(server.url)
        assert server.stats().requests == 0
        assert http.post("/v1/chat/completions", json=chat_body("Summarize: other")).status_code == 429


def test_on_every_interface_the_host_is_not_checked_and_a_warning_says_so(caplog):
    with caplog.at_level(logging.WARNING, logger="pocket_parallel.server"):
        with LocalServer(latency=0.01, host="0.0.0.0") as server:
            response = httpx.get(f"http://127.0.0.1:{server.port}/stats", headers={"Host": "my-laptop.lan:8000"})
    assert response.status_code == 200
    assert any("every network interface" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("bad", ["example.com", "http://", "http://host/path", "http://host:port", "ftp", "", 5,
                                 "http://user:pw@host"])
def test_allowed_origins_are_checked(bad):
    with pytest.raises(ValueError, match="allow_origin must be an origin"):
        check_origin(bad)
    with pytest.raises(ValueError, match="allow_origin"):
        LocalServer(allow_origins=[bad])
    with pytest.raises(TypeError, match="allow_origins must be a list"):
        LocalServer(allow_origins="http://host:1")
    assert check_origin("HTTP://Host:8888/") == "http://host:8888" and check_origin("*") == "*"
