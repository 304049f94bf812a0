"""`python -m samples.echo --name a --port 18081`: a standalone echo upstream."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from samples.echo._server import EchoServer


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m samples.echo", description=__doc__)
    parser.add_argument("--name", required=True, help="name the server answers with")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = EchoServer(args.name, args.host, args.port).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"echo {args.name} listening on {server.host}:{server.port}", flush=True)
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
