"""`python -m services.citadel mint-token`: a bootstrap token for one workload identity.

`mint_bootstrap_token()` is the function mizzenctl reuses.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from services.citadel.auth import FileTokenKeyStore, mint_token
from services.citadel.errors import CitadelError
from services.citadel.state_dir import StateDir

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_ttl(text: str) -> int:
    """Seconds in "3600", "90s", "30m", "1h", "1h30m"."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    match = _DURATION.match(text)
    if not text or not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (use e.g. 3600, 90s, 30m, 1h, 1h30m)")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def mint_bootstrap_token(state_dir: Path, namespace: str, service_account: str, ttl_s: int,
                         *, now: float | None = None) -> str:
    """A token citadel with this state dir accepts for namespace/service_account until ttl_s from now."""
    key = FileTokenKeyStore(state_dir).load_or_create()
    return mint_token(key, namespace, service_account, ttl_s=ttl_s, now=time.time() if now is None else now)


def mint_token_command(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.citadel mint-token",
                                     description="Mint a bootstrap token citadel accepts for one workload identity.")
    parser.add_argument("--state-dir", type=Path, default=Path(environ.get("MIZZEN_STATE_DIR", ".mizzen/citadel")),
                        help="citadel's state dir, holding token-key [env MIZZEN_STATE_DIR]")
    parser.add_argument("--namespace", required=True, help="namespace of the workload")
    parser.add_argument("--service-account", required=True, help="service account of the workload")
    parser.add_argument("--ttl", type=parse_ttl, default=parse_ttl("24h"),
                        help="how long the token is accepted: seconds, or 30m, 1h, 1h30m (default 24h)")
    parser.add_argument("--output", type=Path, help="write the token to this file (0600) instead of stdout")
    args = parser.parse_args(list(argv))
    try:
        token = mint_bootstrap_token(args.state_dir, args.namespace, args.service_account, args.ttl)
    except (CitadelError, ValueError) as exc:
        print(f"mint-token: {exc}", file=sys.stderr)
        return 2
    if args.output:
        output: Path = args.output
        StateDir(output.parent).write(output.name, token.encode() + b"\n", private=True)
    else:
        print(token)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return mint_token_command(sys.argv[2:] if argv is None else argv, os.environ)
