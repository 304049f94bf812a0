"""A proxy's Envoy admin interface: finding it from a proxy's name, and what mizzenctl asks
of it beyond `/config_dump` (sources.py): `/server_info`, `/logging`.

istioctl port-forwards to the pod's 15000.  Mizzen's agent instead advertises where its
Envoy's admin listens (node metadata `MIZZEN_ADMIN_ADDRESS`, shown by pilot's syncz as
`admin`).  That address may be a loopback one only its own host (or pod) can reach, and
another Envoy may answer on the same address here, so the answer is believed only when
Envoy's `/server_info` names the same node; otherwise `--admin host:port` says where.
"""

from __future__ import annotations

import argparse
from typing import Any

import httpx

from tools.mizzenctl import proxy_status
from tools.mizzenctl.sources import SourceError, admin_url, get_json, pilot_urls, syncz

__all__ = ["admin_of", "locate", "logging_levels", "proxy_row", "server_info", "set_logging"]

Json = dict[str, Any]


def proxy_row(args: argparse.Namespace, proxy: str) -> Json:
    """pilot's syncz row of the one connected proxy `proxy` names."""
    rows = syncz(pilot_urls(args))
    chosen = proxy_status.select(rows, proxy)
    if len(chosen) != 1:
        found = ", ".join(str(r.get("name") or r["proxy"]) for r in chosen) or "none"
        raise SourceError(f"{proxy!r} must name one proxy connected to pilot (matches: {found})", 404)
    return chosen[0]


def server_info(admin: str) -> Json:
    info: Json = get_json(admin_url(admin), "/server_info", what="Envoy admin")
    return info


def locate(args: argparse.Namespace, proxy: str | None) -> tuple[str, str]:
    """(Envoy admin address, the proxy's name) for `--admin` or a proxy pilot knows."""
    if args.admin:
        return args.admin, proxy or args.admin
    if not proxy:
        raise SourceError("name a proxy (<pod>.<namespace>) or pass --admin host:port")
    row = proxy_row(args, proxy)
    return admin_of(row), str(row.get("name") or row["proxy"])


def admin_of(row: Json) -> str:
    """The Envoy admin address a syncz row advertises, once that Envoy names the same node."""
    name = str(row.get("name") or row["proxy"])
    address = str(row.get("admin") or "")
    if not address:
        raise SourceError(f"{name} does not advertise its Envoy admin address (it was not started by Mizzen's "
                          "agent); pass --admin host:port")
    try:
        node = str(server_info(address).get("node", {}).get("id", ""))
    except SourceError as exc:
        raise SourceError(f"{name}'s Envoy admin at {address} does not answer here ({exc}); run mizzenctl on "
                          "the proxy's host, or pass --admin host:port") from exc
    if node and node != row["proxy"]:
        raise SourceError(f"the Envoy admin at {address}, which {name} advertises, answers for another node "
                          f"({node}): it is only reachable from the proxy's own host; pass --admin host:port")
    return address


def _post_logging(admin: str, params: dict[str, str] | None) -> str:
    try:
        response = httpx.post(f"{admin_url(admin)}/logging", params=params, timeout=10.0)
    except httpx.HTTPError as exc:
        raise SourceError(f"cannot reach Envoy admin at {admin}: {exc}") from exc
    if response.status_code != 200:
        raise SourceError(f"Envoy admin at {admin} answered {response.status_code} to /logging: "
                          f"{response.text.strip()}", response.status_code)
    return response.text


def logging_levels(admin: str) -> str:
    """Envoy's `active loggers:` listing (a POST without parameters changes nothing)."""
    return _post_logging(admin, None)


def set_logging(admin: str, changes: list[tuple[str, str]]) -> str:
    """Apply (logger, level) changes in order, `level` as the logger setting every one
    (istioctl's order: all loggers first, then each named one); Envoy's last listing."""
    listing = ""
    for logger, level in changes:
        listing = _post_logging(admin, {"level": level} if logger == "level" else {logger: level})
    return listing
