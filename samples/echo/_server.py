"""The echo server: stdlib threading HTTP/1.1, so tests can run it in-process."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def echo_handler(name: str, hits: list[dict[str, Any]] | None = None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle on, the second waits for the
        # peer's delayed ACK (~40 ms a request).
        disable_nagle_algorithm = True
        server_version = f"echo-{name}"

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            record = {
                "name": name,
                "method": self.command,
                "path": self.path,
                # A header sent several times reads as its values joined, as HTTP allows.
                "headers": {k.lower(): ", ".join(self.headers.get_all(k) or ()) for k in set(self.headers.keys())},
                "body": body.decode("utf-8", "replace"),
            }
            if hits is not None:
                hits.append(record)
            delay_ms = int(self.headers.get("x-echo-delay-ms") or 0)
            if delay_ms:
                time.sleep(delay_ms / 1000)
            status = int(self.headers.get("x-echo-status") or 200)
            payload = json.dumps(record).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.send_header("x-upstream", name)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class HttpServer(ThreadingHTTPServer):
    """The standard library's threaded HTTP server with a real listen backlog."""

    # socketserver listens with a backlog of 5.  Ten proxies opening their first connection
    # to a new route at once overflowed it, and the kernel dropped a SYN that Linux retried
    # only a second later (ListenOverflows): a 1 s outlier in the pilot benchmark.
    request_queue_size = socket.SOMAXCONN


class EchoServer:
    """An echo upstream on a thread: `with EchoServer("a", "127.0.0.1", 0) as s: s.port`."""

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.name = name
        self.hits: list[dict[str, Any]] = []
        self._server = HttpServer((host, port), echo_handler(name, self.hits))
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"echo-{name}", daemon=True)

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> EchoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> EchoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
