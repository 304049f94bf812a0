"""A grpcio xDS client in its own process (gRPC reads its bootstrap once per process),
driven over HTTP: `GET /call?target=xds:///echo:7070&n=100&md=end-user:jason` makes `n`
unary calls on one long-lived channel per target and answers `{"answers": {name: count}}`;
`GET /close?target=...` closes that target's channel (the next call opens a new one).

Run as `python -m tests.harness.grpc_xds_client --port N` with `GRPC_XDS_BOOTSTRAP_CONFIG` set.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

import grpc

from samples.echo import HttpServer
from tests.harness.grpc_xds import ECHO_METHOD

_channels: dict[str, grpc.Channel] = {}
_lock = threading.Lock()


def _channel(target: str) -> grpc.Channel:
    with _lock:
        if target not in _channels:
            _channels[target] = grpc.insecure_channel(target)
        return _channels[target]


def close(target: str) -> bool:
    with _lock:
        channel = _channels.pop(target, None)
    if channel is not None:
        channel.close()
    return channel is not None


def call(target: str, n: int, metadata: list[tuple[str, str]], timeout_s: float) -> Counter[str]:
    """Who answered each of `n` calls; a failed call counts as `error:<status code>`."""
    method = _channel(target).unary_unary(ECHO_METHOD)
    answers: Counter[str] = Counter()
    for _ in range(n):
        try:
            answers[method(b"", metadata=metadata, timeout=timeout_s).decode()] += 1
        except grpc.RpcError as exc:
            answers[f"error:{exc.code().name}"] += 1
    return answers


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        if url.path == "/healthz":
            self._answer(200, {"ok": True})
        elif url.path == "/call":
            metadata = [tuple(entry.split(":", 1)) for entry in query.get("md", [])]
            answers = call(query["target"][0], int(query.get("n", ["1"])[0]), metadata,  # type: ignore[arg-type]
                           float(query.get("timeout", ["5"])[0]))
            self._answer(200, {"answers": dict(answers)})
        elif url.path == "/close":
            self._answer(200, {"closed": close(query["target"][0])})
        else:
            self._answer(404, {"error": url.path})

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    HttpServer(("127.0.0.1", args.port), _Handler).serve_forever()


if __name__ == "__main__":
    main()
