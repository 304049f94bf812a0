"""An HTTP upstream that answers with its own name and echoes the request.

Tests steer it with request headers: `x-echo-status: 503` answers that status,
`x-echo-delay-ms: 200` waits first.  Every response carries `x-upstream: <name>`.
"""

from samples.echo._server import EchoServer, HttpServer, echo_handler

__all__ = ["EchoServer", "HttpServer", "echo_handler"]
