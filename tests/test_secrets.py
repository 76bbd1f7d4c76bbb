"""No API key in any text the library produces, against servers that misbehave over real sockets."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocket_parallel import OpenAILLM, run
from pocket_parallel.backends.openai_llm import Endpoint
from pocket_parallel.journal import Journal
from pocket_parallel.outcomes import Failure
from pocket_parallel.redaction import MASK, TransportError, clean_error, redact, redact_url, safe_repr, url_secrets
from tests.http_support import NO_LEAKED_RESOURCES
from tests.support import AskNode

pytestmark = NO_LEAKED_RESOURCES

KEY = "sk-proj-Secret0123456789abcdefXYZ"
URL_PASSWORD = "UrlPassw0rd-9876"
FOUND = ("Secret0123456789", "Passw0rd-9876")  # any piece of either secret is a leak


def _answer(kind: str, connection: socket.socket, stop: threading.Event) -> None:
    connection.recv(65536)
    if kind == "garbage":
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nContent-Type: application/json\r\n\r\n{not json")
    elif kind == "not http":
        connection.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    elif kind == "timeout":
        stop.wait(30)  # silent until the test ends
    elif kind == "401":
        body = json.dumps({"error": {"message": f"Incorrect API key provided: {KEY}.", "type": "invalid_request_error",
                                     "code": "invalid_api_key"}}).encode()
        connection.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: "
                           + str(len(body)).encode() + b"\r\n\r\n" + body)
    # "close": closes at once


@contextmanager
def misbehaving_server(kind: str) -> Iterator[int]:
    """A loopback server that answers every request the way ``kind`` says; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)  # so that the acceptor sees the stop
    stop = threading.Event()
    handlers: list[threading.Thread] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(30)

            def handle(connection: socket.socket = connection) -> None:
                with connection:
                    try:
                        _answer(kind, connection, stop)
                    except OSError:
                        pass

            handler = threading.Thread(target=handle)
            handlers.append(handler)
            handler.start()

    acceptor = threading.Thread(target=accept)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        acceptor.join()
        listener.close()
        for handler in handlers:
            handler.join()


def every_text(error: BaseException) -> str:
    """Everything that could show the error: str, repr, its attributes, the traceback with the chain it shows."""
    texts = ["".join(traceback.format_exception(type(error), error, error.__traceback__))]
    seen: BaseException | None = error
    while seen is not None:
        texts += [str(seen), repr(seen), repr(vars(seen)), repr(seen.args)]
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return "\n".join(texts)


def leaks(text: str) -> bool:
    return any(piece in text for piece in FOUND)


KINDS = ["garbage", "not http", "close", "timeout", "401"]


@pytest.mark.parametrize("transport", ["aiohttp", "default"])
@pytest.mark.parametrize("kind", KINDS)
def test_no_key_in_any_error_failure_repr_or_log_line(kind, transport, tmp_path, caplog):
    with misbehaving_server(kind) as port:
        llm = OpenAILLM(f"http://127.0.0.1:{port}/v1", api_key=KEY, timeout=0.5, max_retries=0, transport=transport)
        node = AskNode(llm, collect_failures=True, journal=tmp_path / "journal.sqlite")
        shared = {"prompts": ["Summarize: one"]}
        with caplog.at_level(logging.DEBUG):
            run(node.run_async(shared), clock="real")
        with pytest.raises(Exception) as raised:
            llm.call("Summarize: two")
        llm.close()
    failure = shared["answers"][0]
    assert isinstance(failure, Failure)
    texts = [every_text(failure.error), str(failure), repr(failure), repr(node.outcomes), repr(llm), str(llm),
             every_text(raised.value), caplog.text]
    with Journal(tmp_path / "journal.sqlite", node.journal.identity if isinstance(node.journal, Journal) else
                 f"{AskNode.__module__}.{AskNode.__qualname__}") as journal:
        texts.append(str(journal.failed([journal.key_of("Summarize: one")])))
    for text in texts:
        assert not leaks(text), text


def test_a_transport_error_becomes_a_connection_error_that_names_it():
    with misbehaving_server("not http") as port:
        llm = OpenAILLM(f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0, transport="aiohttp")
        with pytest.raises(TransportError) as raised:
            run(llm("Summarize: one"), clock="real")
    error = raised.value
    assert isinstance(error, ConnectionError) and "ClientResponseError" in str(error) and "Bad status line" in str(error)
    assert error.__cause__ is None and error.__suppress_context__  # aiohttp's error is not shown behind it
    assert llm.trace[-1].outcome == "error"


def test_a_key_in_the_url_is_refused_without_showing_it():
    for url in (f"http://user:{URL_PASSWORD}@127.0.0.1:9/v1", f"https://{KEY}@api.example/v1"):
        with pytest.raises(ValueError, match="base_url must not hold credentials") as refused:
            OpenAILLM(url)
        assert not leaks(every_text(refused.value))
    with pytest.raises(ValueError, match="base_url must be an http") as refused:
        OpenAILLM(f"ftp://user:{URL_PASSWORD}@host/v1")
    assert not leaks(every_text(refused.value))
    llm = OpenAILLM(f"http://127.0.0.1:9/v1?key={KEY}")
    assert not leaks(repr(llm)) and "http://127.0.0.1:9/v1?key=***" in repr(llm)
    endpoint = Endpoint(f"https://user:{URL_PASSWORD}@api.example/v1", "m", KEY)
    assert not leaks(repr(endpoint)) and not leaks(str(endpoint))


HEADERS_REPR = ("<CIMultiDictProxy('host': '127.0.0.1:1', 'authorization': 'Bearer " + KEY + "', "
                "'x-api-key': '" + KEY + "')>")


@pytest.mark.parametrize("text", [
    HEADERS_REPR,
    f"Authorization: Bearer {KEY}\r\nX-Api-Key: {KEY}",
    f"request to https://user:{URL_PASSWORD}@host/v1/chat failed",
    f"https://{KEY}@host/v1",
    f"GET /v1/models?api_key={KEY}&x=1",
    f"headers={{'Authorization': 'Bearer {KEY}'}}",
    f"bearer {KEY}",
])
def test_redact_masks_credentials_it_was_not_told_about(text):
    masked = redact(text)
    assert not leaks(masked) and MASK in masked


@given(st.text(max_size=50), st.text(max_size=50))
@settings(max_examples=300, deadline=None)
def test_redact_masks_a_known_secret_wherever_it_is(before, after):
    assert KEY not in redact(before + KEY + after, [KEY])


def test_ordinary_text_is_left_alone():
    text = "Rate limit reached for tokens per minute (TPM): limit 40000, requested 41000. Basic usage."
    assert redact(text) == text and redact_url("https://api.openai.com/v1") == "https://api.openai.com/v1"
    assert url_secrets(f"http://me:{URL_PASSWORD}@h/v1") == (URL_PASSWORD, "me")


@pytest.mark.parametrize("text", [
    "a://" * 250_000, "http://" + "a" * 1_000_000, "authorization" * 80_000, "bearer " * 150_000,
    "?key=" * 200_000, ("x" * 999 + "://") * 1000,
], ids=["schemes", "long authority", "header names", "bearer words", "query keys", "many urls"])
def test_redact_is_linear(text):
    start = time.process_time()
    redact(text, [KEY])
    assert time.process_time() - start < 0.5  # about 10 ms; a quadratic pattern would take minutes


def test_clean_error_keeps_a_client_error_and_cuts_its_chain():
    try:
        try:
            raise OSError(f"headers {HEADERS_REPR}")
        except OSError as cause:
            raise LookupError(f"failed with {KEY}") from cause
    except LookupError as error:
        kept = clean_error(error, [KEY], keep=(LookupError,))
    assert type(kept) is LookupError and kept.__cause__ is None and kept.__context__ is None
    assert not leaks(every_text(kept))
    wrapped = clean_error(OSError(f"headers {HEADERS_REPR}"), [KEY])
    assert type(wrapped) is TransportError and wrapped.args == (f"OSError: headers {redact(HEADERS_REPR)}",)


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("repr is broken")

    def __str__(self) -> str:
        raise RuntimeError("str is broken")


def test_safe_repr_never_raises():
    assert safe_repr(Unprintable()) == "<Unprintable object, whose repr raised RuntimeError>"
    assert safe_repr("x" * 100, 10) == "'xxxxxx..."
    failure = Failure(Unprintable(), Unprintable(), 2)  # type: ignore[arg-type]
    assert "failed after 2 attempts: Unprintable: <Unprintable object, whose str raised" in str(failure)
    assert repr(failure).startswith("<Failure <Unprintable object, whose repr raised RuntimeError> after 2 attempts")
