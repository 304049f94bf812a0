"""Istio's iptables capture (istio-iptables, REDIRECT mode), rendered as argv lists.

Inbound TCP to the workload goes to Envoy's 15006 (except the ports listed to skip:
Envoy's stats, health and admin, the agent's); outbound TCP from the app goes to 15001.
Traffic of the proxy's own user (Envoy and the agent) is left alone, so Envoy's upstream
connections are not captured again; Envoy reaches the app from 127.0.0.6, which is
left alone too, while the app calling its own service through Envoy still works.
"""

from __future__ import annotations

from dataclasses import dataclass

PROXY_UID = 1337
# Envoy's inbound passthrough source address (Istio's InboundPassthroughBindIpv4).
INBOUND_SOURCE = "127.0.0.6"


@dataclass(frozen=True)
class CaptureSettings:
    proxy_uid: int = PROXY_UID
    proxy_gid: int = PROXY_UID
    outbound_port: int = 15001
    inbound_port: int = 15006
    # Never redirected inbound: Envoy admin/stats/health, the agent's monitoring, ssh.
    skip_inbound_ports: tuple[int, ...] = (15000, 15020, 15021, 15090, 22)


def capture_rules(settings: CaptureSettings = CaptureSettings()) -> list[list[str]]:
    """`iptables` arguments, in order, for the nat table of the workload's namespace."""
    uid, gid = str(settings.proxy_uid), str(settings.proxy_gid)
    nat = ["-t", "nat"]
    rules: list[list[str]] = [[*nat, "-N", chain] for chain in
                              ("ISTIO_INBOUND", "ISTIO_REDIRECT", "ISTIO_IN_REDIRECT", "ISTIO_OUTPUT")]
    rules += [
        [*nat, "-A", "ISTIO_REDIRECT", "-p", "tcp", "-j", "REDIRECT", "--to-ports", str(settings.outbound_port)],
        [*nat, "-A", "ISTIO_IN_REDIRECT", "-p", "tcp", "-j", "REDIRECT", "--to-ports", str(settings.inbound_port)],
        [*nat, "-A", "PREROUTING", "-p", "tcp", "-j", "ISTIO_INBOUND"],
    ]
    rules += [[*nat, "-A", "ISTIO_INBOUND", "-p", "tcp", "--dport", str(port), "-j", "RETURN"]
              for port in settings.skip_inbound_ports]
    rules += [
        [*nat, "-A", "ISTIO_INBOUND", "-p", "tcp", "-j", "ISTIO_IN_REDIRECT"],
        [*nat, "-A", "OUTPUT", "-p", "tcp", "-j", "ISTIO_OUTPUT"],
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
        [*nat, "-A", "ISTIO_OUTPUT", "-j", "ISTIO_REDIRECT"],
    ]
    return rules
