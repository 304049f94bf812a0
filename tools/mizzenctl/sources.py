"""Where `proxy-status` and `proxy-config` read: pilot's monitoring port (its /debug/*
endpoints), and for the truth of what a proxy runs, its Envoy's admin interface."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tools.localmesh.state import MeshState
from tools.mizzenctl import contexts

DEFAULT_PILOT = "http://127.0.0.1:15014"


class SourceError(Exception):
    """A pilot or Envoy admin could not be read; `status` is the HTTP status if one answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def add_pilot_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pilot", action="append", metavar="URL",
                        help="pilot's monitoring URL; repeat for several replicas [env MIZZEN_PILOT_URL, "
                             f"comma-separated; default: the local mesh's, else {DEFAULT_PILOT}]")
    if not any(action.dest == "state_dir" for action in parser._actions):
        parser.add_argument("--state-dir", default=contexts.default_state_dir(),
                            help="local mesh state dir, to find its pilot [env MIZZEN_STATE_DIR; default: the "
                                 "current context's]")


def pilot_urls(args: argparse.Namespace, environ: dict[str, str] | None = None) -> list[str]:
    if args.pilot:
        return [url.rstrip("/") for url in args.pilot]
    env = os.environ if environ is None else environ
    if "MIZZEN_PILOT_URL" not in env:
        state = MeshState.read(Path(getattr(args, "state_dir", contexts.LOCAL_DEFAULT)))
        if state is not None:
            return [state.pilot]
        context = contexts.current(env)
        if context is not None and context.pilot:
            return [url.strip().rstrip("/") for url in context.pilot.split(",") if url.strip()]
    value = env.get("MIZZEN_PILOT_URL", DEFAULT_PILOT)
    return [url.strip().rstrip("/") for url in value.split(",") if url.strip()]


def admin_url(address: str) -> str:
    """`http://host:port` from `host:port` or a URL."""
    return (address if "://" in address else f"http://{address}").rstrip("/")


def get_json(base: str, path: str, params: dict[str, str] | None = None, *, what: str = "") -> Any:
    try:
        response = httpx.get(f"{base}{path}", params=params, timeout=10.0)
    except httpx.HTTPError as exc:
        raise SourceError(f"cannot reach {what or base} at {base}: {exc}") from exc
    if response.status_code != 200:
        raise SourceError(f"{what or base} at {base} answered {response.status_code} to {path}: "
                          f"{response.text.strip()}", response.status_code)
    return response.json()


def syncz(urls: list[str], *, warnings: bool = False) -> list[dict[str, Any]]:
    """Every proxy connected to any of the pilots, each row naming its pilot (and, with
    `warnings`, listing the warnings pilot's translation of its config raised)."""
    rows: list[dict[str, Any]] = []
    params = {"warnings": "true"} if warnings else None
    for url in urls:
        rows.extend(get_json(url, "/debug/syncz", params, what="pilot")["proxies"])
    return rows


@dataclass(frozen=True)
class PilotView:
    pilot: str
    dump: dict[str, Any]
    origins: dict[str, Any]


def pilot_config(urls: list[str], proxy: str, *, include_eds: bool) -> PilotView:
    """What pilot last sent `proxy` (from whichever replica it is connected to)."""
    not_found: list[str] = []
    for url in urls:
        try:
            dump = get_json(url, "/debug/config_dump", {"proxyID": proxy, "include_eds": str(include_eds).lower()},
                            what="pilot")
        except SourceError as exc:
            if exc.status == 404:
                not_found.append(url)
                continue
            raise
        origins = get_json(url, "/debug/config_origins", {"proxyID": proxy}, what="pilot")
        return PilotView(url, dump, origins)
    raise SourceError(f"proxy {proxy!r} is not connected to pilot at {', '.join(not_found)}", 404)


def envoy_config_dump(admin: str, *, include_eds: bool) -> dict[str, Any]:
    params = {"include_eds": "true"} if include_eds else None
    dump: dict[str, Any] = get_json(admin_url(admin), "/config_dump", params, what="Envoy admin")
    return dump


def envoy_clusters(admin: str) -> dict[str, Any]:
    """Envoy's `/clusters?format=json`: every host with its health and outlier status."""
    clusters: dict[str, Any] = get_json(admin_url(admin), "/clusters", {"format": "json"}, what="Envoy admin")
    return clusters
