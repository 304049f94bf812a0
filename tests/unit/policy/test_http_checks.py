"""The HTTP/1.1 check server over a real loopback socket: keep-alive, requests split or
pipelined, bodies skipped, denials with their status and body, and what it refuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from libs.runtime import Supervisor
from services.policy.http_checks import parse_head, serve_http_checks

CHECK = b"GET /ratings/0 HTTP/1.1\r\nhost: ratings:9080\r\nx-user: jason\r\ncontent-length: 0\r\n\r\n"


def answer(method: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
    if path == "/boom":
        raise RuntimeError("a bug")
    if headers.get("x-user") == "jason":
        return 200, ""
    return 403, f"PERMISSION_DENIED:deny.denier.default:{method} {path} not allowed"


@pytest.fixture
async def port() -> AsyncIterator[int]:
    supervisor = Supervisor("test", grace_s=1)
    bound = await serve_http_checks(supervisor, answer, "127.0.0.1", 0, reuse_port=False)
    yield bound
    supervisor.request_stop("test over")
    await supervisor.wait()


async def exchange(port: int, *chunks: bytes) -> bytes:
    """Everything the server answers to `chunks`, sent one by one, until it closes or is quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for chunk in chunks:
        writer.write(chunk)
        await writer.drain()
        await asyncio.sleep(0)
    received = b""
    try:
        while True:
            data = await asyncio.wait_for(reader.read(65536), timeout=0.5)
            if not data:
                break
            received += data
    except TimeoutError:
        pass
    writer.close()
    return received


async def test_keep_alive_answers_every_request_split_or_pipelined(port: int) -> None:
    denied = b"GET /ratings/0 HTTP/1.1\r\nhost: ratings:9080\r\n\r\n"
    received = await exchange(port, CHECK[:10], CHECK[10:] + denied + CHECK)
    assert received.count(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n") == 2
    body = b"PERMISSION_DENIED:deny.denier.default:GET /ratings/0 not allowed"
    assert (b"HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s"
            % (len(body), body)) in received


async def test_a_body_is_skipped_by_its_length(port: int) -> None:
    with_body = b"POST /x HTTP/1.1\r\nx-user: jason\r\ncontent-length: 5\r\n\r\nhello"
    assert await exchange(port, with_body, CHECK) == b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n" * 2


async def test_a_failing_answer_is_a_500_and_the_connection_stays(port: int) -> None:
    received = await exchange(port, b"GET /boom HTTP/1.1\r\n\r\n", CHECK)
    assert received.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert received.endswith(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"NONSENSE\r\n\r\n", b"400"),
    (b"GET / HTTP/2.0\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\ncontent-length: many\r\n\r\n", b"400"),
    (b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nx-big: " + b"a" * 100_000, b"431"),
])
async def test_what_it_cannot_read_is_refused_and_closed(port: int, request_bytes: bytes, status: bytes) -> None:
    # The check after it is never answered: the connection closed.
    received = await exchange(port, request_bytes, CHECK)
    assert received.startswith(b"HTTP/1.1 " + status + b" ")
    assert b"200 OK" not in received


async def test_http_1_0_and_connection_close_end_the_connection(port: int) -> None:
    for request in (b"GET / HTTP/1.0\r\nx-user: jason\r\n\r\n",
                    b"GET / HTTP/1.1\r\nx-user: jason\r\nconnection: close\r\n\r\n"):
        assert await exchange(port, request, CHECK) == b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


def test_repeated_headers_fold_as_envoy_folds_them() -> None:
    method, target, version, headers = parse_head(b"GET /a?b=1 HTTP/1.1\r\nX-Tag: a\r\nx-tag:  b \r\nHost: h")
    assert (method, target, version) == ("GET", "/a?b=1", "HTTP/1.1")
    assert headers == {"x-tag": "a,b", "host": "h"}
