"""Byte-stream upstreams for TCP and TLS tests: each answers every chunk it reads with
`<name>:<chunk>`, in plain TCP or, given an ssl context, inside TLS it terminates itself."""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading


class StreamEchoServer:
    """`with StreamEchoServer("db-a") as s: s.port`; `s.connections` counts accepted ones."""

    def __init__(self, name: str, host: str = "127.0.0.1", *, tls: ssl.SSLContext | None = None) -> None:
        self.name = name
        self.connections = 0
        self._lock = threading.Lock()
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with owner._lock:
                    owner.connections += 1
                sock: socket.socket = self.request
                try:
                    if tls is not None:
                        sock = tls.wrap_socket(sock, server_side=True)
                    while chunk := sock.recv(4096):
                        sock.sendall(f"{owner.name}:".encode() + chunk)
                except OSError:
                    pass  # the client went away or failed its handshake: nothing to answer
                finally:
                    if sock is not self.request:
                        sock.close()

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = socket.SOMAXCONN  # socketserver's own is 5

        self._server = Server((host, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"stream-{name}", daemon=True)

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> StreamEchoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> StreamEchoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def exchange(sock: socket.socket, data: bytes = b"ping") -> bytes:
    """Send `data`, read the one answer (echo servers answer each chunk at once)."""
    sock.sendall(data)
    return sock.recv(4096)
