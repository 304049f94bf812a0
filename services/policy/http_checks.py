"""Checks over HTTP/1.1, as Envoy's ext_authz filter asks them with an `http_service`: the
request's method, path and headers, with the `x-mizzen-check-*` headers pilot has Envoy add
(`attributes.from_http_check`).  200 with no body allows; a denial is the handler's HTTP
status with Mixer's body, `<CODE>:<handler>:<message>`.

Pilot prefers this port to gRPC: in Python a gRPC call costs ~170 µs of CPU before any
work is done, a bare asyncio HTTP/1.1 exchange ~10-25 µs (loopback ping-pong under uvloop),
and checks are on every request of a checked workload.  Hence a protocol written for one client, Envoy: keep-alive,
no pipelining needed (handled anyway), bodies only ever empty (skipped by Content-Length),
no chunked bodies (refused).  A malformed request gets 400 and the connection closes.

Envoy takes any 5xx from an HTTP authorizer for a failure to check (its failure policy
applies), not a denial: pilot keeps workloads whose rules may deny with a 5xx on gRPC.
"""

from __future__ import annotations

import asyncio
import http
from collections.abc import Callable
from typing import cast

import structlog

from libs.config.directory import Directory
from libs.runtime import Supervisor
from services.policy import attributes
from services.policy.checks import Checks

log = structlog.get_logger(__name__)

# Envoy's default limit on request headers is 60 KiB; a check carries the request's.
MAX_HEAD_BYTES = 96 * 1024
ALLOWED = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
# (status, body) for (method, path, lower-cased headers); the headers are the callee's to keep.
Answer = Callable[[str, str, dict[str, str]], tuple[int, str]]


class BadRequest(ValueError):
    """A request this server cannot read; the connection closes after the answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def _response(status: int, body: str) -> bytes:
    if status == 200 and not body:
        return ALLOWED
    payload = body.encode()
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return (f"HTTP/1.1 {status} {phrase}\r\ncontent-type: text/plain\r\ncontent-length: {len(payload)}\r\n\r\n"
            .encode() + payload)


def parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    """(method, target, version, headers with lower-case names) of a request head, without
    its final blank line; BadRequest if it is not HTTP/1.x."""
    # latin-1 decodes every byte, as HTTP/1.1 header octets are read.
    request_line, *lines = head.decode("latin-1").split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, f"not an HTTP/1.x request line: {request_line[:100]!r}")
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(400, f"malformed header line: {line[:100]!r}")
        name = name.lower()
        value = value.strip(" \t")
        # Repeated headers fold into one, comma-separated, as Envoy's CheckRequest has them.
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return parts[0], parts[1], parts[2], headers


class CheckProtocol(asyncio.Protocol):
    def __init__(self, answer: Answer) -> None:
        self._answer = answer
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._transport is not None:
            end = self._buffer.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES + 4)
            if end < 0:
                if len(self._buffer) > MAX_HEAD_BYTES:
                    self._refuse(BadRequest(431, "request head too large"))
                return
            try:
                method, target, version, headers = parse_head(bytes(self._buffer[:end]))
                if "transfer-encoding" in headers:
                    raise BadRequest(400, "chunked request bodies are not accepted")
                length = headers.get("content-length", "0")
                if not length.isdigit():
                    raise BadRequest(400, f"bad content-length {length!r}")
            except BadRequest as exc:
                self._refuse(exc)
                return
            total = end + 4 + int(length)
            if len(self._buffer) < total:
                return
            del self._buffer[:total]
            close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
            self._transport.write(self._answer_for(method, target, headers))
            if close:
                self._transport.close()

    def _answer_for(self, method: str, target: str, headers: dict[str, str]) -> bytes:
        try:
            status, body = self._answer(method, target, headers)
        except Exception:
            # Envoy applies its failure policy to a 5xx, as to a gRPC error.
            log.exception("check failed", method=method, path=target[:200])
            return _response(500, "internal error")
        return _response(status, body)

    def _refuse(self, exc: BadRequest) -> None:
        log.warning("refused a check request", status=exc.status, reason=str(exc))
        assert self._transport is not None
        self._transport.write(_response(exc.status, str(exc)))
        self._transport.close()


async def serve_http_checks(supervisor: Supervisor, answer: Answer, address: str, port: int, *,
                            reuse_port: bool) -> int:
    """Listen on `address:port` (0: any free port) until `supervisor` stops; the bound port."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: CheckProtocol(answer), address, port, reuse_port=reuse_port)
    bound = int(server.sockets[0].getsockname()[1])
    log.info("HTTP checks serving", address=address, port=bound)

    async def stop() -> None:
        # Not wait_closed(): Envoy holds its connections open, and a stopping service drops them.
        server.close()

    supervisor.on_stop("http-checks", stop)
    return bound


def answer_from(checks: Checks, directory: Callable[[], Directory]) -> Answer:
    """What the server answers: the decision as HTTP, mapped here once."""
    def answer(method: str, target: str, headers: dict[str, str]) -> tuple[int, str]:
        decision = checks.decide(attributes.from_http_check(method, target, headers, directory()))
        if decision.ok:
            return 200, ""
        return decision.status.http, decision.status.body(decision.handler)

    return answer
