"""The compose mesh's init container: what Kubernetes gives a pod, handed to each proxy.

For every proxy of the mesh (the local mesh's list: Bookinfo's workloads and the two
gateways), in the volume mounted at `<identities>/<proxy>/` and only that proxy's:

- `token`: a bootstrap token citadel accepts for the proxy's namespace and service
  account (Kubernetes would project a service-account token);
- `root-cert.pem`: citadel's root, which its CSR API's TLS certificate chains to (the
  `istio-ca-root-cert` ConfigMap on Kubernetes).

Each proxy's files go to the proxy's user (istio-proxy, 1337).  And galley's API token,
`<galley>/token` (galley's user, mizzen), made once and kept across restarts: mizzenctl
on the host presents it (`python -m tools.containers compose context` copies it out).
The container runs as root, with only CHOWN, DAC_OVERRIDE and FOWNER, because Docker
creates each fresh volume root's: it stands in for the kubelet, which projects a pod's
token.  Tokens are minted with the key citadel created, never a new one, so nothing of
citadel's becomes root's.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from services.citadel.cli import mint_bootstrap_token
from tools.localmesh.plan import MeshOptions, identities

TOKEN_TTL_S = 30 * 86400
ROOT_CERT = "root-cert.pem"
TOKEN_KEY = "token-key"


class InitFailed(Exception):
    pass


def mesh_proxies() -> list[tuple[str, str, str]]:
    """(proxy name, namespace, service account) of every proxy of the compose mesh: the
    local mesh's with Bookinfo (its workloads and both gateways)."""
    return identities(MeshOptions(state_dir=Path("/nonexistent"), app="bookinfo"))


def wait_for_citadel(state_dir: Path, timeout_s: float) -> None:
    """Until citadel has written its root and token key (it does so as it starts)."""
    deadline = time.monotonic() + timeout_s
    missing = [name for name in (ROOT_CERT, TOKEN_KEY) if not (state_dir / name).is_file()]
    while missing:
        if time.monotonic() > deadline:
            raise InitFailed(f"citadel has not written {', '.join(missing)} in {state_dir} after {timeout_s:.0f} s "
                             "(is citadel's state volume mounted there, and citadel running?)")
        time.sleep(0.2)
        missing = [name for name in (ROOT_CERT, TOKEN_KEY) if not (state_dir / name).is_file()]


def _hand_over(path: Path, owner: tuple[int, int], mode: int) -> None:
    if os.geteuid() == 0:
        os.chown(path, *owner)
    path.chmod(mode)


def write_identity(directory: Path, citadel_state: Path, namespace: str, service_account: str,
                   owner: tuple[int, int]) -> None:
    if not directory.is_dir():
        raise InitFailed(f"no volume at {directory}: mount the proxy's identity volume there")
    token = directory / "token"
    staging = directory / ".token.tmp"
    staging.write_text(mint_bootstrap_token(citadel_state, namespace, service_account, TOKEN_TTL_S) + "\n")
    _hand_over(staging, owner, 0o600)
    staging.replace(token)
    root = directory / ".root-cert.tmp"
    shutil.copyfile(citadel_state / ROOT_CERT, root)
    _hand_over(root, owner, 0o644)
    root.replace(directory / ROOT_CERT)
    _hand_over(directory, owner, 0o700)


def ensure_galley_token(directory: Path, owner: tuple[int, int]) -> bool:
    """galley's API token, made if missing; True if made."""
    token = directory / "token"
    if token.is_file() and token.read_text().strip():
        return False
    directory.mkdir(parents=True, exist_ok=True)
    staging = directory / ".token.tmp"
    staging.write_text(secrets.token_urlsafe(24) + "\n")
    # Readable by galley (the image's user) and by whoever execs into it to copy it out.
    _hand_over(staging, owner, 0o600)
    staging.replace(token)
    _hand_over(directory, owner, 0o700)
    return True


def _owner(text: str) -> tuple[int, int]:
    user, _, group = text.partition(":")
    try:
        return int(user), int(group or user)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not uid[:gid]") from exc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.containers identities",
                                     description="Mint each proxy's citadel token and copy citadel's root into its "
                                                 "volume; make galley's API token once.")
    parser.add_argument("--citadel-state", type=Path, default=Path("/var/lib/mizzen/citadel"),
                        help="citadel's state dir (its volume), holding root-cert.pem and token-key")
    parser.add_argument("--identities", type=Path, default=Path("/var/run/mizzen/identities"),
                        help="one volume per proxy is mounted at <this>/<proxy name>")
    parser.add_argument("--galley", type=Path, default=Path("/var/run/mizzen/galley"),
                        help="galley's secret volume: the API token goes to <this>/token")
    parser.add_argument("--proxy-owner", type=_owner, default=(1337, 1337),
                        help="uid[:gid] each proxy's files are handed to (the image's istio-proxy)")
    parser.add_argument("--galley-owner", type=_owner, default=(10001, 10001),
                        help="uid[:gid] galley's token is handed to (the image's mizzen)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for citadel's files")
    args = parser.parse_args(argv)
    try:
        wait_for_citadel(args.citadel_state, args.timeout)
        for name, namespace, account in mesh_proxies():
            write_identity(args.identities / name, args.citadel_state, namespace, account, args.proxy_owner)
            print(f"{name}: token for {namespace}/{account}, citadel's root", flush=True)
        if ensure_galley_token(args.galley, args.galley_owner):
            print("galley: new API token", flush=True)
    except (InitFailed, OSError) as exc:
        print(f"identities: {exc}", file=sys.stderr)
        return 1
    return 0
