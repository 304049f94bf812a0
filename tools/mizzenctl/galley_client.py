"""Talking to galley's API: where it is and the token it wants."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import httpx


class GalleyUnreachable(Exception):
    pass


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--galley", default=os.environ.get("MIZZEN_GALLEY_URL", "http://127.0.0.1:15019"),
                        help="galley's API URL [env MIZZEN_GALLEY_URL]")
    parser.add_argument("--state-dir", default=os.environ.get("MIZZEN_STATE_DIR", ".mizzen"),
                        help="local mesh state dir, where the API token is found [env MIZZEN_STATE_DIR]")
    parser.add_argument("--token", default=os.environ.get("MIZZEN_TOKEN"), help="API token [env MIZZEN_TOKEN]")


def _token(args: argparse.Namespace) -> str | None:
    if args.token:
        return str(args.token)
    token_file = Path(args.state_dir) / "galley-token"
    return token_file.read_text().strip() if token_file.is_file() else None


def request(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = kwargs.pop("headers", {})
    token = _token(args)
    if token:
        headers["authorization"] = f"Bearer {token}"
    try:
        return httpx.request(method, f"{args.galley.rstrip('/')}{path}", headers=headers, timeout=30.0, **kwargs)
    except httpx.HTTPError as exc:
        raise GalleyUnreachable(f"cannot reach galley at {args.galley}: {exc} (is the mesh up?)") from exc
