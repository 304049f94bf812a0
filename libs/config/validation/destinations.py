"""Route destinations of VirtualServices (and Sidecar's egressProxy): host, subset, port, weights."""

from __future__ import annotations

from typing import Any

from libs.config.validation import hosts, ports
from libs.config.validation._checker import Checker


def destination(check: Checker, path: str, dest: dict[str, Any]) -> None:
    host = dest.get("host", "")
    if not host:
        check.error(f"{path}.host", "a destination needs a host")
    elif host == "*":
        # A wildcard *domain* can name a wildcard ServiceEntry; a bare `*` names nothing.
        check.error(f"{path}.host", "invalid destination host '*'")
    else:
        hosts.check_wildcard_domain(check, f"{path}.host", host)
    if "subset" in dest:
        subset_name(check, f"{path}.subset", dest["subset"])
    if "port" in dest:
        ports.port_number(check, f"{path}.port.number", dest["port"].get("number", 0))


def subset_name(check: Checker, path: str, name: str) -> None:
    if not name:
        check.error(path, "subset name cannot be empty")
    elif not hosts.is_dns_label(name):
        check.error(path, f"invalid subset name {name!r} (a DNS-1123 label is required)")


def route_destinations(check: Checker, path: str, routes: list[dict[str, Any]]) -> None:
    """Destinations and their weights.

    Mizzen keeps the pre-1.15 Istio rule: each weight in 0-100 and, with several
    destinations, a sum of exactly 100.  Istio 1.15 (istio/istio#39544) made weights
    relative (weight/sum of the traffic; only negative weights and an all-zero sum are
    errors), so a current Istio accepts e.g. 60/30 where Mizzen rejects it.  A single
    destination gets all traffic whatever its weight, which Istio never rejected.
    """
    total = 0
    for i, route in enumerate(routes):
        if "destination" not in route:
            check.error(f"{path}[{i}].destination", "a destination is required")
        else:
            destination(check, f"{path}[{i}].destination", route["destination"])
        weight = route.get("weight", 0)
        if not 0 <= weight <= 100:
            check.error(f"{path}[{i}].weight", f"weight {weight} must be in the range 0-100")
        total += weight
    if len(routes) > 1 and total != 100:
        check.error(path, f"weights sum to {total}, must be 100")
    elif len(routes) == 1 and routes[0].get("weight", 100) not in (0, 100):
        check.warn(f"{path}[0].weight", "a single destination receives all traffic whatever its weight")
