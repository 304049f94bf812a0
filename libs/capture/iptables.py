"""Istio's iptables capture (istio-iptables, REDIRECT mode), rendered as argv lists.

Inbound TCP to the workload goes to Envoy's 15006 (except the ports listed to skip:
Envoy's stats, health and admin, the agent's); outbound TCP from the app goes to 15001.
Traffic of the proxy's own user (Envoy and the agent) is left alone, so Envoy's upstream
connections are not captured again; Envoy reaches the app from 127.0.0.6, which is
left alone too, while the app calling its own service through Envoy still works.

The `traffic.sidecar.istio.io/*` annotations narrow the capture as istio-iptables' flags
do: `include_inbound_ports` (-b), `exclude_inbound_ports` (-d), `include_outbound_ip_ranges`
(-i), `exclude_outbound_ip_ranges` (-x) and `exclude_outbound_ports` (-o).  "*" means
every port or address; an empty tuple means none, so nothing is captured that way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PROXY_UID = 1337
# Envoy's inbound passthrough source address (Istio's InboundPassthroughBindIpv4).
INBOUND_SOURCE = "127.0.0.6"
ALL: Literal["*"] = "*"
CHAINS = ("ISTIO_INBOUND", "ISTIO_REDIRECT", "ISTIO_IN_REDIRECT", "ISTIO_OUTPUT")


@dataclass(frozen=True)
class CaptureSettings:
    proxy_uid: int = PROXY_UID
    proxy_gid: int = PROXY_UID
    outbound_port: int = 15001
    inbound_port: int = 15006
    # Never redirected inbound: Envoy admin/stats/health, the agent's monitoring, ssh.
    skip_inbound_ports: tuple[int, ...] = (15000, 15020, 15021, 15090, 22)
    include_inbound_ports: tuple[int, ...] | Literal["*"] = ALL
    # Skipped as well as skip_inbound_ports (when every inbound port is captured).
    exclude_inbound_ports: tuple[int, ...] = ()
    include_outbound_ip_ranges: tuple[str, ...] | Literal["*"] = ALL
    exclude_outbound_ip_ranges: tuple[str, ...] = ()
    exclude_outbound_ports: tuple[int, ...] = ()


def _inbound(settings: CaptureSettings, nat: list[str]) -> list[list[str]]:
    if settings.include_inbound_ports == ():
        return []
    rules = [[*nat, "-A", "PREROUTING", "-p", "tcp", "-j", "ISTIO_INBOUND"]]
    if settings.include_inbound_ports == ALL:
        skipped = [*settings.skip_inbound_ports,
                   *(p for p in settings.exclude_inbound_ports if p not in settings.skip_inbound_ports)]
        rules += [[*nat, "-A", "ISTIO_INBOUND", "-p", "tcp", "--dport", str(port), "-j", "RETURN"]
                  for port in skipped]
        rules.append([*nat, "-A", "ISTIO_INBOUND", "-p", "tcp", "-j", "ISTIO_IN_REDIRECT"])
    else:
        rules += [[*nat, "-A", "ISTIO_INBOUND", "-p", "tcp", "--dport", str(port), "-j", "ISTIO_IN_REDIRECT"]
                  for port in settings.include_inbound_ports]
    return rules


def _outbound_destinations(settings: CaptureSettings, nat: list[str]) -> list[list[str]]:
    """The last rules of ISTIO_OUTPUT: which destinations go to Envoy."""
    rules = [[*nat, "-A", "ISTIO_OUTPUT", "-d", cidr, "-j", "RETURN"] for cidr in settings.exclude_outbound_ip_ranges]
    if settings.include_outbound_ip_ranges == ALL:
        rules.append([*nat, "-A", "ISTIO_OUTPUT", "-j", "ISTIO_REDIRECT"])
    else:
        rules += [[*nat, "-A", "ISTIO_OUTPUT", "-d", cidr, "-j", "ISTIO_REDIRECT"]
                  for cidr in settings.include_outbound_ip_ranges]
    return rules


def capture_rules(settings: CaptureSettings = CaptureSettings()) -> list[list[str]]:
    """`iptables` arguments, in order, for the nat table of the workload's namespace."""
    uid, gid = str(settings.proxy_uid), str(settings.proxy_gid)
    nat = ["-t", "nat"]
    rules: list[list[str]] = [[*nat, "-N", chain] for chain in CHAINS]
    rules += [
        [*nat, "-A", "ISTIO_REDIRECT", "-p", "tcp", "-j", "REDIRECT", "--to-ports", str(settings.outbound_port)],
        [*nat, "-A", "ISTIO_IN_REDIRECT", "-p", "tcp", "-j", "REDIRECT", "--to-ports", str(settings.inbound_port)],
    ]
    rules += _inbound(settings, nat)
    rules.append([*nat, "-A", "OUTPUT", "-p", "tcp", "-j", "ISTIO_OUTPUT"])
    # Excluded destination ports bypass Envoy whoever connects, as istio-iptables' -o does.
    rules += [[*nat, "-A", "ISTIO_OUTPUT", "-p", "tcp", "--dport", str(port), "-j", "RETURN"]
              for port in settings.exclude_outbound_ports]
    rules += [
        [*nat, "-A", "ISTIO_OUTPUT", "-o", "lo", "-s", f"{INBOUND_SOURCE}/32", "-j", "RETURN"],
        # The app calling its own service through the proxy comes back in as inbound.
        [*nat, "-A", "ISTIO_OUTPUT", "-o", "lo", "!", "-d", "127.0.0.1/32", "-m", "owner", "--uid-owner", uid,
         "-j", "ISTIO_IN_REDIRECT"],
        [*nat, "-A", "ISTIO_OUTPUT", "-o", "lo", "-m", "owner", "!", "--uid-owner", uid, "-j", "RETURN"],
        [*nat, "-A", "ISTIO_OUTPUT", "-m", "owner", "--uid-owner", uid, "-j", "RETURN"],
        [*nat, "-A", "ISTIO_OUTPUT", "-o", "lo", "!", "-d", "127.0.0.1/32", "-m", "owner", "--gid-owner", gid,
         "-j", "ISTIO_IN_REDIRECT"],
        [*nat, "-A", "ISTIO_OUTPUT", "-o", "lo", "-m", "owner", "!", "--gid-owner", gid, "-j", "RETURN"],
        [*nat, "-A", "ISTIO_OUTPUT", "-m", "owner", "--gid-owner", gid, "-j", "RETURN"],
        [*nat, "-A", "ISTIO_OUTPUT", "-d", "127.0.0.1/32", "-j", "RETURN"],
    ]
    rules += _outbound_destinations(settings, nat)
    return rules


def cleanup_rules() -> list[list[str]]:
    """`iptables` arguments that undo `capture_rules` (each may fail when there is nothing to
    undo), so an init container that runs again starts from a clean nat table."""
    nat = ["-t", "nat"]
    rules = [[*nat, "-D", "PREROUTING", "-p", "tcp", "-j", "ISTIO_INBOUND"],
             [*nat, "-D", "OUTPUT", "-p", "tcp", "-j", "ISTIO_OUTPUT"]]
    rules += [[*nat, "-F", chain] for chain in CHAINS]
    rules += [[*nat, "-X", chain] for chain in CHAINS]
    return rules
