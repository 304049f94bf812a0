"""An upstream that misbehaves for the first attempts of each request, to watch Envoy retry.

Requests steer it with headers, keyed by the `x-request-id` Envoy keeps across retries:
`x-fail-first: N` answers `x-fail-status` (default 503) to the first N attempts, and
`x-slow-first: N` delays the first N attempts by `x-slow-ms` before answering 200.  Every
attempt is recorded in `hits` with the `x-envoy-attempt-count` Envoy sent.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from samples.echo import HttpServer


@dataclass(frozen=True)
class Attempt:
    request_id: str
    attempt_count: str
    path: str
    status: int


class FlakyServer:
    def __init__(self, name: str, host: str = "127.0.0.1") -> None:
        self.name = name
        self.hits: list[Attempt] = []
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = HttpServer((host, 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"flaky-{name}", daemon=True)

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def attempts(self, path: str) -> list[Attempt]:
        """Every attempt at `path` (tests give each request its own path)."""
        with self._lock:
            return [a for a in self.hits if a.path == path]

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        headers = request.headers
        request_id = headers.get("x-request-id", "")
        with self._lock:
            self._seen[request_id] += 1
            attempt = self._seen[request_id]
        status = 200
        if attempt <= int(headers.get("x-fail-first") or 0):
            status = int(headers.get("x-fail-status") or 503)
        with self._lock:
            self.hits.append(Attempt(request_id, headers.get("x-envoy-attempt-count", ""), request.path, status))
        if attempt <= int(headers.get("x-slow-first") or 0):
            time.sleep(int(headers.get("x-slow-ms") or 1000) / 1000)
        payload = json.dumps({"name": self.name, "attempt": attempt, "request_id": request_id}).encode()
        request.send_response(status)
        request.send_header("content-type", "application/json")
        request.send_header("content-length", str(len(payload)))
        request.send_header("x-upstream", self.name)
        request.end_headers()
        request.wfile.write(payload)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                # Envoy may give up on an attempt (per-try timeout) and close the connection.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    server._answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> FlakyServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
