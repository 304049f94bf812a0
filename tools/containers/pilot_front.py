"""Every pilot replica's debug endpoints at one address: the compose mesh's `pilot-debug`.

With `docker compose up --scale pilot=N` each replica answers /debug/* about the proxies
connected to it, and compose can give replicas host ports only from a range, in which a
restarted replica may land on another port.  This front keeps one fixed port for
`mizzenctl proxy-status` and `proxy-config`: it resolves pilot's compose name (every
replica's address) on each request, and

- `/debug/syncz` lists the proxies of every replica that answers (Istio's format too);
- a request naming a proxy (`proxyID`) goes to the replica holding it (404 from all: 404);
- anything else goes to the first replica that answers.

A replica that does not answer (killed, starting) is left out; none answering is a 502.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass(frozen=True)
class FrontSettings:
    pilot_host: str = "pilot"
    pilot_port: int = 15014
    timeout_s: float = 5.0


async def replicas(settings: FrontSettings) -> list[str]:
    """Base URLs of every replica the name resolves to, in address order."""
    loop = asyncio.get_running_loop()
    try:
        found = await loop.getaddrinfo(settings.pilot_host, settings.pilot_port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return []
    addresses = sorted({str(info[4][0]) for info in found})
    return [f"http://{address}:{settings.pilot_port}" for address in addresses]


def merge_syncz(bodies: list[Any]) -> Any:
    """One /debug/syncz of several replicas': Mizzen's shape (`proxies` joined) or Istio's (a list)."""
    if all(isinstance(body, list) for body in bodies):
        return [row for body in bodies for row in body]
    merged = dict(bodies[0])
    merged["proxies"] = [row for body in bodies for row in body.get("proxies", [])]
    return merged


def app(settings: FrontSettings) -> Starlette:
    async def forward(request: Request) -> Response:
        urls = await replicas(settings)
        path = request.url.path
        params = dict(request.query_params)
        async with httpx.AsyncClient(timeout=settings.timeout_s) as client:
            answers: list[httpx.Response] = []
            for url in urls:
                try:
                    answer = await client.get(f"{url}{path}", params=params)
                except httpx.HTTPError:
                    continue
                if path == "/debug/syncz":
                    if answer.status_code == 200:
                        answers.append(answer)
                    continue
                if "proxyID" in params and answer.status_code == 404:
                    answers.append(answer)
                    continue
                return Response(answer.content, answer.status_code,
                                media_type=answer.headers.get("content-type"))
        if path == "/debug/syncz" and answers:
            return JSONResponse(merge_syncz([answer.json() for answer in answers]))
        if answers:
            last = answers[-1]
            return Response(last.content, last.status_code, media_type=last.headers.get("content-type"))
        return JSONResponse({"detail": f"no pilot replica answered at {settings.pilot_host}:{settings.pilot_port} "
                                       f"(resolved: {', '.join(urls) or 'nothing'})"}, status_code=502)

    return Starlette(routes=[Route("/{path:path}", forward, methods=["GET"])])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.containers pilot-front",
                                     description="Serve every pilot replica's /debug/* (and /readyz, /metrics of "
                                                 "the first) on one port.")
    parser.add_argument("--pilot", default="pilot:15014", help="host:port of pilot's monitoring port; the host "
                                                              "resolves to every replica (default pilot:15014)")
    parser.add_argument("--address", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--port", type=int, default=15014, help="port to listen on")
    args = parser.parse_args(argv)
    host, _, port = args.pilot.rpartition(":")
    if not host or not port.isdigit():
        print(f"pilot-front: --pilot {args.pilot!r} is not host:port", file=sys.stderr)
        return 2
    settings = FrontSettings(pilot_host=host, pilot_port=int(port))
    uvicorn.run(app(settings), host=args.address, port=args.port, log_level="warning")
    return 0
