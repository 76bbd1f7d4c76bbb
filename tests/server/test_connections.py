"""Connection deadlines, attacked over real sockets: slowloris, a dripping body, idle sockets, and no file descriptors left."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time

import httpx
import pytest

from pocket_parallel.server import LocalServer, connections
from tests.http_support import NO_LEAKED_RESOURCES, chat_body

pytestmark = NO_LEAKED_RESOURCES

DEADLINE = 1.5  # seconds, instead of 10, so that the tests are quick (but not so short that a busy machine hits it)
PATIENCE = 30.0  # how long a test waits for the server to close a connection before it fails


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setattr(connections, "REQUEST_DEADLINE", DEADLINE)
    monkeypatch.setattr(connections, "IDLE_TIMEOUT", 4 * DEADLINE)
    with LocalServer(latency=0.01) as running:
        yield running


def connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.settimeout(PATIENCE)
    return sock


def closed_by_server(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (raises socket.timeout if it never does)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def request(body: bytes = b"", path: str = "/v1/chat/completions") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


JSON = __import__("json").dumps(chat_body()).encode()


@pytest.mark.parametrize("sent", [b"", b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127", request(JSON)[:-10]],
                         ids=["nothing", "half the headers", "part of the body"])
def test_a_connection_without_a_whole_request_is_closed_at_the_deadline(server, sent):
    with connect(server) as sock:
        sock.sendall(sent)
        assert b"200 OK" not in closed_by_server(sock)


def test_a_slowloris_dripping_one_byte_at_a_time_is_closed_too(server):
    with connect(server) as sock:
        whole = request(JSON)
        start = time.monotonic()
        with pytest.raises(OSError):  # reset or broken pipe, once the server has closed it
            for byte in whole:
                sock.sendall(bytes([byte]))
                time.sleep(0.05)  # the whole request would take several deadlines
                if time.monotonic() - start > PATIENCE:
                    pytest.fail("the server kept a dripping connection open")


def test_a_keep_alive_connection_serves_request_after_request_and_is_closed_once_idle(server):
    with connect(server) as sock:
        for _ in range(2):
            sock.sendall(request(JSON))
            time.sleep(2 * DEADLINE)  # answered, then idle past the request deadline (not the idle timeout): open
        sock.sendall(request(b"", "/stats/reset"))
        received = closed_by_server(sock)  # idle beyond IDLE_TIMEOUT: closed
    assert received.count(b"HTTP/1.1 200 OK") == 3


def test_a_stalled_request_is_not_cut_by_the_deadline(monkeypatch):
    from pocket_parallel.service.model import ServiceModel

    monkeypatch.setattr(connections, "REQUEST_DEADLINE", DEADLINE)
    model = ServiceModel(latency=0.01, stall_rate=0.5)
    prompt = next(p for p in (f"Summarize: {i}" for i in range(100)) if model.stalls(p))
    with LocalServer(latency=0.01, stall_rate=0.5) as server:
        with pytest.raises(httpx.ReadTimeout):  # the client gives up, not the server
            httpx.post(server.base_url + "/chat/completions", json=chat_body(prompt), timeout=4 * DEADLINE)


def test_out_of_file_descriptors_one_line_is_logged_and_open_connections_are_served():
    process = subprocess.Popen([sys.executable, "-m", "tests.server_child", "64", "2", "--port", "0", "--latency", "0.01"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    idle: list[socket.socket] = []
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+", process.stdout.readline()).group()
        port = int(url.rsplit(":", 1)[1])
        with httpx.Client(base_url=url, timeout=PATIENCE) as kept:
            assert kept.post("/v1/chat/completions", json=chat_body()).status_code == 200  # opens its connection
            for _ in range(100):  # more idle connections than the server has file descriptors
                idle.append(socket.create_connection(("127.0.0.1", port)))
            for i in range(3):  # the connection it already had is served meanwhile
                assert kept.post("/v1/chat/completions", json=chat_body(f"Summarize: {i}")).status_code == 200
        with httpx.Client(base_url=url, timeout=PATIENCE) as newcomer:  # served once the deadline frees descriptors
            assert newcomer.post("/v1/chat/completions", json=chat_body()).status_code == 200
    finally:
        for sock in idle:
            sock.close()
        process.terminate()
        out, err = process.communicate(timeout=PATIENCE)
    assert err.count("\n") == 1 and err.startswith("cannot accept new connections: Too many open files"), err
    assert "the limit is 64 open files" in err
