"""The harness's threaded HTTP server: the standard library's, with a real listen backlog."""

from __future__ import annotations

import socket
from http.server import ThreadingHTTPServer


class HttpServer(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: proxies connecting at once overflow it, and
    # the kernel drops a SYN that Linux retries only a second later.
    request_queue_size = socket.SOMAXCONN
